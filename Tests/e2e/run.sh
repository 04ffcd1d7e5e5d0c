#!/usr/bin/env bash
# End to end on 127.0.0.0/8 with the real binaries: tdns-kdc serve and two tdns-krs nodes
# (one HPKE at 127.0.0.2, one JOSE at 127.0.0.3 — distinct IPs, because the Go KDC identifies
# confirmations by source address), both enrolled through their packages; a KSK and a ZSK for
# two zones distributed to both; key files appear and the KDC sees every distribution confirmed.
# Then: a replayed NOTIFY storm causes one fetch, and a distribution for another node is refused.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TDNSKRS_BUILD:-$root/build}
KDC="$build/bin/tdns-kdc"
KRS="$build/bin/tdns-krs"
PY=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d /tmp/tdnskrs-e2e.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] && echo "# kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
free_port() { "$PY" - "$1" <<'PY'
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()
PY
}

[ -x "$KDC" ] && [ -x "$KRS" ] || { fail "tdns-kdc and tdns-krs built in $build/bin"; exit 1; }
KP=$(free_port 127.0.0.1); N1P=$(free_port 127.0.0.2); N2P=$(free_port 127.0.0.3); M1P=$(free_port 127.0.0.1)
K="$work/kdc"; S1="$work/node1"; S2="$work/node2"
mkdir -p "$K" "$S1/keys" "$S2/keys"

kdc() { "$KDC" "$@" --state "$K"; }
kdc init --control-zone kdc.test. --listen 127.0.0.1:$KP >/dev/null || fail "tdns-kdc init"
for z in example.test. other.test.; do kdc zone add $z >/dev/null || fail "zone add $z"; done
tags=()
for z in example.test. other.test.; do
    for t in ksk zsk; do
        tag=$(kdc key generate --zone $z --algorithm 13 --type $t --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("key_tag") or d.get("tag") or d["key"]["key_tag"])') \
            && tags+=("$z:$tag") || fail "key generate $z $t"
    done
