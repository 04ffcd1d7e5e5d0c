#!/usr/bin/env bash
# Fault tolerance end to end (issue 5, "KRS lifecycle over the network"), on 127.0.0.0/8 with the
# real binaries: `tdns-kdc serve` and two tdns-krs nodes enrolled through their packages
# (node1 HPKE at 127.0.0.2, node2 JOSE at 127.0.0.3), each fetching through its own
# fault-injecting proxy (faultproxy.py, 127.0.0.1) so that faults can be chosen per test:
#
#   1  the KDC killed in the middle of a chunked fetch (RSA key, 27 chunks), restarted:
#      the nodes retry and complete; key dirs polled meanwhile: never half-installed
#   2  a data chunk answered SERVFAIL once; the TCP connection reset mid-answer once: retried
#   3  the same NOTIFY 100 times in a second: one fetch (proxy log), one install (audit.log)
#   4  a replayed distribution ID: not fetched again by the running node; after a restart
#      fetched, refused as a replay (audit.log), key dir unchanged
#   5  another node's distribution ID: dropped quietly; a CHUNK answer of the wrong type
#      (manifest, data chunk): refused, nothing installed
#   6  tdns-krs SIGKILLed during installation (temporary files written; .private renamed;
#      installed but not yet confirmed) and restarted: a key is complete or absent, the
#      distribution is processed after the restart, stale temporary files are removed
#   7  krs_stop with a fetch in flight against a proxy that never answers returns within 1 s,
#      valgrind-clean (stop_host.c, node3 at 127.0.0.4)
#   8  timing: distribute → confirmed at the KDC, 20 runs, median (a "# timing:" line)
#
#   TDNSKRS_BUILD=/abs/build PYTHON=/abs/.venv/bin/python bash Tests/e2e/faults.sh
#
# FAULTS_ONLY="3 4 7" runs a subset (4 needs 3). Prints "PASS: …" / "FAIL: …" per check and
# "# …" notes; exit 1 if any check failed. Every process started here is stopped on exit (also
# on failure); KEEP=1 keeps the work directory. Test 7 needs $TDNSKRS_BUILD/lib/libtdnskrs.so
# (make lib), cc and valgrind.
# No key material is printed: key files are checked for shape and compared by digest.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
KDC="$build/bin/tdns-kdc"
KRS="$build/bin/tdns-krs"
PY=${PYTHON:-$root/.venv/bin/python}
CZ=kdc.test.
work=$(mktemp -d /tmp/tdnskrs-faults.XXXXXX)
chmod 700 "$work"

