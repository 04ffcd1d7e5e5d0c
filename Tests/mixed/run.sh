#!/usr/bin/env bash
# Mixed deployments (issue 13; the design document's "Testing Mixed Deployments"), with the real
# tdns-kdc and 20 real tdns-krs processes on 127.0.0.0/8: HPKE, JOSE and dual-enrolled nodes
# side by side; one KSK+ZSK distribution to all; no cross-contamination (checked with an
# independent peer, peer.py: pyhpke + jwcrypto); HPKE → JOSE migration by re-enrollment while
# distributions go on; a dual node switched by `node set`; failed re-enrollments (token not
# activated, window expired); rollback by policy; a JOSE-only node sent HPKE; `node remove`
# (with Tests/e2e/faultproxy.py holding back one confirmation); and the metrics of both sides.
# Prints PASS:/FAIL: per check and one TIMING: line; KEEP=1 keeps the work directory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
KDC="$build/bin/tdns-kdc"
KRS="$build/bin/tdns-krs"
PY=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d /tmp/tdnskrs-mixed.XXXXXX)
pids=()
declare -A NODEPID
cleanup() {
    for p in "${pids[@]}" "${NODEPID[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}" "${NODEPID[@]}"; do wait "$p" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] && echo "# kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM   # through the EXIT trap: every process stopped
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
free_port() { "$PY" - "$1" <<'PY'
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()
PY
}
now_ms() { date +%s%3N; }
js() { "$PY" -c "import json,sys; d=json.load(sys.stdin); $1"; }   # python on stdin's JSON

[ -x "$KDC" ] && [ -x "$KRS" ] || { fail "tdns-kdc and tdns-krs built in $build/bin"; exit 1; }
"$PY" -c 'import pyhpke, jwcrypto' 2>/dev/null || { fail "python with pyhpke and jwcrypto ($PY; make venv)"; exit 1; }

# --- The fleet ---------------------------------------------------------------------------------
# n01..n08 HPKE only, n09..n16 JOSE only, n17..n20 dual (both keys; n17 n18 take the policy's
# default hpke, n19 n20 state preferred_crypto=jose): 10 nodes receive HPKE, 10 JOSE.
N=20
K="$work/kdc"; mkdir -p "$K"
KP=$(free_port 127.0.0.1)
kdc() { "$KDC" "$@" --state "$K"; }
name() { printf 'n%02d.mixed.test.' "$1"; }
ip() { echo "127.0.0.$((20 + $1))"; }
declare -A PORT KIND
for i in $(seq $N); do
    PORT[$i]=$(free_port "$(ip $i)")
    if [ $i -le 8 ]; then KIND[$i]=hpke; elif [ $i -le 16 ]; then KIND[$i]=jose; else KIND[$i]=dual; fi
done
want_backend() { case ${KIND[$1]} in dual) [ $1 -le 18 ] && echo hpke || echo jose;; *) echo ${KIND[$1]};; esac; }

kdc init --control-zone kdc.mixed.test. --listen 127.0.0.1:$KP >/dev/null || fail "tdns-kdc init"
if kdc policy --default-crypto hpke --supported-crypto hpke,jose >/dev/null \
    && kdc policy --json | js 'assert d["default_crypto"] == "hpke" and sorted(d["supported_crypto"]) == ["hpke", "jose"]'; then
    pass "policy: default hpke, supported hpke,jose (policy --json)"
else
    fail "policy --default-crypto hpke --supported-crypto hpke,jose: $(kdc policy --json 2>&1 | tr '\n' ' ')"
fi
Z=example.mixed.test.
kdc zone add $Z >/dev/null || fail "zone add $Z"
for t in ksk zsk; do kdc key generate --zone $Z --algorithm 13 --type $t >/dev/null || fail "key generate $Z $t"; done

"$KDC" serve --state "$K" >"$work/kdc.log" 2>&1 &
KDCPID=$!; pids+=($KDCPID)
for _ in $(seq 50); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $KP), 0.2)" 2>/dev/null && break; sleep 0.1; done

