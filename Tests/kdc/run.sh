#!/usr/bin/env bash
# Tests/kdc/run.sh — integration tests of the reference KDC `tdns-kdc` (Tests/kdc/test_kdc.py):
# golden distributions checked with pyhpke/jwcrypto from PROTOCOL alone, the KDC's distributions
# through libtdnskrs's krs_process_distribution, enrollment with a dnspython client, NOTIFY and
# confirmations, 1000 pipelined CHUNK queries on one TCP connection, zone export, key import.
#
#   TDNSKRS_BUILD=/abs/build PYTHON=/abs/.venv/bin/python bash Tests/kdc/run.sh [PYTEST-ARGS]
#
# tdns-kdc is $KDC_BIN, else $TDNSKRS_BUILD/bin/tdns-kdc. Servers listen on 127.0.0.1 high
# ports only and are stopped by the test fixtures (and killed by the trap below if pytest dies).
# Prints one "PASS: <name>" or "FAIL: <name> — <reason>" line per test; exit 1 if any failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$root/build}
export KDC_BIN=${KDC_BIN:-$TDNSKRS_BUILD/bin/tdns-kdc}
python=${PYTHON:-$root/.venv/bin/python}

fail_line() { printf 'FAIL: %s \xe2\x80\x94 %s\n' "$1" "$2"; }

if [ ! -x "$KDC_BIN" ]; then
    fail_line "kdc: tdns-kdc binary" "$KDC_BIN not found (run 'make')"
    exit 1
fi
if [ ! -x "$python" ] || ! "$python" -c 'import pytest, pyhpke, jwcrypto, dns' 2>/dev/null; then
    fail_line "kdc: python with the test peers" "$python lacks pytest/pyhpke/jwcrypto/dnspython (run 'make venv')"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tdnskrs-kdc.XXXXXX")
export WORK=$work
cleanup() {
    # Servers the tests started and did not stop (pytest died): each wrote its pid here.
    if [ -f "$work/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null; done <"$work/pids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cd "$here" || exit 1
PYTHONDONTWRITEBYTECODE=1 "$python" -m pytest test_kdc.py -q -p no:cacheprovider \
    --assert=plain --tb=short --junitxml="$work/junit.xml" --basetemp="$work/tmp" "$@" >"$work/log" 2>&1
prc=$?

if [ ! -s "$work/junit.xml" ]; then
    fail_line "kdc: pytest ran" "exit status $prc, no results; log follows on stderr"
    tail -40 "$work/log" >&2
    exit 1
fi

"$python" "$here/../support/junit_lines.py" kdc "$work/junit.xml" "$prc"