declare -A live=()   # pid -> what, for every process started here and not yet reaped
cleanup() {
    local p
    for p in "${!live[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
    for p in "${!live[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
note() { echo "# $*"; }
check() { if eval "$2"; then pass "$1"; else fail "$1${3:+ — $3}"; fi; }   # name, condition, detail
reap() { wait "$1" 2>/dev/null; unset "live[$1]"; }
stop_pid() { [ -n "${live[$1]+x}" ] || return 0; kill -CONT "$1" 2>/dev/null; kill "$1" 2>/dev/null; reap "$1"; }
tool() { "$PY" "$here/faulttool.py" "$@"; }
want() { [ -z "${FAULTS_ONLY:-}" ] || [[ " $FAULTS_ONLY " == *" $1 "* ]]; }   # FAULTS_ONLY="1 7": a subset
# jq-like: jx 'EXPR' evaluates EXPR over the JSON on stdin as d.
jx() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r) if isinstance(r, (dict, list)) else r)' "$1"; }
# free_ports IP…: one port per IP, free for TCP and UDP, all distinct (held until all are chosen).
free_ports() { "$PY" - "$@" <<'PY'
import socket, sys
held, ports = [], []
for ip in sys.argv[1:]:
    while True:
        t = socket.socket(); t.bind((ip, 0)); port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((ip, port))
        except OSError:
            t.close(); u.close(); continue
        if port in ports:
            held += [t, u]; continue
        held += [t, u]; ports.append(port); break
print(" ".join(map(str, ports)))
for s in held: s.close()
PY
}
wait_tcp() {  # up to 20 s
    "$PY" - "$1" "$2" <<'PY'
import socket, sys, time
end = time.time() + 20
while time.time() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}
wait_for() {  # seconds, shell condition
    local end=$(( $(date +%s%N) + ${1%.*} * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$end" ]; do eval "$2" && return 0; sleep 0.1; done
    eval "$2"
}

[ -x "$KDC" ] && [ -x "$KRS" ] || { fail "tdns-kdc and tdns-krs built in $build/bin"; exit 1; }
"$PY" -c 'import dns.message' 2>/dev/null || { fail "python with dnspython ($PY)"; exit 1; }

read -r KP P1 P2 P3 N1P N2P N3P < <(free_ports 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4)
[ -n "${N3P:-}" ] || { fail "free ports on 127.0.0.1-4"; exit 1; }
K="$work/kdc"; S1="$work/node1"; S2="$work/node2"; S3="$work/node3"
mkdir -p "$K" "$S1/keys" "$S2/keys" "$S3/keys"
declare -A NODE_STATE=([1]=$S1 [2]=$S2 [3]=$S3) NODE_NOTIFY=([1]=127.0.0.2:$N1P [2]=127.0.0.3:$N2P [3]=127.0.0.4:$N3P)
declare -A NODE_PROXY=([1]=$P1 [2]=$P2 [3]=$P3) NODE_PID=()

kdc() { "$KDC" "$@" --state "$K"; }
KDC_PID=
start_kdc() {
    "$KDC" serve --state "$K" >>"$work/kdc.log" 2>&1 &
    KDC_PID=$!; live[$KDC_PID]=kdc
    wait_tcp 127.0.0.1 "$KP"
}
# start_node N [direct]: tdns-krs run; through the node's proxy unless "direct".
start_node() {
    local n=$1 extra=()
    [ "${2:-}" = direct ] || extra=(--set "kdc_address=127.0.0.1:${NODE_PROXY[$n]}")
    "$KRS" run --state "${NODE_STATE[$n]}" "${extra[@]}" >>"$work/n$n.log" 2>&1 &
    NODE_PID[$n]=$!; live[$!]=node$n
    local host=${NODE_NOTIFY[$n]%:*} port=${NODE_NOTIFY[$n]##*:}
    wait_tcp "$host" "$port"
}
stop_node() { stop_pid "${NODE_PID[$1]}"; }
start_proxy() {  # N [flags]: faultproxy for node N
    local n=$1; shift
    : >"$work/proxy$n.events"; echo '{}' >"$work/proxy$n.control"
    "$PY" "$here/faultproxy.py" --listen "127.0.0.1:${NODE_PROXY[$n]}" --upstream "127.0.0.1:$KP" \
        --control "$work/proxy$n.control" --events "$work/proxy$n.events" "$@" >"$work/proxy$n.log" 2>&1 &
    live[$!]=proxy$n
    wait_tcp 127.0.0.1 "${NODE_PROXY[$n]}"
}
faults() { printf '%s\n' "$2" >"$work/proxy$1.control.new" && mv "$work/proxy$1.control.new" "$work/proxy$1.control"; }
events() { tool events --file "$work/proxy$1.events" --id "$2"; }
audit() { tool audit --file "${NODE_STATE[$1]}/audit.log" ${2:+--id "$2"}; }
# distribute NODE ZONE TAG [--chunk-size N] → the distribution ID
distribute() {
    local n=$1 z=$2 t=$3; shift 3
    kdc distribute --node "node$n.test." --zone "$z" --key "$t" --json "$@" | jx 'd["distributions"][0]["distribution_id"]'
}
keygen() { kdc key generate --zone "$1" --algorithm "$2" --type "$3" --json | jx 'd["key_tag"]'; }
confirmed() { tool kdc --state "$K" --kdc "$KDC" --ids "$1" --timeout "${2:-20}"; }
kdc_state() { kdc status --json | jx "next((x['state'] for x in d['distributions'] if x['distribution_id'] == '$1'), None)"; }
keybase() { printf 'K%s+%03d+%05d' "$1" "$2" "$3"; }
has_key() { tool keys --dir "${NODE_STATE[$1]}/keys" | jx "'$2' in d['complete']"; }
n_installed() { audit "$1" "$2" | jx 'd["by_result"].get("installed", 0)'; }
watch_start() {  # name dir
    rm -f "$work/watch-$1.stop"
    tool watch --dir "$2" --stop "$work/watch-$1.stop" --out "$work/watch-$1.json" &
    live[$!]=watch-$1; eval "WATCH_$1=$!"
}
watch_stop() {  # name → checks the summary
    local pidvar="WATCH_$1"
    touch "$work/watch-$1.stop"; reap "${!pidvar}"
    local polls viol
    polls=$(jx 'd["polls"]' <"$work/watch-$1.json"); viol=$(jx 'len(d["violations"])' <"$work/watch-$1.json")
    check "$2: key dir polled $polls times meanwhile: never a .key without its .private, nothing partial under a final name" \
        '[ "$viol" = 0 ] && [ "$polls" -gt 10 ]' "$(jx 'd["violations"][:3]' <"$work/watch-$1.json")"
}

# --- setup: KDC, zones, keys, three enrolled nodes ---------------------------------------------
kdc init --control-zone $CZ --listen 127.0.0.1:$KP >/dev/null || { fail "tdns-kdc init"; exit 1; }
for z in example.test. big.test.; do kdc zone add $z >/dev/null || fail "zone add $z"; done
KSK=$(keygen example.test. 13 ksk); ZSK=$(keygen example.test. 13 zsk); RSA=$(keygen big.test. 8 zsk)
[ -n "$KSK" ] && [ -n "$ZSK" ] && [ -n "$RSA" ] || { fail "key generate"; exit 1; }
RSABASE=$(keybase big.test. 8 "$RSA")
kdc enroll generate node1.test. --out "$work/node1.pkg" --crypto hpke --notify "${NODE_NOTIFY[1]}" >/dev/null &&
kdc enroll generate node2.test. --out "$work/node2.pkg" --crypto jose --notify "${NODE_NOTIFY[2]}" >/dev/null &&
kdc enroll generate node3.test. --out "$work/node3.pkg" --crypto hpke --notify "${NODE_NOTIFY[3]}" >/dev/null &&
for n in 1 2 3; do kdc enroll activate node$n.test. >/dev/null; done || { fail "enroll generate/activate"; exit 1; }
start_kdc || { fail "tdns-kdc serve listens"; exit 1; }
for n in 1 2 3; do
    "$KRS" enroll --state "${NODE_STATE[$n]}" "$work/node$n.pkg" --notify "${NODE_NOTIFY[$n]}" --key-dir "${NODE_STATE[$n]}/keys" \
        >"$work/enroll$n.out" 2>&1 || { fail "node$n enrolls: $(tail -1 "$work/enroll$n.out")"; exit 1; }
done
pass "KDC serving; node1 (HPKE), node2 (JOSE) and node3 (HPKE, for the C host) enrolled through their packages"
for n in 1 2; do start_proxy $n || { fail "faultproxy for node$n: $(tail -3 "$work/proxy$n.log" | tr '\n' ' ')"; exit 1; }; done
for n in 1 2; do start_node $n || { fail "node$n listens"; exit 1; }; done

# --- 0: baseline through the proxies ------------------------------------------------------------
if want 0; then
D0a=$(distribute 1 example.test. "$KSK"); D0b=$(distribute 2 example.test. "$KSK")
r=$(confirmed "$D0a,$D0b")
check "baseline: a key reaches both nodes through the proxies and is confirmed ($D0a, $D0b)" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ]' "$r"
fi

# --- 1: the KDC killed in the middle of a chunked fetch, restarted -----------------------------
if want 1; then
watch_start t1a "$S1/keys"; watch_start t1b "$S2/keys"
faults 1 '{"delay_data": 0.12}'; faults 2 '{"delay_data": 0.12}'
D1a=$(distribute 1 big.test. "$RSA" --chunk-size 200); D1b=$(distribute 2 big.test. "$RSA" --chunk-size 200)
nchunks=$(kdc status --json | jx "next(x['chunk_count'] for x in d['distributions'] if x['distribution_id'] == '$D1a')")
note "test 1: RSA key in $nchunks data chunks of 200 bytes; each chunk answer held 0.12 s by the proxies"
wait_for 20 '[ "$(events 1 "$D1a" | jx "d[\"data_answered\"]")" -ge 6 ] && [ "$(events 2 "$D1b" | jx "d[\"data_answered\"]")" -ge 6 ]' \
    || fail "test 1: the nodes started fetching data chunks"
got1=$(events 1 "$D1a" | jx 'd["data_answered"]'); got2=$(events 2 "$D1b" | jx 'd["data_answered"]')
kill -KILL "$KDC_PID"; reap "$KDC_PID"
note "test 1: KDC killed (SIGKILL) after $got1 and $got2 of $nchunks data chunks; restarted 0.5 s later"
part1=$(tool keys --dir "$S1/keys"); part2=$(tool keys --dir "$S2/keys")
sleep 0.5
faults 1 '{}'; faults 2 '{}'
start_kdc || fail "test 1: tdns-kdc serve restarts"
r=$(confirmed "$D1a,$D1b" 30)
check "test 1: KDC killed mid-fetch and restarted: both nodes retried, installed and confirmed the chunked RSA key" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ]' "$r"
check "test 1: nothing of the RSA key in the key dirs right after the KDC was killed" \
    '! grep -qF "$RSABASE" <<<"$part1$part2"' "$part1 $part2"
for n in 1 2; do
    d=$([ $n = 1 ] && echo "$D1a" || echo "$D1b")
    e=$(events $n "$d")
    check "test 1: node$n's first fetch was cut (proxy saw the KDC go away) and fetched again (manifest queries > 1)" \
        '[ "$(jx "d[\"actions\"].get(\"upstream-error\", 0) > 0 and d[\"manifest_queries\"] > 1" <<<"$e")" = True ]' "$e"
    check "test 1: node$n installed the RSA key once, complete ($RSABASE.key + .private)" \
        '[ "$(n_installed $n "$d")" = 1 ] && [ "$(has_key $n "$RSABASE")" = True ]' "$(audit $n "$d")"
done
watch_stop t1a "test 1 node1"; watch_stop t1b "test 1 node2"
fi

# --- 2: SERVFAIL once on a data chunk; TCP reset mid-answer once --------------------------------
if want 2; then
faults 1 '{"servfail_chunk": 3}'; faults 2 '{"servfail_chunk": 3}'
D2a=$(distribute 1 big.test. "$RSA" --chunk-size 200); D2b=$(distribute 2 big.test. "$RSA" --chunk-size 200)
r=$(confirmed "$D2a,$D2b" 30)
e1=$(events 1 "$D2a"); e2=$(events 2 "$D2b")
check "test 2: data chunk 3 answered SERVFAIL once: both nodes retried and the distribution was confirmed" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ] && [ "$(jx "d[\"actions\"].get(\"servfail\") == 1 and d[\"manifest_queries\"] == 2" <<<"$e1")" = True ] && [ "$(jx "d[\"actions\"].get(\"servfail\") == 1 and d[\"manifest_queries\"] == 2" <<<"$e2")" = True ]' \
    "$r $e1 $e2"
check "test 2: after the SERVFAIL, one install per node" '[ "$(n_installed 1 "$D2a")" = 1 ] && [ "$(n_installed 2 "$D2b")" = 1 ]'
faults 1 '{"reset_chunk": 2}'; faults 2 '{"reset_chunk": 2}'
D2c=$(distribute 1 big.test. "$RSA" --chunk-size 200); D2d=$(distribute 2 big.test. "$RSA" --chunk-size 200)
r=$(confirmed "$D2c,$D2d" 30)
e1=$(events 1 "$D2c"); e2=$(events 2 "$D2d")
check "test 2: TCP connection reset in the middle of a chunk answer: both nodes retried and the distribution was confirmed" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ] && [ "$(jx "d[\"actions\"].get(\"reset\") == 1 and d[\"manifest_queries\"] == 2" <<<"$e1")" = True ] && [ "$(jx "d[\"actions\"].get(\"reset\") == 1 and d[\"manifest_queries\"] == 2" <<<"$e2")" = True ]' \
    "$r $e1 $e2"
check "test 2: after the reset, one install per node" '[ "$(n_installed 1 "$D2c")" = 1 ] && [ "$(n_installed 2 "$D2d")" = 1 ]'
faults 1 '{}'; faults 2 '{}'
fi

# --- 3: the same NOTIFY 100 times in one second -------------------------------------------------
if want 3; then
D3a=$(distribute 1 example.test. "$ZSK"); D3b=$(distribute 2 example.test. "$ZSK")
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[1]}" --zone $CZ --id "$D3a" --count 100 --within 1.0 >"$work/storm1.json" &
s1=$!; live[$s1]=storm1
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[2]}" --zone $CZ --id "$D3b" --count 100 --within 1.0 >"$work/storm2.json"
reap $s1
r=$(confirmed "$D3a,$D3b")
sleep 1
for n in 1 2; do
    d=$([ $n = 1 ] && echo "$D3a" || echo "$D3b")
    st=$(cat "$work/storm$n.json"); e=$(events $n "$d"); a=$(audit $n "$d")
    note "test 3: node$n storm: $(jx '"%d NOTIFYs sent in %.2f s, %d answered, %d NOERROR+AA" % (d["sent"], d["sent_in_seconds"], d["answered"], d["noerror_aa"])' <<<"$st")"
    check "test 3: node$n: 100 identical NOTIFYs (+ the KDC's own) within a second → exactly one fetch (one manifest query at the proxy)" \
        '[ "$(jx "d[\"manifest_queries\"]" <<<"$e")" = 1 ]' "$e"
    check "test 3: node$n: exactly one \"installed\" audit line for the key, and the KDC sees it confirmed" \
        '[ "$(jx "d[\"by_result\"] == {\"installed\": 1}" <<<"$a")" = True ] && [ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ]' "$a $r"
    check "test 3: node$n answered the NOTIFYs with NOERROR+AA ($(jx "d[\"answered\"]" <<<"$st") of 100 answered)" \
        '[ "$(jx "d[\"answered\"] > 0 and d[\"answered\"] == d[\"noerror_aa\"]" <<<"$st")" = True ]' "$st"
