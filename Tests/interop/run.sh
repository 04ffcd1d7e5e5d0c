#!/usr/bin/env bash
# Tests/interop/run.sh — interop of libtdnskrs with pyhpke, cryptography's hpke, jwcrypto and the
# Debian `jose` CLI (Tests/interop/test_interop.py, through ctypes).
#
#   TDNSKRS_BUILD=/abs/build PYTHON=/abs/.venv/bin/python bash Tests/interop/run.sh [PYTEST-ARGS]
#
# PYTHON defaults to the project venv (`make venv`). Prints one "PASS: <name>" or
# "FAIL: <name> — <reason>" line per test (skips as "# SKIP: ..." comments); exit 1 if any
# failed. pytest's own output goes to a temporary log that is shown only when pytest could not
# produce results; assertions run with --assert=plain so no value is ever echoed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$root/build}
python=${PYTHON:-$root/.venv/bin/python}

fail_line() { printf 'FAIL: %s \xe2\x80\x94 %s\n' "$1" "$2"; }

if [ ! -x "$python" ]; then
    fail_line "interop: python with the test peers" "$python not found (run 'make venv')"
    exit 1
fi
if ! "$python" -c 'import pytest, pyhpke, jwcrypto' 2>/dev/null; then
    fail_line "interop: python with the test peers" "$python lacks pytest/pyhpke/jwcrypto (run 'make venv')"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tdnskrs-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT

cd "$here" || exit 1
PYTHONDONTWRITEBYTECODE=1 "$python" -m pytest test_interop.py -q -p no:cacheprovider \
    --assert=plain --tb=short --junitxml="$work/junit.xml" "$@" >"$work/log" 2>&1
prc=$?

if [ ! -s "$work/junit.xml" ]; then
    fail_line "interop: pytest ran" "exit status $prc, no results; log follows on stderr"
    tail -40 "$work/log" >&2
    exit 1
fi

"$python" - "$work/junit.xml" "$prc" <<'EOF'
import sys
import xml.etree.ElementTree as ET

path, prc = sys.argv[1], int(sys.argv[2])
dash = "\u2014"
failed = passed = 0


def first_line(text):
    text = (text or "").strip().splitlines()
    line = text[0] if text else "no message"
    return line[:400]


for case in ET.parse(path).getroot().iter("testcase"):
    name = "interop: " + case.get("name", "?")
    fails = case.findall("failure") + case.findall("error")
    skips = case.findall("skipped")
    if fails:
        failed += 1
        f = fails[0]
        kind = "error" if f.tag == "error" else "failed"
        print(f"FAIL: {name} {dash} {kind}: {first_line(f.get('message') or f.text)}")
    elif skips:
        print(f"# SKIP: {name} {dash} {first_line(skips[0].get('message'))}")
    else:
        passed += 1
        print(f"PASS: {name}")
if passed + failed == 0:
    print(f"FAIL: interop: pytest collected tests {dash} none ran (pytest status {prc})")
    failed += 1
elif prc not in (0, 1):
    print(f"FAIL: interop: pytest finished normally {dash} pytest status {prc}")
    failed += 1
sys.exit(1 if failed else 0)
EOF
