#!/usr/bin/env bash
# Solves an instance file with Google OR-tools' SimpleMinCostFlow and with `tandem solve`, and
# prints both objectives and solve times side by side.
#
#   bench/ortools.sh FILE          (FILE from `tandem bench match --export-arcs FILE`)
#
# Installs ortools into bench/.venv on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
file="${1:?usage: bench/ortools.sh INSTANCE_FILE}"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet ortools
fi
tandem="${TANDEM:-$here/../target/release/tandem}"
if [ ! -x "$tandem" ]; then
  (cd "$here/.." && cargo build --release --quiet)
fi
echo "OR-tools: $("$venv/bin/python" "$here/ortools_solve.py" "$file")"
echo "tandem:   $("$tandem" solve --arcs "$file" --json)"