done
fi

# --- 4: a replayed distribution ID -------------------------------------------------------------
if want 4 && [ -n "${D3a:-}" ]; then
for n in 1 2; do tool snapshot --dir "${NODE_STATE[$n]}/keys" --out "$work/snap4-$n.json" >/dev/null; done
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[1]}" --zone $CZ --id "$D3a" --count 5 >/dev/null
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[2]}" --zone $CZ --id "$D3b" --count 5 >/dev/null
sleep 1.5
check "test 4: the old ID re-announced to the running nodes: not fetched again (still one manifest query each)" \
    '[ "$(events 1 "$D3a" | jx "d[\"manifest_queries\"]")" = 1 ] && [ "$(events 2 "$D3b" | jx "d[\"manifest_queries\"]")" = 1 ]'
for n in 1 2; do stop_node $n; start_node $n || fail "node$n restarts"; done
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[1]}" --zone $CZ --id "$D3a" --count 3 >/dev/null
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[2]}" --zone $CZ --id "$D3b" --count 3 >/dev/null
sleep 2
for n in 1 2; do
    d=$([ $n = 1 ] && echo "$D3a" || echo "$D3b")
    a=$(audit $n "$d")
    # Processed and confirmed before (the replay record survives the restart): nothing is
    # fetched again (contract §4), so no new audit line either.
    check "test 4: node$n (restarted) did not fetch the processed ID $d again (one manifest query; audit: installed once, nothing else)" \
        '[ "$(events $n "$d" | jx "d[\"manifest_queries\"]")" = 1 ] && [ "$(jx "d[\"by_result\"] == {\"installed\": 1}" <<<"$a")" = True ]' "$a"
    c=$(tool compare --dir "${NODE_STATE[$n]}/keys" --snapshot "$work/snap4-$n.json")
    check "test 4: node$n's key dir unchanged by the replay" '[ "$(jx "d == {\"added\": [], \"removed\": [], \"changed\": []}" <<<"$c")" = True ]' "$c"
