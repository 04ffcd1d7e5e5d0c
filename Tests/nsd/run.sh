#!/usr/bin/env bash
# Tests/nsd/run.sh — the KRS as NSD's sidecar (tdnskrs-nsd), end to end on 127.0.0.1:
#   tdns-kdc (init, zone, enrollment package, serve) → `tdnskrs-nsd enroll` with a settings
#   file (key_dir, zone_dir, signed_dir, nsd_control, nsd_conf, notify_listen) → NSD serves
#   example.test. from the signed file, which is the unsigned zone until keys arrive →
#   `tdnskrs-nsd run` receives the KDC's NOTIFYs → a KSK and a ZSK are distributed, written as
#   K-files, the zone is signed with dnssec-signzone -S (-z while the zone has keys of one
#   role only) and `nsd-control reload` loads it, the KDC sees the confirmations → dig shows
#   the RRSIGs by the distributed key tags → a ZSK roll (old ZSK retired, still published),
#   delete_key, a zone the sidecar cannot sign (failed keys at the KDC, nothing left behind),
#   nsd-control reload/reconfig while NSD answers, `tdnskrs-nsd sign` and `status`, then five
#   timed ZSK rolls.
# Output: "PASS: …" / "FAIL: … — reason" lines; DEMO=1 adds "==>" narration and the proof.
# Everything listens on 127.0.0.1, high ports, in a temporary directory; NSD sends no NOTIFY
# and allows no transfer; every process this script starts is stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=nsd-krs
KDC_BIN=$BUILD_DIR/bin/tdns-kdc
SIDECAR_BIN=$BUILD_DIR/bin/tdnskrs-nsd
ZONE=example.test.
NODE=node1.test.
TMP=""
NSD_PID=""
SIDECAR_PID=""
KDC_PID=""

