# Tests/hosting/lib.sh — helpers shared by the integration tests (hosting, bind9, knot, nsd,
# examples; sourced, not run).
#
# Output contract of every test: one line per check, "PASS: <name>" or
# "FAIL: <name> — <reason>"; the script exits non-zero if any check failed.
# DEMO=1 adds "==> ..." narration lines for `make demo`.

HOSTING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HOSTING_DIR/../.." && pwd)
BUILD_DIR=${TDNSKRS_BUILD:-$REPO_ROOT/build}
LIB_DIR=$BUILD_DIR/lib
BIN_DIR=$BUILD_DIR/bin
DLZ_PLUGIN=$LIB_DIR/dlz_tdnskrs.so
KNOT_PLUGIN=$LIB_DIR/mod-tdnskrs.so
# TDNSKRS_INSTALLED=1 (Tests/deb): the programs, the library and the plugins where the Debian
# packages installed them, as dpkg lists them, instead of $BUILD_DIR. A path dpkg does not know
# stays empty, and the suites' require_built says so.
if [ "${TDNSKRS_INSTALLED:-0}" = 1 ]; then
    installed_path() { dpkg -L "$1" 2>/dev/null | grep -m1 -E "$2"; }
    BIN_DIR=$(dirname "$(installed_path tdns-kdc '/bin/tdns-kdc$')")
    LIB_DIR=$(dirname "$(installed_path libtdnskrs0 '/libtdnskrs\.so\.0$')")
    DLZ_PLUGIN=$(installed_path bind9-dlz-tdnskrs '/dlz_tdnskrs\.so$')
    KNOT_PLUGIN=$(installed_path knot-module-tdnskrs '/mod-tdnskrs\.so$')
fi

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
# check_within SECONDS NAME REASON COMMAND...: check, waiting up to SECONDS for COMMAND to
# succeed; REASON is an expression eval'ed after the wait (write it in single quotes, e.g.
# '"state $(dist_state "$D")"'), so a failure shows the state at the end, not at the start.
check_within() {
    local secs=$1 name=$2 reason=$3
    shift 3
    if wait_for "$secs" "$@"; then pass "$name"; else fail "$name" "$(eval "echo $reason")"; fi
}
# check_command NAME COMMAND...: PASS if COMMAND exits 0, else FAIL with its status and output.
# COMMAND's output (stdout and stderr) is left in $OUT, its status in $RC.
check_command() {
    local name=$1
    shift
    OUT=$("$@" 2>&1)
    RC=$?
    if [ "$RC" -eq 0 ]; then pass "$name"; else fail "$name" "rc=$RC: $OUT"; fi
}
one_line() { tr '\n' ' '; }  # stdin on one line, for reasons
say() { if [ "${DEMO:-0}" = 1 ]; then echo "==> $*"; fi; }
# Prints indented text (e.g. a dig answer) in demo mode only.
show() { if [ "${DEMO:-0}" = 1 ]; then sed 's/^/    /'; else cat >/dev/null; fi; }

# --- preconditions and the end of a run (callers set T, the check-name prefix, and TMP) --------

# require_tools HINT TOOL...: "FAIL: $T: tools present" and exit 1 at the first TOOL not on
# PATH; HINT names the packages that provide them.
require_tools() {
    local hint=$1 tool
    shift
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            fail "$T: tools present" "$tool not found ($hint)"
            exit 1
        fi
    done
}
# require_built [-n NAME] HINT FILE...: "FAIL: $T: NAME" (default "built") and exit 1 at the
# first FILE that does not exist; HINT is the make command that builds them.
require_built() {
    local name=built hint f
    if [ "$1" = -n ]; then
        name=$2
        shift 2
    fi
    hint=$1
    shift
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            fail "$T: $name" "$f missing ($hint)"
            exit 1
        fi
    done
}
# require_library_version: sets EXPECTED to krs_version() and WANT to it as dig +short shows a
# TXT string, with "PASS: $T: libtdnskrs version readable"; else FAIL and exit 1.
require_library_version() {
    EXPECTED=$(library_version)
    if [[ ! $EXPECTED =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
        fail "$T: libtdnskrs version readable" "krs_version() from $LIB_DIR/libtdnskrs.so.0 gave '$EXPECTED'"
        exit 1
    fi
    pass "$T: libtdnskrs version readable ($EXPECTED)"
    WANT="\"$EXPECTED\""
}
# finish_tmp WHAT: the end of cleanup(): removes $TMP when every check passed, else (or with
# KEEP=1) keeps it and says on stderr what is in it ("note: $T WHAT kept in $TMP").
finish_tmp() {
    [ -n "${TMP:-}" ] || return 0
    if [ "$FAILURES" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
        rm -rf "$TMP"
    else
        echo "note: $T $1 kept in $TMP" >&2
    fi
}

# A TCP+UDP port in 20000-32767 that no socket uses (and we have not handed out yet). Below
# the kernel's ephemeral range (32768-60999), so that no client socket of the test itself — a
# dig, a NOTIFY sender — takes it as its source port between the choice and the bind.
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 12768))
        case $USED_PORTS in *" $p "*) continue ;; esac
        if [ -z "$(ss -Hantu "sport = :$p" 2>/dev/null)" ]; then
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

