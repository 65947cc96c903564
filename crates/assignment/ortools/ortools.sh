#!/usr/bin/env bash
# Solves an instance file with Google OR-tools' SimpleMinCostFlow and with `tandem solve`, and
# prints both objectives and solve times side by side.
#
#   crates/assignment/ortools/ortools.sh FILE          (FILE from `tandem bench match --export-arcs FILE`)
#
# Installs ortools into target/ortools-venv on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
file="${1:?usage: crates/assignment/ortools/ortools.sh INSTANCE_FILE}"
venv="$root/target/ortools-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet ortools
fi
tandem="${TANDEM:-$root/target/release/tandem}"
if [ ! -x "$tandem" ]; then
  (cd "$root" && cargo build --release --quiet -p tandem-cli)
fi
echo "OR-tools: $("$venv/bin/python" "$here/ortools_solve.py" "$file")"
echo "tandem:   $("$tandem" solve --arcs "$file" --json)"