cleanup() {
    stop_pid "$SIDECAR_PID"
    stop_server "$NSD_PID" nsd-control -c "$TMP/nsd.conf" stop
    stop_pid "$KDC_PID"
    finish_tmp "files, nsd.log, sidecar.log and kdc.log"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "nsd, bind9-dnsutils for dnssec-signzone and dig, iproute2, python3" \
    nsd nsd-control nsd-control-setup nsd-checkconf dnssec-signzone dig ss python3
require_built "make bin" "$KDC_BIN" "$SIDECAR_BIN"
NSD_CONTROL=$(readlink -f "$(command -v nsd-control)")
DNSSEC_SIGNZONE=$(readlink -f "$(command -v dnssec-signzone)")

TMP=$(mktemp -d /tmp/tdnskrs-nsdkrs.XXXXXX)
DNS_PORT=$(free_port) && CTL_PORT=$(free_port) && KDC_PORT=$(free_port) && NOTIFY_PORT=$(free_port) ||
    { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
K=$TMP/kdc S=$TMP/node KEYS=$TMP/keys ZONES=$TMP/zones SIGNED=$TMP/signed LOG=$TMP/nsd.log
SCONF=$TMP/tdnskrs-nsd.conf SLOG=$TMP/sidecar.log
mkdir -p "$K" "$S" "$KEYS" "$ZONES" "$SIGNED" "$TMP/nsd"

SIGNER=$DNSSEC_SIGNZONE

sidecar() { "$SIDECAR_BIN" "$@" --config "$SCONF"; }
# (qdig, dnskey_tags, rrsig_tags, signing_state, has_all, show_keys, check_within, kdc, new_key,
# distribute…: Tests/hosting/lib.sh)
soa_serial() { qdig "$ZONE" SOA +short | awk '{ print $3 }'; }
kfile() { echo "$KEYS/K$1+013+$(printf %05d "$2")"; } # kfile ZONE TAG: the K-file base name
# NSD's own complaints (it logs "error:" for every problem it reports); other.test.'s are deliberate.
nsd_errors() { grep -iE 'error|crit|fatal|assert' "$LOG" | grep -v 'other\.test' || true; }

# --- the KDC ---------------------------------------------------------------------------------

say "tdns-kdc: control zone kdc.test. on 127.0.0.1#$KDC_PORT, zone $ZONE, enrollment package for $NODE"
check "$T: tdns-kdc init, zone add, enrollment package" "a tdns-kdc command failed" \
    kdc_setup kdc.test. "127.0.0.1:$NOTIFY_PORT"
kdc_serve
check_within 15 "$T: tdns-kdc serve listening" '"not listening on 127.0.0.1:$KDC_PORT: $(tail -1 "$TMP/kdc.log" 2>/dev/null)"' \
    kdc_listening

# --- NSD -------------------------------------------------------------------------------------

say "nsd-control-setup -d $TMP/ctl (TLS keys for nsd-control on 127.0.0.1#$CTL_PORT)"
check "$T: nsd-control-setup created the control keys" "$(ls "$TMP/ctl" 2>&1 | xargs)" \
    eval 'mkdir -p "$TMP/ctl" && nsd-control-setup -d "$TMP/ctl" >"$TMP/ctl-setup.out" 2>&1 &&
          [ -s "$TMP/ctl/nsd_server.key" ] && [ -s "$TMP/ctl/nsd_control.pem" ]'

# The operator's unsigned zone lives in zone_dir as <zone>zone; NSD serves signed_dir/<zone>zone.signed.
example_zone >"$ZONES/example.test.zone"
# Before the first keys arrive there is nothing to sign with: `tdnskrs-nsd run` writes the
# missing signed file as a copy of the unsigned zone, so NSD has a zone to serve (unsigned);
# the first keys replace it atomically with a signed version.

cat >"$TMP/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1
    port: $DNS_PORT
    do-ip6: no
    username: ""
    database: ""
    chroot: ""
    zonesdir: "$TMP/nsd"
    zonelistfile: "$TMP/nsd/zone.list"
    xfrdfile: "$TMP/nsd/xfrd.state"
    xfrdir: "$TMP/nsd"
    pidfile: "$TMP/nsd/nsd.pid"
    logfile: "$LOG"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: $CTL_PORT
    server-key-file: "$TMP/ctl/nsd_server.key"
    server-cert-file: "$TMP/ctl/nsd_server.pem"
    control-key-file: "$TMP/ctl/nsd_control.key"
    control-cert-file: "$TMP/ctl/nsd_control.pem"
# No notify: and no provide-xfr: — this NSD talks to nobody but its clients on 127.0.0.1.
zone:
    name: "$ZONE"
    zonefile: "$SIGNED/example.test.zone.signed"
EOF
check "$T: nsd-checkconf accepts the generated nsd.conf" "$(nsd-checkconf "$TMP/nsd.conf" 2>&1 | head -1)" \
    eval 'nsd-checkconf "$TMP/nsd.conf" >/dev/null 2>&1'
NSDC=(nsd-control -c "$TMP/nsd.conf")

# --- the sidecar: settings and enrollment ----------------------------------------------------

cat >"$SCONF" <<EOF
# tdnskrs-nsd settings (key=value; see Include/tdnskrs/krs.h)
state_dir=$S
key_dir=$KEYS
zone_dir=$ZONES
signed_dir=$SIGNED
signer=$SIGNER
nsd_control=$NSD_CONTROL
nsd_conf=$TMP/nsd.conf
command_timeout=30
notify_listen=127.0.0.1:$NOTIFY_PORT
EOF
say "tdnskrs-nsd --config $SCONF enroll node.pkg --notify 127.0.0.1:$NOTIFY_PORT"
enrolled "$T: node enrolled with tdnskrs-nsd enroll" sidecar enroll "$TMP/node.pkg" --notify "127.0.0.1:$NOTIFY_PORT"
check "$T: enrollment stored key_store=nsd in state_dir/krs.conf" "$(grep key_store "$S/krs.conf")" \
    grep -qx 'key_store=nsd' "$S/krs.conf"

# --- start NSD and the sidecar -----------------------------------------------------------------

say "tdnskrs-nsd --config $SCONF run  (NOTIFYs on 127.0.0.1#$NOTIFY_PORT)"
"$SIDECAR_BIN" run --config "$SCONF" >"$SLOG" 2>&1 &
SIDECAR_PID=$!
check_within 15 "$T: tdnskrs-nsd run listening for NOTIFYs on 127.0.0.1#$NOTIFY_PORT" '"$(tail -2 "$SLOG" | tr "\n" " ")"' \
    eval 'is_alive "$SIDECAR_PID" && [ -n "$(ss -Hlnu "sport = :$NOTIFY_PORT" 2>/dev/null)" ]'
check_within 15 "$T: tdnskrs-nsd run wrote the missing signed file as a copy of the unsigned zone" \
    '"$(ls "$SIGNED" | xargs)"' eval 'cmp -s "$ZONES/example.test.zone" "$SIGNED/example.test.zone.signed"'

say "nsd -d -c nsd.conf on 127.0.0.1#$DNS_PORT: zone $ZONE from $SIGNED/example.test.zone.signed"
nsd -d -c "$TMP/nsd.conf" >>"$TMP/nsd.out" 2>&1 &
NSD_PID=$!
answering_or_died() { ! is_alive "$NSD_PID" || qdig "$ZONE" SOA +short | grep -q '^ns1.example.test.'; }
wait_for 30 answering_or_died
if ! is_alive "$NSD_PID"; then
    fail "$T: nsd started" "exited: $(tail -3 "$LOG" "$TMP/nsd.out" 2>/dev/null | tr '\n' ' ')"
    exit 1
fi
check "$T: NSD serves $ZONE unsigned before any key arrives" "SOA '$(qdig "$ZONE" SOA +short)', DNSKEY '$(dnskey_tags)'" \
    eval '[ -z "$(dnskey_tags)" ] && qdig "$ZONE" SOA +short | grep -q "^ns1.example.test. .* 1 3600"'
check "$T: nsd-control status reaches NSD over its control port" "$("${NSDC[@]}" status 2>&1 | tail -1)" \
    eval '"${NSDC[@]}" status 2>&1 | grep -q "version: 4"'

# --- keys from the KDC -----------------------------------------------------------------------

new_ksk_zsk
check "$T: two distributions created" "$(cat "$TMP/distribute.err")" eval '[ -n "$D1" ] && [ -n "$D2" ]'

check_within 40 "$T: KDC status shows both distributions confirmed" '"states: $(dist_state "$D1") / $(dist_state "$D2")"' \
    eval 'confirmed "$D1" && confirmed "$D2"'
check "$T: K-files for $KSK and $ZSK in key_dir" "$(ls "$KEYS" | xargs)" \
    eval '[ -s "$(kfile "$ZONE" "$KSK").private" ] && [ -s "$(kfile "$ZONE" "$ZSK").private" ]'
check_within 15 "$T: the sidecar signed $ZONE and ran nsd-control reload" '"$(grep -E "signzone|nsd-control" "$SLOG" | tail -2 | tr "\n" " ")"' \
    eval 'grep -q "signzone .*: ok" "$SLOG" && grep -q "nsd-control reload $ZONE: ok" "$SLOG"'

signed_by_both() {
    has_all "$(dnskey_tags)" "$KSK" "$ZSK" && [ "$(rrsig_tags DNSKEY)" = "$KSK" ] && [ "$(rrsig_tags SOA)" = "$ZSK" ]
}
check_within 20 "$T: NSD serves $ZONE signed with the distributed keys (DNSKEY $KSK+$ZSK, RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' signed_by_both
check "$T: the DNSKEY set holds exactly the distributed keys" "DNSKEY tags: $(dnskey_tags)" \
    eval '[ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK" | sort -n | xargs)" ]'
check "$T: www.$ZONE A is signed by ZSK $ZSK" "$(qdig "www.$ZONE" A +dnssec +noall +answer | awk '$4 == "RRSIG" { print $11 }')" \
    eval '[ "$(qdig "www.$ZONE" A +dnssec +noall +answer | awk '\''$4 == "RRSIG" && $5 == "A" { print $11 }'\'')" = "$ZSK" ]'
check "$T: the SOA serial is the signing time (dnssec-signzone -N unixtime)" "serial $(soa_serial)" \
    eval '[ "$(soa_serial)" -gt 1700000000 ]'

show_keys_proof
if [ "${DEMO:-0}" = 1 ]; then
    say "the sidecar's log:"
    grep -E 'signzone|nsd-control' "$SLOG" | head -4 | show
fi

# --- the roll: the new ZSK signs, the old one is retired, then deleted ----------------------

ZSK2=$(new_key "$ZONE" zsk)
say "the ZSK roll: $ZSK2 replaces $ZSK, which is retired (Inactive) but stays published"
D3=$(distribute --zone "$ZONE" --key "$ZSK2")
check_within 40 "$T: ZSK $ZSK2 distributed and confirmed" '"state $(dist_state "$D3")"' confirmed "$D3"
check_within 20 "$T: after the roll the SOA is signed by ZSK $ZSK2 alone, DNSKEY by KSK $KSK" '"$(signing_state)"' \
    eval '[ "$(rrsig_tags SOA)" = "$ZSK2" ] && [ "$(rrsig_tags DNSKEY)" = "$KSK" ]'
check "$T: old ZSK $ZSK retired: Inactive in its .private, still in the DNSKEY set" \
    "$(grep -E '^(Inactive|Delete):' "$(kfile "$ZONE" "$ZSK").private" | xargs), DNSKEY '$(dnskey_tags)'" \
    eval 'grep -q "^Inactive: " "$(kfile "$ZONE" "$ZSK").private" && ! grep -q "^Inactive: " "$(kfile "$ZONE" "$ZSK2").private" &&
          ! grep -q "^Inactive: " "$(kfile "$ZONE" "$KSK").private" && [ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK" "$ZSK2" | sort -n | xargs)" ]'
retired_audited "$ZSK"
show_roll_proof

say "delete_key $ZSK: the sidecar removes its K-files, re-signs and reloads"
D4=$(distribute --zone "$ZONE" --key "$ZSK" --op delete_key)
check_within 40 "$T: delete_key for ZSK $ZSK confirmed" '"state $(dist_state "$D4")"' confirmed "$D4"
check_within 20 "$T: ZSK $ZSK is gone from the DNSKEY set, KSK $KSK and ZSK $ZSK2 remain" '"$(signing_state)"' \
    eval '[ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK2" | sort -n | xargs)" ]'
check "$T: ZSK $ZSK's K-files removed from key_dir" "$(ls "$KEYS" | xargs)" \
    eval '[ ! -e "$(kfile "$ZONE" "$ZSK").key" ] && [ ! -e "$(kfile "$ZONE" "$ZSK").private" ]'

# --- a zone the sidecar cannot sign: reported to the KDC as failed, nothing changes ----------

say "a key for other.test., which has no unsigned zone file: signing fails, the KDC hears failed_keys"
kdc zone add other.test. >/dev/null 2>&1
OTHER=$(new_key other.test. zsk)
SERIAL_BEFORE=$(soa_serial)
D5=$(distribute --zone other.test. --key "$OTHER")
check_within 40 "$T: distribution $D5 ends failed at the KDC (failed_keys from the node)" '"state $(dist_state "$D5")"' \
    eval '[ "$(dist_state "$D5")" = failed ]'
failed_keys() {
    kdc status --json 2>/dev/null |
        json_get "' '.join(f\"{k['zone_name']}/{k['key_id']}: {k.get('error', '')}\" for x in d['distributions'] if x['distribution_id'] == '$D5' for k in x.get('failed_keys') or [])"
}
check "$T: the KDC recorded other.test./$OTHER in failed_keys with the reason" "failed_keys: '$(failed_keys)'" \
    eval 'failed_keys | grep -q "^other.test./$OTHER: .*no unsigned zone file for other.test."'
check "$T: no K-files and no signed file for other.test. left behind, the audit log says install-failed" \
    "$(ls -A "$KEYS" "$SIGNED" | grep other | xargs)" \
    eval '! ls -A "$KEYS" "$SIGNED" | grep -q other && grep -q "\"result\":\"install-failed\"" "$S/audit.log"'
check "$T: $ZONE untouched by the failure (same serial, same keys)" "serial $SERIAL_BEFORE → $(soa_serial), DNSKEY $(dnskey_tags)" \
    eval '[ "$(soa_serial)" = "$SERIAL_BEFORE" ] && [ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK2" | sort -n | xargs)" ]'

# --- NSD reloads while answering -------------------------------------------------------------

signed_now() { [ "$(rrsig_tags SOA)" = "$ZSK2" ] && [ "$(rrsig_tags DNSKEY)" = "$KSK" ]; }
n=0
for cmd in reload reconfig reload; do
    n=$((n + 1))
    say "nsd-control $cmd (#$n)"
    out=$("${NSDC[@]}" "$cmd" 2>&1)
    rc=$?
    check "$T: nsd-control $cmd #$n" "rc=$rc: $out" eval '[ $rc -eq 0 ] && grep -q "^ok" <<<"$out"'
    check_within 10 "$T: NSD still answers signed after nsd-control $cmd #$n" '"$(signing_state)"' signed_now
done

# --- sign on demand, status ------------------------------------------------------------------

# -N unixtime: a serial is the second of the signing; wait for the next second.
SERIAL_BEFORE=$(soa_serial)
sleep 1.1
say "tdnskrs-nsd sign $ZONE (re-sign now, e.g. after editing the unsigned zone)"
echo "new IN A 192.0.2.2" >>"$ZONES/example.test.zone"
out=$(sidecar sign "$ZONE" 2>&1)
rc=$?
check "$T: tdnskrs-nsd sign $ZONE" "rc=$rc: $(tr '\n' ' ' <<<"$out")" eval '[ $rc -eq 0 ] && grep -q "nsd-control reload $ZONE: ok" <<<"$out"'
check_within 10 "$T: after sign the serial increased and the edit is served, signed by ZSK $ZSK2" \
    '"serial $SERIAL_BEFORE → $(soa_serial), new.$ZONE: $(qdig "new.$ZONE" A +dnssec +short | xargs)"' \
    eval '[ "$(soa_serial)" -gt "$SERIAL_BEFORE" ] &&
        [ "$(qdig "new.$ZONE" A +dnssec +noall +answer | awk '\''$4 == "RRSIG" { print $11 }'\'')" = "$ZSK2" ]'
[ "${DEMO:-0}" = 1 ] && sed 's/^/tdnskrs-nsd sign: /' <<<"$out" | show

say "tdnskrs-nsd status / keys"
st=$(sidecar status 2>&1)
check "$T: tdnskrs-nsd status shows node $NODE, the NOTIFY address and 2 keys" "$(tr '\n' ' ' <<<"$st")" \
    eval 'grep -q "^node: *$NODE" <<<"$st" && grep -q "127.0.0.1:$NOTIFY_PORT" <<<"$st" && grep -q "^keys: *2$" <<<"$st"'
keys_out=$(sidecar keys 2>&1)
check "$T: tdnskrs-nsd keys lists KSK $KSK and ZSK $ZSK2 as active" "$(tr '\n' ' ' <<<"$keys_out")" \
    eval 'grep -qE "^$ZONE	key $KSK	algorithm 13	KSK	active" <<<"$keys_out" && grep -qE "^$ZONE	key $ZSK2	algorithm 13	ZSK	active" <<<"$keys_out"'
if [ "${DEMO:-0}" = 1 ]; then
    show <<<"$st"
    show <<<"$keys_out"
fi

# --- timing: distribute → new RRSIG, five ZSK rolls ------------------------------------------

zsk_roll_times 30
check "$T: five more ZSK rolls, each followed by RRSIGs of the new ZSK" "times: ${TIMES[*]}" \
    eval '! grep -q fail <<<"${TIMES[*]}"'
echo "TIMING: nsd distribute→RRSIG median $(printf '%s\n' "${TIMES[@]}" | sort -n | sed -n 3p) s (n=5: ${TIMES[*]})"

# --- survival and stop -----------------------------------------------------------------------

check "$T: NSD is still the same process (pid $NSD_PID)" "pid gone or pid-file differs" \
    same_process "$NSD_PID" "$TMP/nsd/nsd.pid"
check "$T: no errors in NSD's log" "$(nsd_errors | head -2 | tr '\n' ' ')" eval '[ -z "$(nsd_errors)" ]'
check "$T: no errors in the sidecar's log (other.test.'s failure aside)" \
    "$(grep -iE 'error' "$SLOG" | grep -v other.test. | head -2 | tr '\n' ' ')" \
    eval '! grep -iE "error" "$SLOG" | grep -qv other.test.'

say "tdnskrs-nsd: SIGTERM; nsd-control stop; tdns-kdc stopped"
kill -TERM "$SIDECAR_PID"
stopped_cleanly "$SIDECAR_PID" 15 "$T: tdnskrs-nsd exited 0 on SIGTERM" && SIDECAR_PID=""
"${NSDC[@]}" stop >/dev/null 2>&1
stopped_cleanly "$NSD_PID" 20 "$T: nsd-control stop, nsd exited cleanly" && NSD_PID=""

exit $((FAILURES > 0))
