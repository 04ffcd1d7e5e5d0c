#!/usr/bin/env bash
# Tests/bind9/run.sh — the KRS inside BIND 9, end to end on 127.0.0.1:
#   tdns-kdc (init, zone, enrollment package, serve) → `tdns-krs enroll` writes the node's
#   state_dir/krs.conf → named loads dlz_tdnskrs.so with "state_dir=… rndc=… rndc_conf=…" and
#   serves example.test. (auto-dnssec maintain + inline-signing, key-directory = the KRS key_dir)
#   → the KDC generates a KSK and a ZSK and distributes them → the module installs the K-files,
#   runs `rndc loadkeys example.test.`, the KDC sees the confirmations → named signs the zone
#   with exactly those keys (DNSKEY tags, RRSIG key tags) → status.tdnskrs. TXT tells the state
#   → rndc reload/reconfig three times while named keeps answering → a ping and a new ZSK are
#   distributed after the reloads and handled by the new DLZ instance.
# Output: "PASS: …" / "FAIL: … — reason" lines; DEMO=1 adds "==>" narration and the proof.
# Everything listens on 127.0.0.1, high ports, in a temporary directory; every process this
# script starts is stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=bind9-krs
[ "${VALGRIND:-0}" = 1 ] && T=bind9-krs-valgrind
[ "${TDNSKRS_INSTALLED:-0}" = 1 ] && T=$T-installed
PLUGIN=$DLZ_PLUGIN
KDC_BIN=$BIN_DIR/tdns-kdc
KRS_BIN=$BIN_DIR/tdns-krs
ZONE=example.test.
NODE=node1.test.
TMP=""
NAMED_PID=""
KDC_PID=""