# retired_audited ZSK: the node's audit log ($S/audit.log) records ZSK of $ZONE retired.
retired_audited() {
    check "$T: the audit log records ZSK $1 retired" "$(tail -3 "$S/audit.log" | one_line)" \
        grep -q "\"result\":\"retired\",\"zone\":\"$ZONE\",\"key_tag\":$1," "$S/audit.log"
}
# valgrind_clean SERVER: SERVER, stopped with exit status $STOP_RC, ran under valgrind memcheck
# (--error-exitcode=99, reports in $TMP/valgrind.*.log) without a memory error.
valgrind_clean() {
    check "$T: valgrind memcheck: no memory errors in $1 with the module and libtdnskrs" \
        "$(cat "$TMP"/valgrind.*.log | grep -m3 -E '^==[0-9]+== [A-Z]' | one_line)" \
        eval '[ "$STOP_RC" -ne 99 ] && ! cat "$TMP"/valgrind.*.log | grep -qE "^==[0-9]+== [A-Z]"'
}
# stop_pid PID: kill_pid and reap (for cleanup; an empty PID is nothing to do).
stop_pid() {
    [ -n "$1" ] || return 0
    kill_pid "$1"
    wait "$1" 2>/dev/null
}
# stop_server PID COMMAND...: a server still running is asked to stop with COMMAND (its control
# tool), given 15 s, then killed; reaped either way (for cleanup).
stop_server() {
    local pid=$1
    shift
    [ -n "$pid" ] || return 0
    if is_alive "$pid"; then
        "$@" >/dev/null 2>&1
        wait_exit "$pid" 15 || kill_pid "$pid"
    fi
    wait "$pid" 2>/dev/null
}
# stopped_cleanly PID SECONDS NAME: after a stop request, checks NAME: PID exits within SECONDS
# with status 0. True once PID has exited and been reaped (its status in $STOP_RC; the caller
# forgets the PID), false if it still runs (cleanup kills it).
stopped_cleanly() {
    local pid=$1 secs=$2 name=$3
    STOP_RC=""
    if wait_exit "$pid" "$secs"; then
        wait "$pid"
        STOP_RC=$?
        check "$name" "exit status $STOP_RC" [ "$STOP_RC" -eq 0 ]
        return 0
    fi
    fail "$name" "still running after $secs s (killed)"
    return 1
}
# same_process PID PIDFILE: PID still runs and is the one the server wrote into PIDFILE.
same_process() {
    is_alive "$1" && [ "$(cat "$2" 2>/dev/null)" = "$1" ]
}
# swapped N: after the Nth reload the server's log ($LOG) shows N+1 instance starts ($LOADED)
# and N stops ($UNLOADED) — the new plugin instance first, then the old one gone.
swapped() {
    [ "$(count_lines "$LOG" "$LOADED")" -ge $(($1 + 1)) ] && [ "$(count_lines "$LOG" "$UNLOADED")" -ge "$1" ]
}

# --- configuration the tests generate (callers set TMP, DNS_PORT, CTL_PORT, PLUGIN) -------------