S() { echo "$work/$(name $1)"; }
enrolled=0
for i in $(seq $N); do
    s=$(S $i); mkdir -p "$s/keys"
    crypto=(); [ ${KIND[$i]} = dual ] || crypto=(--crypto ${KIND[$i]})
    pref=(); [ ${KIND[$i]} = dual ] && [ $i -ge 19 ] && pref=(--set preferred_crypto=jose)
    if kdc enroll generate "$(name $i)" --out "$work/$i.pkg" "${crypto[@]}" --notify "$(ip $i):${PORT[$i]}" >/dev/null \
        && kdc enroll activate "$(name $i)" >/dev/null \
        && "$KRS" enroll --state "$s" "$work/$i.pkg" --notify "$(ip $i):${PORT[$i]}" --key-dir "$s/keys" --key-store none "${pref[@]}" >"$work/enroll$i.out" 2>&1; then
        enrolled=$((enrolled + 1))
    else
        fail "enrollment of $(name $i) (${KIND[$i]}): $(tail -2 "$work/enroll$i.out" 2>/dev/null | tr '\n' ' ')"
    fi
done
[ $enrolled = $N ] && pass "$N nodes enrolled by package (8 HPKE, 8 JOSE, 4 dual)"

start_node() { "$KRS" run --state "$(S $1)" >>"$work/run$1.log" 2>&1 & NODEPID[$1]=$!; }
stop_node() { kill "${NODEPID[$1]}" 2>/dev/null; wait "${NODEPID[$1]}" 2>/dev/null; unset "NODEPID[$1]"; }
for i in $(seq $N); do start_node $i; done
# every node listening before the first NOTIFY goes out
for _ in $(seq 100); do
    up=0
    for i in $(seq $N); do grep -q "listening\|notify" "$work/run$i.log" 2>/dev/null && up=$((up + 1)); done
    [ $up = $N ] && break; sleep 0.1
done

# The distributions the script made, "ID NODE" per line, from `distribute --json`.
ids_of() { js 'print("\n".join(x["distribution_id"] + " " + x["node_id"] for x in d["distributions"]))'; }
# Wait until each listed distribution (or what superseded it) is final; prints "ID NODE STATE CRYPTO
# REASON" per line, following "superseded by NEW" to NEW.
settle() {  # FILE-with-"ID NODE"-lines [timeout-s]
    local f=$1 t=${2:-40} end=$(( $(date +%s) + ${2:-40} ))
    while :; do
        kdc status --json >"$work/st.json" 2>/dev/null
        "$PY" - "$work/st.json" "$f" >"$f.states" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
by = {x["distribution_id"]: x for x in d["distributions"]}
open_ = 0
for line in open(sys.argv[2]):
    i, node = line.split()[:2]
    x = by.get(i)
    hops = 0
    while x and (x.get("reason") or "").startswith("superseded by ") and hops < 5:
        x = by.get(x["reason"].split()[-1]); hops += 1
    if x is None:
        print(i, node, "missing", "-", "-"); open_ += 1; continue
    if x["state"] not in ("confirmed", "failed", "withdrawn"): open_ += 1
    print(i, node, x["state"], x["crypto"], (x.get("reason") or "-").replace(" ", "_"), x["distribution_id"])
sys.exit(1 if open_ else 0)
PY
        [ $? = 0 ] && return 0
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.3
    done
}
count_state() { awk -v s="$2" '$3 == s' "$1" | wc -l; }
state_of() { awk -v n="$(name $2)" '$2 == n {print $3; exit}' "$1"; }
crypto_of() { awk -v n="$(name $2)" '$2 == n {print $4; exit}' "$1"; }

# --- One KSK+ZSK distribution to all 20 at once ---------------------------------------------------
t0=$(now_ms)
kdc distribute --all --zone $Z --json >"$work/d1.json" || fail "distribute --all --zone $Z (no --key)"
ids_of <"$work/d1.json" >"$work/d1"
kdc export-zone >"$work/d1.zone"
if js 'x = d["distributions"]; assert len(x) == 20 and all(e["key_count"] == 2 and e["zone_count"] == 1 and sorted(k["key_type"] for k in e["keys"]) == ["KSK", "ZSK"] for e in x)' <"$work/d1.json"; then
    pass "distribute --all --zone $Z without --key: 20 distributions, each KSK+ZSK (key_count 2)"