done
fi

# --- 5: another node's distribution; a KDC answering with the wrong CHUNK type ------------------
if want 5; then
D5a=$(distribute 1 example.test. "$KSK"); D5b=$(distribute 2 example.test. "$KSK")
r=$(confirmed "$D5a,$D5b")
for n in 1 2; do
    tool snapshot --dir "${NODE_STATE[$n]}/keys" --out "$work/snap5-$n.json" >/dev/null
    cp "${NODE_STATE[$n]}/audit.log" "$work/audit5-$n.before"
    wc -l <"$work/n$n.log" >"$work/log5-$n.lines"
done
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[1]}" --zone $CZ --id "$D5b" --count 3 >/dev/null   # node2's ID to node1
tool notify --sig0-key "$K/keys/kdc.sig0.privatekey" --to "${NODE_NOTIFY[2]}" --zone $CZ --id "$D5a" --count 3 >/dev/null   # node1's ID to node2
sleep 2
for n in 1 2; do
    other=$([ $n = 1 ] && echo "$D5b" || echo "$D5a")
    e=$(events $n "$other")
    c=$(tool compare --dir "${NODE_STATE[$n]}/keys" --snapshot "$work/snap5-$n.json")
    loud=$(tail -n +"$(( $(cat "$work/log5-$n.lines") + 1 ))" "$work/n$n.log" | grep -E 'warning|error' | grep -c "$other")
    check "test 5: node$n NOTIFYed with the other node's ID $other: one manifest query, no data fetched, nothing installed, audit.log untouched, no warning" \
        '[ "$(jx "d[\"manifest_queries\"] == 1 and d[\"data_queries\"] == 0" <<<"$e")" = True ] && [ "$(jx "d == {\"added\": [], \"removed\": [], \"changed\": []}" <<<"$c")" = True ] && cmp -s "$work/audit5-$n.before" "${NODE_STATE[$n]}/audit.log" && [ "$loud" = 0 ]' \
        "$e $c warnings=$loud"
