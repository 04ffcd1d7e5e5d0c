#!/usr/bin/env bash
# Tests/demo.sh SERVER — `make demo SERVER=bind9|knot|nsd`: the KRS on 127.0.0.1, narrated.
# Runs Tests/SERVER/run.sh with DEMO=1: it starts tdns-kdc and the server (named with
# dlz_tdnskrs.so, knotd with mod-tdnskrs.so, or NSD beside `tdnskrs-nsd run`), enrolls the node,
# distributes a KSK and a ZSK for example.test., shows the server's DNSKEYs and RRSIGs carrying
# the distributed key tags, rolls the ZSK, reloads the server three times, times five more
# rolls and stops everything it started. Shows every line but the PASS lines (the "==>"
# narration, the proof, TIMING and FAIL lines), then one summary line; exit 1 if a check failed.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/.." && pwd)/build}
export DEMO=1

server=${1:-}
case $server in
bind9)
    title="libtdnskrs in BIND 9: tdns-kdc → NOTIFY → dlz_tdnskrs.so inside named → rndc loadkeys → signed zone"
    done_line="named signs example.test. with the keys the KDC distributed" ;;
knot)
    title="libtdnskrs in Knot DNS: tdns-kdc → NOTIFY to knotd → mod-tdnskrs.so → keymgr + knotc → signed zone"
    done_line="knotd signs example.test. with the keys the KDC distributed" ;;
nsd)
    title="libtdnskrs for NSD: tdns-kdc → NOTIFY → tdnskrs-nsd → K-files, dnssec-signzone → nsd-control reload → signed zone"
    done_line="NSD serves example.test. signed with the keys the KDC distributed" ;;
*)
    echo "usage: $0 bind9|knot|nsd" >&2
    exit 2 ;;
esac

echo "$title"
echo
out=$(mktemp /tmp/tdnskrs-demo.XXXXXX)
bash "$here/$server/run.sh" 2>&1 | tee "$out" | grep -v '^PASS: '
rc=${PIPESTATUS[0]}
p=$(grep -c '^PASS: ' "$out")
f=$(grep -c '^FAIL: ' "$out")
rm -f "$out"
echo
if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "demo: $p checks passed — $done_line"
    exit 0
fi
echo "demo FAILED: $f of $((p + f)) checks failed (see the FAIL lines above)"
exit 1
