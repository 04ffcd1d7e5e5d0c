#!/usr/bin/env bash
# Attack suite (issue 10, "production trust"; the names and behaviours of the phase A contract):
# the real `tdns-kdc serve` and real `tdns-krs run` nodes enrolled through their packages
# (require_signature on: the default with our KDC's package), on 127.0.0.0/8. On-path attacks go
# through fake_kdc.py: the node's kdc_address points at it, it forwards to the real KDC and
# harvests, forges or trickles as the case needs; off-path attacks come from attacktool.py.
#
# Every case is named after the attack; its PASS lines mean "the attack failed", seen the way an
# operator sees it: the node's key dir and `tdns-krs status --json`, its audit.log, `tdns-kdc
# status --json`, the KDC's log. Each case first checks that the attack was actually delivered
# (otherwise FAIL: "attack not delivered"), so a broken attacker cannot make a case pass.
#
#   baseline                     a key reaches a node through the fake KDC and is confirmed
#   finished-chunks              a confirmed distribution's CHUNKs are no longer served (NXDOMAIN)
#   rollback-rewrap              an old roll_key re-wrapped as the next real distribution (new ID,
#                                current time, HMAC keyed with the node's public key): the old
#                                ZSK is not installed, the current one not retired
#   delete-replay                the same with an old delete_key: the key stays
#   notify-flood                 ~1,000 NOTIFYs/s with unique IDs while the KDC distributes:
#                                the real distribution is confirmed
#   unsigned-confirmation-spray  unsigned confirmations from the node's IP for the next IDs
#                                while the node is down: the KDC marks nothing confirmed
#   early-chunk-query            a CHUNK query for a pending manifest before the node took a
#                                NOTIFY: the state stays pending, the KDC NOTIFYs on, confirmed
#   kdc-slowloris-during-fetch   the KDC's answers trickled during the fetch: re-NOTIFYed and
#                                confirmed, or failed with a reason at its deadline
#   full-key-dir                 a full key_dir (64k tmpfs): the KDC shows failed, storage reason
#   chunk-count-bomb             a manifest announcing 20,000 × 60,000 bytes: RSS bounded,
#                                nothing beyond max_distribution_size fetched
#   trickled-chunk               one data-chunk answer at a byte per second: the node gives up
#                                within its deadline and the next distribution is processed
#   kdc-log-flood                10 s of refused requests: the KDC log grows < 1 MB
#   notify-outside-zone          NOTIFYs outside the control zone (also KDC-signed): REFUSED
#   unsigned-notify              unsigned / foreign-key / tampered NOTIFYs: REFUSED, nothing fetched
#   dir-modes                    operator-created key_dir/state_dir 0755: tightened to 0700
#   pending-stale                thousands of stale IDs in state_dir/pending: bounded, not refetched
#   krs-slowloris                64 dripping TCP connections to the KRS listener: still served
#   kdc-slowloris                256 dripping TCP connections to the KDC: a node still fetches
#
#   TDNSKRS_BUILD=/abs/build PYTHON=/abs/.venv/bin/python bash Tests/attack/run.sh
#
# ATTACK_ONLY="rollback-rewrap dir-modes" runs a subset (baseline always runs). The KDC is
# initialised with distribution_ttl=$ATTACK_TTL (default 60s) so that deadlines come within a
# test run. Every wait is bounded; ATTACK_TIMEOUT (default 1500 s) bounds the whole suite.
# Every process started here is stopped on exit (also on failure), the tmpfs is unmounted;
# KEEP=1 keeps the work directory. Prints "PASS: …" / "FAIL: …" per check and "# …" notes,
# "TIMING: …" at the end; exit 1 if any check failed. Needs root only for full-key-dir's mount
# (SKIP line otherwise).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
KDC="$build/bin/tdns-kdc"
KRS="$build/bin/tdns-krs"
PY=${PYTHON:-$root/.venv/bin/python}
CZ=kdc.test.
TTL=${ATTACK_TTL:-60s}
TTL_S=${TTL%s}
work=$(mktemp -d /tmp/tdnskrs-attack.XXXXXX)
chmod 700 "$work"
suite_t0=$(date +%s)

declare -A live=()   # pid -> what, for every process started here and not yet reaped
mounts=()
cleanup() {
    local p m
    for p in "${!live[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
    for p in "${!live[@]}"; do wait "$p" 2>/dev/null; done
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: attack suite interrupted (signal or ATTACK_TIMEOUT)"; exit 1' INT TERM
( trap 'kill $sp 2>/dev/null; exit 0' TERM; sleep "${ATTACK_TIMEOUT:-1500}" & sp=$!; wait $sp && kill -TERM $$ ) 2>/dev/null &
live[$!]=watchdog

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
note() { echo "# $*"; }
check() { if eval "$2"; then pass "$1"; else fail "$1${3:+ — $3}"; fi; }   # name, condition, detail
reap() { wait "$1" 2>/dev/null; unset "live[$1]"; }
# SIGTERM, then SIGKILL after 5 s (a process that ignores SIGTERM must not hang the suite).
stop_pid() {
    [ -n "${1:-}" ] && [ -n "${live[$1]+x}" ] || return 0
    kill -CONT "$1" 2>/dev/null; kill "$1" 2>/dev/null
    local i
    for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && { note "pid $1 (${live[$1]}) ignored SIGTERM for 5 s: SIGKILL"; kill -KILL "$1" 2>/dev/null; }
    reap "$1"
}
want() { [ -z "${ATTACK_ONLY:-}" ] || [[ " $ATTACK_ONLY " == *" $1 "* ]]; }
tool() { "$PY" "$here/attacktool.py" "$@"; }
# The same in the background, as a direct child of this shell (so $! is the tool itself, and
# stopping it stops it — a backgrounded shell function would leave the tool running).
tool_bg() { "$PY" "$here/attacktool.py" "$@" & }
ftool() { "$PY" "$root/Tests/e2e/faulttool.py" "$@"; }
# jq-like: jx 'EXPR' evaluates EXPR over the JSON on stdin as d.
jx() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r) if isinstance(r, (dict, list)) else r)' "$1"; }
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
wait_tcp() {  # host port: up to 20 s
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
    while [ "$(date +%s%N)" -lt "$end" ]; do eval "$2" && return 0; sleep 0.2; done
    eval "$2"
}
# Each case starts with a fresh `tdns-kdc serve` (same state directory), so that one case's
# load on the KDC process cannot make another fail.
case_start() {
    CASE=$1; CASE_T0=$(date +%s%N); note "--- $1"
    if [ -n "$KDC_PID" ]; then stop_pid "$KDC_PID"; start_kdc || fail "$1: tdns-kdc serve restarts"; fi
}
case_end() { note "$CASE took $(( ($(date +%s%N) - CASE_T0) / 1000000 )) ms"; CASE_TIMES+=("$CASE=$(( ($(date +%s%N) - CASE_T0) / 1000000000 ))s"); }
CASE_TIMES=()

