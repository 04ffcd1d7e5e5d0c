#!/usr/bin/env bash
# Adds RSA key seeds to the key-file corpus: the library parses RSA keys but cannot make them,
# so openssl does (PKCS#8 PEM and DER, 1024 bits, e = 65537 and e = 3).
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/key-file
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$tmp/k1.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -pkeyopt rsa_keygen_pubexp:3 -out "$tmp/k3.pem" 2>/dev/null
cp "$tmp/k1.pem" "$out/seed-rsa1024-pem"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/k3.pem" -outform DER -out "$out/seed-rsa1024-e3-der"
echo "wrote $out/seed-rsa1024-pem $out/seed-rsa1024-e3-der"
