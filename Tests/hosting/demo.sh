#!/usr/bin/env bash
# Tests/hosting/demo.sh — `make demo` for now: the hosting proof, narrated. Starts named with the
# DLZ module and knotd with the Knot module on 127.0.0.1, asks both for version.tdnskrs TXT
# (answered from libtdnskrs), reloads each three times, asks again, and stops them.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/../.." && pwd)/build}
export DEMO=1

echo "libtdnskrs hosting proof — library and plugins from $TDNSKRS_BUILD/lib"
echo
echo "BIND 9: named + dlz_tdnskrs.so"
bash "$here/test-bind9.sh"; bind=$?
echo
echo "Knot DNS: knotd + mod-tdnskrs.so"
bash "$here/test-knot.sh"; knot=$?
echo
if [ $bind -eq 0 ] && [ $knot -eq 0 ]; then
    echo "hosting proof: both servers answered from libtdnskrs and survived their reloads"
    exit 0
fi
echo "hosting proof FAILED (see the FAIL lines above)"
exit 1
