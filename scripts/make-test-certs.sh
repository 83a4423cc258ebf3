#!/bin/bash
# SPDX-License-Identifier: MIT
# make-test-certs.sh DIR - throwaway certificates for the TLS tests, made
# with the openssl command (issue 5):
#   ca.pem ca.key                  a test CA
#   server.pem server.key          localhost, 127.0.0.1, ::1; signed by the CA
#   expired.pem expired.key        localhost, valid 2020-01-01..2020-01-02 only
#   wronghost.pem wronghost.key    wrong.example; signed by the CA
#   wildcard.pem wildcard.key      *.example.org; signed by the CA (SNI tests)
#   server-enc.key                 server.key encrypted with password "secret"
#   other.key                      a key that matches no certificate
# Idempotent (a complete DIR is left alone), quiet, and loud on failure.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
files=(ca.pem ca.key server.pem server.key expired.pem expired.key
	wronghost.pem wronghost.key wildcard.pem wildcard.key
	server-enc.key other.key)

complete=1
for f in "${files[@]}"; do
	[ -s "$dir/$f" ] || complete=0
done
[ "$complete" = 1 ] && exit 0

mkdir -p "$dir"
work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

run() {
	local out
	if ! out=$("$@" 2>&1); then
		echo "make-test-certs.sh: failed: $*" >&2
		echo "$out" >&2
		exit 1
	fi
}

newkey() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$work/$1"
}

# The CA.
newkey ca.key
run openssl req -x509 -new -key "$work/ca.key" -sha256 -days 3650 \
	-subj "/CN=proa test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$work/ca.pem"

# A minimal "openssl ca" set-up: it can sign with explicit start and end
# dates, which "openssl x509 -req" in OpenSSL 3.0 cannot (no -not_before).
mkdir -p "$work/db"
: >"$work/db/index.txt"
cat >"$work/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $work/db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
rand_serial = yes
unique_subject = no
default_md = sha256
policy = any
copy_extensions = copy
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
CNF

# leaf NAME CN SAN [CA-ARGS...]: key NAME.key, certificate NAME.pem.
leaf() {
	local name=$1 cn=$2 san=$3
	shift 3
	newkey "$name.key"
	run openssl req -new -key "$work/$name.key" -subj "/CN=$cn" \
		-addext "subjectAltName=$san" -out "$work/$name.csr"
	run openssl ca -batch -notext -config "$work/ca.cnf" \
		-cert "$work/ca.pem" -keyfile "$work/ca.key" \
		-in "$work/$name.csr" -out "$work/$name.pem" "$@"
}

leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1" -days 3650
leaf expired localhost "DNS:localhost,IP:127.0.0.1,IP:::1" \
	-startdate 20200101000000Z -enddate 20200102000000Z
leaf wronghost wrong.example "DNS:wrong.example" -days 3650
leaf wildcard "*.example.org" "DNS:*.example.org" -days 3650
run openssl pkey -in "$work/server.key" -aes256 -passout pass:secret \
	-out "$work/server-enc.key"
newkey other.key

for f in "${files[@]}"; do
	[ -s "$work/$f" ] || { echo "make-test-certs.sh: $f not made" >&2; exit 1; }
	mv -f "$work/$f" "$dir/$f"
done