done
check "test 5: the other node's distributions stay confirmed for their own nodes" '[ "$(kdc_state "$D5a")" = confirmed ] && [ "$(kdc_state "$D5b")" = confirmed ]'
# Wrong RR type: node1's manifest answer, node2's data chunk answer turned into type NULL (10).
NEW5=$(keygen example.test. 13 zsk); NEWBASE5=$(keybase example.test. 13 "$NEW5")
faults 1 '{"wrong_type": 10, "wrong_type_on": "manifest"}'; faults 2 '{"wrong_type": 10, "wrong_type_on": "data"}'
D5c=$(distribute 1 example.test. "$NEW5"); D5d=$(distribute 2 example.test. "$NEW5")
wait_for 15 '[ "$(events 1 "$D5c" | jx "d[\"actions\"].get(\"wrong-type\", 0)")" -ge 1 ] && [ "$(events 2 "$D5d" | jx "d[\"actions\"].get(\"wrong-type\", 0)")" -ge 1 ]'
sleep 4   # covers the node's retries (1 s + 2 s)
for n in 1 2; do
    d=$([ $n = 1 ] && echo "$D5c" || echo "$D5d"); what=$([ $n = 1 ] && echo manifest || echo "data chunk")
    e=$(events $n "$d")
    c=$(tool compare --dir "${NODE_STATE[$n]}/keys" --snapshot "$work/snap5-$n.json")
    check "test 5: node$n, $what answered with a NULL record instead of CHUNK: refused, nothing installed, not confirmed" \
        '[ "$(jx "d[\"actions\"].get(\"wrong-type\", 0) >= 1" <<<"$e")" = True ] && [ "$(jx "d == {\"added\": [], \"removed\": [], \"changed\": []}" <<<"$c")" = True ] && [ "$(n_installed $n "$d")" = 0 ] && [ "$(kdc_state "$d")" != confirmed ]' \
        "$e $c state=$(kdc_state "$d")"
    check "test 5: node$n logged the refusal of $d" 'grep -E "warning|error" "$work/n$n.log" | grep -q "$d"'
