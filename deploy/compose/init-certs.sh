#!/busybox/sh
# One-shot: mints the trial federation's development CA and every certificate into the shared
# volume, skipping what is already there (a restart keeps the CA, so nothing needs re-issuing).
# Runs in the image's `debug` target (busybox sh) as the unprivileged user.
set -eu
certs=/var/lib/tandem/certs
shared=/var/lib/tandem/shared

[ -f "$certs/ca.pem" ] || tandem certs init --dir "$certs"

# The broker's identity towards the nodes (mutual TLS), shared by both replicas.
[ -f "$certs/broker.pem" ] || tandem certs issue --dir "$certs" --name broker --identity broker.tandem --kind broker
# The broker's API and dashboard certificate: the names callers dial, inside the compose network
# and from the host.
[ -f "$certs/broker-api.pem" ] || tandem certs issue --dir "$certs" --name broker-api --kind api --identity localhost --san broker-1 --san broker-2 --san 127.0.0.1

for node in ind-assoc startup-net chamber; do
  [ -f "$certs/$node.pem" ] || tandem certs issue --dir "$certs" --name "$node" --identity "$node.node.tandem" --kind node
  [ -f "$certs/$node-admin.pem" ] || tandem certs issue --dir "$certs" --name "$node-admin" --kind api --identity localhost --san "node-$node" --san 127.0.0.1
done

# Prometheus runs as another user and reads only the shared volume: the CA is public.
cp "$certs/ca.pem" "$shared/ca.pem"
chmod 0644 "$shared/ca.pem"
echo "certificates ready in $certs"