done
[ ${#tags[@]} -eq 4 ] && pass "KDC has a KSK and a ZSK for two zones (${tags[*]})"

kdc enroll generate node1.test. --out "$work/node1.pkg" --crypto hpke --notify 127.0.0.2:$N1P >/dev/null || fail "enroll generate node1"
kdc enroll generate node2.test. --out "$work/node2.pkg" --crypto jose --notify 127.0.0.3:$N2P >/dev/null || fail "enroll generate node2"
kdc enroll activate node1.test. >/dev/null && kdc enroll activate node2.test. >/dev/null || fail "enroll activate"

"$KDC" serve --state "$K" >"$work/kdc.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $KP), 0.2)" 2>/dev/null && break; sleep 0.1; done

if "$KRS" enroll --state "$S1" "$work/node1.pkg" --notify 127.0.0.2:$N1P --key-dir "$S1/keys" >"$work/e1.out" 2>&1; then
    pass "node1 (HPKE) enrolled through its package"
else
    fail "node1 enrollment: $(tail -2 "$work/e1.out" | tr '\n' ' ')"
fi
if "$KRS" enroll --state "$S2" "$work/node2.pkg" --notify 127.0.0.3:$N2P --key-dir "$S2/keys" >"$work/e2.out" 2>&1; then
    pass "node2 (JOSE) enrolled through its package"
else
    fail "node2 enrollment: $(tail -2 "$work/e2.out" | tr '\n' ' ')"
fi
# Enrolled already: refused by the node itself, before anything is sent (issue 13).
if "$KRS" enroll --state "$S1" "$work/node1.pkg" --notify 127.0.0.2:$N1P --key-dir "$S1/keys" >"$work/e1b.out" 2>&1; then
    fail "an enrolled node enrolls again without --reenroll"
elif grep -q "already enrolled as node1.test.; use --reenroll" "$work/e1b.out"; then
    pass "an enrolled node refuses a second enrollment: already enrolled as node1.test.; use --reenroll"
else
    fail "second enrollment refused, but not as enrolled already: $(tail -1 "$work/e1b.out")"
fi
# The same package on a fresh state directory: the KDC refuses the used token.
mkdir -p "$work/again/keys"
if "$KRS" enroll --state "$work/again" "$work/node1.pkg" --notify 127.0.0.2:$N1P --key-dir "$work/again/keys" >"$work/e1c.out" 2>&1; then
    fail "a used enrollment package is accepted twice"
elif grep -q "token already used" "$work/e1c.out"; then
    pass "a used enrollment package is refused the second time (token already used)"
else
    fail "a used package refused, but not by the KDC: $(tail -1 "$work/e1c.out")"
fi

"$KRS" run --state "$S1" --metrics 127.0.0.1:$M1P >"$work/n1.log" 2>&1 & pids+=($!)
"$KRS" run --state "$S2" >"$work/n2.log" 2>&1 & pids+=($!)
sleep 0.5

for t in "${tags[@]}"; do
    kdc distribute --all --zone "${t%%:*}" --key "${t##*:}" >/dev/null || fail "distribute ${t}"
done

# Wait for 4 key pairs in each node's key directory and every distribution confirmed.
ok=0
for _ in $(seq 100); do
    n1=$(ls "$S1/keys" | grep -c '\.private$'); n2=$(ls "$S2/keys" | grep -c '\.private$')
    confirmed=$(kdc status --json 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
states = []
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("state", "status") and isinstance(v, str): states.append(v)
            walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
walk(d.get("distributions", d))
print(sum(1 for s in states if s == "confirmed"))' 2>/dev/null || echo 0)
    if [ "$n1" -ge 4 ] && [ "$n2" -ge 4 ] && [ "$confirmed" -ge 8 ]; then ok=1; break; fi
    sleep 0.2
done
[ "$n1" -ge 4 ] && pass "node1 installed 4 keys (2 zones × KSK+ZSK)" || fail "node1 has $n1 keys, want 4"
[ "$n2" -ge 4 ] && pass "node2 installed 4 keys (2 zones × KSK+ZSK)" || fail "node2 has $n2 keys, want 4"
[ $ok = 1 ] && pass "tdns-kdc status shows all 8 distributions confirmed" || fail "confirmed distributions: $confirmed of 8"
# The seed's log line, with the backend each node was enrolled with (issue 13).
for nb in 1:hpke 2:jose; do
    n=${nb%%:*}; b=${nb##*:}
    c=$(grep -cE "Distribution [0-9a-f]+ processed successfully \(backend: $b, duration: [0-9]+ms\)" "$work/n$n.log")
    [ "$c" -ge 4 ] && pass "node$n logged $c distributions processed successfully (backend: $b, duration: …ms)" \
        || fail "node$n logged $c 'processed successfully (backend: $b' lines, want 4: $(tail -2 "$work/n$n.log" | tr '\n' ' ')"
done
for n in 1 2; do
    if "$KRS" status --state "$work/node$n" --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["enrolled"] and len(d["keys"]) >= 4' 2>/dev/null; then
        pass "tdns-krs status --json of node$n lists its keys"
    else
        fail "tdns-krs status of node$n"
    fi
done
# tdns-krs run --metrics (issue 15): a strict scrape (Tests/support/promtext.py) of node1 shows
# what it did: its keys as status --json lists them, 4 fetches and 4 confirmations at least.
keys1=$("$KRS" status --state "$S1" --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))' 2>/dev/null)
if "$PY" - "$here/../support" "$M1P" "$keys1" <<'PY' >"$work/metrics.out" 2>&1
import sys
sys.path.insert(0, sys.argv[1])
import metrics_http, promtext
p = promtext.parse(metrics_http.scrape(int(sys.argv[2])))
v = lambda n, **l: promtext.value(p, n, **l)
keys = sum(x for (n, _), x in p["samples"].items() if n == "tdnskrs_keys")
assert keys == int(sys.argv[3]) >= 4, (keys, sys.argv[3])
assert v("tdnskrs_running") == 1 and v("tdnskrs_listening") == 1 and v("tdnskrs_enrolled") == 1
assert v("tdnskrs_fetches_total") >= 4 and v("tdnskrs_confirmations_total") >= 4 and v("tdnskrs_keys_installed_total") >= 4, p["samples"]
assert v("tdnskrs_refused_total") == 0
PY
then
    pass "tdns-krs run --metrics: a strict Prometheus scrape of node1 shows its $keys1 keys, fetches and confirmations"
else
    fail "tdns-krs run --metrics: $(tail -3 "$work/metrics.out" | tr '\n' ' ')"
fi
grep -q "serving metrics on http://127.0.0.1:$M1P/metrics" "$work/n1.log" && pass "tdns-krs run --metrics logs its address" \
    || fail "tdns-krs run --metrics: no 'serving metrics' line in the log"

# --- Re-enrollment of the running node1, HPKE → JOSE (issue 13) --------------------------------
# The node keeps running: the new keys reach it through krs.conf, read again before the next
# distribution; the old HPKE key is kept as previous_* until the first JOSE distribution.
kdc enroll generate node1.test. --out "$work/node1-jose.pkg" --crypto jose --notify 127.0.0.2:$N1P >/dev/null \
    && kdc enroll activate node1.test. >/dev/null || fail "enroll generate/activate node1 for re-enrollment"
old_hpke=$(sed -n 's/^hpke_private_key=//p' "$S1/krs.conf")
if "$KRS" enroll --state "$S1" "$work/node1-jose.pkg" --reenroll >"$work/e1r.out" 2>&1 && grep -q "^re-enrolled node1.test." "$work/e1r.out"; then
    pass "node1 re-enrolled with a JOSE key while it runs (notify address kept from krs.conf)"
else
    fail "re-enrollment of node1: $(tail -2 "$work/e1r.out" | tr '\n' ' ')"
fi
if grep -q "^previous_hpke_private_key=$old_hpke\$" "$S1/krs.conf" && grep -q '^jose_private_key=' "$S1/krs.conf" \
    && ! grep -q '^hpke_private_key=' "$S1/krs.conf" && grep -q '^previous_keys_until=' "$S1/krs.conf"; then
    pass "krs.conf: the new JOSE key, the old HPKE key as previous_hpke_private_key until previous_keys_until"
else
    fail "krs.conf after the re-enrollment: $(grep -E '^(hpke|jose|previous)' "$S1/krs.conf" | tr '\n' ' ')"
fi
new_tag=$(kdc key generate --zone example.test. --algorithm 13 --type zsk --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("key_tag") or d.get("tag") or d["key"]["key_tag"])')
kdc distribute --node node1.test. --zone example.test. --key "$new_tag" >/dev/null || fail "distribute key $new_tag to node1"
got=0
for _ in $(seq 100); do
    grep -qE "Distribution [0-9a-f]+ processed successfully \(backend: jose, duration: [0-9]+ms\)" "$work/n1.log" \
        && ls "$S1/keys" | grep -q "+$(printf %05d "$new_tag").private\$" && { got=1; break; }
    sleep 0.2
done
[ $got = 1 ] && pass "the running node1 (not restarted) received key $new_tag as JOSE" \
    || fail "node1 after re-enrollment: $(tail -3 "$work/n1.log" | tr '\n' ' ')"
if ! grep -q '^previous_' "$S1/krs.conf" && [ ! -e "$old_hpke" ]; then
    pass "the first JOSE distribution retired the old HPKE key (krs.conf line and file gone)"
else
    fail "old HPKE key still kept: $(grep '^previous_' "$S1/krs.conf" | tr '\n' ' ')"
fi

[ "$fails" -eq 0 ]