[ -x "$KDC" ] && [ -x "$KRS" ] || { fail "tdns-kdc and tdns-krs built in $build/bin"; exit 1; }
"$PY" -c 'import dns.message, cryptography' 2>/dev/null || { fail "python with dnspython and cryptography ($PY)"; exit 1; }

# --- the KDC ----------------------------------------------------------------------------------
read -r KP < <(free_ports 127.0.0.1)
K="$work/kdc"; mkdir -p "$K"
KDCLOG="$work/kdc.log"
kdc() { "$KDC" "$@" --state "$K"; }
KDC_PID=
start_kdc() {
    "$KDC" serve --state "$K" >>"$KDCLOG" 2>&1 &
    KDC_PID=$!; live[$KDC_PID]=kdc
    wait_tcp 127.0.0.1 "$KP"
}
kdc init --control-zone $CZ --listen 127.0.0.1:$KP --distribution-ttl "$TTL" >/dev/null || { fail "tdns-kdc init"; exit 1; }
KDC_SIG0_KEY="$K/keys/kdc.sig0.privatekey"; KDC_SIG0_LINE="$K/kdc.sig0.key"

keygen() { kdc key generate --zone "$1" --algorithm "$2" --type "$3" --json | jx 'd["key_tag"]'; }
# distribute NODE ZONE TAG [extra …] → ID; ping NODE → ID
distribute() { local n=$1 z=$2 t=$3; shift 3; kdc distribute --node "$n.test." --zone "$z" --key "$t" --json "$@" | jx 'd["distributions"][0]["distribution_id"]'; }
ping_node() { kdc distribute --node "$1.test." --op ping --json | jx 'd["distributions"][0]["distribution_id"]'; }
last_id() { kdc status --json | jx '"%x" % max([int(x["distribution_id"], 16) for x in d["distributions"]] or [0])'; }
kdc_dist() { kdc status --json | jx "next((x for x in d['distributions'] if x['distribution_id'] == '$1'), {})"; }
kdc_state() { kdc_dist "$1" | jx 'd.get("state")'; }
confirmed() { ftool kdc --state "$K" --kdc "$KDC" --ids "$1" --timeout "${2:-20}"; }
is_confirmed() { [ "$(confirmed "$1" "${2:-20}" | jx 'd["all_confirmed"]')" = True ]; }
# The node's public key as the KDC holds it: what the Format 1 HMAC is keyed with (PROTOCOL §9.2).
hmac_key() {
    kdc status --json | jx "next(('%s' % (n.get('hpke_pubkey') or __import__('base64').urlsafe_b64decode(json.loads(n['jose_pubkey'])['x'] + '==').hex())) for n in d['nodes'] if n['node_id'] == '$1.test.')"
}

# --- nodes ------------------------------------------------------------------------------------
declare -A N_STATE=() N_ADDR=() N_KEYS=() N_PID=() N_FAKE=() N_FAKEPID=()
NODE_IP=10
# new_node NAME hpke|jose [KEY_DIR]: enrolled through its package as NAME.test. at 127.0.0.x
new_node() {
    local n=$1 crypto=$2 kd=${3:-} ip port s
    ip=127.0.0.$NODE_IP; NODE_IP=$((NODE_IP + 1))
    port=$(free_ports "$ip")
    s="$work/node-$n"
    [ -d "$s" ] || { mkdir -p "$s"; chmod 700 "$s"; }
    if [ -z "$kd" ]; then kd="$s/keys"; [ -d "$kd" ] || { mkdir -p "$kd"; chmod 700 "$kd"; }; fi
    N_STATE[$n]=$s; N_ADDR[$n]=$ip:$port; N_KEYS[$n]=$kd
    kdc enroll generate "$n.test." --out "$work/$n.pkg" --crypto "$crypto" --notify "$ip:$port" >/dev/null &&
        kdc enroll activate "$n.test." >/dev/null &&
        "$KRS" enroll --state "$s" "$work/$n.pkg" --notify "$ip:$port" --key-dir "$kd" >"$work/enroll-$n.out" 2>&1 ||
        { fail "$CASE: node $n.test. enrolls through its package: $(tail -1 "$work/enroll-$n.out" 2>/dev/null)"; return 1; }
}
# start_node NAME [fake|direct]: tdns-krs run; kdc_address = the node's fake KDC unless direct.
start_node() {
    local n=$1 extra=()
    [ "${2:-fake}" = fake ] && [ -n "${N_FAKE[$n]:-}" ] && extra=(--set "kdc_address=${N_FAKE[$n]}")
    "$KRS" run --state "${N_STATE[$n]}" "${extra[@]}" >>"$work/n-$n.log" 2>&1 &
    N_PID[$n]=$!; live[$!]=node-$n
    wait_tcp "${N_ADDR[$n]%:*}" "${N_ADDR[$n]##*:}" || { fail "$CASE: node $n listens on ${N_ADDR[$n]}"; return 1; }
}
stop_node() { stop_pid "${N_PID[$1]:-}"; }
start_fake() {  # NAME: a fake KDC on 127.0.0.1 for node NAME, forwarding to the KDC
    local n=$1 port
    port=$(free_ports 127.0.0.1)
    : >"$work/fake-$n.events"; echo '{"attack": "none"}' >"$work/fake-$n.control"
    "$PY" "$here/fake_kdc.py" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$KP" --zone $CZ \
        --control "$work/fake-$n.control" --events "$work/fake-$n.events" >"$work/fake-$n.log" 2>&1 &
    N_FAKEPID[$n]=$!; live[$!]=fake-$n; N_FAKE[$n]=127.0.0.1:$port
    wait_tcp 127.0.0.1 "$port" || { fail "$CASE: fake KDC for $n listens"; return 1; }
}
stop_fake() { stop_pid "${N_FAKEPID[$1]:-}"; }
attack() { printf '%s\n' "$2" >"$work/fake-$1.control.new" && mv "$work/fake-$1.control.new" "$work/fake-$1.control"; }
events() { tool events --file "$work/fake-$1.events" ${2:+--id "$2"}; }
krs_status() { "$KRS" status --state "${N_STATE[$1]}" --json 2>/dev/null; }
# key_state NAME ZONE TAG → active, retired or absent (`tdns-krs status --json`: keys)
key_state() { krs_status "$1" | jx "next((k['state'] for k in d.get('keys', []) if k['zone'] == '$2' and k['key_tag'] == $3), 'absent')"; }
audit() { ftool audit --file "${N_STATE[$1]}/audit.log" ${2:+--id "$2"}; }
stop_case_processes() { local n; for n in "$@"; do stop_node "$n"; stop_fake "$n"; done; }

