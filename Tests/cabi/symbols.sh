#!/usr/bin/env bash
# Tests/cabi/symbols.sh — what the shipping library exposes and what it needs at run time.
#
#   TDNSKRS_BUILD=/abs/build bash Tests/cabi/symbols.sh
#
# Checks on build/lib/libtdnskrs.so:
#   - the headers declare exactly the functions of the 0.2.0 API (listed here, as in NEWS);
#   - `nm -D --defined-only` lists exactly the functions declared in Include/tdnskrs/*.h
#     (nothing else: no `$s` Swift symbols, no CCryptoBoringSSL_*, no runtime internals);
#   - `readelf -d`: SONAME libtdnskrs.so.0, FLAGS_1 contains NODELETE, no RPATH/RUNPATH into
#     the build tree or the Swift toolchain; `readelf -l`: non-executable stack;
#   - NEEDED lists only libc/libm/libstdc++/libgcc_s/libdl/libpthread/ld-linux and
#     libcjose/libjansson/libcrypto/libjson-c; `ldd` resolves everything and pulls in no Swift
#     runtime library.
# One "PASS: <name>" / "FAIL: <name> — <reason>" line per check; exit 1 if any failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
inc=$root/Include
lib=$build/lib/libtdnskrs.so

fail=0
pass_line() { printf 'PASS: %s\n' "$1"; }
fail_line() { printf 'FAIL: %s \xe2\x80\x94 %s\n' "$1" "$2"; fail=1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tdnskrs-symbols.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -e "$lib" ]; then
    fail_line "symbols: library present" "$lib not found (run 'make lib')"
    exit 1
fi
real=$(readlink -f "$lib")
size=$(stat -c %s "$real")

# --- the link chain libtdnskrs.so -> libtdnskrs.so.0 -> libtdnskrs.so.X.Y.Z ------------------
if [ -e "$build/lib/libtdnskrs.so.0" ] && [ "$(readlink -f "$build/lib/libtdnskrs.so.0")" = "$real" ]; then
    pass_line "symbols: build/lib/libtdnskrs.so and libtdnskrs.so.0 lead to $(basename "$real") ($size bytes)"
else
    fail_line "symbols: build/lib/libtdnskrs.so and libtdnskrs.so.0 lead to the same file" "libtdnskrs.so.0 missing or different"
fi