# example_zone: the unsigned example.test. zone the servers start from.
example_zone() {
    cat <<'EOF'
$TTL 300
@   IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
    IN NS  ns1.example.test.
ns1 IN A   127.0.0.1
www IN A   192.0.2.1
EOF
}
# rndc_setup: an rndc key ($TMP/rndc.key) and $TMP/rndc.conf for named's control on $CTL_PORT.
rndc_setup() {
    rndc-confgen -a -k rndc-key -c "$TMP/rndc.key" >/dev/null 2>&1
    cat >"$TMP/rndc.conf" <<EOF
include "$TMP/rndc.key";
options { default-key "rndc-key"; default-server 127.0.0.1; default-port $CTL_PORT; };
EOF
}
# named_conf_head: the start of a named.conf: rndc control on $CTL_PORT and options for an
# authoritative-only named on 127.0.0.1#$DNS_PORT that sends no NOTIFY (zones and dlz follow).
named_conf_head() {
    cat <<EOF
include "$TMP/rndc.key";
controls { inet 127.0.0.1 port $CTL_PORT allow { 127.0.0.1; } keys { "rndc-key"; }; };
options {
    directory "$TMP";
    pid-file "$TMP/run/named.pid";
    session-keyfile "$TMP/run/session.key";
    managed-keys-directory "$TMP/run";
    listen-on port $DNS_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
EOF
}
# knot_module_section: `module:` for mod-tdnskrs from $PLUGIN, after an empty line; nothing when
# installed (TDNSKRS_INSTALLED=1): the module is then in Knot's module directory, which knotd
# loads by itself, and a `module:` section for it again is refused ("already exists").
knot_module_section() {
    [ "${TDNSKRS_INSTALLED:-0}" = 1 ] && return 0
    printf '%s\n' "" "module:" "  - id: mod-tdnskrs" "    file: \"$PLUGIN\""
}
# knot_conf_head: the start of a knot.conf (block-style YAML: Knot's parser is not a full YAML
# parser): knotd on 127.0.0.1@$DNS_PORT, control socket and database in $TMP, log to stderr,
# and the module mod-tdnskrs from $PLUGIN (its settings, templates and zones follow).
knot_conf_head() {
    cat <<EOF
server:
    rundir: "$TMP/run"
    listen: 127.0.0.1@$DNS_PORT

control:
    listen: "$TMP/run/knot.sock"

log:
  - target: stderr
    any: info

database:
    storage: "$TMP/db"
EOF
    knot_module_section
}

# --- queries to the server under test (callers set DNS_PORT and ZONE) --------------------------

qdig() { dig @127.0.0.1 -p "$DNS_PORT" +norec +time=2 +tries=1 "$@" 2>/dev/null; }
# Key tags of the DNSKEY set, sorted, space-separated.
dnskey_tags() { qdig "$ZONE" DNSKEY +multi | sed -n 's/.*key id = \([0-9]*\).*/\1/p' | sort -n | xargs; }
# Key tags of the RRSIGs over TYPE at the apex.
rrsig_tags() { qdig "$ZONE" "$1" +dnssec +noall +answer | awk -v t="$1" '$4 == "RRSIG" && $5 == t { print $11 }' | sort -n | xargs; }
# What the zone is signed with, for failure reasons.
signing_state() { echo "DNSKEY tags '$(dnskey_tags)', RRSIG DNSKEY '$(rrsig_tags DNSKEY)', RRSIG SOA '$(rrsig_tags SOA)'"; }
status_txt() { dig_txt "$DNS_PORT" status.tdnskrs.; }
status_line() { status_txt | one_line; }  # status.tdnskrs. TXT on one line, for reasons
# status_format_ok: status.tdnskrs. TXT is the operators' format, whole: exactly five strings
# (any order: an RRset has none), each of them once —
#   version=X.Y.Z
#   node_id=NAME enrolled=yes|no listening=yes|no running=yes|no
#   last_distribution=none | last_distribution=ID result=WORDS confirmed=yes|no
#   keys=N keys_installed=N notifies=N fetches=N refused=N
#   key_changes installed=N retired=N removed=N
# The same text in named and knotd (krs_status_text renders it; 0.1.0's plugins rendered the
# first four in C, and the DLZ the fifth).
status_format_ok() {
    local st re
    st=$(status_txt) || return 1
    [ "$(grep -c . <<<"$st")" = 5 ] || return 1
    for re in '^"version=[0-9]+\.[0-9]+\.[0-9]+"$' \
              '^"node_id=[^ "]+ enrolled=(yes|no) listening=(yes|no) running=(yes|no)"$' \
              '^"last_distribution=(none|[0-9a-f]+ result=[a-z][a-z -]* confirmed=(yes|no))"$' \
              '^"keys=[0-9]+ keys_installed=[0-9]+ notifies=[0-9]+ fetches=[0-9]+ refused=[0-9]+"$' \
              '^"key_changes installed=[0-9]+ retired=[0-9]+ removed=[0-9]+"$'; do
        [ "$(grep -cE "$re" <<<"$st")" = 1 ] || return 1
    done
}
has_all() { # has_all "LIST" TAG... : every TAG is in LIST
    local list=" $1 " t
    shift
    for t in "$@"; do case $list in *" $t "*) ;; *) return 1 ;; esac; done
}
# The proof, short: DNSKEYs with their tags, RRSIGs with the signing key tag (signature elided).
show_keys() {
    qdig "$ZONE" DNSKEY +multi +noall +answer |
        awk '/IN[ \t]+DNSKEY/ { head = $1 " " $2 " " $3 " " $4 " " $5 " " $6 " " $7 }
             /key id =/ { sub(/.*\) ;/, ""); print head " (…) ;" $0 }'
    local t
    for t in DNSKEY SOA; do
        qdig "$ZONE" "$t" +dnssec +noall +answer |
            awk '$4 == "RRSIG" { print $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "(…)  ; key tag", $11 }'
    done
}

