#!/usr/bin/env bash
# make_test_certs.sh DIR CLIENT_NAME CLIENT_CN
#
# Test TLS material for gpumigd's mutual-TLS listener, in DIR: a one-day CA
# (ca.pem, ca.key), a server certificate for localhost / 127.0.0.1
# (server.pem, server.key) and a client certificate with subject
# /CN=CLIENT_CN (CLIENT_NAME.pem, CLIENT_NAME.key), all P-256. Exit status 0
# when everything was made; non-zero (quietly) when openssl is missing or
# fails, so callers can skip their TLS steps.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 DIR CLIENT_NAME CLIENT_CN" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || exit 1
cd "$1"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >san.ext
# shellcheck disable=SC2086
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 1 \
  -subj "/CN=gpumig-test-ca" 2>/dev/null
# shellcheck disable=SC2086
openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost \
  2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
  -CAcreateserial -out server.pem -days 1 -extfile san.ext 2>/dev/null
# shellcheck disable=SC2086
openssl req $ec -keyout "$2.key" -out "$2.csr" -subj "/CN=$3" 2>/dev/null
openssl x509 -req -in "$2.csr" -CA ca.pem -CAkey ca.key \
  -CAcreateserial -out "$2.pem" -days 1 2>/dev/null