# ==============================================================================================
case_start baseline
start_kdc || { fail "tdns-kdc serve listens on 127.0.0.1:$KP"; exit 1; }
new_node base hpke && start_fake base && start_node base || exit 1
kdc zone add base.test. >/dev/null
BK=$(keygen base.test. 13 ksk)
st=$(krs_status base)
check "baseline: the enrolled node runs with require_signature on (package default) and a KDC signing key" \
    '[ "$(jx "d[\"require_signature\"]" <<<"$st")" = True ]' "$st"
D0=$(distribute base base.test. "$BK")
check "baseline: a KSK reaches node base.test. through the fake KDC (forwarding) and is confirmed ($D0)" 'is_confirmed "$D0" 30' "$(kdc_dist "$D0")"
check "baseline: the key is installed and active on the node" '[ "$(key_state base base.test. "$BK")" = active ]'
check "baseline: the fake KDC forwarded the node's manifest query" '[ "$(events base "$D0" | jx "d[\"manifest_queries\"]")" -ge 1 ]'
case_end

# ==============================================================================================
if want finished-chunks; then
case_start finished-chunks
# PROTOCOL §2.7 + contract §3: CHUNK answers only for pending/notified distributions.
r=$(tool chunkq --to "127.0.0.1:$KP" --name "base.test.$D0.$CZ" --tcp)
check "finished-chunks: the manifest of confirmed distribution $D0, asked by anyone (127.0.0.1): NXDOMAIN, no CHUNK" \
    '[ "$(jx "d.get(\"rcode\")" <<<"$r")" = NXDOMAIN ]' "$r"
case_end
fi

# ==============================================================================================
# An on-path attacker re-wraps an old distribution as the KDC's next real one. `after` is the
# highest ID before the carrier: the fake KDC answers the carrier's fetches with the old one.
rewrap_attack() {  # NODE OLD_ID → the carrier's ID (a ping the KDC NOTIFYs for itself)
    local n=$1 old=$2 after hk
    after=$(last_id); hk=$(hmac_key "$n")
    attack "$n" "{\"attack\": \"rewrap\", \"after_id\": \"$after\", \"source_id\": \"$old\", \"node\": \"$n.test.\", \"zone\": \"$CZ\", \"hmac_key\": \"$hk\", \"variants\": [\"hmac\", \"verbatim\"]}"
    local carrier; carrier=$(ping_node "$n")
    wait_for 20 "[ \"\$(events $n $carrier | jx 'len(d[\"rewrap\"])')\" -ge 1 ]"
    # Time to process what was served (and for a second fetch after the KDC's re-NOTIFY).
    wait_for 12 "[ \"\$(audit $n $carrier | jx 'd[\"lines\"]')\" -ge 1 ]"
    sleep 2
    echo "$carrier"
}

if want rollback-rewrap; then
case_start rollback-rewrap
new_node rb hpke && start_fake rb && start_node rb
kdc zone add rb.test. >/dev/null
Z1=$(keygen rb.test. 13 zsk); D1=$(distribute rb rb.test. "$Z1"); is_confirmed "$D1" 30 || fail "rollback-rewrap: setup: ZSK $Z1 ($D1) confirmed"
Z2=$(keygen rb.test. 13 zsk); D2=$(distribute rb rb.test. "$Z2"); is_confirmed "$D2" 30 || fail "rollback-rewrap: setup: ZSK $Z2 ($D2) confirmed"
check "rollback-rewrap: setup: after the roll, ZSK $Z2 is active and ZSK $Z1 retired on the node" \
    '[ "$(key_state rb rb.test. "$Z2")" = active ] && [ "$(key_state rb rb.test. "$Z1")" = retired ]' "$(krs_status rb | jx 'd["keys"]')"
D3=$(rewrap_attack rb "$D1")
e=$(events rb "$D3"); a=$(audit rb "$D3")
note "rollback-rewrap: old distribution $D1 harvested ($(jx 'd["harvest"]' <<<"$e")) and served as carrier $D3: variants $(jx 'd["rewrap"]' <<<"$e"); node audit for $D3: $(jx 'd["by_result"]' <<<"$a") $(jx 'd["refusals"][:1]' <<<"$a")"
if [ "$(jx 'len(d["rewrap"])' <<<"$e")" -lt 1 ]; then
    fail "rollback-rewrap: attack not delivered (the node never fetched carrier $D3 through the fake KDC): $e"
