#!/usr/bin/env bash
# tls_test.sh -- RPCs over NNG's TLS transport (tls+tcp://) with a
# deployment CA: mutual TLS, the signed envelope inside.
#
# Usage: CV_TEST_BUILD_DIR=build-asan CAVRA_DATABASE_URL=postgresql://... \
#        bash tests/cli/tls_test.sh     (ctest runs it as cli.tls)
#
# Makes a throwaway CA and certificates with openssl, starts cavra-ack on
# tls+tcp://127.0.0.1:<free port>, then checks: a caller with a
# certificate from the CA gets an answer; a plain tcp:// caller, a caller
# without a certificate and one whose certificate comes from another CA
# get none; a service without its certificate refuses to start.
set -uo pipefail

TT_FAILED=0
TT_PASSED=0
tt_check() {
    local what=$1
    shift
    if "$@"; then
        TT_PASSED=$((TT_PASSED + 1))
        echo "ok - $what"
    else
        TT_FAILED=$((TT_FAILED + 1))
        echo "not ok - $what"
    fi
}

if [[ -z "${CV_TEST_BUILD_DIR:-}" || -z "${CAVRA_DATABASE_URL:-}" ]]; then
    echo "tls_test.sh: set CV_TEST_BUILD_DIR and CAVRA_DATABASE_URL" >&2
    exit 1
fi
B=$CV_TEST_BUILD_DIR
T=$(mktemp -d /tmp/cavra-tls-test.XXXXXX)
ACK_PID=
tt_cleanup() {
    [[ -z "$ACK_PID" ]] || kill -TERM "$ACK_PID" 2>/dev/null
    [[ -z "$ACK_PID" ]] || wait "$ACK_PID" 2>/dev/null
    rm -rf "$T"
}
trap tt_cleanup EXIT

# A CA, a server and a client certificate (name 127.0.0.1), and a second
# CA with its own client certificate.
tt_cert() { # CA NAME
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$2.key" -out "$T/$2.csr" -subj "/CN=127.0.0.1" 2>/dev/null &&
        printf 'subjectAltName=DNS:127.0.0.1,DNS:localhost,IP:127.0.0.1\n' >"$T/ext" &&
        openssl x509 -req -in "$T/$2.csr" -CA "$T/$1.pem" -CAkey "$T/$1.key" \
            -CAcreateserial -out "$T/$2.pem" -days 1 -extfile "$T/ext" 2>/dev/null
}
for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$ca.key" -out "$T/$ca.pem" -days 1 -subj "/CN=$ca" 2>/dev/null ||
        { echo "tls_test.sh: openssl cannot make a CA" >&2; exit 1; }
done
tt_cert ca server && tt_cert ca client && tt_cert other-ca stranger ||
    { echo "tls_test.sh: openssl cannot make certificates" >&2; exit 1; }
"$B/tools/cavra-keygen" operator "$T/operator.key" admin >"$T/principals"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=tls+tcp://127.0.0.1:$port
export CAVRA_PRINCIPALS_FILE=$T/principals CAVRA_RPC_KEY_FILE=$T/operator.key

# A TLS service without its certificate refuses to start.
CAVRA_ACK_URL=$URL CAVRA_TLS_CA_FILE=$T/ca.pem timeout 10 "$B/services/ack/cavra-ack" \
    >"$T/nocert.log" 2>&1
rc=$?
tt_check "a tls+tcp service without a certificate exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
tt_check "it names the missing setting" grep -q CAVRA_TLS_CERT_FILE "$T/nocert.log"

CAVRA_ACK_URL=$URL CAVRA_TLS_CA_FILE=$T/ca.pem CAVRA_TLS_CERT_FILE=$T/server.pem \
    CAVRA_TLS_KEY_FILE=$T/server.key "$B/services/ack/cavra-ack" >"$T/ack.log" 2>&1 &
ACK_PID=$!

tt_rpc() { # ENV... : runs cavra-rpc ack.Health with the given env
    env "$@" "$B/tools/cavra-rpc" --url "$URL" --timeout-ms 3000 ack.Health \
        >"$T/out" 2>"$T/err" </dev/null
}
up=1
for ((i = 0; i < 40; i++)); do
    tt_rpc CAVRA_TLS_CA_FILE="$T/ca.pem" CAVRA_TLS_CERT_FILE="$T/client.pem" \
        CAVRA_TLS_KEY_FILE="$T/client.key" && { up=0; break; }
    sleep 0.25
done
tt_check "a caller with a certificate from the deployment CA is answered" test "$up" -eq 0
tt_check "the answer is the service's health" grep -q '"status": "ok"' "$T/out"
tt_rpc CAVRA_TLS_CA_FILE="$T/ca.pem"
tt_check "a caller without a certificate gets no answer" test $? -ne 0
tt_rpc CAVRA_TLS_CA_FILE="$T/ca.pem" CAVRA_TLS_CERT_FILE="$T/stranger.pem" \
    CAVRA_TLS_KEY_FILE="$T/stranger.key"
tt_check "a caller whose certificate comes from another CA gets no answer" test $? -ne 0
env "$B/tools/cavra-rpc" --url "tcp://127.0.0.1:$port" --timeout-ms 2000 ack.Health \
    >"$T/out" 2>"$T/err" </dev/null
tt_check "a plain tcp:// caller gets no answer" test $? -ne 0

echo "$TT_PASSED passed, $TT_FAILED failed"
[[ $TT_FAILED -eq 0 ]]
