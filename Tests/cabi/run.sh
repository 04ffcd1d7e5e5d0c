#!/usr/bin/env bash
# Tests/cabi/run.sh — builds Tests/cabi/test_crypto_abi.c against the public headers and the
# shipping library, and runs it under valgrind.
#
#   TDNSKRS_BUILD=/abs/build CC=cc bash Tests/cabi/run.sh [SECTION-SUBSTRING]
#
# Prints one "PASS: <name>" / "FAIL: <name> — <reason>" line per check, plus
# "PASS: valgrind clean" (no memory errors, no definite leaks); exits non-zero if any check
# failed. VALGRIND=0 runs the test binary without valgrind (then no valgrind line is printed).
# With a static Swift runtime, valgrind may report "possibly lost" and still-reachable blocks
# owned by the runtime: only errors and definite leaks fail the suite.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
cc=${CC:-cc}
use_valgrind=${VALGRIND:-1}

fail=0
pass_line() { printf 'PASS: %s\n' "$1"; }
fail_line() { printf 'FAIL: %s \xe2\x80\x94 %s\n' "$1" "$2"; fail=1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tdnskrs-cabi.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -e "$build/lib/libtdnskrs.so" ]; then
    fail_line "cabi: library present" "$build/lib/libtdnskrs.so not found (run 'make lib')"
    exit 1
fi

# Every "#define KRS_<NAME> <integer>" of common.h, for the krs_strerror checks.
sed -nE 's/^#define[[:space:]]+(KRS_[A-Z0-9_]+)[[:space:]]+\(?-?[0-9]+\)?([[:space:]].*)?$/KRS_CODE(\1)/p' \
    "$root/Include/tdnskrs/common.h" >"$work/krs_codes.inc"
if ! grep -q 'KRS_CODE(KRS_OK)' "$work/krs_codes.inc"; then
    fail_line "cabi: return codes found in common.h" "no '#define KRS_OK 0' line matched"
    exit 1
fi

bin=$work/test_crypto_abi
if ! "$cc" -std=c11 -O1 -g -Wall -Wextra -Werror -pedantic -I "$root/Include" \
        -DKRS_CODES_INC="\"$work/krs_codes.inc\"" \
        -o "$bin" "$here/test_crypto_abi.c" \
        -L "$build/lib" -ltdnskrs -Wl,-rpath,"$build/lib" -pthread 2>"$work/cc.log"; then
    fail_line "cabi: compile test_crypto_abi.c (-Wall -Wextra -Werror)" "compiler said: $(head -c 1500 "$work/cc.log" | tr '\n' ' ')"
    exit 1
fi
pass_line "cabi: compile test_crypto_abi.c with -std=c11 -Wall -Wextra -Werror -pedantic"

if [ "$use_valgrind" != 0 ] && ! command -v valgrind >/dev/null 2>&1; then
    echo "# valgrind not installed: running without it" >&2
    use_valgrind=0
fi

if [ "$use_valgrind" = 0 ]; then
    "$bin" "$@" >"$work/out" 2>"$work/err"
    rc=$?
else
    # cjose.supp: the one known third-party leak (libcjose 0.6.2.1), suppressed narrowly.
    # One log per process: each test section runs in its own forked child.
    valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --track-origins=yes --num-callers=30 \
        --suppressions="$here/cjose.supp" --log-file="$work/vg.%p.log" \
        "$bin" "$@" >"$work/out" 2>"$work/err"
    rc=$?
fi
cat "$work/out"
[ -s "$work/err" ] && sed 's/^/# stderr: /' "$work/err" | head -50 >&2

grep -q '^FAIL: ' "$work/out" && fail=1
if ! grep -q '^# test_crypto_abi finished' "$work/out"; then
    fail_line "cabi: test_crypto_abi ran to completion" "exit status $rc, no end marker"
elif [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 99 ]; then
    fail_line "cabi: test_crypto_abi exit status" "unexpected status $rc"
fi
if [ "$rc" = 1 ] && ! grep -q '^FAIL: ' "$work/out"; then
    fail_line "cabi: test_crypto_abi exit status" "status 1 without a FAIL line"
fi

if [ "$use_valgrind" != 0 ]; then
    # With --quiet a log holds only error and definite-leak reports (plus harmless warnings).
    bad_logs=()
    err_re='are definitely lost|^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* fishy|Process terminating)'
    for log in "$work"/vg.*.log; do
        [ -e "$log" ] || continue
        if grep -Eq "$err_re" "$log"; then
            bad_logs+=("$log")
        fi
    done
    if [ "$rc" = 99 ] || [ ${#bad_logs[@]} -gt 0 ]; then
        nerr=0
        for log in "${bad_logs[@]}"; do
            n=$(grep -Ec "$err_re" "$log")
            nerr=$((nerr + n))
        done
        fail_line "valgrind clean" "exit status $rc; $nerr error/leak report(s) in ${#bad_logs[@]} process(es); reports follow on stderr"
        for log in "${bad_logs[@]}"; do
            echo "# ---- valgrind report $(basename "$log") ----" >&2
            head -400 "$log" >&2
        done
    else
        echo "# valgrind memcheck: no errors, no definite leaks in $(ls "$work"/vg.*.log 2>/dev/null | wc -l) process(es)"
        pass_line "valgrind clean"
    fi
fi

exit $fail
