#!/usr/bin/env bash
# Tests/bind9/demo.sh — `make demo`: the KRS inside BIND 9 on 127.0.0.1, narrated.
# Starts tdns-kdc and named with dlz_tdnskrs.so, enrolls the node, creates and distributes a
# KSK and a ZSK for example.test., waits for the confirmations, shows named's DNSKEYs and
# RRSIGs carrying the distributed key tags and the status.tdnskrs. TXT records, reloads named
# three times, distributes once more, and stops everything it started (Tests/bind9/run.sh with
# DEMO=1; the PASS lines are summarized, FAIL lines shown).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/../.." && pwd)/build}
export DEMO=1

echo "libtdnskrs in BIND 9: tdns-kdc → NOTIFY → dlz_tdnskrs.so inside named → rndc loadkeys → signed zone"
echo
out=$(mktemp /tmp/tdnskrs-demo.XXXXXX)
bash "$here/run.sh" | tee "$out" | grep -v '^PASS: '
rc=${PIPESTATUS[0]}
p=$(grep -c '^PASS: ' "$out")
f=$(grep -c '^FAIL: ' "$out")
rm -f "$out"
echo
if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "demo: $p checks passed — named signs example.test. with the keys the KDC distributed"
    exit 0
fi
echo "demo FAILED: $f of $((p + f)) checks failed (see the FAIL lines above)"
exit 1
