#!/usr/bin/env bash
# Tests/knot/run.sh — the KRS inside Knot DNS, end to end on 127.0.0.1:
#   tdns-kdc (init, zone, enrollment package naming knotd's own port for NOTIFYs, serve) →
#   `tdns-krs enroll` writes the node's state_dir/krs.conf → knotd loads mod-tdnskrs.so with
#   `state-dir:` and serves example.test. (dnssec-signing, manual policy) → the KDC NOTIFYs
#   knotd, the module hands the NOTIFY to the library, whose worker fetches, installs the keys
#   into Knot's KASP database and confirms → knotd signs with exactly those keys (DNSKEY and
#   RRSIG key tags) → a ZSK roll, the delete of the old ZSK → `knotc reload` three times while
#   knotd keeps answering, the new module instance handles later distributions → the time
#   from `tdns-kdc distribute` to the new RRSIG, median of 5 ZSK rolls (a TIMING: line).
#
# Output: "PASS: …" / "FAIL: … — reason" lines; DEMO=1 adds "==>" narration and the proof.
# Everything listens on 127.0.0.1, high ports, in a temporary directory; knotd has no remotes,
# so it sends nothing anywhere; every process this script starts is stopped on exit.
# KEEP=1 keeps the directory (knotd.log, kdc.log) even when everything passed.
# VALGRIND=1 runs knotd under valgrind memcheck and checks its reports after `knotc stop`.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=knot-krs
[ "${VALGRIND:-0}" = 1 ] && T=knot-krs-valgrind
[ "${TDNSKRS_INSTALLED:-0}" = 1 ] && T=$T-installed
PLUGIN=$KNOT_PLUGIN
KDC_BIN=$BIN_DIR/tdns-kdc
KRS_BIN=$BIN_DIR/tdns-krs
ZONE=example.test.
NODE=node1.test.
CONTROL=kdc.test.
TMP=""
KNOTD_PID=""
KDC_PID=""

