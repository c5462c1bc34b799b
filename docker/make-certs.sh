#!/usr/bin/env bash
# make-certs.sh DIR -- a deployment CA and the certificates the compose
# deployment's RPCs use (NNG's tls+tcp://, mutual TLS), with openssl:
#
#   DIR/ca.pem, DIR/ca.key              the deployment CA (keep ca.key offline)
#   DIR/{ack,retry,report}.{pem,key}    each service (name = its compose
#                                       service name, and localhost for its
#                                       own health check)
#   DIR/gateway.{pem,key}               the gateway, as a caller
#   DIR/{ack,retry,report}-2.{pem,key}  the second replicas (docker-compose.yml
#                                       profile "replicas")
#
# Existing files are kept (run it again after deleting one to renew it).
# Private keys are written 0600; give each to the one container that needs
# it (docker-compose.yml mounts them as secrets).
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
umask 077
if [[ ! -f "$dir/ca.pem" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 825 \
        -subj "/CN=CAVRA Recovery deployment CA" 2>/dev/null
fi
for name in ack retry report gateway ack-2 retry-2 report-2; do
    [[ -f "$dir/$name.pem" ]] && continue
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    printf 'subjectAltName=DNS:%s,DNS:localhost\n' "$name" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/$name.pem" -days 825 -extfile "$dir/$name.ext" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
done
chmod 0644 "$dir"/*.pem
echo "make-certs.sh: certificates in $dir"