else
    check "rollback-rewrap: the old ZSK $Z1 is not re-installed: still retired" '[ "$(key_state rb rb.test. "$Z1")" = retired ]' "$(krs_status rb | jx 'd["keys"]')"
    check "rollback-rewrap: the current ZSK $Z2 is not retired: still active" '[ "$(key_state rb rb.test. "$Z2")" = active ]' "$(krs_status rb | jx 'd["keys"]')"
    check "rollback-rewrap: audit.log shows no key installed or retired by carrier $D3" \
        '[ "$(jx "d[\"by_result\"].get(\"installed\", 0) + d[\"by_result\"].get(\"retired\", 0)" <<<"$a")" = 0 ]' "$a"
fi
attack rb '{"attack": "none"}'
stop_case_processes rb
case_end
fi

# ==============================================================================================
if want delete-replay; then
case_start delete-replay
new_node dr jose && start_fake dr && start_node dr
kdc zone add dr.test. >/dev/null
X=$(keygen dr.test. 13 zsk)
Da=$(distribute dr dr.test. "$X"); is_confirmed "$Da" 30 || fail "delete-replay: setup: ZSK $X ($Da) confirmed"
Db=$(distribute dr dr.test. "$X" --op delete_key); is_confirmed "$Db" 30 || fail "delete-replay: setup: delete_key $X ($Db) confirmed"
check "delete-replay: setup: after delete_key the node no longer lists ZSK $X" '[ "$(key_state dr dr.test. "$X")" = absent ]'
Dc=$(distribute dr dr.test. "$X"); is_confirmed "$Dc" 30 || fail "delete-replay: setup: ZSK $X distributed again ($Dc) confirmed"
check "delete-replay: setup: ZSK $X installed again and active" '[ "$(key_state dr dr.test. "$X")" = active ]'
Dd=$(rewrap_attack dr "$Db")
e=$(events dr "$Dd"); a=$(audit dr "$Dd")
note "delete-replay: delete_key $Db harvested ($(jx 'd["harvest"]' <<<"$e")) and served as carrier $Dd: variants $(jx 'd["rewrap"]' <<<"$e"); node audit for $Dd: $(jx 'd["by_result"]' <<<"$a") $(jx 'd["refusals"][:1]' <<<"$a")"
if [ "$(jx 'len(d["rewrap"])' <<<"$e")" -lt 1 ]; then
    fail "delete-replay: attack not delivered (the node never fetched carrier $Dd through the fake KDC): $e"
else
    check "delete-replay: ZSK $X is still there and active after the replayed delete_key" '[ "$(key_state dr dr.test. "$X")" = active ]' "$(krs_status dr | jx 'd["keys"]')"
    check "delete-replay: audit.log shows no key deleted by carrier $Dd" '[ "$(jx "d[\"by_result\"].get(\"deleted\", 0)" <<<"$a")" = 0 ]' "$a"
fi
attack dr '{"attack": "none"}'
stop_case_processes dr
case_end
fi

# ==============================================================================================
if want notify-flood; then
case_start notify-flood
new_node fl hpke && start_node fl direct
kdc zone add fl.test. >/dev/null
FK=$(keygen fl.test. 13 zsk)
tool_bg flood --to "${N_ADDR[fl]}" --zone $CZ --rate 1000 --seconds 25 --source 127.0.0.60 >"$work/flood.json" 2>&1
fp=$!; live[$fp]=flood
sleep 3
Dfl=$(distribute fl fl.test. "$FK")
ok=false; is_confirmed "$Dfl" 20 && ok=true
reap $fp
fr=$(cat "$work/flood.json")
note "notify-flood: $(jx '"%d NOTIFYs with unique IDs in %s s (%d/s), answers %s" % (d["sent"], d["seconds"], d["rate"], d["rcodes"])' <<<"$fr" 2>/dev/null || echo "$fr")"
if [ "$(jx 'd["rate"] >= 800' <<<"$fr" 2>/dev/null)" != True ]; then
    fail "notify-flood: attack not delivered (fewer than 800 NOTIFYs/s): $fr"
else
    check "notify-flood: the real distribution $Dfl, made 3 s into the flood, is confirmed within 20 s" '$ok' "$(kdc_dist "$Dfl")"
fi
stop_case_processes fl
case_end
fi

