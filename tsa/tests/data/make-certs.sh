#!/bin/sh
# Regenerates the certificates of the verifier's unit tests (src/verify.rs), each a small
# variation on a TSA certificate. Keys are thrown away: the tests only read certificates.
# Run from this directory: sh make-certs.sh
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ext.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
[tsa_ok]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
[no_eku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
[eku_noncritical]
extendedKeyUsage = timeStamping
[eku_extra]
extendedKeyUsage = critical, timeStamping, serverAuth
[ku_wrong]
keyUsage = critical, keyEncipherment
extendedKeyUsage = critical, timeStamping
[unknown_critical]
extendedKeyUsage = critical, timeStamping
nameConstraints = critical, permitted;DNS:example.org
CNF
export OPENSSL_CONF="$work/ext.cnf"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
openssl req -x509 -new -key "$work/ca.key" -subj "/CN=vm-tsa unit root" -days 36500 \
  -extensions v3_ca -sha256 -out root.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/leaf.key"
openssl req -new -key "$work/leaf.key" -subj "/CN=vm-tsa unit leaf" -out "$work/leaf.csr"
n=10
for e in not_ca tsa_ok no_eku eku_noncritical eku_extra ku_wrong unknown_critical; do
  n=$((n + 1))
  openssl x509 -req -in "$work/leaf.csr" -CA root.pem -CAkey "$work/ca.key" -set_serial $n \
    -days 36500 -extfile "$work/ext.cnf" -extensions $e -sha256 -out $e.pem
done
# A TSA certificate issued by not_ca.pem (whose key is the leaf key): a non-CA issuer.
openssl req -new -key "$work/ca.key" -subj "/CN=vm-tsa unit under non-CA" -out "$work/sub.csr"
openssl x509 -req -in "$work/sub.csr" -CA not_ca.pem -CAkey "$work/leaf.key" -set_serial 99 \
  -days 36500 -extfile "$work/ext.cnf" -extensions tsa_ok -sha256 -out under_not_ca.pem
