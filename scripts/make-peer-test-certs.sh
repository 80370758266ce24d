#!/usr/bin/env bash
# Makes the certificates of engine/src/tls/testdata/peer/, used by the peer-TLS tests
# (engine/src/tls/tests.rs, engine/tests/cluster_tls.rs) and scripts/bench-peer-tls.sh:
#
#   ca.pem                      the cluster's CA (its key is thrown away)
#   node0..2.pem, node0..2.key  one certificate per test node, signed by ca.pem: IP SAN
#                               127.0.0.1 and DNS localhost, usable as a server and as a
#                               client certificate (a node is both on a peer link)
#   other-ca.pem                a CA nobody else trusts
#   other.pem, other.key        a node certificate signed by other-ca.pem (same SANs): the
#                               "node from a different CA" the tests expect to be refused
#
# ECDSA P-256 keys (fast handshakes), valid for 100 years. The files are checked in; run this
# only to replace them:  bash scripts/make-peer-test-certs.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-engine/src/tls/testdata/peer}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500

ca() { # name subject
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/$1.key" -out "$out/$1.pem" -days "$days" -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # name ca subject
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/$1.key.tmp" -out "$work/$1.csr" -subj "$3" 2>/dev/null
  # PKCS#8, as ssl_key accepts every PEM form but tests read one.
  openssl pkcs8 -topk8 -nocrypt -in "$work/$1.key.tmp" -out "$out/$1.key"
  cat >"$work/$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
  openssl x509 -req -in "$work/$1.csr" -CA "$out/$2.pem" -CAkey "$work/$2.key" \
    -CAcreateserial -CAserial "$work/$2.srl" -out "$out/$1.pem" -days "$days" \
    -extfile "$work/$1.ext" 2>/dev/null
}

ca ca "/CN=corecache peer test CA"
for i in 0 1 2; do
  leaf "node$i" ca "/CN=node$i.corecache.test/OU=corecache peer"
done
ca other-ca "/CN=another CA"
leaf other other-ca "/CN=other.corecache.test/OU=not of this cluster"
for f in "$out"/node*.pem "$out"/other.pem; do
  issuer=$([[ $f == */other.pem ]] && echo other-ca || echo ca)
  openssl verify -CAfile "$out/$issuer.pem" -purpose sslserver "$f" >/dev/null
  openssl verify -CAfile "$out/$issuer.pem" -purpose sslclient "$f" >/dev/null
done
ls "$out"