# --- one version: the Makefile's, the file name's and krs_version()'s -------------------------
version=$(sed -nE 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$root/Makefile")
printf '#include <stdio.h>\n#include <tdnskrs/common.h>\nint main(void) { puts(krs_version()); return 0; }\n' >"$work/v.c"
if ${CC:-cc} -std=c11 -I "$inc" -o "$work/v" "$work/v.c" -L "$build/lib" -ltdnskrs -Wl,-rpath,"$build/lib" 2>"$work/log" &&
        [ "$("$work/v")" = "$version" ] && [ "$(basename "$real")" = "libtdnskrs.so.$version" ]; then
    pass_line "symbols: krs_version() is the Makefile's VERSION $version, and so is the library's file name"
else
    fail_line "symbols: krs_version() is the Makefile's VERSION $version, and so is the library's file name" \
        "krs_version() \"$("$work/v" 2>/dev/null)\", file $(basename "$real") $(head -c 300 "$work/log" | tr '\n' ' ')"
fi

# --- the public API: function names declared in the headers ---------------------------------
for h in "$inc"/tdnskrs/*.h; do printf '#include <tdnskrs/%s>\n' "$(basename "$h")"; done >"$work/all.c"
if ! gcc -std=c11 -I "$inc" -aux-info "$work/aux.txt" -c "$work/all.c" -o "$work/all.o" 2>"$work/log"; then
    fail_line "symbols: collect the public API from the headers" "$(head -c 800 "$work/log" | tr '\n' ' ')"
    exit 1
fi
grep -F "$inc/tdnskrs/" "$work/aux.txt" \
    | sed -E 's/^.*\*\/ *//; s/\(.*$//; s/[[:space:]]+$//; s/.*[[:space:]*]//' | sort -u >"$work/api"
napi=$(wc -l <"$work/api")

# The API of 0.2.0 by name (NEWS): adding or removing a function must change this list too.
expected_api="crypto_decrypt crypto_get_backend krs_cleanup krs_enroll krs_fetch krs_free krs_handle_notify
krs_init krs_last_error krs_notify_decide krs_process_distribution krs_set_host_ops krs_start krs_status_json
krs_status_text krs_stop krs_strerror krs_version"
printf '%s\n' $expected_api | sort -u >"$work/expected_api"
if cmp -s "$work/api" "$work/expected_api"; then
    pass_line "symbols: the headers declare the 0.2.0 API: $(wc -l <"$work/expected_api") functions ($(tr '\n' ' ' <"$work/expected_api"))"
else
    fail_line "symbols: the headers declare the 0.2.0 API" "added: $(comm -23 "$work/api" "$work/expected_api" | tr '\n' ' ')removed: $(comm -13 "$work/api" "$work/expected_api" | tr '\n' ' ')"
fi

# --- exported symbols -------------------------------------------------------------------------
# Version-definition nodes (type A, from a version script) are not code or data: leave them out.
readelf -VW "$real" 2>/dev/null | sed -nE 's/.*Name: ([^ ]+).*/\1/p' | sort -u >"$work/vernodes"
nm -D --defined-only "$real" >"$work/nm" 2>"$work/log"
awk '{print $NF "\t" $(NF-1)}' "$work/nm" | sed 's/@[^\t]*//' \
    | awk -F'\t' 'NR==FNR {v[$1]=1; next} !($2 == "A" && ($1 in v))' "$work/vernodes" - \
    | sort -u >"$work/exported"
nexp=$(wc -l <"$work/exported")
cut -f1 "$work/exported" | sort -u >"$work/exported_names"

extra=$(comm -23 "$work/exported_names" "$work/api")
missing=$(comm -13 "$work/exported_names" "$work/api")
nextra=$(printf '%s' "$extra" | grep -c . || true)
if [ -z "$extra" ] && [ -z "$missing" ]; then
    pass_line "symbols: nm -D --defined-only lists exactly the $napi public functions ($nexp exported symbols; library $size bytes)"
else
    reason=""
    if [ -n "$extra" ]; then
        nswift=$(printf '%s\n' "$extra" | grep -c '^\$s' || true)
        nboring=$(printf '%s\n' "$extra" | grep -c 'CCryptoBoringSSL' || true)
        # Lower-case nm types are local bindings (not resolvable from outside, but still listed).
        nlocal=$(printf '%s\n' "$extra" | awk 'NR==FNR {e[$1]=1; next} ($1 in e) && $2 ~ /^[a-z]$/' - "$work/exported" | wc -l)
        sample=$(printf '%s\n' "$extra" | head -5 | tr '\n' ' ')
        reason="$nextra symbols beyond the public API ($nswift Swift \$s*, $nboring CCryptoBoringSSL*, $nlocal with local binding), e.g. $sample"
    fi
    if [ -n "$missing" ]; then
        reason="${reason:+$reason; }public functions not exported: $(printf '%s\n' "$missing" | tr '\n' ' ')"
    fi
    fail_line "symbols: nm -D --defined-only lists exactly the $napi public functions ($nexp exported symbols; library $size bytes)" "$reason"
fi
not_text=$(awk -F'\t' 'NR==FNR {api[$1]=1; next} ($1 in api) && $2 != "T" {print $1 "(" $2 ")"}' "$work/api" "$work/exported" | tr '\n' ' ')
nfuncs_ok=$(awk -F'\t' 'NR==FNR {api[$1]=1; next} ($1 in api) && $2 == "T"' "$work/api" "$work/exported" | wc -l)
if [ "$nfuncs_ok" = "$napi" ]; then
    pass_line "symbols: all $napi public functions are global text symbols (T)"
else
    fail_line "symbols: all $napi public functions are global text symbols (T)" "$nfuncs_ok of $napi are${not_text:+; wrong type: $not_text}"
fi
if grep -q '^\$s' "$work/exported_names"; then
    fail_line "symbols: no Swift (\$s...) symbols in the dynamic symbol table" "$(grep -c '^\$s' "$work/exported_names") found"
else
    pass_line "symbols: no Swift (\$s...) symbols in the dynamic symbol table"
fi
if grep -q 'CCryptoBoringSSL\|^_\?swift_\|^swift' "$work/exported_names"; then
    fail_line "symbols: no BoringSSL or Swift runtime entry points exported" "$(grep -c 'CCryptoBoringSSL\|^_\?swift_\|^swift' "$work/exported_names") found"
else
    pass_line "symbols: no BoringSSL or Swift runtime entry points exported"
fi

# --- dynamic section -------------------------------------------------------------------------
readelf -dW "$real" >"$work/dyn"
soname=$(sed -nE 's/.*\(SONAME\).*\[(.*)\].*/\1/p' "$work/dyn")
if [ "$soname" = "libtdnskrs.so.0" ]; then
    pass_line "symbols: SONAME is libtdnskrs.so.0"
else
    fail_line "symbols: SONAME is libtdnskrs.so.0" "SONAME is '${soname:-absent}'"
fi
flags1=$(sed -nE 's/.*\(FLAGS_1\)[[:space:]]+Flags: (.*)/\1/p' "$work/dyn")
if printf '%s' "$flags1" | grep -qw NODELETE; then
    pass_line "symbols: FLAGS_1 contains NODELETE (survives dlclose by hosts that reload modules)"
else
    fail_line "symbols: FLAGS_1 contains NODELETE (survives dlclose by hosts that reload modules)" "FLAGS_1: '${flags1:-absent}'"
fi
rpaths=$(sed -nE 's/.*\((RPATH|RUNPATH)\).*\[(.*)\].*/\2/p' "$work/dyn" | tr '\n' ' '); rpaths=${rpaths% }
if printf '%s' "$rpaths" | grep -Eq "$root|/opt/swift|\.build|/usr/share/swift"; then
    fail_line "symbols: no RPATH/RUNPATH into the build tree or the Swift toolchain" "found: $rpaths"
else
    pass_line "symbols: no RPATH/RUNPATH into the build tree or the Swift toolchain (${rpaths:-none})"
fi
if readelf -lW "$real" | awk '$1 == "GNU_STACK" {print $7}' | grep -q E; then
    fail_line "symbols: stack is not executable (GNU_STACK)" "GNU_STACK has E"
else
    pass_line "symbols: stack is not executable (GNU_STACK)"
fi
if grep -q '(TEXTREL)' "$work/dyn"; then
    fail_line "symbols: no text relocations" "TEXTREL present"
else
    pass_line "symbols: no text relocations"
fi

# --- run-time dependencies -------------------------------------------------------------------
allowed='^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|libpthread\.so\.0|ld-linux[-a-z0-9_.]*\.so\.[0-9]+|libcjose\.so\.0|libjansson\.so\.4|libcrypto\.so\.3|libjson-c\.so\.5)$'
needed=$(sed -nE 's/.*\(NEEDED\).*\[(.*)\].*/\1/p' "$work/dyn")
nneeded=$(printf '%s\n' "$needed" | grep -c . || true)
bad_needed=$(printf '%s\n' "$needed" | grep -Ev "$allowed" | grep . || true)
if [ -z "$bad_needed" ]; then
    pass_line "symbols: NEEDED lists only libc/libm/libstdc++/libgcc_s/libdl/libpthread/ld-linux/libcjose/libjansson/libcrypto/libjson-c ($nneeded: $(printf '%s\n' "$needed" | tr '\n' ' '))"
else
    fail_line "symbols: NEEDED lists only libc/libm/libstdc++/libgcc_s/libdl/libpthread/ld-linux/libcjose/libjansson/libcrypto/libjson-c" "also needs: $(printf '%s\n' "$bad_needed" | tr '\n' ' ')"
fi
swift_needed=$(printf '%s\n' "$needed" | grep -Ei 'swift|Foundation|dispatch|BlocksRuntime|icu' || true)
if [ -z "$swift_needed" ]; then
    pass_line "symbols: no Swift runtime library in NEEDED (static runtime)"
else
    fail_line "symbols: no Swift runtime library in NEEDED (static runtime)" "$(printf '%s\n' "$swift_needed" | tr '\n' ' ')"
fi
if ldd "$real" >"$work/ldd" 2>&1; then
    notfound=$(grep -c 'not found' "$work/ldd" || true)
    swift_ldd=$(grep -Ei 'swift|libFoundation|libdispatch|BlocksRuntime|libicu' "$work/ldd" | awk '{print $1}' | tr '\n' ' ')
    nldd=$(grep -c '=>\|ld-linux' "$work/ldd" || true)
    if [ "$notfound" = 0 ] && [ -z "$swift_ldd" ]; then
        pass_line "symbols: ldd resolves all $nldd libraries, none from the Swift runtime"
    else
        fail_line "symbols: ldd resolves all libraries, none from the Swift runtime" "$notfound not found; swift: ${swift_ldd:-none}"
    fi
else
    fail_line "symbols: ldd resolves all libraries, none from the Swift runtime" "ldd failed: $(head -c 300 "$work/ldd" | tr '\n' ' ')"
fi

# --- it loads: dlopen with RTLD_NOW from a plain C program ------------------------------------
cat >"$work/dl.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    (void)argc;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    if (!dlsym(h, "krs_version")) { fprintf(stderr, "no krs_version\n"); return 1; }
    if (dlclose(h) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 1; }
    /* NODELETE: the library stays mapped after dlclose, so a second dlopen is cheap and safe. */
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h) { fprintf(stderr, "not resident after dlclose (no NODELETE?)\n"); return 2; }
    return 0;
}
EOF
if ${CC:-cc} -std=c11 -o "$work/dl" "$work/dl.c" -ldl 2>"$work/log" && "$work/dl" "$real" 2>"$work/log"; then
    pass_line "symbols: dlopen(RTLD_NOW) resolves every symbol; still resident after dlclose (NODELETE)"
else
    fail_line "symbols: dlopen(RTLD_NOW) resolves every symbol; still resident after dlclose (NODELETE)" "$(head -c 500 "$work/log" | tr '\n' ' ')"
fi

exit $fail
