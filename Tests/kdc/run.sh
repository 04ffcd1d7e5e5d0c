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

"$python" - "$work/junit.xml" "$prc" <<'PY'
import sys
import xml.etree.ElementTree as ET

path, prc = sys.argv[1], int(sys.argv[2])
dash = "\u2014"
failed = passed = 0


def first_line(text):
    text = (text or "").strip().splitlines()
    return (text[0] if text else "no message")[:400]


for case in ET.parse(path).getroot().iter("testcase"):
    name = "kdc: " + case.get("name", "?")
    fails = case.findall("failure") + case.findall("error")
    skips = case.findall("skipped")
    if fails:
        failed += 1
        f = fails[0]
        print(f"FAIL: {name} {dash} {'error' if f.tag == 'error' else 'failed'}: {first_line(f.get('message') or f.text)}")
    elif skips:
        print(f"# SKIP: {name} {dash} {first_line(skips[0].get('message'))}")
    else:
        passed += 1
        print(f"PASS: {name}")
if passed + failed == 0:
    print(f"FAIL: kdc: pytest collected tests {dash} none ran (pytest status {prc})")
    failed += 1
elif prc not in (0, 1):
    print(f"FAIL: kdc: pytest finished normally {dash} pytest status {prc}")
    failed += 1
sys.exit(1 if failed else 0)
PY
