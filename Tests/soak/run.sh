#!/usr/bin/env bash
# Tests/soak/run.sh — long-running-server proof for the TCP transport (issue 10, item 1):
#
#   100,000 TCP connections each (connect, one DNS query, read the answer, close) to
#     (a) tdns-kdc serve,
#     (b) a tdns-krs run NOTIFY listener,
#     (c) the KRS inside named (dlz_tdnskrs.so, enrolled node, NOTIFY listener in named),
#   with the target's /proc/PID/maps line count, VmRSS and Threads measured after a warm-up of
#   1,000 connections and after the 100,000: each must stay within ±5 %. Printed as
#   "# soak: TARGET maps a→b rss a→b threads a→b, N conns in S s" (RSS in kB).
#
#   Slowloris: dripping connections (one byte a second, reopened at once when closed) — 64 to
#   each KRS listener, 256 to the KDC, once from a single source address and once spread over
#   as many addresses as there are connections — must not stop a legitimate TCP query from
#   another address being answered within 2 s.
#
# The load comes from Tests/soak/tcpflood.c, compiled here (32 connections at a time, RST on
# close so that no TIME_WAIT piles up). Sources are spread over 127.0.1.0/26 so that the flood
# measures serving, not the per-source limit. SOAK_CONNS overrides 100000 (quick runs).
# Output: "PASS: …" / "FAIL: … — reason"; everything on 127.0.0.0/8; every process this script
# starts is stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=soak
PLUGIN=$LIB_DIR/dlz_tdnskrs.so
KDC_BIN=$BUILD_DIR/bin/tdns-kdc
KRS_BIN=$BUILD_DIR/bin/tdns-krs
CONNS=${SOAK_CONNS:-100000}
WARMUP=1000
ZONE=example.test.
TMP=""
NAMED_PID=""
KDC_PID=""
KRS_PID=""
DRIP_PID=""