else
    fail "distribute --all --zone: $(head -c 300 "$work/d1.json")"
fi
settle "$work/d1" 60; t1=$(now_ms)
echo "TIMING: KSK+ZSK distribution to $N nodes, created to all confirmed: $((t1 - t0)) ms"
c=$(count_state "$work/d1.states" confirmed)
[ "$c" = 20 ] && pass "all 20 confirmed in $((t1 - t0)) ms" || fail "confirmed $c of 20: $(grep -v ' confirmed ' "$work/d1.states" | head -3 | tr '\n' ' ')"
bad=""
for i in $(seq $N); do [ "$(crypto_of "$work/d1.states" $i)" = "$(want_backend $i)" ] || bad+=" $(name $i)"; done
[ -z "$bad" ] && pass "each node received with its backend: n01-n08 hpke, n09-n16 jose, dual n17 n18 hpke (policy default), n19 n20 jose (preferred)" \
    || fail "wrong backend for:$bad"

# --- No cross-contamination: the independent peer opens each ciphertext ---------------------------
keyfile() { sed -n "s/^$2_private_key=//p" "$(S $1)/krs.conf"; }   # NODE BACKEND
other_same() { local j; for j in $(seq $N); do [ $j != $1 ] && [ "$(want_backend $j)" = "$(want_backend $1)" ] && [ -n "$(keyfile $j "$(want_backend $1)")" ] && { echo $j; return; }; done; }
other_backend() { [ "$1" = hpke ] && echo jose || echo hpke; }
other_key() {  # the node's own key of the other backend if dual, else another node's
    local ob; ob=$(other_backend "$(want_backend $1)")
    [ -n "$(keyfile $1 $ob)" ] && { keyfile $1 $ob; return; }
    local j; for j in $(seq $N); do [ -n "$(keyfile $j $ob)" ] && { keyfile $j $ob; return; }; done
}
: >"$work/peer.in"
while read -r id node; do
    i=$((10#${node:1:2})); b=$(want_backend $i)
    echo "$node $id $(keyfile $i $b) $(keyfile "$(other_same $i)" $b) $(other_key $i)" >>"$work/peer.in"
done <"$work/d1"
"$PY" "$here/peer.py" "$work/d1.zone" <"$work/peer.in" >"$work/peer.out" 2>"$work/peer.err"
good=$(awk '$4 == "opens" && $5 == "fails" && $6 == "fails"' "$work/peer.out" | wc -l)
agree=$(while read -r node id cr rest; do i=$((10#${node:1:2})); [ "$cr" = "$(want_backend $i)" ] && echo; done <"$work/peer.out" | wc -l)
if [ "$good" = 20 ] && [ "$agree" = 20 ]; then
    pass "no cross-contamination (pyhpke/jwcrypto): each of 20 ciphertexts opens with its node's key only — not another node's, not the other backend's (dual nodes: their own other key)"
else
    fail "independent peer: $good of 20 open only with their own key, $agree manifests name the node's backend: $(grep -v 'opens fails fails' "$work/peer.out" | head -3 | tr '\n' ' ') $(tail -2 "$work/peer.err")"
fi

# --- HPKE → JOSE by re-enrollment while distributions go on (n01 running, n02 stopped) ------------
old1=$(keyfile 1 hpke); old2=$(keyfile 2 hpke)
stop_node 2
for i in 1 2 3 4; do kdc enroll generate "$(name $i)" --crypto jose --out "$work/re$i.pkg" >/dev/null || fail "enroll generate $(name $i) --crypto jose (re-enrollment package)"; done
kdc enroll activate "$(name 1)" >/dev/null && kdc enroll activate "$(name 2)" >/dev/null || fail "enroll activate n01 n02"
kdc enroll activate "$(name 4)" --window 1s >/dev/null || fail "enroll activate n04 --window 1s"
kdc distribute --all --zone $Z --json >"$work/d2.json" || fail "distribute D2"
ids_of <"$work/d2.json" >"$work/d2"
ok=1
for i in 1 2; do
    "$KRS" enroll --state "$(S $i)" "$work/re$i.pkg" --reenroll >"$work/re$i.out" 2>&1 && grep -q "^re-enrolled $(name $i)" "$work/re$i.out" || { ok=0; fail "re-enrollment of $(name $i): $(tail -2 "$work/re$i.out" | tr '\n' ' ')"; }
done
[ $ok = 1 ] && pass "n01 (running) and n02 (stopped) re-enrolled HPKE → JOSE while distribution D2 is in flight"
start_node 2
# A re-enrollment that fails half-way: n03's token was never activated, n04's window expired
# (1s, kept in whole seconds: wait well past it).
sleep 2.5
conf3=$(md5sum <"$(S 3)/krs.conf"); conf4=$(md5sum <"$(S 4)/krs.conf")
kdc node show "$(name 3)" --json >"$work/n3a.json"; kdc node show "$(name 4)" --json >"$work/n4a.json"
for i in 3 4; do
    if "$KRS" enroll --state "$(S $i)" "$work/re$i.pkg" --reenroll >"$work/re$i.out" 2>&1; then
        fail "$(name $i) re-enrolled though its token was $([ $i = 3 ] && echo "not activated" || echo expired)"
    else
        pass "$(name $i): re-enrollment refused by the KDC ($(tail -1 "$work/re$i.out" | cut -c1-90))"
    fi
done
[ "$(md5sum <"$(S 3)/krs.conf")" = "$conf3" ] && [ "$(md5sum <"$(S 4)/krs.conf")" = "$conf4" ] \
    && [ -s "$(keyfile 3 hpke)" ] && [ -s "$(keyfile 4 hpke)" ] && ! ls "$(S 3)" "$(S 4)" | grep -qi jose \
    && pass "failed re-enrollments left n03 and n04 as they were (krs.conf unchanged, no JOSE key kept)" \
    || fail "after the failed re-enrollments: $(grep -h private_key "$(S 3)/krs.conf" "$(S 4)/krs.conf" | tr '\n' ' ')"
kdc node show "$(name 3)" --json | js 'print(d["crypto"], d["hpke_pubkey"], d.get("jose_pubkey"))' >"$work/n3b"
js 'print(d["crypto"], d["hpke_pubkey"], d.get("jose_pubkey"))' <"$work/n3a.json" | cmp -s - "$work/n3b" \
    && pass "KDC: n03's record (backend, keys) unchanged by the failed re-enrollment" || fail "n03 at the KDC changed: $(cat "$work/n3b")"

settle "$work/d2" 60
c=$(count_state "$work/d2.states" confirmed)
[ "$c" = 20 ] && pass "D2: all 20 confirmed (for n01/n02: the original, or its remake for the new key)" \
    || fail "D2 confirmed $c of 20: $(grep -v ' confirmed ' "$work/d2.states" | head -3 | tr '\n' ' ')"
d2n2=$(awk -v n="$(name 2)" '$2 == n' "$work/d2.states")
set -- $d2n2
if [ "${6:-}" != "${1:-}" ] && [ "${4:-}" = jose ] && [ "${3:-}" = confirmed ]; then
    pass "n02's D2 made for its old HPKE key was superseded by ${6} (jose), which n02 confirmed"
else
    fail "n02's D2 after re-enrollment: $d2n2"
fi

# n05: the KDC is down when the node sends its re-enrollment (token activated, unused): the
# enrollment fails on the node, nothing changes on either side, the KDC comes back.
kdc enroll generate "$(name 5)" --crypto jose --out "$work/re5.pkg" >/dev/null && kdc enroll activate "$(name 5)" >/dev/null \
    || fail "enroll generate/activate n05 --crypto jose"
conf5=$(md5sum <"$(S 5)/krs.conf")
kill "$KDCPID"; wait "$KDCPID" 2>/dev/null
t0=$(now_ms)
if "$KRS" enroll --state "$(S 5)" "$work/re5.pkg" --reenroll >"$work/re5.out" 2>&1; then
    fail "n05 re-enrolled with the KDC stopped"
else
    pass "n05: re-enrollment with the KDC stopped fails after $(( $(now_ms) - t0 )) ms ($(tail -1 "$work/re5.out" | cut -c1-80))"
fi
"$KDC" serve --state "$K" >>"$work/kdc.log" 2>&1 &
KDCPID=$!; pids+=($KDCPID)
for _ in $(seq 50); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $KP), 0.2)" 2>/dev/null && break; sleep 0.1; done
[ "$(md5sum <"$(S 5)/krs.conf")" = "$conf5" ] && ! ls "$(S 5)" | grep -qi jose \
    && [ "$(kdc node show "$(name 5)" --json | js 'print(d["crypto"], ",".join(d["keys_on_file"]))')" = "hpke hpke,sig0" ] \
    && pass "n05 after the failed re-enrollment: krs.conf unchanged, no JOSE key kept, KDC record still hpke" \
    || fail "n05 after the re-enrollment with the KDC down: $(grep -h private_key "$(S 5)/krs.conf" | tr '\n' ' ')"

# The dual node n17 switched to JOSE; n01 (now JOSE only) cannot be switched back to HPKE.
if kdc node set "$(name 17)" --crypto jose >/dev/null && [ "$(kdc node show "$(name 17)" --json | js 'print(d["crypto"])')" = jose ]; then
    pass "node set n17 --crypto jose (dual node: key on file)"
else
    fail "node set n17 --crypto jose"
fi
out=$(kdc node set "$(name 1)" --crypto hpke 2>&1); rc=$?
[ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && pass "node set n01 --crypto hpke refused after the re-enrollment (exit 2: $out)" \
    || fail "node set n01 --crypto hpke: rc $rc, $out"

# D3: the next distribution, every zone (--all-zones), reaches n01 n02 n17 as JOSE, n03 n04 as HPKE.
kdc zone add other.mixed.test. >/dev/null && kdc key generate --zone other.mixed.test. --algorithm 13 --type zsk >/dev/null || fail "second zone"
kdc distribute --all --all-zones --json >"$work/d3.json" || fail "distribute --all --all-zones"
ids_of <"$work/d3.json" >"$work/d3"
js 'x = d["distributions"]; assert len(x) == 20 and all(e["key_count"] == 3 and e["zone_count"] == 2 for e in x)' <"$work/d3.json" \
    && pass "distribute --all --all-zones: one distribution per node with 3 keys of 2 zones" || fail "--all-zones: $(head -c 300 "$work/d3.json")"
settle "$work/d3" 60
c=$(count_state "$work/d3.states" confirmed)
[ "$c" = 20 ] && pass "D3: all 20 confirmed" || fail "D3 confirmed $c of 20: $(grep -v ' confirmed ' "$work/d3.states" | head -3 | tr '\n' ' ')"
[ "$(crypto_of "$work/d3.states" 1)$(crypto_of "$work/d3.states" 2)$(crypto_of "$work/d3.states" 17)" = josejosejose ] \
    && [ "$(crypto_of "$work/d3.states" 3)$(crypto_of "$work/d3.states" 4)$(crypto_of "$work/d3.states" 5)" = hpkehpkehpke ] \
    && pass "D3 went to n01 n02 (re-enrolled) and n17 (switched) as jose, to n03 n04 n05 (failed re-enrollments) as hpke" \
    || fail "D3 backends: n01 $(crypto_of "$work/d3.states" 1) n02 $(crypto_of "$work/d3.states" 2) n17 $(crypto_of "$work/d3.states" 17) n03 $(crypto_of "$work/d3.states" 3) n04 $(crypto_of "$work/d3.states" 4) n05 $(crypto_of "$work/d3.states" 5)"
ok=1
for i in 1 2; do
    [ "$(kdc node show "$(name $i)" --json | js 'print(d["crypto"], ",".join(d["keys_on_file"]))')" = "jose jose,sig0" ] || ok=0
    [ "$("$KRS" status --state "$(S $i)" --json | js 'print(",".join(d["crypto"]))')" = jose ] || ok=0
    grep -qE "processed successfully \(backend: jose" "$work/run$i.log" || ok=0
done
[ $ok = 1 ] && pass "n01 n02: KDC node show crypto jose (keys on file jose,sig0), node status crypto [jose], log 'processed successfully (backend: jose'" \
    || fail "n01/n02 after migration: $(kdc node show "$(name 1)" --json | head -c 200)"
if ! grep -q '^previous_' "$(S 1)/krs.conf" "$(S 2)/krs.conf" && [ ! -e "$old1" ] && [ ! -e "$old2" ]; then
    pass "n01 n02: old HPKE keys retired after the first JOSE distribution (krs.conf previous_* and files gone)"
else
    fail "old HPKE keys still kept: $(grep -h '^previous_' "$(S 1)/krs.conf" "$(S 2)/krs.conf" | tr '\n' ' ')"
fi

# --- Rollback: jose out of supported_crypto -------------------------------------------------------
kdc enroll generate n21.mixed.test. --crypto jose --out "$work/21.pkg" --notify 127.0.0.41:9 >/dev/null \
    && kdc enroll activate n21.mixed.test. >/dev/null || fail "JOSE package for n21 before the rollback"
kdc policy --supported-crypto hpke >/dev/null 2>"$work/policy.err" || fail "policy --supported-crypto hpke"
grep -q "nodes still receive with jose" "$work/policy.err" && pass "policy --supported-crypto hpke warns: $(cut -c1-60 "$work/policy.err")…" || fail "rollback warning: $(cat "$work/policy.err")"
out=$(kdc enroll generate n22.mixed.test. --crypto jose --out "$work/22.pkg" 2>&1); rc=$?
[ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [ ! -e "$work/22.pkg" ] \
    && pass "rollback: enroll generate --crypto jose refused (exit 2: $out)" || fail "enroll generate --crypto jose after rollback: rc $rc, $out"
mkdir -p "$work/n21/keys"
if "$KRS" enroll --state "$work/n21" "$work/21.pkg" --notify 127.0.0.41:9 --key-dir "$work/n21/keys" --key-store none >"$work/e21.out" 2>&1; then
    fail "rollback: a JOSE enrollment (package made before) was accepted"
else
    pass "rollback: a JOSE enrollment with a package made before is refused by the KDC ($(tail -1 "$work/e21.out" | cut -c1-80))"
fi

# --- A JOSE-only node sent HPKE: n20 (dual) dropped its HPKE key locally, the KDC still has it ----
sed -i '/^hpke_private_key=/d; /^preferred_crypto=/d' "$(S 20)/krs.conf"; echo "supported_crypto=jose" >>"$(S 20)/krs.conf"
kdc node set "$(name 20)" --crypto hpke >/dev/null && pass "node set n20 --crypto hpke (the KDC has n20's HPKE key on file)" || fail "node set n20 --crypto hpke"

# --- node remove: n19 with a live distribution it installed but could not confirm ----------------
# n19 talks to the KDC through faultproxy (Tests/e2e), which drops its confirmation NOTIFYs: the
# keys are installed, the confirmation stays in n19's pending record; then the node is removed.
stop_node 19
PP=$(free_port 127.0.0.1)
echo '{"drop_notify": true}' >"$work/proxy.control"
"$PY" "$root/Tests/e2e/faultproxy.py" --listen 127.0.0.1:$PP --upstream 127.0.0.1:$KP --control "$work/proxy.control" --events "$work/proxy.events" \
    >"$work/proxy.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PP), 0.2)" 2>/dev/null && break; sleep 0.1; done
"$KRS" run --state "$(S 19)" --set kdc_address=127.0.0.1:$PP >>"$work/run19.log" 2>&1 & NODEPID[19]=$!
sleep 0.5
kdc distribute --node "$(name 19)" --zone $Z --json | ids_of >"$work/d19"
d19=$(awk '{print $1; exit}' "$work/d19")
for _ in $(seq 150); do grep -q "Distribution $d19 processed successfully" "$work/run19.log" && break; sleep 0.2; done
sleep 0.5
grep -q "Distribution $d19 processed successfully" "$work/run19.log" && [ -e "$(S 19)/unconfirmed/$d19.json" ] \
    && pass "n19 installed $d19, its confirmation dropped on the way (in its unconfirmed record)" \
    || fail "n19 did not install $d19 with the confirmation unsent: $(tail -2 "$work/run19.log" | tr '\n' ' ') / $(ls "$(S 19)/unconfirmed" 2>&1 | tr '\n' ' ')"
stop_node 19
q19() { dig +norec +tries=1 +time=2 -p $KP @127.0.0.1 "$1" TYPE65288 | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
before=$(q19 "$(name 19)$d19.kdc.mixed.test.")
remove_out=$(kdc node remove "$(name 19)" 2>&1) || fail "node remove n19: $remove_out"
after=$(q19 "$(name 19)$d19.kdc.mixed.test."); after1=$(q19 "1.$(name 19)$d19.kdc.mixed.test.")
[ "$before" = NOERROR ] && [ "$after" = NXDOMAIN ] && [ "$after1" = NXDOMAIN ] \
    && pass "node remove n19: its live distribution's CHUNK queries NOERROR before, NXDOMAIN after (manifest and chunk 1)" \
    || fail "CHUNK for n19's $d19: before $before, after $after / $after1"
[ "$(kdc node show "$(name 19)" --json | js 'print(d["state"])')" = removed ] && pass "node show n19: state removed" || fail "n19 state: $(kdc node show "$(name 19)" --json 2>&1 | head -c 200)"
notifies_before=$(grep -c "NOTIFY for [0-9a-f]* to $(name 19)" "$work/kdc.log")
# n19 restarts with the proxy passing everything: it sends the pending confirmation, refused.
echo '{}' >"$work/proxy.control.new" && mv "$work/proxy.control.new" "$work/proxy.control"
"$KRS" run --state "$(S 19)" --set kdc_address=127.0.0.1:$PP >>"$work/run19.log" 2>&1 & NODEPID[19]=$!
for _ in $(seq 100); do grep -q "confirmation of $d19 .*refused: node $(name 19) was removed" "$work/kdc.log" && break; sleep 0.2; done
grep -q "confirmation of $d19 .*refused: node $(name 19) was removed" "$work/kdc.log" \
    && pass "n19's late confirmation of $d19 is refused by the KDC (kdc.log: refused: node $(name 19) was removed)" \
    || fail "no refused confirmation of $d19 in kdc.log: $(grep "$d19" "$work/kdc.log" | tail -2 | tr '\n' ' ')"

# D4, after the rollback: every node still served; JOSE nodes too; n20 reports the mismatch; n19 none.
kdc distribute --all --zone $Z --json >"$work/d4.json" || fail "distribute D4"
ids_of <"$work/d4.json" >"$work/d4"
grep -q "$(name 19)" "$work/d4" && fail "D4 includes the removed n19" || pass "distribute --all after node remove: no distribution for n19 ($(wc -l <"$work/d4") nodes)"
settle "$work/d4" 60
jose_ok=0; jose_n=0
while read -r id node st cr rest; do [ "$cr" = jose ] && { jose_n=$((jose_n + 1)); [ "$st" = confirmed ] && jose_ok=$((jose_ok + 1)); }; done <"$work/d4.states"
[ $jose_n -ge 10 ] && [ $jose_ok = $jose_n ] && pass "rollback: existing JOSE nodes still served ($jose_ok of $jose_n JOSE distributions of D4 confirmed)" \
    || fail "D4 JOSE: $jose_ok of $jose_n confirmed"
c=$(count_state "$work/d4.states" confirmed)
[ "$c" = 18 ] && pass "D4: 18 of 19 confirmed (all but n20)" || fail "D4 confirmed $c of 19: $(grep -v ' confirmed ' "$work/d4.states" | head -3 | tr '\n' ' ')"
want="backend mismatch: jose node received an hpke distribution"
line=$(awk -v n="$(name 20)" '$2 == n' "$work/d4.states")
set -- $line
shown=$(kdc node show "$(name 20)" --json | js "print(next(x.get('reason') for x in d['distributions'] if x['distribution_id'] == '${1:-}'))" 2>/dev/null)
[ "${3:-}" = failed ] && [ "${4:-}" = hpke ] && [ "$shown" = "$want" ] \
    && pass "n20 (JOSE only) sent HPKE: the KDC marks it failed, node show reason '$shown'" \
    || fail "n20's D4: $line; node show reason: $shown"
grep -q "refused: $want" "$work/run20.log" && pass "n20 logged: distribution ${1:-} refused: $want" || fail "n20's log: $(tail -2 "$work/run20.log" | tr '\n' ' ')"
sleep 1
[ "$(grep -c "NOTIFY for [0-9a-f]* to $(name 19)" "$work/kdc.log")" = "$notifies_before" ] \
    && pass "no NOTIFY to n19 after node remove" || fail "NOTIFYs to n19 after remove: $(grep "to $(name 19)" "$work/kdc.log" | tail -2 | tr '\n' ' ')"
# A confirmation sent by hand is refused too (the distribution is installed: fetch only confirms).
"$KRS" fetch --state "$(S 19)" "$d19" >"$work/f19.out" 2>&1; rc=$?
grep -q "the KDC answered the confirmation with REFUSED" "$work/f19.out" \
    && pass "tdns-krs fetch $d19 on n19 after node remove: the KDC answers the confirmation with REFUSED (exit $rc)" \
    || fail "tdns-krs fetch $d19 after node remove (exit $rc): $(tail -2 "$work/f19.out" | tr '\n' ' ')"
kdc policy --supported-crypto hpke,jose >/dev/null || fail "policy back to hpke,jose"

# --- Metrics: the KDC's per backend, and each node's backends, match what happened ---------------
kdc status --json >"$work/final.json"
"$PY" - "$work/final.json" >"$work/metrics.out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["metrics"]
bad = []
# 10 + 10 first enrollments; the two re-enrollments count as JOSE enrollments too
if m["enrollments"] != {"hpke": 10, "jose": 12}: bad.append(f"enrollments {m['enrollments']}")
if m.get("reenrollments", {}).get("jose") != 2: bad.append(f"reenrollments {m.get('reenrollments')}")
for b in ("hpke", "jose"):
    ds = [x for x in d["distributions"] if x["crypto"] == b]
    # status shows a withdrawn distribution as failed, "withdrawn": true, with its reason
    # ("superseded by ID" after a re-enrollment, "withdrawn: node removed"); metrics count it
    # under withdrawn, not failed
    gone = lambda x: x.get("withdrawn") is True
    if any(x.get("withdrawn") is True and not (x.get("reason") or "").startswith(("superseded by ", "withdrawn: node removed")) for x in ds):
        bad.append(f"{b}: a withdrawn distribution without its reason")
    want = {"sent": len(ds), "confirmed": sum(x["state"] == "confirmed" for x in ds),
            "failed": sum(x["state"] == "failed" and not gone(x) for x in ds), "withdrawn": sum(gone(x) for x in ds)}
    if b == "hpke" and want["failed"] != 1: bad.append(f"hpke failed {want['failed']}, want 1 (n20)")
    if b == "jose" and want["failed"] != 0: bad.append(f"jose failed {want['failed']}, want 0")
    got = {k: m["distributions"][b].get(k) for k in want}
    if got != want: bad.append(f"{b}: metrics {got}, distributions {want}")
    lat = m["confirmation_latency_ms"][b]
    if not (lat["median"] is not None and lat["p95"] is not None and 0 <= lat["median"] <= lat["p95"]): bad.append(f"latency {b} {lat}")
    print(b, json.dumps(m["distributions"][b]), json.dumps(lat))
print("BAD" if bad else "OK", "; ".join(bad))
PY
tail -1 "$work/metrics.out" | grep -q '^OK' && pass "KDC metrics match the distributions: $(head -2 "$work/metrics.out" | tr '\n' ' ')" \
    || fail "KDC metrics: $(tr '\n' ' ' <"$work/metrics.out")"
# each node's log against the KDC: processed / backend-mismatch per backend (counts.py). `tdns-krs
# status` reads the state directory, not the running process, so its `backends` counters (the
# in-process ones of krs_status_json) are not the running node's: the node's side is its log.
bad=""
for i in $(seq $N); do
    [ $i = 19 ] && continue
    r=$("$PY" "$here/counts.py" "$work/final.json" "$(name $i)" "$work/run$i.log")
    [ "${r%% *}" = ok ] || bad+=" $(name $i): $r;"
done
[ -z "$bad" ] && pass "every node's log (processed successfully / backend mismatch, per backend) matches the KDC's confirmed/failed distributions" || fail "node backends:$bad"

[ "$fails" -eq 0 ]
