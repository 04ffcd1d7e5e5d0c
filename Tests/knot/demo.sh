#!/usr/bin/env bash
# Tests/knot/demo.sh — `make demo SERVER=knot`: the KRS inside Knot DNS on 127.0.0.1, narrated.
# Starts tdns-kdc and knotd with mod-tdnskrs.so, enrolls the node with knotd's own port as its
# NOTIFY address, distributes a KSK and a ZSK for example.test. (the KDC NOTIFYs knotd, the
# module hands the NOTIFY to the library, whose worker fetches, imports with keymgr and
# confirms), shows knotd's DNSKEYs and RRSIGs carrying the distributed key tags, rolls and
# deletes a ZSK, reloads knotd three times, times five more rolls and stops everything it
# started (Tests/knot/run.sh with DEMO=1; the PASS lines are summarized, FAIL lines shown).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/../.." && pwd)/build}
export DEMO=1

echo "libtdnskrs in Knot DNS: tdns-kdc → NOTIFY to knotd → mod-tdnskrs.so → keymgr + knotc → signed zone"
echo
out=$(mktemp /tmp/tdnskrs-demo.XXXXXX)
bash "$here/run.sh" 2>&1 | tee "$out" | grep -v '^PASS: '
rc=${PIPESTATUS[0]}
p=$(grep -c '^PASS: ' "$out")
f=$(grep -c '^FAIL: ' "$out")
echo
if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
    if grep -q 'NOTIFY path only' "$out"; then
        echo "demo: $p checks passed — knotd takes the KDC's NOTIFYs and the KRS inside it confirms (this library has no Knot key store yet)"
    else
        echo "demo: $p checks passed — knotd signs example.test. with the keys the KDC distributed"
    fi
    rm -f "$out"
    exit 0
fi
rm -f "$out"
echo "demo FAILED: $f of $((p + f)) checks failed (see the FAIL lines above)"
exit 1