cleanup() {
    stop_pid "$DRIP_PID"
    stop_server "$NAMED_PID" rndc -c "$TMP/rndc.conf" stop
    stop_pid "$KRS_PID"
    stop_pid "$KDC_PID"
    finish_tmp "files and logs"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

require_tools "bind9, bind9-utils, bind9-dnsutils, iproute2, python3, a C compiler" \
    named rndc rndc-confgen dig ss python3 "${CC:-cc}"
require_built "make lib plugins bin" "$PLUGIN" "$KDC_BIN" "$KRS_BIN"

TMP=$(mktemp -d /tmp/tdnskrs-soak.XXXXXX)
FLOOD=$TMP/tcpflood
check "$T: tcpflood compiles" "$("${CC:-cc}" -O2 -Wall -Wextra -Werror -std=c11 -o "$FLOOD" "$(dirname "${BASH_SOURCE[0]}")/tcpflood.c" 2>&1 | head -3 | one_line)" \
    "${CC:-cc}" -O2 -Wall -Wextra -Werror -std=c11 -o "$FLOOD" "$(dirname "${BASH_SOURCE[0]}")/tcpflood.c"
[ -x "$FLOOD" ] || exit 1

DNS_PORT=$(free_port) && CTL_PORT=$(free_port) && KDC_PORT=$(free_port) && N1_PORT=$(free_port) && N2_PORT=$(free_port) ||
    { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
K=$TMP/kdc S1=$TMP/node1 S2=$TMP/node2 LOG=$TMP/named.log
mkdir -p "$K" "$S1/keys" "$S2/keys" "$TMP/run"

# --- the three targets ------------------------------------------------------------------------

setup_ok=0
kdc init --control-zone kdc.test. --listen "127.0.0.1:$KDC_PORT" >/dev/null 2>&1 || setup_ok=1
kdc zone add "$ZONE" >/dev/null 2>&1 || setup_ok=1
for n in 1 2; do
    port_var=N${n}_PORT
    kdc enroll generate "node$n.test." --out "$TMP/node$n.pkg" --notify "127.0.0.1:${!port_var}" >/dev/null 2>&1 || setup_ok=1
    kdc enroll activate "node$n.test." >/dev/null 2>&1 || setup_ok=1
done
check "$T: tdns-kdc init, zone, two enrollment packages" "a tdns-kdc command failed" [ "$setup_ok" -eq 0 ]
kdc_serve
check_within 15 "$T: tdns-kdc serve listening" '"$(tail -1 "$TMP/kdc.log" 2>/dev/null)"' kdc_listening

enrolled "$T: node1 enrolled (tdns-krs run)" \
    "$KRS_BIN" enroll --state "$S1" "$TMP/node1.pkg" --notify "127.0.0.1:$N1_PORT" --key-dir "$S1/keys"
enrolled "$T: node2 enrolled (the KRS inside named)" \
    "$KRS_BIN" enroll --state "$S2" "$TMP/node2.pkg" --notify "127.0.0.1:$N2_PORT" --key-dir "$S2/keys"

"$KRS_BIN" run --state "$S1" >"$TMP/krs.log" 2>&1 &
KRS_PID=$!
port_listening() { [ -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]; }
check_within 15 "$T: tdns-krs run listening on 127.0.0.1:$N1_PORT" '"$(tail -1 "$TMP/krs.log" 2>/dev/null)"' \
    port_listening "$N1_PORT"

rndc_setup
{
    named_conf_head
    echo "dlz \"tdnskrs\" { database \"dlopen $PLUGIN state_dir=$S2 rndc=$(command -v rndc) rndc_conf=$TMP/rndc.conf\"; };"
} >"$TMP/named.conf"
named -g -c "$TMP/named.conf" >"$LOG" 2>&1 &
NAMED_PID=$!
listening_or_died() { ! is_alive "$NAMED_PID" || status_txt | grep -q 'listening=yes'; }
wait_for 30 listening_or_died
if ! is_alive "$NAMED_PID" || ! port_listening "$N2_PORT"; then
    fail "$T: named started with the KRS module listening on 127.0.0.1:$N2_PORT" \
        "$(grep -iE 'tdnskrs|error|fatal' "$LOG" | tail -2 | one_line)"
    exit 1
fi
pass "$T: named started with the KRS module listening on 127.0.0.1:$N2_PORT (pid $NAMED_PID)"

# --- measuring --------------------------------------------------------------------------------

# measure PID: "maps rss_kB threads" of PID.
measure() {
    local maps rss threads
    maps=$(wc -l <"/proc/$1/maps" 2>/dev/null) || maps=0
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    echo "${maps:-0} ${rss:-0} ${threads:-0}"
}
# within5 A B: |B - A| <= 5 % of A.
within5() { awk -v a="$1" -v b="$2" 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(a > 0 && d <= 0.05 * a) }'; }
# field NAME LINE: the value of NAME=… in a tcpflood summary line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# legit_query NAME PORT: one query from 127.0.0.1 answered within 2 s.
legit_query() {
    local out
    out=$("$FLOOD" -m query -w 2 -q kdc.test. -S 127.0.0.1/1 127.0.0.1 "$2")
    if [ $? -eq 0 ]; then
        pass "$1 (answered in $(field answer_time "$out") s)"
    else
        fail "$1" "$out"
    fi
}

# soak NAME PID PORT: the warm-up, the flood, the figures and the checks.
soak() {
    local name=$1 pid=$2 port=$3 before after out elapsed answered
    "$FLOOD" -m flood -n "$WARMUP" -c 32 -q kdc.test. -S 127.0.1.1/64 -T 120 127.0.0.1 "$port" >/dev/null
    sleep 1
    before=($(measure "$pid"))
    out=$("$FLOOD" -m flood -n "$CONNS" -c 32 -w 5 -q kdc.test. -S 127.0.1.1/64 -T 600 127.0.0.1 "$port")
    sleep 1
    after=($(measure "$pid"))
    elapsed=$(field elapsed "$out")
    answered=$(field answered "$out")
    echo "# soak: $name maps ${before[0]}→${after[0]} rss ${before[1]}→${after[1]} threads ${before[2]}→${after[2]}, $CONNS conns in $elapsed s ($answered answered)"
    check "$T: $name: all $CONNS TCP connections answered" "$out" [ "$answered" = "$CONNS" ]
    check "$T: $name: /proc/PID/maps lines flat (±5 %) over $CONNS connections" "${before[0]} → ${after[0]}" \
        within5 "${before[0]}" "${after[0]}"
    check "$T: $name: VmRSS flat (±5 %) over $CONNS connections" "${before[1]} kB → ${after[1]} kB" \
        within5 "${before[1]}" "${after[1]}"
    check "$T: $name: threads flat (±5 %) over $CONNS connections" "${before[2]} → ${after[2]}" \
        within5 "${before[2]}" "${after[2]}"
    check "$T: $name: still running after the flood" "process $pid gone" is_alive "$pid"
    legit_query "$T: $name: a TCP query after the flood is answered within 2 s" "$port"
}

# drip NAME PORT COUNT SOURCES: COUNT dripping connections from SOURCES (A.B.C.D/K) for 9 s;
# meanwhile three legitimate queries, 2 s apart, must each be answered within 2 s.
drip() {
    local name=$1 port=$2 count=$3 sources=$4 out i
    "$FLOOD" -m drip -n "$count" -d 9 -i 1 -w 2 -S "$sources" 127.0.0.1 "$port" >"$TMP/drip.out" &
    DRIP_PID=$!
    sleep 2
    for i in 1 2 3; do
        legit_query "$T: $name: $count dripping connections from $sources, query $i answered within 2 s" "$port"
        sleep 1.5
    done
    wait "$DRIP_PID"
    DRIP_PID=""
    echo "# drip: $name $(cat "$TMP/drip.out")"
}

# --- slowloris --------------------------------------------------------------------------------

drip "kdc" "$KDC_PORT" 256 127.0.2.1/1
drip "kdc" "$KDC_PORT" 256 127.0.3.0/256
drip "tdns-krs listener" "$N1_PORT" 64 127.0.2.1/1
drip "tdns-krs listener" "$N1_PORT" 64 127.0.3.0/64
drip "KRS in named" "$N2_PORT" 64 127.0.2.1/1
drip "KRS in named" "$N2_PORT" 64 127.0.3.0/64

# --- 100,000 connections each -------------------------------------------------------------------

soak "kdc" "$KDC_PID" "$KDC_PORT"
soak "tdns-krs listener" "$KRS_PID" "$N1_PORT"
soak "KRS in named" "$NAMED_PID" "$N2_PORT"

[ "$FAILURES" -eq 0 ]