# show_keys_proof: in demo mode, the zone's DNSKEYs and RRSIGs (distributed: KSK $KSK, ZSK $ZSK).
show_keys_proof() {
    [ "${DEMO:-0}" = 1 ] || return 0
    say "proof: dig @127.0.0.1 -p $DNS_PORT $ZONE DNSKEY / SOA +dnssec  (distributed: KSK $KSK, ZSK $ZSK)"
    show_keys | show
}
# show_roll_proof: in demo mode, which keys are published and which sign, after a ZSK roll.
show_roll_proof() {
    say "proof: DNSKEY tags $(dnskey_tags); RRSIG SOA by $(rrsig_tags SOA); RRSIG DNSKEY by $(rrsig_tags DNSKEY)"
}
# show_status: in demo mode, the status.tdnskrs. TXT records.
show_status() {
    [ "${DEMO:-0}" = 1 ] || return 0
    qdig status.tdnskrs. TXT +noall +answer | sort -k5 | show
}
# show_status_proof: show_status, introduced as a proof.
show_status_proof() {
    say "proof: dig @127.0.0.1 -p $DNS_PORT status.tdnskrs. TXT"
    show_status
}

# --- the hosting proof: version.tdnskrs TXT from a plugin (test-bind9.sh, test-knot.sh) -------

