#!/busybox/sh
# One-shot, after the broker's migration: creates the operator key Prometheus scrapes /metrics
# with, once, into the shared volume that only Prometheus mounts besides this service.
# `tandem keys` reads a configuration file; an empty one leaves everything to the TANDEM_*
# variables of this service.
set -eu
shared=/var/lib/tandem/shared
if [ -s "$shared/operator-key" ]; then
  echo "prometheus operator key exists"
  exit 0
fi
: > /tmp/broker.toml
tandem keys create --config /tmp/broker.toml --scope operator --label prometheus > "$shared/operator-key.new"
chmod 0644 "$shared/operator-key.new"
mv "$shared/operator-key.new" "$shared/operator-key"
