#!/usr/bin/env bash
# Adds key-file seeds the library cannot make itself: RSA keys from openssl (PKCS#8 PEM and
# DER, 1024 bits, e = 65537 and e = 3), and `.private` files written by BIND's dnssec-keygen
# (the real writer, with all its timing lines) when bind9-utils is installed. Existing seeds
# are kept (the keys are random; regenerating them would only churn the corpus).
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/key-file
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -e "$out/seed-rsa1024-pem" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$out/seed-rsa1024-pem" 2>/dev/null
    echo "wrote seed-rsa1024-pem"
fi
if [ ! -e "$out/seed-rsa1024-e3-der" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -pkeyopt rsa_keygen_pubexp:3 -out "$tmp/k3.pem" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$tmp/k3.pem" -outform DER -out "$out/seed-rsa1024-e3-der"
    echo "wrote seed-rsa1024-e3-der"
fi
if command -v dnssec-keygen >/dev/null; then
    for alg in RSASHA256:1024 ECDSAP256SHA256: ECDSAP384SHA384: ED25519:; do
        name=${alg%%:*} bits=${alg#*:}
        seed="$out/seed-bind-$(echo "$name" | tr 'A-Z' 'a-z')-private"
        [ -e "$seed" ] && continue
        base=$(cd "$tmp" && dnssec-keygen -q -a "$name" ${bits:+-b "$bits"} -f KSK example.com)
        cp "$tmp/$base.private" "$seed"
        echo "wrote $(basename "$seed")"
    done
fi