# answering_started SERVER PID: waits up to 30 s for PID to answer version.tdnskrs TXT on
# $DNS_PORT; "PASS: $T: SERVER started (pid PID)", or FAIL with the log's last error and exit 1.
answering_started() {
    local server=$1 pid=$2
    answers_or_died() { ! is_alive "$pid" || [ -n "$(dig_txt "$DNS_PORT" version.tdnskrs)" ]; }
    wait_for 30 answers_or_died
    if ! is_alive "$pid"; then
        fail "$T: $server started" "exited at startup: $(grep -iE 'error|fatal|fail' "$LOG" | tail -1)"
        exit 1
    fi
    pass "$T: $server started (pid $pid)"
}
# version_query_ok WHAT: version.tdnskrs TXT is $WANT (the library's version), "(WHAT)" in the name.
version_query_ok() {
    local what=$1 got
    say "dig @127.0.0.1 -p $DNS_PORT version.tdnskrs TXT  ($what)"
    dig @127.0.0.1 -p "$DNS_PORT" version.tdnskrs TXT +norec +noall +answer +time=2 +tries=1 2>&1 | show
    got=$(dig_txt "$DNS_PORT" version.tdnskrs)
    if [ "$got" = "$WANT" ]; then
        pass "$T: version.tdnskrs TXT = $WANT ($what)"
    else
        fail "$T: version.tdnskrs TXT = $WANT ($what)" "got '${got:-no answer}'"
    fi
}
# authoritative_check: the version.tdnskrs answer has aa and NOERROR.
authoritative_check() {
    local full
    full=$(dig @127.0.0.1 -p "$DNS_PORT" version.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
    check "$T: answer is authoritative (aa, NOERROR)" "flags/status wrong: $(grep -E 'flags:|status:' <<<"$full" | one_line)" \
        eval 'grep -q "status: NOERROR" <<<"$full" && grep -qE "flags:[^;]* aa[ ;]" <<<"$full"'
}
# in_process_checks SERVER PID PLUGIN KIND: libtdnskrs.so and PLUGIN.so (a KIND: plugin, module)
# are mapped in SERVER's process, and no Swift runtime library is (shown in demo mode).
in_process_checks() {
    local server=$1 pid=$2 plugin=$3 kind=$4
    say "$server's memory map: libtdnskrs and the $kind are in-process, no Swift runtime library"
    if [ "${DEMO:-0}" = 1 ]; then
        grep -oE "/[^ ]*(libtdnskrs|$plugin)[^ ]*" "/proc/$pid/maps" | sort -u | show
    fi
    check "$T: libtdnskrs.so and $plugin.so are mapped in $server" "not found in /proc/$pid/maps" \
        eval 'grep -q "/libtdnskrs\.so" "/proc/$pid/maps" && grep -q "/$plugin\.so" "/proc/$pid/maps"'
    check "$T: no libswift*.so mapped in $server (static Swift runtime)" \
        "$(grep -o '/[^ ]*libswift[^ ]*\.so[^ ]*' "/proc/$pid/maps" 2>/dev/null | sort -u | head -1)" \
        no_swift_runtime_mapped "$pid"
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
# new_key ZONE ksk|zsk: prints the tag of a new key (algorithm 13) at the KDC.
new_key() {
    kdc key generate --zone "$1" --algorithm 13 --type "$2" --json | json_get "d.get('key_tag') or d['key']['key_tag']"
}
# new_ksk_zsk: a KSK and a ZSK for $ZONE at the KDC (KSK, ZSK), distributed to $NODE (D1, D2).
new_ksk_zsk() {
    say "tdns-kdc key generate KSK + ZSK for $ZONE (algorithm 13) and distribute both to $NODE"
    KSK=$(new_key "$ZONE" ksk)
    ZSK=$(new_key "$ZONE" zsk)
    check "$T: KDC generated KSK $KSK and ZSK $ZSK" "key generate failed" eval '[[ $KSK =~ ^[0-9]+$ && $ZSK =~ ^[0-9]+$ ]]'
    D1=$(distribute --zone "$ZONE" --key "$KSK")
    D2=$(distribute --zone "$ZONE" --key "$ZSK")
}
# kdc_setup CONTROL_ZONE NOTIFY_ADDR: tdns-kdc init (CONTROL_ZONE on 127.0.0.1:$KDC_PORT), zone
# $ZONE, and an activated enrollment package $TMP/node.pkg for $NODE, NOTIFYed at NOTIFY_ADDR.
# True if every command succeeded (all are run either way).
kdc_setup() {
    local ok=0
    kdc init --control-zone "$1" --listen "127.0.0.1:$KDC_PORT" >/dev/null 2>&1 || ok=1
    kdc zone add "$ZONE" >/dev/null 2>&1 || ok=1
    kdc enroll generate "$NODE" --out "$TMP/node.pkg" --notify "$2" >/dev/null 2>&1 || ok=1
    kdc enroll activate "$NODE" >/dev/null 2>&1 || ok=1
    return $ok
}
# kdc_serve: tdns-kdc serve in the background (KDC_PID; log $TMP/kdc.log).
kdc_serve() {
    "$KDC_BIN" serve --state "$K" >"$TMP/kdc.log" 2>&1 &
    KDC_PID=$!
}
kdc_listening() { [ -n "$(ss -Hlnt "sport = :$KDC_PORT" 2>/dev/null)" ]; }
# enrolled NAME COMMAND...: runs the node's enroll COMMAND; "PASS: NAME (its first line)", or
# FAIL with its last lines and exit 1 (nothing after enrollment can work without it).
enrolled() {
    local name=$1
    shift
    if "$@" >"$TMP/enroll.out" 2>&1; then
        pass "$name ($(head -1 "$TMP/enroll.out"))"
    else
        fail "$name" "$(tail -2 "$TMP/enroll.out" | tr '\n' ' ')"
        exit 1
    fi
}
# zsk_roll_times SECONDS: five ZSK rolls for $ZONE, each timed from `tdns-kdc distribute` until
# dig shows the new ZSK's RRSIG over the SOA (at most SECONDS); TIMES gets each time or "fail".
zsk_roll_times() {
    local i z t0
    TIMES=()
    for i in 1 2 3 4 5; do
        z=$(new_key "$ZONE" zsk)
        t0=$(date +%s.%N)
        distribute --zone "$ZONE" --key "$z" >/dev/null
        if wait_for "$1" eval '[ "$(rrsig_tags SOA)" = "$z" ]'; then
            TIMES+=("$(python3 -c "print(f'{$(date +%s.%N) - $t0:.3f}')")")
        else
            TIMES+=(fail)
        fi
    done
}
# distribute ARGS...: a distribution for $NODE; prints its ID (errors in $TMP/distribute.err).
distribute() {
    kdc distribute --node "$NODE" "$@" --json 2>"$TMP/distribute.err" | json_get "
(lambda f: f(f, d))(lambda f, x: x['distribution_id'] if isinstance(x, dict) and 'distribution_id' in x else
  next((r for r in (f(f, v) for v in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else [])) if r), None))"
}