# ==============================================================================================
if want unsigned-confirmation-spray; then
case_start unsigned-confirmation-spray
new_node cs hpke
kdc zone add cs.test. >/dev/null
CK=$(keygen cs.test. 13 zsk)
# The node is down: whatever the KDC records as confirmed, the node did not confirm it.
n0=$(( 16#$(last_id) + 1 ))
ids=$(printf '%x,%x,%x,%x,%x' $n0 $((n0 + 1)) $((n0 + 2)) $((n0 + 3)) $((n0 + 4)))
tool_bg spray --to "127.0.0.1:$KP" --zone $CZ --ids "$ids" --source "${N_ADDR[cs]%:*}" --seconds 8 --interval 0.05 \
    --report-zone cs.test. --report-key "$CK" >"$work/spray.json" 2>&1
sp=$!; live[$sp]=spray
sleep 1
Dcs=$(distribute cs cs.test. "$CK")
reap $sp
sr=$(cat "$work/spray.json")
note "unsigned-confirmation-spray: predicted IDs $ids, real one $Dcs; answers to the spray: $(jx 'd["answers"]' <<<"$sr" 2>/dev/null || echo "$sr")"
if [[ ",$ids," != *",$Dcs,"* ]] || [ "$(jx "sum(d['answers'].get('$Dcs', {}).values())" <<<"$sr" 2>/dev/null)" = 0 ]; then
    fail "unsigned-confirmation-spray: attack not delivered (the real ID $Dcs was not among the sprayed, or the KDC never answered them): $sr"
else
    st=$(kdc_dist "$Dcs")
    check "unsigned-confirmation-spray: $Dcs is not confirmed at the KDC while its node is down (state $(jx 'd.get("state")' <<<"$st"))" \
        '[ "$(jx "d.get(\"state\")" <<<"$st")" != confirmed ] && [ "$(jx "d.get(\"confirmed_at\")" <<<"$st")" = None ]' "$st"
    check "unsigned-confirmation-spray: the KDC answered every unsigned confirmation for $Dcs with REFUSED" \
        '[ "$(jx "list(d[\"answers\"][\"$Dcs\"].keys()) == [\"REFUSED\"]" <<<"$sr")" = True ]' "$(jx "d['answers']['$Dcs']" <<<"$sr")"
    start_node cs direct
    check "unsigned-confirmation-spray: after the node starts, the KDC's re-NOTIFY brings $Dcs confirmed by the node's SIG(0)" \
        'is_confirmed "$Dcs" 40 && [ "$(kdc_dist "$Dcs" | jx "d.get(\"confirmed_by\")")" = sig0 ]' "$(kdc_dist "$Dcs")"
fi
stop_case_processes cs
case_end
fi

# ==============================================================================================
if want early-chunk-query; then
case_start early-chunk-query
new_node ec hpke
kdc zone add ec.test. >/dev/null
EK=$(keygen ec.test. 13 zsk)
# The node is not running (a restart, maintenance): the NOTIFYs go unanswered. The CHUNK query
# for the manifest comes at once, before the KDC's first NOTIFY round (250 ms) as a rule.
Dec=$(distribute ec ec.test. "$EK")
q=$(tool chunkq --to "127.0.0.1:$KP" --name "ec.test.$Dec.$CZ" --tcp)
sleep 1
st=$(kdc_dist "$Dec")
note "early-chunk-query: manifest of $Dec asked by 127.0.0.1 right after distribute: $q; state then: $(jx '{k: d.get(k) for k in ("state", "notify_attempts")}' <<<"$st")"
if [ "$(jx 'd.get("rcode")' <<<"$q")" != NOERROR ]; then
    fail "early-chunk-query: attack not delivered (the manifest query was not answered NOERROR): $q"
else
    check "early-chunk-query: the CHUNK query did not change the state: $Dec still pending" '[ "$(jx "d.get(\"state\")" <<<"$st")" = pending ]' "$st"
    sleep 2
    start_node ec direct
    check "early-chunk-query: the node, started 3 s later, gets a NOTIFY and $Dec is confirmed" 'is_confirmed "$Dec" 40' "$(kdc_dist "$Dec")"
fi
stop_case_processes ec
case_end
fi

# ==============================================================================================
if want kdc-slowloris-during-fetch; then
case_start kdc-slowloris-during-fetch
new_node sl hpke && start_fake sl && start_node sl
kdc zone add sl.test. >/dev/null
SK=$(keygen sl.test. 8 zsk)
after=$(last_id)
until=$(( $(date +%s) + 20 ))
attack sl "{\"attack\": \"trickle\", \"after_id\": \"$after\", \"on\": \"all\", \"interval\": 1.0, \"until\": $until}"
Dsl=$(distribute sl sl.test. "$SK" --chunk-size 400)
created=$(date +%s)
# Confirmed, or failed at the deadline (created + distribution_ttl) — never `notified` for good.
wait_for $(( TTL_S + 25 )) "[[ \"\$(kdc_state $Dsl)\" == confirmed || \"\$(kdc_state $Dsl)\" == failed ]]"
st=$(kdc_dist "$Dsl"); e=$(events sl "$Dsl")
note "kdc-slowloris-during-fetch: every TCP answer for $Dsl trickled at 1 byte/s for 20 s: $(jx 'd["trickles_started"]' <<<"$e") trickles; after $(( $(date +%s) - created )) s: $(jx '{k: d.get(k) for k in ("state", "reason", "notify_attempts", "last_notify_result", "deadline")}' <<<"$st")"
if [ "$(jx 'd["trickles_started"]' <<<"$e")" -lt 1 ]; then
    fail "kdc-slowloris-during-fetch: attack not delivered (no answer was trickled): $e"
else
    check "kdc-slowloris-during-fetch: $Dsl ends confirmed, or failed with a reason at its deadline — not left notified" \
        '[ "$(jx "d.get(\"state\") == \"confirmed\" or (d.get(\"state\") == \"failed\" and \"deadline\" in (d.get(\"reason\") or \"\"))" <<<"$st")" = True ]' "$st"
fi
attack sl '{"attack": "none"}'
stop_case_processes sl
case_end
fi

# ==============================================================================================
if want full-key-dir; then
case_start full-key-dir
FULL="$work/fullkeys"; mkdir -p "$FULL"
if ! mount -t tmpfs -o size=64k,mode=0700 tmpfs "$FULL" 2>"$work/mount.err"; then
    echo "SKIP: full-key-dir — cannot mount a tmpfs here ($(head -1 "$work/mount.err")); needs root"
else
    mounts+=("$FULL")
    new_node fk hpke "$FULL" && start_node fk direct
    # Fill it: whatever space is left goes to filler files until ENOSPC.
    "$PY" - "$FULL" <<'PY'
import os, sys
d = sys.argv[1]; i = 0
while True:
    try:
        with open(os.path.join(d, f".filler{i}"), "wb") as f:
            while True:
                f.write(b"\0" * 4096); f.flush(); os.fsync(f.fileno())
    except OSError:
        i += 1
        if i > 64: break
PY
    kdc zone add fk.test. >/dev/null
    FKK=$(keygen fk.test. 13 zsk)
    Dfk=$(distribute fk fk.test. "$FKK")
    wait_for 30 "[[ \"\$(kdc_state $Dfk)\" == failed || \"\$(kdc_state $Dfk)\" == confirmed ]]"
    st=$(kdc_dist "$Dfk"); a=$(audit fk "$Dfk")
    note "full-key-dir: $Dfk at the KDC: $(jx '{k: d.get(k) for k in ("state", "reason")}' <<<"$st"); node audit: $(jx 'd["by_result"]' <<<"$a")"
    check "full-key-dir: the KDC shows $Dfk failed with a storage reason (the node reported failed_keys)" \
        '[ "$(jx "d.get(\"state\") == \"failed\" and \"storage\" in (d.get(\"reason\") or \"\")" <<<"$st")" = True ]' "$st"
    check "full-key-dir: nothing half-installed in the full key_dir (no K-file of key $FKK)" \
        '! ls "$FULL" | grep -q "+$(printf %05d "$FKK")\."'
    stop_node fk
fi
case_end
fi

# ==============================================================================================
if want chunk-count-bomb; then
case_start chunk-count-bomb
new_node cb hpke && start_fake cb && start_node cb
after=$(last_id); hk=$(hmac_key cb)
attack cb "{\"attack\": \"bomb\", \"after_id\": \"$after\", \"node\": \"cb.test.\", \"hmac_key\": \"$hk\", \"chunks\": 20000, \"chunk_size\": 60000}"
rm -f "$work/rss.stop"
tool_bg rss --pid "${N_PID[cb]}" --limit-mb 1024 --stop "$work/rss.stop" --out "$work/rss.json" >/dev/null
rp=$!; live[$rp]=rss
Dcb=$(ping_node cb)
wait_for 20 "[ \"\$(events cb $Dcb | jx 'd[\"events\"].get(\"bomb-manifest\", 0)')\" -ge 1 ]"
# Let the node fetch as much as it will (or be killed by the watchdog above 1 GiB): until the
# count of data chunk queries stands still for 3 s, at most 60 s.
prev=-1; still=0
for _ in $(seq 1 60); do
    cur=$(events cb "$Dcb" | jx 'd["data_queries"]')
    if [ "$cur" = "$prev" ]; then still=$((still + 1)); [ $still -ge 3 ] && break; else still=0; fi
    prev=$cur; sleep 1
done
touch "$work/rss.stop"; reap $rp
rs=$(cat "$work/rss.json"); e=$(events cb "$Dcb")
maxds=$(( 64 * 1024 * 1024 ))
note "chunk-count-bomb: manifest of $Dcb announcing 20000 × 60000 bytes served $(jx 'd["events"].get("bomb-manifest", 0)' <<<"$e") times; data chunks answered: $(jx 'd["data_queries"]' <<<"$e"); node RSS: $rs"
if [ "$(jx 'd["events"].get("bomb-manifest", 0)' <<<"$e")" -lt 1 ]; then
    fail "chunk-count-bomb: attack not delivered (the node never asked for the carrier's manifest): $e"
else
    check "chunk-count-bomb: nothing beyond max_distribution_size fetched ($(jx 'd["data_queries"]' <<<"$e") data chunks × 60000 bytes ≤ $maxds)" \
        '[ $(( $(jx "d[\"data_queries\"]" <<<"$e") * 60000 )) -le $maxds ]'
    check "chunk-count-bomb: the node's RSS stays bounded (grew $(jx 'd["growth_mb"]' <<<"$rs") MiB < 256 MiB, not killed over 1 GiB)" \
        '[ "$(jx "d[\"growth_mb\"] < 256 and not d[\"killed_over_limit\"]" <<<"$rs")" = True ]' "$rs"
fi
attack cb '{"attack": "none"}'
stop_case_processes cb
case_end
fi

# ==============================================================================================
if want trickled-chunk; then
case_start trickled-chunk
new_node tc hpke && start_fake tc && start_node tc
kdc zone add tc.test. >/dev/null
TK=$(keygen tc.test. 8 zsk)
after=$(last_id)
# Only the next distribution (IDs are sequential) is trickled; the ping after it is not.
attack tc "{\"attack\": \"trickle\", \"only_id\": \"$(printf '%x' $((0x$after + 1)))\", \"on\": \"data1\", \"interval\": 1.0}"
Dt1=$(distribute tc tc.test. "$TK" --chunk-size 400)
wait_for 15 "[ \"\$(events tc $Dt1 | jx 'd[\"trickles_started\"]')\" -ge 1 ]"
t_tr=$(date +%s)
Dt2=$(ping_node tc)
t_d2=$(( $(date +%s) - t_tr ))
ok=false; is_confirmed "$Dt2" 30 && ok=true
e=$(events tc "$Dt1")
note "trickled-chunk: data chunk 1 of $Dt1 answered a byte per second; the next distribution $Dt2 (ping) made $t_d2 s after the trickle began; trickles: $(jx 'd["trickles"]' <<<"$e"), $(jx 'd["trickles_started"]' <<<"$e") started"
if [ "$(jx 'd["trickles_started"]' <<<"$e")" -lt 1 ]; then
    fail "trickled-chunk: attack not delivered (no data chunk answer was trickled): $e"
else
    check "trickled-chunk: the node gave up on the trickled answer within 15 s (5 s message deadline + margin)" \
        '[ "$(jx "any(t[\"how\"] == \"node-closed\" and t[\"seconds\"] <= 15 for t in d[\"trickles\"])" <<<"$e")" = True ]' "$(jx 'd["trickles"]' <<<"$e")"
    check "trickled-chunk: the next distribution $Dt2 is processed and confirmed within 30 s" '$ok' "$(kdc_dist "$Dt2")"
fi
attack tc '{"attack": "none"}'
stop_case_processes tc
case_end
fi

# ==============================================================================================
if want kdc-log-flood; then
case_start kdc-log-flood
before=$(stat -c %s "$KDCLOG")
lf=$(tool logflood --to "127.0.0.1:$KP" --zone $CZ --seconds 10 --source 127.0.0.61)
sleep 1
grown=$(( $(stat -c %s "$KDCLOG") - before ))
note "kdc-log-flood: $(jx '"%d refused requests in %s s (%d/s)" % (d["sent"], d["seconds"], d["rate"])' <<<"$lf"); the KDC log grew $grown bytes"
if [ "$(jx 'd["rate"] >= 5000' <<<"$lf")" != True ]; then
    fail "kdc-log-flood: attack not delivered (fewer than 5,000 requests/s): $lf"
else
    check "kdc-log-flood: the KDC log grew less than 1 MB during 10 s of refused requests ($grown bytes)" '[ "$grown" -lt 1000000 ]'
    check "kdc-log-flood: the KDC's log says how many refusals it did not log" 'tail -c 200000 "$KDCLOG" | grep -q "refused requests not logged"'
fi
case_end
fi

# ==============================================================================================
if want notify-outside-zone; then
case_start notify-outside-zone
new_node oz hpke && start_fake oz && start_node oz
sign=(--kdc-key "$KDC_SIG0_KEY" --kdc-keyline "$KDC_SIG0_LINE" --signer $CZ)
oid=$(printf '%08x' $(( RANDOM * 32768 + RANDOM )))
r1=$(tool notify --to "${N_ADDR[oz]}" --name "$oid.other.test.")
r2=$(tool notify --to "${N_ADDR[oz]}" --name "$oid.other.test." --sign kdc "${sign[@]}")
r3=$(tool notify --to "${N_ADDR[oz]}" --name "$oid.$CZ" --sign kdc "${sign[@]}" --opcode 0)
r4=$(tool notify --to "${N_ADDR[oz]}" --name "$CZ" --sign kdc "${sign[@]}")
pid=$(printf '%08x' $(( RANDOM * 32768 + RANDOM + 1 )))
r5=$(tool notify --to "${N_ADDR[oz]}" --name "$pid.$CZ" --sign kdc "${sign[@]}")
sleep 2
e=$(events oz "$oid")
note "notify-outside-zone: unsigned outside: $r1; KDC-signed outside: $r2; QUERY opcode: $r3; the control zone itself: $r4; control: KDC-signed in-zone: $r5"
check "notify-outside-zone: unsigned NOTIFY for $oid.other.test. answered REFUSED" '[ "$(jx "d[\"rcode\"]" <<<"$r1")" = REFUSED ]' "$r1"
check "notify-outside-zone: KDC-signed NOTIFY for $oid.other.test. answered REFUSED" '[ "$(jx "d[\"rcode\"]" <<<"$r2")" = REFUSED ]' "$r2"
check "notify-outside-zone: a QUERY (not a NOTIFY) to the listener answered REFUSED" '[ "$(jx "d[\"rcode\"]" <<<"$r3")" = REFUSED ]' "$r3"
check "notify-outside-zone: a NOTIFY for the control zone itself (no ID below it) answered REFUSED" '[ "$(jx "d[\"rcode\"]" <<<"$r4")" = REFUSED ]' "$r4"
check "notify-outside-zone: nothing fetched for $oid" '[ "$(jx "d[\"manifest_queries\"]" <<<"$e")" = 0 ]' "$e"
check "notify-outside-zone: control: a KDC-signed NOTIFY inside the zone is accepted (NOERROR) and fetched" \
    '[ "$(jx "d[\"rcode\"]" <<<"$r5")" = NOERROR ] && [ "$(events oz "$pid" | jx "d[\"manifest_queries\"]")" -ge 1 ]' "$r5 $(events oz "$pid")"
stop_case_processes oz
case_end
fi

# ==============================================================================================
if want unsigned-notify; then
case_start unsigned-notify
new_node un hpke && start_fake un && start_node un
sign=(--kdc-key "$KDC_SIG0_KEY" --kdc-keyline "$KDC_SIG0_LINE" --signer $CZ)
declare -A UN=()
for how in none random tampered; do
    UN[$how]=$(printf '%08x' $(( RANDOM * 32768 + RANDOM )))
    r=$(tool notify --to "${N_ADDR[un]}" --name "${UN[$how]}.$CZ" --sign "$how" "${sign[@]}")
    rt=$(tool notify --to "${N_ADDR[un]}" --name "${UN[$how]}.$CZ" --sign "$how" "${sign[@]}" --tcp)
    eval "UNR_$how=\"\$r\"; UNT_$how=\"\$rt\""
done
sleep 3
for how in none random tampered; do
    r=UNR_$how; rt=UNT_$how
    what=$([ $how = none ] && echo "unsigned" || ([ $how = random ] && echo "signed by a foreign Ed25519 key claiming the control zone" || echo "KDC-signed for another ID, QNAME rewritten"))
    e=$(events un "${UN[$how]}")
    check "unsigned-notify: NOTIFY $what for ${UN[$how]}: REFUSED over UDP and TCP, nothing fetched" \
        '[ "$(jx "d[\"rcode\"]" <<<"${!r}")" = REFUSED ] && [ "$(jx "d[\"rcode\"]" <<<"${!rt}")" = REFUSED ] && [ "$(jx "d[\"manifest_queries\"]" <<<"$e")" = 0 ]' \
        "udp ${!r} tcp ${!rt}; fake KDC: $e"
done
stop_case_processes un
case_end
fi

# ==============================================================================================
if want dir-modes; then
case_start dir-modes
DS="$work/node-dm"; DK="$work/dm-keys"
mkdir -p "$DS" "$DK"; chmod 755 "$DS" "$DK"
new_node dm hpke "$DK"
mode() { stat -c %a "$1"; }
check "dir-modes: state_dir and key_dir created 0755 by the operator are 0700 after enrollment (now $(mode "$DS"), $(mode "$DK"))" \
    '[ "$(mode "$DS")" = 700 ] && [ "$(mode "$DK")" = 700 ]'
chmod 755 "$DS" "$DK"
start_node dm direct
check "dir-modes: loosened to 0755 again, both are 0700 once the node has started (now $(mode "$DS"), $(mode "$DK"))" \
    '[ "$(mode "$DS")" = 700 ] && [ "$(mode "$DK")" = 700 ]'
stop_node dm
case_end
fi

# ==============================================================================================
if want pending-stale; then
case_start pending-stale
new_node ps hpke && start_fake ps
now=$(date +%s)
# 3000 bare IDs (what today's pending file accumulates), 2000 entries first seen 2 days ago,
# 40 fresh entries, and garbage: a node must keep at most 256 and drop the stale ones.
"$PY" - "${N_STATE[ps]}/pending" "$now" "$work/ps-ids.json" <<'PY'
import json, random, sys
path, now, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = set()
def fresh():
    while True:
        i = "%08x" % random.getrandbits(32)
        if i not in seen:
            seen.add(i); return i
bare = [fresh() for _ in range(3000)]
stale = [fresh() for _ in range(2000)]
recent = [fresh() for _ in range(40)]
lines = [i for i in bare] + [f"{i} {now - 2 * 86400} 3" for i in stale] + [f"{i} {now - 60} 0" for i in recent]
lines += ["not-an-id", "zz zz zz", ""]
random.shuffle(lines)
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
json.dump({"bare": bare, "stale": stale, "recent": recent}, open(out, "w"))
PY
chmod 600 "${N_STATE[ps]}/pending"
alines=0; [ -f "${N_STATE[ps]}/audit.log" ] && alines=$(wc -l <"${N_STATE[ps]}/audit.log")
start_node ps
sleep 12
"$PY" - "$work/fake-ps.events" "$work/ps-ids.json" >"$work/ps.json" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = json.load(open(sys.argv[2]))
asked = {e["id"] for e in ev if e.get("kind") == "manifest" and "event" not in e}
print(json.dumps({"fetched": len(asked), "stale_fetched": len(asked & set(ids["stale"])),
                  "bare_fetched": len(asked & set(ids["bare"])), "recent_fetched": len(asked & set(ids["recent"]))}))
PY
pr=$(cat "$work/ps.json")
left=$(grep -c . "${N_STATE[ps]}/pending" 2>/dev/null); left=${left:-0}
newaudit=$(tail -n +"$((alines + 1))" "${N_STATE[ps]}/audit.log" 2>/dev/null)
note "pending-stale: 5040 entries + garbage in state_dir/pending at start; in 12 s the node asked for $(jx 'd["fetched"]' <<<"$pr") manifests ($pr); $left lines left in pending"
check "pending-stale: at most 256 of the IDs in pending are fetched after the start" '[ "$(jx "d[\"fetched\"]" <<<"$pr")" -le 256 ]' "$pr"
check "pending-stale: none of the entries first seen 2 days ago is fetched" '[ "$(jx "d[\"stale_fetched\"]" <<<"$pr")" = 0 ]' "$pr"
check "pending-stale: state_dir/pending holds at most 256 entries after the start ($left)" '[ "$left" -le 256 ]'
check "pending-stale: the dropped entries are recorded in audit.log" 'grep -qiE "pending|stale|drop" <<<"$newaudit"' "new audit lines: $(head -c 300 <<<"$newaudit")"
stop_case_processes ps
case_end
fi

# ==============================================================================================
drip_start() {  # NAME TARGET SOURCES PER_SOURCE
    tool_bg drip --to "$2" --sources "$3" --per-source "$4" --interval 2 --out "$work/drip-$1.json"
    live[$!]=drip-$1; eval "DRIP_$1=$!"
    wait_for 10 "[ -s \"$work/drip-$1.json\" ]"
    sleep 4
}
drip_stop() { local v="DRIP_$1"; stop_pid "${!v}"; }

if want krs-slowloris; then
case_start krs-slowloris
new_node ks hpke && start_node ks direct
kdc zone add ks.test. >/dev/null
KSK2=$(keygen ks.test. 13 zsk)
drip_start ks "${N_ADDR[ks]}" 127.0.0.200,127.0.0.201,127.0.0.202,127.0.0.203 16
d=$(cat "$work/drip-ks.json")
note "krs-slowloris: 64 drippers (16 each from 4 addresses) on the node's TCP listener: $d"
if [ "$(jx 'd["connects"] >= 64' <<<"$d")" != True ]; then
    fail "krs-slowloris: attack not delivered (fewer than 64 connections made): $d"
else
    ok=false
    for i in 1 2 3; do
        r=$(tool notify --to "${N_ADDR[ks]}" --name "$(printf '%08x' $((RANDOM + 1))).$CZ" --tcp --timeout 5)
        [ "$(jx 'd["answered"]' <<<"$r")" = True ] && { ok=true; break; }
    done
    check "krs-slowloris: a NOTIFY over TCP to the listener from 127.0.0.1 is answered while 64 connections drip" '$ok' "$r; drippers: $(cat "$work/drip-ks.json")"
    Dks=$(distribute ks ks.test. "$KSK2")
    check "krs-slowloris: a real distribution ($Dks) is still confirmed during the attack" 'is_confirmed "$Dks" 30' "$(kdc_dist "$Dks")"
fi
drip_stop ks
stop_case_processes ks
case_end
fi

if want kdc-slowloris; then
case_start kdc-slowloris
new_node kd hpke && start_node kd direct
kdc zone add kd.test. >/dev/null
KDK=$(keygen kd.test. 8 zsk)
drip_start kd "127.0.0.1:$KP" 127.0.0.210,127.0.0.211,127.0.0.212,127.0.0.213 64
d=$(cat "$work/drip-kd.json")
note "kdc-slowloris: 256 drippers (64 each from 4 addresses) on the KDC's TCP port: $d"
if [ "$(jx 'd["connects"] >= 256' <<<"$d")" != True ]; then
    fail "kdc-slowloris: attack not delivered (fewer than 256 connections made): $d"
else
    Dkd=$(distribute kd kd.test. "$KDK" --chunk-size 400)
    check "kdc-slowloris: a node still fetches over TCP and confirms a chunked distribution ($Dkd) within 30 s" 'is_confirmed "$Dkd" 30' "$(kdc_dist "$Dkd"); drippers: $(cat "$work/drip-kd.json")"
    Dkd2=$(ping_node kd); sleep 0.5
    r=$(tool chunkq --to "127.0.0.1:$KP" --name "kd.test.$Dkd2.$CZ" --tcp --timeout 5 --source 127.0.0.1)
    check "kdc-slowloris: a CHUNK query over TCP from 127.0.0.1 is answered during the attack" '[ "$(jx "d[\"answered\"]" <<<"$r")" = True ]' "$r"
fi
drip_stop kd
stop_case_processes kd
case_end
fi

echo "TIMING: attack suite $(( $(date +%s) - suite_t0 )) s (${CASE_TIMES[*]})"
[ "$fails" -eq 0 ]
