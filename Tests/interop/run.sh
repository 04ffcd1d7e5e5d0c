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

"$python" "$here/../support/junit_lines.py" interop "$work/junit.xml" "$prc"