cleanup() {
    stop_server "$NAMED_PID" rndc -c "$TMP/rndc.conf" stop
    stop_pid "$KDC_PID"
    finish_tmp "files, named.log and kdc.log"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "bind9, bind9-utils, bind9-dnsutils, iproute2, python3" named named-checkconf rndc rndc-confgen dig ss python3
require_built "make lib plugins bin, or with TDNSKRS_INSTALLED=1 the Debian packages" "$PLUGIN" "$KDC_BIN" "$KRS_BIN"
RNDC_BIN=$(command -v rndc)
RNDC_BIN=$(readlink -f "$RNDC_BIN")

TMP=$(mktemp -d /tmp/tdnskrs-bind9krs.XXXXXX)
DNS_PORT=$(free_port) && CTL_PORT=$(free_port) && KDC_PORT=$(free_port) && NOTIFY_PORT=$(free_port) && METRICS_PORT=$(free_port) ||
    { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
K=$TMP/kdc S=$TMP/node KEYS=$TMP/keys LOG=$TMP/named.log
mkdir -p "$K" "$S" "$KEYS" "$TMP/run"

# (qdig, dnskey_tags, rrsig_tags, status_txt, has_all, show_keys, kdc, new_key, distribute…:
# Tests/hosting/lib.sh)

# --- the KDC ---------------------------------------------------------------------------------

say "tdns-kdc: control zone kdc.test. on 127.0.0.1#$KDC_PORT, zone $ZONE, enrollment package for $NODE"
check "$T: tdns-kdc init, zone add, enrollment package" "a tdns-kdc command failed" \
    kdc_setup kdc.test. "127.0.0.1:$NOTIFY_PORT"
kdc_serve
check_within 15 "$T: tdns-kdc serve listening" '"not listening on 127.0.0.1:$KDC_PORT: $(tail -1 "$TMP/kdc.log" 2>/dev/null)"' \
    kdc_listening

say "tdns-krs enroll --state $S … --notify 127.0.0.1:$NOTIFY_PORT --key-dir $KEYS"
enrolled "$T: node enrolled with tdns-krs enroll" \
    "$KRS_BIN" enroll --state "$S" "$TMP/node.pkg" --notify "127.0.0.1:$NOTIFY_PORT" --key-dir "$KEYS"

# --- named -----------------------------------------------------------------------------------

rndc_setup
example_zone >"$TMP/example.test.db"
DATABASE="dlopen $PLUGIN state_dir=$S rndc=$RNDC_BIN rndc_conf=$TMP/rndc.conf metrics_listen=127.0.0.1:$METRICS_PORT"
{
    named_conf_head
    cat <<EOF
zone "$ZONE" {
    type primary;
    file "$TMP/example.test.db";
    auto-dnssec maintain;
    inline-signing yes;
    key-directory "$KEYS";
};
dlz "tdnskrs" { database "$DATABASE"; };
EOF
} >"$TMP/named.conf"
RNDC=(rndc -c "$TMP/rndc.conf")
# (9.18 warns that auto-dnssec is deprecated; the warning is expected)
check "$T: named-checkconf accepts the generated named.conf" "$(named-checkconf "$TMP/named.conf" 2>&1 | grep -v 'deprecated' | head -1)" \
    eval 'named-checkconf "$TMP/named.conf" >/dev/null 2>&1'

say "named on 127.0.0.1#$DNS_PORT: zone $ZONE (auto-dnssec maintain, inline-signing, key-directory $KEYS)"
say "  dlz \"tdnskrs\" { database \"dlopen dlz_tdnskrs.so state_dir=… rndc=$RNDC_BIN rndc_conf=…\"; }"
# VALGRIND=1: named itself runs under valgrind memcheck (jemalloc's malloc replaced too), the
# whole flow with it, and the last check reads the reports.
# Two reports that are not ours are suppressed by their exact frames: ld.so's strncmp over the
# module's $ORIGIN rpath (valgrind does not redirect ld.so's own string functions, so their
# word-sized reads look invalid) and BIND's netlink socket address padding. Anything else —
# any error at all, in named, libtdnskrs or the module — makes named exit 99 and fails below.
WRAP=()
if [ "${VALGRIND:-0}" = 1 ]; then
    cat >"$TMP/named.supp" <<'SUPP'
{
   ld.so strncmp reads whole words of the rpath string (not redirected by valgrind)
   Memcheck:Addr8
   fun:strncmp
   fun:is_dst
}
{
   BIND 9.18 isc_nm_routeconnect: uninitialised padding of struct sockaddr_nl
   Memcheck:Param
   socketcall.bind(my_addr.nl_pid)
   fun:bind
   fun:isc_nm_routeconnect
}
SUPP
    WRAP=(valgrind --quiet --error-exitcode=99 --leak-check=no --soname-synonyms=somalloc=*jemalloc*
          --suppressions="$TMP/named.supp" --log-file="$TMP/valgrind.%p.log")
fi
"${WRAP[@]}" named -g -c "$TMP/named.conf" >"$LOG" 2>&1 &
NAMED_PID=$!
listening_or_died() { ! is_alive "$NAMED_PID" || status_txt | grep -q 'listening=yes'; }
wait_for 30 listening_or_died
if ! is_alive "$NAMED_PID"; then
    fail "$T: named started with the KRS module" "exited: $(grep -iE 'tdnskrs|error|fatal' "$LOG" | tail -2 | tr '\n' ' ')"
    exit 1
fi
check "$T: named started, status.tdnskrs. TXT says node $NODE enrolled and listening" "status: $(status_line)" \
    eval 'status_txt | grep -q "node_id=$NODE enrolled=yes listening=yes"'
check "$T: named logged 'KRS started'" "not in named's log" grep -q "tdnskrs DLZ 'tdnskrs': KRS started" "$LOG"
check "$T: $ZONE is served unsigned before any key arrives" "DNSKEY tags: '$(dnskey_tags)'" \
    eval '[ -z "$(dnskey_tags)" ] && qdig "$ZONE" SOA +short | grep -q "^ns1.example.test."'

# --- keys from the KDC -----------------------------------------------------------------------

new_ksk_zsk
check "$T: two distributions created" "$(cat "$TMP/distribute.err")" eval '[ -n "$D1" ] && [ -n "$D2" ]'

check_within 40 "$T: KDC status shows both distributions confirmed" '"states: $(dist_state "$D1") / $(dist_state "$D2")"' \
    eval 'confirmed "$D1" && confirmed "$D2"'
check "$T: K-files for $KSK and $ZSK in the key directory" "$(ls "$KEYS" | xargs)" \
    eval 'ls "$KEYS" | grep -q "^Kexample\.test\.+013+0*$KSK\.private$" && ls "$KEYS" | grep -q "^Kexample\.test\.+013+0*$ZSK\.private$"'
check_within 15 "$T: the module ran rndc loadkeys $ZONE" '"$(grep -F "rndc loadkeys" "$LOG" | tail -1)"' \
    grep -qE "tdnskrs: rndc loadkeys $ZONE: ok" "$LOG"

signed_by_both() {
    local dk sk
    dk=$(dnskey_tags)
    sk=$(rrsig_tags SOA)
    has_all "$dk" "$KSK" "$ZSK" && has_all "$(rrsig_tags DNSKEY)" "$KSK" && has_all "$sk" "$ZSK"
}
check_within 20 "$T: named signs $ZONE with the distributed keys (DNSKEY $KSK+$ZSK, RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' signed_by_both
check "$T: named holds only the distributed keys (no key of its own)" "DNSKEY tags: $(dnskey_tags)" \
    eval '[ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK" | sort -n | xargs)" ]'

show_keys_proof
show_status_proof
check "$T: status.tdnskrs. TXT shows keys=2 and the confirmed last distribution" "$(status_line)" \
    eval 'st=$(status_txt); grep -q "keys=2 " <<<"$st" && grep -qE "last_distribution=($D1|$D2) result=installed confirmed=yes" <<<"$st" && grep -q "key_changes installed=2 " <<<"$st"'
check "$T: status.tdnskrs. TXT is the operators' format, whole (five strings: version, node, last distribution, counters, key changes)" \
    "$(status_line)" status_format_ok

# TDNSKRS_SHORT=1 (Tests/deb, on the installed packages): the flow up to here — enroll,
# distribute, named signing with the distributed keys' tags — without reloads, rolls or timings.
if [ "${TDNSKRS_SHORT:-0}" = 1 ]; then
    exit $((FAILURES > 0))
fi

# --- Prometheus metrics (metrics_listen) ------------------------------------------------------

METRICS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)/metrics_http.py
# metrics_match_status: a strict scrape (Tests/support/promtext.py) says what status.tdnskrs.
# TXT says — the instance's krs_status_json at the same moment: version, flags, keys, counters.
metrics_match_status() {
    local st m
    st=$(status_line) && m=$(python3 "$METRICS_PY" scrape "$METRICS_PORT" 2>"$TMP/scrape.err") || return 1
    python3 - "$st" "$m" "$(library_version)" <<'PY'
import json, sys
st, m, libversion = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
txt = dict(t.split("=", 1) for t in st.replace('"', " ").split() if "=" in t)
v = {}
for n, l, x in m["samples"]:
    v[(n, tuple(sorted(l.items())))] = x
g = lambda n, **l: v.get((n, tuple(sorted(l.items()))))
yes = {"yes": 1, "no": 0}
ok = (g("tdnskrs_build_info", version=txt["version"]) == 1 and txt["version"] == libversion
      and g("tdnskrs_enrolled") == yes[txt["enrolled"]] and g("tdnskrs_running") == yes[txt["running"]]
      and g("tdnskrs_listening") == yes[txt["listening"]]
      and sum(x for (n, _), x in v.items() if n == "tdnskrs_keys") == int(txt["keys"])
      and all(g(f"tdnskrs_{k}_total") == int(txt[k]) for k in ("keys_installed", "notifies", "fetches", "refused"))
      and all(g(f"tdnskrs_{k}_total") is not None for k in ("confirmations", "fetch_failures", "notifies_refused", "pending_dropped")))
sys.exit(0 if ok else 1)
PY
}
metrics_diff() { echo "TXT '$(status_line)' vs scrape $(python3 "$METRICS_PY" scrape "$METRICS_PORT" 2>&1 | head -c 600)"; }
say "metrics_listen=127.0.0.1:$METRICS_PORT: GET /metrics from the KRS inside named"
check_within 10 "$T: metrics: a strict 0.0.4 scrape from inside named equals status.tdnskrs. TXT (version, flags, keys, counters)" \
    '"$(metrics_diff)"' metrics_match_status
check "$T: metrics: named logged the metrics listener" "not in named's log" grep -q "serving metrics on http://127.0.0.1:$METRICS_PORT/metrics" "$LOG"
threads_before=$(ls /proc/"$NAMED_PID"/task 2>/dev/null | wc -l)
while IFS=$'\t' read -r verdict name reason; do
    if [ "$verdict" = PASS ]; then pass "$T: metrics: $name"; else fail "$T: metrics: $name" "$reason"; fi
done < <(python3 "$METRICS_PY" behaviour "$METRICS_PORT" 2>&1)
threads_after=$(ls /proc/"$NAMED_PID"/task 2>/dev/null | wc -l)
check "$T: metrics: named has as many threads after those 40-odd connections as before ($threads_before)" \
    "$threads_after after" eval '[ "$threads_before" = "$threads_after" ] && [ "$threads_before" -gt 0 ]'

# --- reloads ---------------------------------------------------------------------------------

LOADED="tdnskrs DLZ 'tdnskrs': KRS started"
UNLOADED="tdnskrs DLZ instance unloaded (KRS stopped)"
n=0
for cmd in reload reconfig reload; do
    n=$((n + 1))
    say "rndc $cmd (#$n)"
    check_command "$T: rndc $cmd #$n" "${RNDC[@]}" "$cmd"
    check_within 20 "$T: new KRS instance started and old one stopped after rndc $cmd #$n" \
        '"log has $(count_lines "$LOG" "$LOADED") starts / $(count_lines "$LOG" "$UNLOADED") stops, want $((n + 1)) / $n"' \
        swapped "$n"
    check_within 10 "$T: still answering after rndc $cmd #$n (signed $ZONE, status listening)" \
        "\"DNSKEY '\$(dnskey_tags)', status '\$(status_line)'\"" \
        eval 'signed_by_both && status_txt | grep -q "listening=yes"'
done

# --- the new instance handles distributions --------------------------------------------------

say "after the reloads: a ping and a new ZSK, distributed to the KRS in the new DLZ instance"
D3=$(distribute --op ping)
check_within 40 "$T: ping distribution confirmed by the new instance" '"state $(dist_state "$D3")"' confirmed "$D3"
ZSK2=$(new_key "$ZONE" zsk)
D4=$(distribute --zone "$ZONE" --key "$ZSK2")
check_within 40 "$T: second ZSK $ZSK2 distributed and confirmed" '"state $(dist_state "$D4")"' confirmed "$D4"
check_within 20 "$T: named publishes ZSK $ZSK2 next to $KSK and $ZSK (rndc loadkeys from the new instance)" \
    '"DNSKEY tags: $(dnskey_tags)"' eval 'has_all "$(dnskey_tags)" "$KSK" "$ZSK" "$ZSK2"'
if [ "${DEMO:-0}" = 1 ]; then
    say "proof: DNSKEY tags now: $(dnskey_tags); status.tdnskrs. (counters of the new instance):"
    show_status
fi
check "$T: status.tdnskrs. TXT shows keys=3" "$(status_line)" eval 'status_txt | grep -q "keys=3 "'
check_within 10 "$T: metrics: after three reloads the new instance serves metrics equal to its status.tdnskrs. TXT" \
    '"$(metrics_diff)"' metrics_match_status

# --- the roll: the new ZSK signs, the old one is retired, then deleted ----------------------

kfile() { echo "$KEYS/Kexample.test.+013+$(printf %05d "$1")"; }
say "the ZSK roll: $ZSK2 replaces $ZSK, which is retired (Inactive) but stays published"
check_within 20 "$T: after the roll the SOA is signed by ZSK $ZSK2 alone" "\"RRSIG SOA '\$(rrsig_tags SOA)'\"" \
    eval '[ "$(rrsig_tags SOA)" = "$ZSK2" ]'
check "$T: old ZSK $ZSK retired: Inactive set in its .private, DNSKEY still published" \
    "$(grep -E '^(Inactive|Delete):' "$(kfile "$ZSK").private" | xargs), DNSKEY '$(dnskey_tags)'" \
    eval 'grep -q "^Inactive: " "$(kfile "$ZSK").private" && ! grep -q "^Inactive: " "$(kfile "$ZSK2").private" && has_all "$(dnskey_tags)" "$ZSK"'
retired_audited "$ZSK"
show_roll_proof

say "delete_key $ZSK: named removes the DNSKEY (the KRS sets Delete = now and runs rndc loadkeys)"
D5=$(distribute --zone "$ZONE" --key "$ZSK" --op delete_key)
check_within 40 "$T: delete_key for ZSK $ZSK confirmed" '"state $(dist_state "$D5")"' confirmed "$D5"
check_within 20 "$T: ZSK $ZSK is gone from the DNSKEY set, KSK $KSK and ZSK $ZSK2 remain" '"DNSKEY tags: $(dnskey_tags)"' \
    eval '[ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK2" | sort -n | xargs)" ]'
check "$T: status.tdnskrs. TXT shows keys=2 after the deletion" "$(status_line)" eval 'status_txt | grep -q "keys=2 "'

# --- a server that refuses: reported to the KDC as failed, nothing changes -------------------

say "a key for other.test., a zone named does not serve: rndc loadkeys fails, the KDC hears failed_keys"
kdc zone add other.test. >/dev/null 2>&1
OTHER=$(new_key other.test. zsk)
D6=$(distribute --zone other.test. --key "$OTHER")
check_within 40 "$T: distribution $D6 ends failed at the KDC (failed_keys from the node)" '"state $(dist_state "$D6")"' \
    eval '[ "$(dist_state "$D6")" = failed ]'
failed_keys() {
    kdc status --json 2>/dev/null |
        json_get "' '.join(f\"{k['zone_name']}/{k['key_id']}: {k.get('error', '')}\" for x in d['distributions'] if x['distribution_id'] == '$D6' for k in x.get('failed_keys') or [])"
}
check "$T: the KDC recorded other.test./$OTHER in failed_keys with rndc's reason" "failed_keys: '$(failed_keys)'" \
    eval 'failed_keys | grep -q "^other.test./$OTHER: rndc loadkeys other.test.: exit 1"'
check "$T: no K-files for other.test. were left behind, the audit log says install-failed" "$(ls "$KEYS" | grep other | xargs)" \
    eval '! ls "$KEYS" | grep -q "^Kother" && grep -q "\"result\":\"install-failed\"" "$S/audit.log"'

# --- timing: distribute → new RRSIG, five ZSK rolls ------------------------------------------

if [ "${VALGRIND:-0}" != 1 ]; then  # (timings under valgrind say nothing)
    zsk_roll_times 30
    check "$T: five more ZSK rolls, each followed by RRSIGs of the new ZSK" "times: ${TIMES[*]}" \
        eval '! grep -q fail <<<"${TIMES[*]}"'
    echo "TIMING: bind9 distribute→RRSIG median $(printf '%s\n' "${TIMES[@]}" | sort -n | sed -n 3p) s (n=5: ${TIMES[*]})"
fi

# --- survival and stop -----------------------------------------------------------------------

check "$T: named is still the same process (pid $NAMED_PID)" "pid gone or pid-file differs" \
    same_process "$NAMED_PID" "$TMP/run/named.pid"
# (other.test.'s rndc failure above is deliberate)
check "$T: no crash/assertion/fatal lines and no rndc failures in named's log" \
    "$(grep -iE 'crash|assertion|exiting \(due to fatal error\)|rndc loadkeys .*(exit|timed out|killed)' "$LOG" | grep -v other.test. | head -1)" \
    eval '! grep -iE "crash|assertion|exiting \(due to fatal error\)|rndc loadkeys .*(exit|timed out|killed)" "$LOG" | grep -qv other.test.'

say "rndc stop; tdns-kdc stopped"
"${RNDC[@]}" stop >/dev/null 2>&1
if stopped_cleanly "$NAMED_PID" 20 "$T: rndc stop, named exited cleanly"; then
    NAMED_PID=""
    [ "${VALGRIND:-0}" = 1 ] && valgrind_clean named
fi

exit $((FAILURES > 0))
