# Tests/hosting/lib.sh — helpers shared by the integration tests (hosting, bind9, examples; sourced, not run).
#
# Output contract of every test: one line per check, "PASS: <name>" or
# "FAIL: <name> — <reason>"; the script exits non-zero if any check failed.
# DEMO=1 adds "==> ..." narration lines for `make demo`.

HOSTING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HOSTING_DIR/../.." && pwd)
BUILD_DIR=${TDNSKRS_BUILD:-$REPO_ROOT/build}
LIB_DIR=$BUILD_DIR/lib

FAILURES=0
USED_PORTS=" "

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1 — $2"; FAILURES=$((FAILURES + 1)); }
# check NAME REASON-IF-FALSE COMMAND...: PASS/FAIL from the command's status.
check() {
    local name=$1 reason=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$reason"; fi
}
say() { if [ "${DEMO:-0}" = 1 ]; then echo "==> $*"; fi; }
# Prints indented text (e.g. a dig answer) in demo mode only.
show() { if [ "${DEMO:-0}" = 1 ]; then sed 's/^/    /'; else cat >/dev/null; fi; }

# A TCP+UDP port in 20000-40000 that nothing listens on (and we have not handed out yet).
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 20001))
        case $USED_PORTS in *" $p "*) continue ;; esac
        if [ -z "$(ss -Hlntu "sport = :$p" 2>/dev/null)" ]; then
            USED_PORTS="$USED_PORTS$p "
            echo "$p"
            return 0
        fi
    done
    return 1
}

# The version string straight from libtdnskrs (not through any plugin), or nothing.
library_version() {
    local so=$LIB_DIR/libtdnskrs.so.0 out
    out=$(python3 - "$so" 2>/dev/null <<'EOF'
import ctypes, sys
f = ctypes.CDLL(sys.argv[1]).krs_version
f.restype = ctypes.c_char_p
v = f()
print(v.decode() if v is not None else "")
EOF
    ) || out=""
    if [ -z "$out" ]; then
        # No python3: a three-line C program does the same.
        local d
        d=$(mktemp -d) || return 1
        printf '#include <stdio.h>\n#include <tdnskrs/common.h>\nint main(void){const char*v=krs_version();if(!v)return 1;puts(v);return 0;}\n' >"$d/v.c"
        if "${CC:-cc}" -I"$REPO_ROOT/Include" -o "$d/v" "$d/v.c" -L"$LIB_DIR" -ltdnskrs \
            -Wl,-rpath,"$LIB_DIR" 2>/dev/null; then
            out=$("$d/v")
        fi
        rm -rf "$d"
    fi
    printf '%s' "$out"
}

# wait_for SECONDS COMMAND...: polls every 0.25 s until COMMAND succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -le $deadline ]; do
        if "$@"; then return 0; fi
        sleep 0.25
    done
    return 1
}

# dig_txt PORT NAME: the TXT answer in +short form (one line per string set).
dig_txt() {
    dig @127.0.0.1 -p "$1" "$2" TXT +short +norec +time=2 +tries=1 2>/dev/null
}

# count_lines FILE PATTERN: how many lines of FILE match the fixed string PATTERN.
count_lines() {
    grep -cF -- "$2" "$1" 2>/dev/null || true
}

# No Swift runtime library may be mapped into the host: libtdnskrs carries it statically.
no_swift_runtime_mapped() {
    ! grep -q 'libswift[^/]*\.so' "/proc/$1/maps"
}

# is_alive PID: running (a zombie child that exited but was not reaped yet counts as gone).
is_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# wait_exit PID SECONDS: true once PID has exited.
wait_exit() {
    local deadline=$((SECONDS + $2))
    while is_alive "$1"; do
        [ $SECONDS -le $deadline ] || return 1
        sleep 0.2
    done
    return 0
}

# kill_pid PID: TERM, then KILL. Only ever called with the PID of a server this test started.
kill_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    is_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    wait_exit "$pid" 10 || { kill -KILL "$pid" 2>/dev/null; wait_exit "$pid" 5; }
}

# --- the reference KDC (callers set KDC_BIN, K = its state directory, NODE, TMP) -------------

kdc() { "$KDC_BIN" "$@" --state "$K"; }
# json_get EXPR: evaluates a Python expression over the JSON on stdin (d), prints the result.
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }
# The state of distribution $1 in the KDC's status.
dist_state() {
    kdc status --json 2>/dev/null | json_get "next((x['state'] for x in d['distributions'] if x['distribution_id']=='$1'), 'missing')"
}
confirmed() { [ "$(dist_state "$1")" = confirmed ]; }
# distribute ARGS...: a distribution for $NODE; prints its ID (errors in $TMP/distribute.err).
distribute() {
    kdc distribute --node "$NODE" "$@" --json 2>"$TMP/distribute.err" | json_get "
(lambda f: f(f, d))(lambda f, x: x['distribution_id'] if isinstance(x, dict) and 'distribution_id' in x else
  next((r for r in (f(f, v) for v in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else [])) if r), None))"
}
