#!/usr/bin/env bash
# Tests/hosting/run.sh — the hosting proof: libtdnskrs inside named (DLZ) and knotd (module).
# Passes the PASS/FAIL lines of each test through; exits non-zero if any check failed.
# The build directory comes from TDNSKRS_BUILD (default: <repo>/build).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$(cd "$here/../.." && pwd)/build}

status=0
for t in test-bind9.sh test-knot.sh; do
    bash "$here/$t" || status=1
done
exit $status