cleanup() {
    stop_server "$KNOTD_PID" knotc -c "$TMP/knot.conf" -t 5 stop
    stop_pid "$KDC_PID"
    finish_tmp "files, knotd.log and kdc.log"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "knot, knot-dnsutils, iproute2, python3" knotd knotc keymgr dig ss python3
require_built "make lib plugins bin, or with TDNSKRS_INSTALLED=1 the Debian packages" "$PLUGIN" "$KDC_BIN" "$KRS_BIN"

TMP=$(mktemp -d /tmp/tdnskrs-knotkrs.XXXXXX)
DNS_PORT=$(free_port) && KDC_PORT=$(free_port) ||
    { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
K=$TMP/kdc S=$TMP/node KEYS=$TMP/keys LOG=$TMP/knotd.log
mkdir -p "$K" "$S" "$KEYS" "$TMP/run" "$TMP/db" "$TMP/zones"

# (qdig, dnskey_tags, rrsig_tags, status_txt, has_all, show_keys, kdc, new_key, distribute…:
# Tests/hosting/lib.sh)
has_none() { # has_none "LIST" TAG... : no TAG is in LIST
    local list=" $1 " t
    shift
    for t in "$@"; do case $list in *" $t "*) return 1 ;; esac; done
}
KNOTC=(knotc -c "$TMP/knot.conf" -t 10)

# --- the KDC ---------------------------------------------------------------------------------

say "tdns-kdc: control zone $CONTROL on 127.0.0.1#$KDC_PORT, zone $ZONE, enrollment package for $NODE"
say "  NOTIFYs for $NODE go to 127.0.0.1#$DNS_PORT: knotd's own port"
check "$T: tdns-kdc init, zone add, enrollment package" "a tdns-kdc command failed" \
    kdc_setup "$CONTROL" "127.0.0.1:$DNS_PORT"
kdc_serve
check_within 15 "$T: tdns-kdc serve listening" '"not listening on 127.0.0.1:$KDC_PORT: $(tail -1 "$TMP/kdc.log" 2>/dev/null)"' \
    kdc_listening

say "tdns-krs enroll --state $S … --notify 127.0.0.1:$DNS_PORT --key-dir $KEYS"
enrolled "$T: node enrolled with tdns-krs enroll" \
    "$KRS_BIN" enroll --state "$S" "$TMP/node.pkg" --notify "127.0.0.1:$DNS_PORT" --key-dir "$KEYS"

# --- knotd -----------------------------------------------------------------------------------

{
    echo "\$ORIGIN example.test."
    example_zone
} >"$TMP/zones/example.test.zone"
# Both ways of giving krs_init settings are used: a `config:` file and `setting:` items.
printf '%s\n' "# extra KRS settings (krs_init config= file)" "keymgr=$(command -v keymgr)" \
    "knotc=$(command -v knotc)" >"$TMP/krs-extra.conf"
# command_timeout bounds every keymgr/knotc run (and so any stall of knotd's control).
SETTINGS="setting: [ \"knot_conf=$TMP/knot.conf\", \"command_timeout=5\" ]"
{
    knot_conf_head
    cat <<EOF

mod-tdnskrs:
  - id: default
    state-dir: "$S"
    key-dir: "$KEYS"
    config: "$TMP/krs-extra.conf"
    $SETTINGS

policy:
  - id: manual
    manual: on
    algorithm: ecdsap256sha256

template:
  - id: default
    storage: "$TMP/zones"
    global-module: mod-tdnskrs/default

zone:
  - domain: $ZONE
    file: example.test.zone
    dnssec-signing: on
    dnssec-policy: manual
EOF
} >"$TMP/knot.conf"
if out=$("${KNOTC[@]}" conf-check 2>&1); then
    pass "$T: knotc conf-check accepts the generated knot.conf (module section with state-dir, key-dir, setting)"
else
    fail "$T: knotc conf-check accepts the generated knot.conf" "$(tail -1 <<<"$out")"
fi

# The operators' example, with its paths pointed into the scratch directory. It has no
# `module:` section (knotd loads its module directory by itself); for the build tree's module
# the test adds one, as the example's comment says for a module kept elsewhere.
sed -e "s|/run/knot|$TMP/example-run|g; s|\"/var/lib/knot\"|\"$TMP/db\"|; s|192.0.2.10@53|127.0.0.1@$DNS_PORT|" \
    -e "/^ *user: /d" "$REPO_ROOT/Examples/knot.conf" |
    awk -v section="$(knot_module_section)" '/^mod-tdnskrs:/ && section != "" { print substr(section, 2); print "" } { print }' \
    >"$TMP/example.conf"
check "$T: Examples/knot.conf passes knotc conf-check" "$(knotc -c "$TMP/example.conf" conf-check 2>&1 | grep -v warning | tail -1)" \
    eval 'knotc -c "$TMP/example.conf" conf-check >/dev/null 2>&1'

say "knotd on 127.0.0.1@$DNS_PORT: zone $ZONE (dnssec-signing: on, policy manual), global module mod-tdnskrs/default"
say "  mod-tdnskrs: state-dir: $S, key-dir: $KEYS, config: krs-extra.conf ($(grep -v '^#' "$TMP/krs-extra.conf" | xargs)), $SETTINGS"
# VALGRIND=1: knotd itself runs under valgrind memcheck, the whole flow with it, and a check
# after `knotc stop` reads the reports. One report that is not ours is suppressed by its exact
# frames: ld.so's strncmp over the module's $ORIGIN rpath (valgrind does not redirect ld.so's
# own string functions, so their word-sized reads look invalid). Anything else — any error in
# knotd, libtdnskrs or the module — makes knotd exit 99 and fails below.
WRAP=()
STARTUP=30
if [ "${VALGRIND:-0}" = 1 ]; then
    cat >"$TMP/knotd.supp" <<'SUPP'
{
   ld.so strncmp reads whole words of the rpath string (not redirected by valgrind)
   Memcheck:Addr8
   fun:strncmp
   fun:is_dst
}
SUPP
    WRAP=(valgrind --quiet --error-exitcode=99 --leak-check=no --suppressions="$TMP/knotd.supp"
          --log-file="$TMP/valgrind.%p.log")
    STARTUP=120
fi
"${WRAP[@]}" knotd -c "$TMP/knot.conf" >"$LOG" 2>&1 &
KNOTD_PID=$!
enrolled_or_died() { ! is_alive "$KNOTD_PID" || status_txt | grep -q 'enrolled=yes'; }
wait_for "$STARTUP" enrolled_or_died
if ! is_alive "$KNOTD_PID"; then
    fail "$T: knotd started with the KRS module" "exited: $(grep -iE 'tdnskrs|error|fatal' "$LOG" | tail -2 | tr '\n' ' ')"
    exit 1
fi
check "$T: knotd started, status.tdnskrs. TXT says node $NODE enrolled" "status: $(status_line)" \
    eval 'status_txt | grep -q "node_id=$NODE enrolled=yes"'
LOADED="tdnskrs: KRS started, NOTIFYs for its control zone are taken on knotd's port"
UNLOADED="tdnskrs module unloaded (KRS stopped)"
check_within 5 "$T: knotd logged '$LOADED'" '"$(grep -F tdnskrs "$LOG" | tail -2 | one_line)"' \
    grep -qF "$LOADED" "$LOG"
check "$T: the library opened no NOTIFY listener of its own (status listening=no)" "$(status_line)" \
    eval 'status_txt | grep -q "listening=no"'

# --- the NOTIFY on the wire ------------------------------------------------------------------

# Raw NOTIFYs (no dnspython needed): what knotd sends back, byte by byte.
notify_probe() { # notify_probe QNAME CLASS EDNS(0/1): prints "rcode qr aa opcode id_ok q_ok arcount opt"
    python3 - "$DNS_PORT" "$@" <<'EOF'
import random, socket, struct, sys
port, qname, qclass, edns = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
qid = random.randrange(1, 65536)
name = b"".join(bytes([len(l)]) + l.encode() for l in qname.rstrip(".").split(".")) + b"\0"
question = name + struct.pack("!HH", 6, qclass)  # SOA
msg = struct.pack("!HHHHHH", qid, (4 << 11) | 0x0400, 1, 0, 0, 1 if edns else 0) + question
if edns:
    msg += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(msg, ("127.0.0.1", port))
r = s.recv(65535)
rid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", r[:12])
q_ok = qd == 1 and r[12:12 + len(question)] == question
opt = edns and ar == 1 and r[12 + len(question):][:3] == b"\0\0\x29"
print(flags & 0xF, flags >> 15, (flags >> 10) & 1, (flags >> 11) & 0xF, int(rid == qid), int(q_ok), ar, int(opt))
EOF
}
say "raw NOTIFYs to knotd's port: for the control zone (EDNS), with class CH, for a zone nobody serves (krs_notify_decide)"
got=$(notify_probe "KDC.Test." 1 1 2>&1)
# The control zone itself names no distribution: REFUSED (contract §4; NOERROR is only for a
# queued <distribution-id>.<control zone>, which the ping below goes through).
check "$T: NOTIFY $CONTROL (EDNS) → REFUSED from the library, QR, AA, opcode NOTIFY, same ID and question (case kept), OPT added by knotd" \
    "got '$got' (rcode qr aa opcode id_ok q_ok arcount opt)" [ "$got" = "5 1 1 4 1 1 1 1" ]
got=$(notify_probe "kdc.test." 3 0 2>&1)
# Class is part of "for the KRS" (krs_notify_decide): a CH NOTIFY is knotd's to answer (NOTIMP,
# no AA), not the library's.
check "$T: NOTIFY $CONTROL class CH is not the KRS's: knotd answers it itself (NOTIMP, no AA)" \
    "got '$got' (rcode qr aa opcode id_ok q_ok arcount opt)" [ "$got" = "4 1 0 4 1 1 0 0" ]
got=$(notify_probe "other.test." 1 0 2>&1)
check "$T: NOTIFY for another zone passes to knotd untouched (NOTAUTH)" \
    "got '$got' (rcode qr aa opcode id_ok q_ok arcount opt)" eval '[ "${got%% *}" = 9 ]'
check "$T: version.tdnskrs. TXT answered" "got '$(dig_txt "$DNS_PORT" version.tdnskrs.)'" \
    eval '[ -n "$(dig_txt "$DNS_PORT" version.tdnskrs.)" ]'

# --- distributions ---------------------------------------------------------------------------

say "tdns-kdc distribute --op ping: NOTIFY → knotd → module → library worker fetches over TCP, confirms"
D0=$(distribute --op ping)
check_within 40 "$T: ping distribution confirmed (NOTIFY taken on knotd's port, fetched and confirmed by the worker)" \
    '"state $(dist_state "$D0"); $(cat "$TMP/distribute.err")"' confirmed "$D0"
check_within 5 "$T: status.tdnskrs. TXT shows the confirmed ping" '"$(status_line)"' \
    eval 'status_txt | grep -q "last_distribution=$D0 result=[a-z]* confirmed=yes"'

signed_with() { # signed_with KSK ZSK: DNSKEY holds both, DNSKEY signed by KSK, SOA signed by ZSK only
    has_all "$(dnskey_tags)" "$1" "$2" && has_all "$(rrsig_tags DNSKEY)" "$1" && [ "$(rrsig_tags SOA)" = "$2" ]
}
reload_check() { # reload_check N: knotc reload, new instance up and old one gone, still answering
    local n=$1
    say "knotc reload (#$n)"
    check_command "$T: knotc reload #$n" "${KNOTC[@]}" reload
    check_within 20 "$T: new KRS instance started and old one stopped after knotc reload #$n" \
        '"log has $(count_lines "$LOG" "$LOADED") starts / $(count_lines "$LOG" "$UNLOADED") stops, want $((n + 1)) / $n"' \
        swapped "$n"
    check_within 10 "$T: still answering after knotc reload #$n (status enrolled, zone signed)" \
        "\"status '\$(status_line)', DNSKEY '\$(dnskey_tags)'\"" \
        eval 'status_txt | grep -q "enrolled=yes" && [ -n "$(rrsig_tags SOA)" ]'
}

new_ksk_zsk
check_within 40 "$T: KDC status shows both distributions confirmed" '"states: $(dist_state "$D1") / $(dist_state "$D2")"' \
    eval 'confirmed "$D1" && confirmed "$D2"'
check_within 30 "$T: knotd signs $ZONE with the distributed keys (DNSKEY $KSK+$ZSK, RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' signed_with "$KSK" "$ZSK"
check "$T: knotd holds only the distributed keys (no key of its own)" "DNSKEY tags: $(dnskey_tags)" \
    eval '[ "$(dnskey_tags)" = "$(printf "%s\n" "$KSK" "$ZSK" | sort -n | xargs)" ]'
show_keys_proof
show_status_proof
check "$T: status.tdnskrs. TXT shows the confirmed last distribution" "$(status_line)" \
    eval 'status_txt | grep -qE "last_distribution=($D1|$D2) result=installed confirmed=yes"'
check "$T: status.tdnskrs. TXT is the operators' format, whole — the same five strings as in named (listening=no, key_changes installed=2)" \
    "$(status_line)" eval 'status_format_ok && status_txt | grep -q "listening=no running=yes" && status_txt | grep -q "key_changes installed=2 "'

# TDNSKRS_SHORT=1 (Tests/deb, on the installed packages): the flow up to here — enroll,
# distribute, knotd signing with the distributed keys' tags — without reloads, rolls or timings.
if [ "${TDNSKRS_SHORT:-0}" = 1 ]; then
    exit $((FAILURES > 0))
fi

reload_check 1

say "ZSK roll: a new ZSK from the KDC; the old one stops signing (retired, still published)"
ZSK2=$(new_key "$ZONE" zsk)
D3=$(distribute --zone "$ZONE" --key "$ZSK2")
check_within 40 "$T: new ZSK $ZSK2 distributed and confirmed (by the instance loaded at reload #1)" '"state $(dist_state "$D3")"' \
    confirmed "$D3"
check_within 30 "$T: RRSIG SOA now by $ZSK2 only; $ZSK no longer signs" "\"RRSIG SOA '\$(rrsig_tags SOA)'\"" \
    eval '[ "$(rrsig_tags SOA)" = "$ZSK2" ]'
check "$T: retired ZSK $ZSK still in the DNSKEY set next to $KSK and $ZSK2" "DNSKEY tags: $(dnskey_tags)" \
    eval 'has_all "$(dnskey_tags)" "$KSK" "$ZSK" "$ZSK2"'

reload_check 2

say "tdns-kdc distribute --op delete_key for the old ZSK $ZSK"
D4=$(distribute --op delete_key --zone "$ZONE" --key "$ZSK")
check_within 40 "$T: delete of ZSK $ZSK distributed and confirmed" '"state $(dist_state "$D4"); $(cat "$TMP/distribute.err")"' \
    confirmed "$D4"
check_within 30 "$T: ZSK $ZSK gone from the DNSKEY set; $KSK and $ZSK2 remain, $ZSK2 signs" \
    "\"DNSKEY tags '\$(dnskey_tags)', RRSIG SOA '\$(rrsig_tags SOA)'\"" \
    eval 'has_none "$(dnskey_tags)" "$ZSK" && signed_with "$KSK" "$ZSK2"'
if [ "${DEMO:-0}" = 1 ]; then
    say "proof: after the roll and the delete (KSK $KSK, ZSK $ZSK2; $ZSK deleted)"
    show_keys | show
fi

reload_check 3

# Time from `tdns-kdc distribute` to the new ZSK's RRSIG in dig, five rolls.
say "timing: 5 ZSK rolls, each from tdns-kdc distribute to the new RRSIG SOA tag in dig"
times=()
prev=$ZSK2
all_ok=1
for i in 1 2 3 4 5; do
    z=$(new_key "$ZONE" zsk)
    t0=$(date +%s.%N)
    d=$(distribute --zone "$ZONE" --key "$z")
    if wait_for 60 eval '[ "$(rrsig_tags SOA)" = "$z" ]'; then
        t1=$(date +%s.%N)
        times+=("$(python3 -c "print(f'{$t1 - $t0:.3f}')")")
    else
        all_ok=0
    fi
    wait_for 40 confirmed "$d" || all_ok=0
    prev=$z
done
check "$T: 5 more ZSK rolls after the reloads, each signing within 60 s and confirmed (new instance)" \
    "only ${#times[@]} of 5 rolls signed; last RRSIG SOA '$(rrsig_tags SOA)', want $prev" [ $all_ok = 1 ]
if [ "${#times[@]}" -gt 0 ] && [ "${VALGRIND:-0}" != 1 ]; then  # (timings under valgrind say nothing)
    median=$(printf '%s\n' "${times[@]}" | sort -n | python3 -c "import sys; v=[float(x) for x in sys.stdin]; print(f'{v[len(v)//2]:.3f}')")
    say "timing: each roll ${times[*]} s"
    echo "TIMING: knot distribute→RRSIG median $median s (n=${#times[@]})"
fi


# --- survival and stop -----------------------------------------------------------------------

check "$T: knotd is still the same process (pid $KNOTD_PID)" "pid gone or pid-file differs" \
    same_process "$KNOTD_PID" "$TMP/run/knot.pid"
check "$T: no crash/assertion/fatal lines in knotd's log" \
    "$(grep -iE 'crash|assert|fatal|segfault|critical' "$LOG" | head -1)" \
    eval '! grep -qiE "crash|assert|fatal|segfault|critical" "$LOG"'
check "$T: no module errors in knotd's log" "$(grep -F "mod-tdnskrs" "$LOG" | grep -iE 'error|failed' | head -1)" \
    eval '! grep -F "mod-tdnskrs" "$LOG" | grep -qiE "error|failed"'

# --- knotc reload while the KRS is inside knotc ------------------------------------------------

# knotd runs `knotc reload` in the thread that also serves knotc: while it unloads the old
# module instance (which joins the KRS worker), a knotc the worker runs cannot be served.
# A knotc that starts 2 s late holds the worker there; the reload must not wait for it,
# and the distribution must still be installed (by the new instance) and confirmed.
printf '%s\n' '#!/bin/sh' '# test double: knotc, 2 s late for zone-keys-load' \
    "case \"\$*\" in *zone-keys-load*) : >\"$TMP/knotc-slow.in\"; sleep 2 ;; esac" \
    "exec $(command -v knotc) \"\$@\"" >"$TMP/knotc-slow"
chmod +x "$TMP/knotc-slow"
cp "$TMP/knot.conf" "$TMP/knot.conf.good"
sed -i "s|^    state-dir: .*|&\\n    setting: \"knotc=$TMP/knotc-slow\"|" "$TMP/knot.conf"
before=$(count_lines "$LOG" "$LOADED")
"${KNOTC[@]}" reload >/dev/null 2>&1
wait_for 10 eval '[ "$(count_lines "$LOG" "$LOADED")" -gt "$before" ]'
say "knotc reload while the KRS worker is inside a (slow) knotc zone-keys-load"
z=$(new_key "$ZONE" zsk)
d=$(distribute --zone "$ZONE" --key "$z")
wait_for 10 test -e "$TMP/knotc-slow.in"
cp "$TMP/knot.conf.good" "$TMP/knot.conf"
t0=$(date +%s.%N)
out=$("${KNOTC[@]}" reload 2>&1)
rc=$?
took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
check "$T: knotc reload during the worker's knotc run returns promptly (took $took s, want < 8 s)" \
    "rc=$rc: $out" eval '[ $rc -eq 0 ] && python3 -c "import sys; sys.exit(0 if $took < 8 else 1)"'
caught_state() { echo "state $(dist_state "$d"), RRSIG SOA '$(rrsig_tags SOA)'; $(grep -F "$d" "$LOG" | tail -1 | cut -c1-200)"; }
check_within 60 "$T: the distribution caught by that reload is installed and confirmed (ZSK $z signs)" '"$(caught_state)"' \
    eval 'confirmed "$d" && [ "$(rrsig_tags SOA)" = "$z" ]'

# --- a KRS that cannot start leaves knotd running ----------------------------------------------

say "a broken module section (unknown setting), knotc reload: knotd keeps serving, status tells why"
cp "$TMP/knot.conf" "$TMP/knot.conf.good"
sed -i 's|^    state-dir: .*|&\n    setting: "no_such_setting=1"|' "$TMP/knot.conf"
out=$("${KNOTC[@]}" reload 2>&1)
check "$T: knotc reload with a KRS setting the library refuses" "rc/out: $out" eval '[ -n "$out" ]'
refused_state() { echo "status '$(status_line)'; log: $(grep -F no_such_setting "$LOG" | tail -1)"; }
check_within 15 "$T: knotd logged the refused setting and stayed up; status.tdnskrs. says krs=failed" '"$(refused_state)"' \
    eval 'is_alive "$KNOTD_PID" && grep -q "no_such_setting" "$LOG" && status_txt | grep -q "krs=failed: krs_init failed"'
check "$T: knotd still answers with the broken module section (signed $ZONE)" "version '$(dig_txt "$DNS_PORT" version.tdnskrs.)'" \
    eval '[ -n "$(dig_txt "$DNS_PORT" version.tdnskrs.)" ] && [ -n "$(rrsig_tags SOA)" ]'
cp "$TMP/knot.conf.good" "$TMP/knot.conf"
before=$(count_lines "$LOG" "$LOADED")
"${KNOTC[@]}" reload >/dev/null 2>&1
d=$(distribute --op ping)
check_within 40 "$T: configuration repaired, knotc reload: the KRS is back and confirms a ping" \
    '"starts $(count_lines "$LOG" "$LOADED") (was $before), state $(dist_state "$d")"' \
    eval '[ "$(count_lines "$LOG" "$LOADED")" -gt "$before" ] && confirmed "$d"'

say "knotc stop; tdns-kdc stopped"
"${KNOTC[@]}" stop >/dev/null 2>&1
if stopped_cleanly "$KNOTD_PID" $((STARTUP * 2 / 3)) "$T: knotc stop, knotd exited cleanly"; then
    KNOTD_PID=""
    [ "${VALGRIND:-0}" = 1 ] && valgrind_clean knotd
fi

exit $((FAILURES > 0))