done
faults 1 '{}'; faults 2 '{}'
fi

# --- 6: SIGKILL during installation, restart ---------------------------------------------------
if want 6; then
# 6a node1: killed when the first temporary key file appears (before any rename).
# 6b node2: killed right after the .private is renamed into place (SIGSTOP, look, SIGKILL).
sigkill_install() {  # node, trigger, label → sets DKILL, KBASE
    local n=$1 on=$2 label=$3 tag dir=${NODE_STATE[$1]}/keys
    tag=$(keygen example.test. 13 zsk); KBASE=$(keybase example.test. 13 "$tag")
    rm -f "$work/armed6$label"
    tool killer --dir "$dir" --pid "${NODE_PID[$n]}" --on "$on" --key "$KBASE" --out "$work/kill6$label.json" \
        --armed "$work/armed6$label" --timeout 30 >/dev/null &
    local kp=$!; live[$kp]=killer$label
    wait_for 10 '[ -f "$work/armed6$label" ]'
    DKILL=$(distribute "$n" example.test. "$tag")
    reap $kp
    stop_pid "${NODE_PID[$n]}"   # reaps the killed node (or stops it if the trigger never fired)
}
after_kill_checks() {  # node, label, description
    local n=$1 label=$2 k
    k=$(cat "$work/kill6$label.json")
    if [ "$(jx 'd["fired"]' <<<"$k")" != True ]; then fail "test 6$label: node$n was killed during installation (the trigger never fired)"; return; fi
    local at; at=$(jx 'd["state_at_kill"]' <<<"$k")
    note "test 6$label: at the kill ($3): complete=$(jx "\"$KBASE\" in d['complete']" <<<"$at") private_only=$(jx "\"$KBASE\" in d['private_only']" <<<"$at") temporary files=$(jx 'len(d["temps"])' <<<"$at")"
    check "test 6$label: at the SIGKILL no .key without its .private and nothing partial under a final name" \
        '[ "$(jx "d[\"key_only\"] == [] and d[\"incomplete\"] == []" <<<"$at")" = True ]' "$at"
    if [ "$label" = b ]; then
        # Killed between the two renames: the .private may be there without its .key (BIND
        # only finds keys through the .key, so it is not yet visible); a restart completes it.
        note "test 6b: a .private without its .key at the kill is expected between the two renames; checked: completed after the restart"
    else
        check "test 6$label: at the SIGKILL the new key is complete (.key + .private) or absent" \
            '[ "$(jx "\"$KBASE\" not in d[\"private_only\"] and \"$KBASE\" not in d[\"key_only\"]" <<<"$at")" = True ]' "$at"
    fi
    check "test 6$label: the announced distribution is in node$n's persisted pending record after the kill (needs (a))" \
        'grep -q "^$DKILL " "${NODE_STATE[$n]}/pending" 2>/dev/null' "pending: $(tr '\n' ' ' <"${NODE_STATE[$n]}/pending" 2>/dev/null)"
    start_node "$n" || fail "node$n restarts"
    local r; r=$(confirmed "$DKILL" 20)
    check "test 6$label: after the restart node$n processed $DKILL without a new NOTIFY: key complete, confirmed at the KDC (needs (a))" \
        '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ] && [ "$(has_key $n "$KBASE")" = True ]' "$r; audit: $(audit $n "$DKILL"); key dir: $(tool keys --dir "${NODE_STATE[$n]}/keys" | jx '{k: v for k, v in d.items() if k != "complete"}')"
    check "test 6$label: no temporary key files left after the restart and processing (needs (b))" \
        '[ "$(tool keys --dir "${NODE_STATE[$n]}/keys" | jx "len(d[\"temps\"])")" = 0 ]'
}
sigkill_install 1 temp a;   after_kill_checks 1 a "temporary files written, nothing renamed"
sigkill_install 2 commit b; after_kill_checks 2 b ".private renamed into place"
# 6c node1: installed, but killed before its confirmation reached the KDC (the proxy drops the
#    confirmation NOTIFYs; the node is killed at the first one).
tag=$(keygen example.test. 13 zsk); KBASE=$(keybase example.test. 13 "$tag")
faults 1 '{"drop_notify": true}'
DKILL=$(distribute 1 example.test. "$tag")
wait_for 20 '[ "$(events 1 "$DKILL" | jx "d[\"kinds\"].get(\"udp:notify\", 0)")" -ge 1 ]'
kill -KILL "${NODE_PID[1]}"; stop_pid "${NODE_PID[1]}"
faults 1 '{}'
at=$(tool keys --dir "$S1/keys")
st=$(kdc_state "$DKILL")
note "test 6c: node1 killed after installing $DKILL, at its first confirmation NOTIFY (dropped by the proxy); KDC state: $st"
check "test 6c: at the SIGKILL the key was installed (complete) and the KDC had no confirmation" \
    '[ "$(jx "\"$KBASE\" in d[\"complete\"]" <<<"$at")" = True ] && [ "$st" = notified ]' "$at state=$st"
