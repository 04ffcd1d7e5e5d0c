#!/usr/bin/env bash
# Runs every test suite of libtdnskrs and ends with one line "N passed, N failed".
#
# Each suite prints one line per check, "PASS: name" or "FAIL: name — reason"; the Swift
# unit tests are counted from swift-testing's per-test result lines. A suite that exits
# non-zero without printing a FAIL line is counted as one failure, so a crash never hides.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export TDNSKRS_BUILD=${TDNSKRS_BUILD:-$root/build}
export PYTHON=${PYTHON:-$root/.venv/bin/python}
export CC=${CC:-cc}
SWIFT=${SWIFT:-swift}
logdir=$(mktemp -d /tmp/tdnskrs-tests.XXXXXX)
passed=0
failed=0

run_suite() {  # name, command...
    local name=$1; shift
    local log="$logdir/$name.log"
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -c '^PASS: ' "$log")
    f=$(grep -c '^FAIL: ' "$log")
    grep -E '^(FAIL|TIMING): |^# soak: ' "$log" | sed 's/^/   /'
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "   FAIL: $name exited $rc without a FAIL line; last lines of $log:"
        tail -15 "$log" | sed 's/^/     /'
    fi
    echo "   $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}

# swift-testing prints "✔ Test name passed" / "✘ Test name failed" per test (and per
# parameterized case group); turn those into PASS/FAIL lines.
swift_unit_tests() {
    cd "$root" || return 1
    # SwiftPM compiles its C targets with $CC when set; keep the C tests' compiler out of it.
    env -u CC -u CFLAGS "$SWIFT" test 2>&1 | tee "$logdir/swift-test.raw" | sed -n \
        -e '/^✔ Test run with /d' -e '/^✘ Test run with /d' \
        -e 's/^✔ Test \(.*\) passed after.*/PASS: \1/p' \
        -e 's/^✘ Test \(.*\) failed after.*/FAIL: \1/p'
    return "${PIPESTATUS[0]}"
}

run_suite swift-unit swift_unit_tests
run_suite c-abi bash "$here/cabi/run.sh"
run_suite headers bash "$here/cabi/headers.sh"
run_suite symbols bash "$here/cabi/symbols.sh"
run_suite interop bash "$here/interop/run.sh"
run_suite krs-c bash "$here/krs/run.sh"
run_suite kdc bash "$here/kdc/run.sh"
run_suite e2e bash "$here/e2e/run.sh"
run_suite e2e-faults bash "$here/e2e/faults.sh"
run_suite soak bash "$here/soak/run.sh"
run_suite attack bash "$here/attack/run.sh"
run_suite install bash "$here/install/run.sh"
run_suite examples bash "$here/examples/run.sh"
run_suite hosting bash "$here/hosting/run.sh"
run_suite bind9 bash "$here/bind9/run.sh"
run_suite knot bash "$here/knot/run.sh"
run_suite nsd bash "$here/nsd/run.sh"
# The same flow with named under valgrind memcheck (issue 6: no memory errors from our code).
run_suite bind9-valgrind env VALGRIND=1 bash "$here/bind9/run.sh"
run_suite knot-valgrind env VALGRIND=1 bash "$here/knot/run.sh"
# HPKE and JOSE nodes side by side, migration, rollback, node remove (issue 13).
run_suite mixed bash "$here/mixed/run.sh"
# The Debian packages: make deb, lintian, dpkg -i, the flows on the installed paths, purge.
run_suite deb bash "$here/deb/run.sh"

echo
echo "logs: $logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
