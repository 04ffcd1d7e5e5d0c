#!/usr/bin/env bash
# Tests/cabi/headers.sh — the public headers are self-contained and clean, and the library
# defines every function they declare.
#
#   TDNSKRS_BUILD=/abs/build CC=cc CXX=g++ bash Tests/cabi/headers.sh
#
# For each Include/tdnskrs/*.h: a translation unit containing only `#include <tdnskrs/X.h>`
# compiles with -Wall -Wextra -Werror -pedantic as C11, as C99 (the design's minimum) and as
# C++17. Then: every function the headers declare (collected with gcc -aux-info) is exported
# by build/lib/libtdnskrs.so, and a C++ program taking the address of each one links (so the
# declarations have C linkage).
# One "PASS: <name>" / "FAIL: <name> — <reason>" line per check; exit 1 if any failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
cc=${CC:-cc}
cxx=${CXX:-g++}
inc=$root/Include
lib=$build/lib/libtdnskrs.so

fail=0
pass_line() { printf 'PASS: %s\n' "$1"; }
fail_line() { printf 'FAIL: %s \xe2\x80\x94 %s\n' "$1" "$2"; fail=1; }
oneline() { head -c 1500 "$1" | tr '\n' ' '; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tdnskrs-headers.XXXXXX")
trap 'rm -rf "$work"' EXIT

headers=()
for h in "$inc"/tdnskrs/*.h; do headers+=("$(basename "$h")"); done
if [ ${#headers[@]} -eq 0 ]; then
    fail_line "headers: Include/tdnskrs has headers" "none found"
    exit 1
fi

for h in "${headers[@]}"; do
    printf '#include <tdnskrs/%s>\n' "$h" >"$work/tu.c"
    cp "$work/tu.c" "$work/tu.cpp"
    if "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -I "$inc" -c "$work/tu.c" -o "$work/tu_c.o" 2>"$work/log"; then
        pass_line "headers: tdnskrs/$h compiles alone as C11 ($cc -std=c11 -Wall -Wextra -Werror -pedantic)"
    else
        fail_line "headers: tdnskrs/$h compiles alone as C11 ($cc -std=c11 -Wall -Wextra -Werror -pedantic)" "$(oneline "$work/log")"
    fi
    # The design: "C99 or C11", "Ensure C99 compliance".
    if "$cc" -std=c99 -Wall -Wextra -Werror -pedantic -I "$inc" -c "$work/tu.c" -o "$work/tu_c99.o" 2>"$work/log"; then
        pass_line "headers: tdnskrs/$h compiles alone as C99 ($cc -std=c99 -Wall -Wextra -Werror -pedantic)"
    else
        fail_line "headers: tdnskrs/$h compiles alone as C99 ($cc -std=c99 -Wall -Wextra -Werror -pedantic)" "$(oneline "$work/log")"
    fi
    if "$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic -I "$inc" -c "$work/tu.cpp" -o "$work/tu_cxx.o" 2>"$work/log"; then
        pass_line "headers: tdnskrs/$h compiles alone as C++17 ($cxx -std=c++17 -Wall -Wextra -Werror -pedantic)"
    else
        fail_line "headers: tdnskrs/$h compiles alone as C++17 ($cxx -std=c++17 -Wall -Wextra -Werror -pedantic)" "$(oneline "$work/log")"
    fi
    # Include guards: including twice is harmless.
    printf '#include <tdnskrs/%s>\n#include <tdnskrs/%s>\n' "$h" "$h" >"$work/tu2.c"
    if "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -I "$inc" -c "$work/tu2.c" -o "$work/tu2.o" 2>"$work/log"; then
        pass_line "headers: tdnskrs/$h can be included twice (include guard)"
    else
        fail_line "headers: tdnskrs/$h can be included twice (include guard)" "$(oneline "$work/log")"
    fi
done

# Functions declared by the public headers: gcc -aux-info lists every prototype with its file.
for h in "${headers[@]}"; do printf '#include <tdnskrs/%s>\n' "$h"; done >"$work/all.c"
if ! gcc -std=c11 -I "$inc" -aux-info "$work/aux.txt" -c "$work/all.c" -o "$work/all.o" 2>"$work/log"; then
    fail_line "headers: collect declared functions (gcc -aux-info)" "$(oneline "$work/log")"
    exit 1
fi
mapfile -t funcs < <(grep -F "$inc/tdnskrs/" "$work/aux.txt" \
    | sed -E 's/^.*\*\/ *//; s/\(.*$//; s/[[:space:]]+$//; s/.*[[:space:]*]//' | sort -u)
if [ ${#funcs[@]} -eq 0 ]; then
    fail_line "headers: declared functions found" "gcc -aux-info listed none"
    exit 1
fi
pass_line "headers: ${#funcs[@]} functions declared (${funcs[*]})"

if [ ! -e "$lib" ]; then
    fail_line "headers: library present" "$lib not found (run 'make lib')"
    exit 1
fi
nm -D --defined-only "$lib" 2>"$work/log" | awk '$2 == "T" || $2 == "W" || $2 == "i" {print $3}' \
    | sed 's/@.*//' | sort -u >"$work/defined"
for f in "${funcs[@]}"; do
    if grep -qx "$f" "$work/defined"; then
        pass_line "headers: $f is defined and exported by libtdnskrs.so (nm -D --defined-only)"
    else
        fail_line "headers: $f is defined and exported by libtdnskrs.so (nm -D --defined-only)" "not among the exported text symbols"
    fi
done

# The design document's C, written as a new user would (Tests/cabi/design_example.c): compiles
# with -Wall -Wextra -Werror as C11 and as C++17 against our headers, runs under valgrind, and
# a write into the backend table crypto_get_backend returns dies of SIGSEGV (read-only memory).
vg=()
if command -v valgrind >/dev/null 2>&1 && [ "${VALGRIND:-1}" != 0 ]; then
    vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
        --suppressions="$here/cjose.supp")
fi
for lang in c11 c++17; do
    if [ "$lang" = c11 ]; then compile=("$cc" -std=c11 -x c); else compile=("$cxx" -std=c++17 -x c++); fi
    bin=$work/design_example_${lang//+/x}
    what="headers: the design's example code (design_example.c) compiles as ${lang^^} with -Wall -Wextra -Werror"
    if "${compile[@]}" -Wall -Wextra -Werror -I "$inc" $(pkg-config --cflags json-c) -o "$bin" "$here/design_example.c" \
            -x none -L "$build/lib" -ltdnskrs -Wl,-rpath,"$build/lib" $(pkg-config --libs json-c) 2>"$work/log"; then
        pass_line "$what"
    else
        fail_line "$what" "$(oneline "$work/log")"
        continue
    fi
    mkdir -p "$work/state_$lang"
    "${vg[@]}" "$bin" "$work/state_$lang" >"$work/out" 2>"$work/err"
    rc=$?
    sed "s/^\(PASS\|FAIL\): /\1: $lang: /" "$work/out" | grep -E '^(PASS|FAIL): '
    grep -q '^FAIL: ' "$work/out" && fail=1
    if ! grep -q '^# design_example finished' "$work/out"; then
        fail_line "headers: $lang design example ran to completion" "exit status $rc: $(oneline "$work/err")"
    elif [ ${#vg[@]} -gt 0 ]; then
        if [ "$rc" = 99 ]; then
            fail_line "headers: $lang design example is valgrind clean" "$(oneline "$work/err")"
        else
            pass_line "headers: $lang design example is valgrind clean (no errors, no definite leaks)"
        fi
    fi
    # (In a subshell whose stderr is discarded: bash reports the crash there.)
    rc=$( ("$bin" readonly >/dev/null 2>&1; echo $?) 2>/dev/null )
    if [ "$rc" = $((128 + 11)) ]; then
        pass_line "headers: $lang: writing into the table crypto_get_backend returned dies of SIGSEGV (read-only memory)"
    else
        fail_line "headers: $lang: writing into the table crypto_get_backend returned dies of SIGSEGV (read-only memory)" "exit status $rc"
    fi
done

# C linkage: a C++ program referring to every declared function links against the library.
{
    for h in "${headers[@]}"; do printf '#include <tdnskrs/%s>\n' "$h"; done
    printf '#include <cstdio>\nint main() {\n    const void *fns[] = {\n'
    for f in "${funcs[@]}"; do printf '        reinterpret_cast<const void *>(&%s),\n' "$f"; done
    printf '    };\n    for (const void *p : fns) if (!p) return 1;\n    std::puts("linked");\n    return 0;\n}\n'
} >"$work/link.cpp"
if "$cxx" -std=c++17 -Wall -Wextra -Werror -I "$inc" -o "$work/link" "$work/link.cpp" \
        -L "$build/lib" -ltdnskrs -Wl,-rpath,"$build/lib" 2>"$work/log" && "$work/link" >/dev/null 2>>"$work/log"; then
    pass_line "headers: a C++17 program using every declared function links and runs (extern \"C\")"
else
    fail_line "headers: a C++17 program using every declared function links and runs (extern \"C\")" "$(oneline "$work/log")"
fi

exit $fail