check "test 6c: the distribution is still in node1's pending record (installed, not confirmed)" \
    'grep -q "^$DKILL " "$S1/pending" 2>/dev/null' "pending: $(tr '\n' ' ' <"$S1/pending" 2>/dev/null)"
start_node 1 || fail "node1 restarts"
r=$(confirmed "$DKILL" 20)
check "test 6c: after the restart node1 confirmed $DKILL to the KDC (installed before the kill; needs (a))" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ]' "$r; audit: $(audit 1 "$DKILL")"
check "test 6c: the key was installed exactly once" '[ "$(n_installed 1 "$DKILL")" = 1 ]' "$(audit 1 "$DKILL")"
# (b) on start: a stale temporary file (an install killed long ago) is removed when the node starts.
stop_node 1
stale="$S1/keys/.Kexample.test.+013+00001.private.tmp.AbC123"
printf 'stale\n' >"$stale"; chmod 600 "$stale"
start_node 1 || fail "node1 restarts"
sleep 1.5
check "test 6: a stale temporary key file is removed when the node starts, with nothing to install (needs (b))" '[ ! -e "$stale" ]'
rm -f "$stale"
# 6d node2: its confirmations over UDP are dropped: the last attempt goes over TCP.
tag=$(keygen example.test. 13 zsk)
faults 2 '{"drop_udp_notify": true}'
DTCP=$(distribute 2 example.test. "$tag")
r=$(confirmed "$DTCP" 40)
ev=$(events 2 "$DTCP")
faults 2 '{}'
check "test 6d: node2's confirmations over UDP dropped: confirmed over TCP (last attempt)" \
    '[ "$(jx "d[\"all_confirmed\"]" <<<"$r")" = True ] && [ "$(jx "d[\"kinds\"].get(\"tcp:notify\", 0)" <<<"$ev")" -ge 1 ] && [ "$(jx "d[\"kinds\"].get(\"udp:notify\", 0)" <<<"$ev")" -ge 2 ]' \
    "$r; proxy: $ev"
