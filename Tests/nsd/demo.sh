#!/usr/bin/env bash
# Tests/nsd/demo.sh — `make demo SERVER=nsd`: the KRS as NSD's sidecar on 127.0.0.1, narrated.
# Starts tdns-kdc, NSD (serving example.test. from the signed file) and `tdnskrs-nsd run`,
# enrolls the node, distributes a KSK and a ZSK, shows NSD's DNSKEYs and RRSIGs carrying the
# distributed key tags, rolls and deletes a ZSK, shows a failure reported to the KDC, reloads
# NSD three times, re-signs on demand, and stops everything it started (Tests/nsd/run.sh with
# DEMO=1; the PASS lines are summarized, FAIL lines shown).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/../.." && pwd)/build}
export DEMO=1

echo "libtdnskrs for NSD: tdns-kdc → NOTIFY → tdnskrs-nsd → K-files, dnssec-signzone → nsd-control reload → signed zone"
echo
out=$(mktemp /tmp/tdnskrs-demo.XXXXXX)
bash "$here/run.sh" | tee "$out" | grep -v '^PASS: '
rc=${PIPESTATUS[0]}
p=$(grep -c '^PASS: ' "$out")
f=$(grep -c '^FAIL: ' "$out")
rm -f "$out"
echo
if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "demo: $p checks passed — NSD serves example.test. signed with the keys the KDC distributed"
    exit 0
fi
echo "demo FAILED: $f of $((p + f)) checks failed (see the FAIL lines above)"
exit 1