fi

# --- 7: krs_stop with a fetch in flight (C host under valgrind) --------------------------------
if want 7; then
LIB="$build/lib"
if [ ! -e "$LIB/libtdnskrs.so" ]; then
    fail "test 7: $LIB/libtdnskrs.so exists (make lib)"
elif ! ${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$root/Include" -o "$work/stop_host" "$here/stop_host.c" \
        -L"$LIB" -ltdnskrs -Wl,-rpath,"$LIB" 2>"$work/cc.err"; then
    fail "test 7: stop_host.c compiles (C11, -Wall -Wextra -Werror): $(head -3 "$work/cc.err" | tr '\n' ' ')"
else
    pass "test 7: stop_host.c compiles (C11, -Wall -Wextra -Werror) against libtdnskrs"
    start_proxy 3 || fail "test 7: faultproxy for node3"
    D7=$(distribute 3 example.test. "$KSK")
    vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite)
    command -v valgrind >/dev/null || { vg=(); fail "test 7: valgrind installed"; }
    for stall in manifest data; do
        if [ $stall = manifest ]; then faults 3 '{"drop": true}'; else faults 3 '{"delay_data": 120}'; fi
        for run in native valgrind; do
            [ $run = valgrind ] && [ ${#vg[@]} = 0 ] && continue
            : >"$work/proxy3.events"
            pre=(); [ $run = valgrind ] && pre=("${vg[@]}")
            "${pre[@]}" "$work/stop_host" "$S3" "127.0.0.1:$P3" "$D7" $CZ "$work/proxy3.events" "\"qkind\": \"$stall\"" 1.0 \
                >"$work/stop7.out" 2>"$work/stop7-$stall-$run.err" &
            hp=$!; live[$hp]=stop_host
            wait $hp; rc=$?; unset "live[$hp]"
            secs=$(sed -n 's/^stop_seconds=//p' "$work/stop7.out")
            # What krs_status_json said of the distribution after the stop: the fetch was abandoned
            # ("interrupted": kept in state_dir/pending for the next start, not a failure to retry).
            after=$(sed -n 's/^status=//p' "$work/stop7.out" | jx "next(('%s: %s' % (x['result'], x['detail'][:80]) for x in d['distributions'] if x['id'] == '$D7'), 'no record')" 2>/dev/null)
            if [ $run = native ]; then
                check "test 7: krs_stop with the $stall query unanswered returns within 1.0 s (took ${secs:-?} s; needs (c))" \
                    '[ $rc = 0 ]' "exit $rc: $(grep -v '^==' "$work/stop7-$stall-$run.err" | tail -2 | tr '\n' ' ')"
                check "test 7: the $stall fetch was in flight at krs_stop and abandoned (status: ${after:-?})" \
                    '[[ "$after" == "interrupted"* ]]'
            else
                note "test 7: under valgrind krs_stop ($stall stalled) took ${secs:-?} s"
                check "test 7: valgrind: no errors, no definite leaks (krs_init/start/handle_notify/stop/cleanup, $stall stalled)" \
                    '[ $rc != 99 ] && [ $rc != 1 ]' "exit $rc: $(grep -vE 'dwarf2|^==[0-9]+== *$' "$work/stop7-$stall-$run.err" | grep -E 'definitely|Invalid|uninitialised|Mismatched|ERROR SUMMARY|krs_|proxy|Giving up|   (at|by) ' | head -8 | tr '\n' ' ')"
            fi
        done
    done
fi
fi

# --- 8: timing figure ---------------------------------------------------------------------------
if want 8; then
stop_node 1; start_node 1 direct || fail "node1 restarts without the proxy"
t=$(tool timing --state "$K" --kdc "$KDC" --node node1.test. --zone example.test. --key "$ZSK" --runs 20)
echo "# timing: tdns-kdc distribute of one key → confirmed in tdns-kdc status (node1, HPKE, direct), $(jx '"%d runs: median %s s, min %s s, max %s s" % (d["confirmed"], d["median"], d["min"], d["max"])' <<<"$t") (includes the KDC's 250 ms NOTIFY poll)"
check "test 8: all 20 timed distributions were confirmed" '[ "$(jx "d[\"confirmed\"]" <<<"$t")" = 20 ]' "$t"
fi

[ "$fails" -eq 0 ]
