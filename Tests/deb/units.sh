# Tests/deb/units.sh — sourced by Tests/deb/run.sh once the packages are installed: each unit's
# own ExecStart= in the unit's sandbox (unit-sandbox.py), on the packages' state directories and
# conffiles, doing its real job:
#   tdns-kdc.service             tdns-kdc serve on /var/lib/tdns-kdc (created by `init` as tdnskrs)
#   tdnskrs-nsd.service          the sidecar with NSD: enroll, KSK+ZSK, dnssec-signzone, nsd-control,
#                                NSD (as user nsd) serves the zone signed with the key tags
#   tdns-krs.service + drop-in   as user bind with named (rndc loadkeys), then as user knot with
#                                knotd (keymgr import-bind, knotc): the drop-ins
#                                and ownership changes its unit header documents
# Servers are this test's own, on 127.0.0.1 high ports, configured under $SB (/run: PrivateTmp=
# hides /tmp from the services).

# free_port, and also no socket at all on it (other suites' clients may hold it on this machine).
unused_port() {
    local p
    while p=$(free_port); do
        [ -z "$(ss -Hantu "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
    done
    return 1
}
K=/var/lib/tdns-kdc
ZONE=example.test.
# The KDC's commands run as the service's user on the service's state, as an operator runs them.
kdc() { runuser -u tdnskrs -- /usr/bin/tdns-kdc "$@" --state "$K"; }
# in_sandbox NAME UNIT [DROPIN...]: starts the unit's ExecStart= in its sandbox (log $TMP/NAME.log,
# PID of the program in $TMP/NAME.pid); SANDBOX_PID is the wrapper, which passes SIGTERM on.
in_sandbox() {
    local name=$1
    shift
    rm -f "$TMP/$name.pid"
    /usr/bin/python3 "$SANDBOX" --pidfile "$TMP/$name.pid" "$@" -- >"$TMP/$name.log" 2>&1 &
    SANDBOX_PID=$!
    PIDS+=("$SANDBOX_PID")
    wait_for 10 test -s "$TMP/$name.pid"
}
# sandboxed NAME USER [CAPEFF]: the program of in_sandbox NAME runs as USER, with no new
# privileges, the effective capabilities CAPEFF (default none) and a seccomp filter.
sandboxed() {
    local pid st caps=${3:-0000000000000000}
    pid=$(cat "$TMP/$1.pid" 2>/dev/null) || return 1
    st=$(cat "/proc/$pid/status" 2>/dev/null) || return 1
    [ "$(stat -c %U "/proc/$pid")" = "$2" ] && grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$st" &&
        grep -q '^Seccomp:[[:space:]]*2' <<<"$st" && grep -q "^CapEff:[[:space:]]*$caps" <<<"$st"
}
# stop_sandbox: SIGTERM to the wrapper (passed on to the program), which must exit.
stop_sandbox() {
    kill -TERM "$SANDBOX_PID" 2>/dev/null
    wait_exit "$SANDBOX_PID" 15 || kill_pid "$SANDBOX_PID"
    wait "$SANDBOX_PID" 2>/dev/null
}
condition_path() { sed -n 's/^ConditionPathExists=//p' "/lib/systemd/system/$1.service"; }
private_modes() { stat -c '%U %a' "$1"/*.private 2>/dev/null | sort -u | xargs; }
mkdir -p "$SB/pkg"
chown tdnskrs:tdnskrs "$SB/pkg"
# enrollment_package NODE NOTIFY OWNER: a package for NODE, activated, readable by OWNER; prints its path.
enrollment_package() {
    kdc enroll generate "$1" --out "$SB/pkg/$1pkg" --notify "$2" >/dev/null 2>&1 &&
        kdc enroll activate "$1" >/dev/null 2>&1 &&
        cp "$SB/pkg/$1pkg" "$SB/$1pkg.$3" && chown "$3" "$SB/$1pkg.$3" && chmod 0600 "$SB/$1pkg.$3" &&
        echo "$SB/$1pkg.$3"
}

# --- tdns-kdc.service ------------------------------------------------------------------------

KDC_PORT=$(unused_port)
check "$T: units: tdns-kdc init and zone add as tdnskrs on /var/lib/tdns-kdc" "$(kdc status 2>&1 | tail -1)" \
    eval 'kdc init --control-zone kdc.test. --listen "127.0.0.1:$KDC_PORT" >/dev/null 2>&1 && kdc zone add "$ZONE" >/dev/null 2>&1'
check "$T: units: tdns-kdc.service's ConditionPathExists= ($(condition_path tdns-kdc)) exists once initialised" "missing" \
    test -e "$(condition_path tdns-kdc)"
in_sandbox kdc /lib/systemd/system/tdns-kdc.service
check_within 15 "$T: units: tdns-kdc serve in tdns-kdc.service's sandbox, listening on 127.0.0.1:$KDC_PORT" \
    '"$(tail -2 "$TMP/kdc.log" | one_line)"' kdc_listening
check "$T: units: tdns-kdc runs as tdnskrs, no new privileges, only CAP_NET_BIND_SERVICE, seccomp filter" \
    "$(grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff)' "/proc/$(cat "$TMP/kdc.pid" 2>/dev/null)/status" 2>&1 | one_line)" \
    sandboxed kdc tdnskrs 0000000000000400

# --- tdnskrs-nsd.service: NSD, dnssec-signzone, nsd-control --------------------------------------

NODE=nsd1.test.
NOTIFY_PORT=$(unused_port) DNS_PORT=$(unused_port) CTL_PORT=$(unused_port)
N=$SB/nsd
mkdir -p "$N/ctl" "$N/db" "$N/unsigned"
chown nsd:nsd "$N/db"
example_zone >"$N/unsigned/example.test.zone"
nsd-control-setup -d "$N/ctl" >"$TMP/nsd-control-setup.log" 2>&1
# The one-time step of the unit's header: what nsd-control reads, readable by group nsd.
chgrp nsd "$N/ctl/nsd_control.key" "$N/ctl/nsd_control.pem" "$N/ctl/nsd_server.pem"
chmod 0640 "$N/ctl/nsd_control.key" "$N/ctl/nsd_control.pem" "$N/ctl/nsd_server.pem"
cat >"$N/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1
    port: $DNS_PORT
    do-ip6: no
    username: nsd
    database: ""
    chroot: ""
    zonesdir: "$N/db"
    zonelistfile: "$N/db/zone.list"
    xfrdfile: "$N/db/xfrd.state"
    xfrdir: "$N/db"
    pidfile: "$N/db/nsd.pid"
    logfile: "$N/db/nsd.log"
    server-count: 1
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: $CTL_PORT
    server-key-file: "$N/ctl/nsd_server.key"
    server-cert-file: "$N/ctl/nsd_server.pem"
    control-key-file: "$N/ctl/nsd_control.key"
    control-cert-file: "$N/ctl/nsd_control.pem"
zone:
    name: "$ZONE"
    zonefile: "/var/lib/tdnskrs-nsd/example.test.zone.signed"
EOF
# The conffile, edited as an operator would: the package's paths, this test's NSD and ports.
sed -e "s|^notify_listen=.*|notify_listen=127.0.0.1:$NOTIFY_PORT|" -e "s|^zone_dir=.*|zone_dir=$N/unsigned|" \
    -e "s|^nsd_conf=.*|nsd_conf=$N/nsd.conf|" -i /etc/tdnskrs/nsd.conf
check "$T: units: /etc/tdnskrs/nsd.conf keeps the packaged state_dir, key_dir, signed_dir" "$(grep -E '^(state|key|signed)_dir' /etc/tdnskrs/nsd.conf | one_line)" \
    eval 'grep -qx state_dir=/var/lib/tdnskrs /etc/tdnskrs/nsd.conf && grep -qx key_dir=/var/lib/tdnskrs/keys /etc/tdnskrs/nsd.conf &&
          grep -qx signed_dir=/var/lib/tdnskrs-nsd /etc/tdnskrs/nsd.conf'
PKG=$(enrollment_package "$NODE" "127.0.0.1:$NOTIFY_PORT" tdnskrs)
enrolled "$T: units: tdnskrs-nsd enroll as tdnskrs with the packaged /etc/tdnskrs/nsd.conf" \
    runuser -u tdnskrs -- /usr/bin/tdnskrs-nsd enroll --config /etc/tdnskrs/nsd.conf "$PKG" --notify "127.0.0.1:$NOTIFY_PORT"
check "$T: units: tdnskrs-nsd.service's ConditionPathExists= ($(condition_path tdnskrs-nsd)) exists once enrolled" "missing" \
    test -e "$(condition_path tdnskrs-nsd)"
in_sandbox sidecar /lib/systemd/system/tdnskrs-nsd.service
check_within 15 "$T: units: tdnskrs-nsd run in tdnskrs-nsd.service's sandbox, NOTIFY listener up" '"$(tail -2 "$TMP/sidecar.log" | one_line)"' \
    eval '[ -n "$(ss -Hlnu "sport = :$NOTIFY_PORT" 2>/dev/null)" ]'
check "$T: units: tdnskrs-nsd runs as tdnskrs (group nsd), no new privileges, no capabilities, seccomp filter" \
    "$(grep -E '^(Uid|Gid|NoNewPrivs|Seccomp|CapEff)' "/proc/$(cat "$TMP/sidecar.pid" 2>/dev/null)/status" 2>&1 | one_line)" \
    eval 'sandboxed sidecar tdnskrs && [ "$(stat -c %G "/proc/$(cat "$TMP/sidecar.pid")")" = nsd ]'
check_within 15 "$T: units: the sidecar wrote the unsigned copy into /var/lib/tdnskrs-nsd" '"$(ls -l /var/lib/tdnskrs-nsd | one_line)"' \
    test -s /var/lib/tdnskrs-nsd/example.test.zone.signed
nsd -d -c "$N/nsd.conf" >"$TMP/nsd.out" 2>&1 &
NSD_PID=$!
check_within 30 "$T: units: NSD (as user nsd) serves $ZONE from /var/lib/tdnskrs-nsd (group nsd may read it)" \
    '"$(tail -2 "$N/db/nsd.log" "$TMP/nsd.out" 2>/dev/null | one_line)"' eval 'qdig "$ZONE" SOA +short | grep -q "^ns1.example.test."'
new_ksk_zsk
check_within 40 "$T: units: KSK $KSK and ZSK $ZSK confirmed by the sandboxed sidecar" '"states $(dist_state "$D1") / $(dist_state "$D2"); $(grep -iE "error|fail" "$TMP/sidecar.log" | tail -1)"' \
    eval 'confirmed "$D1" && confirmed "$D2"'
check_within 15 "$T: units: dnssec-signzone and nsd-control ran inside the sandbox (log: signzone ok, nsd-control reload ok)" \
    '"$(grep -E "signzone|nsd-control" "$TMP/sidecar.log" | tail -2 | one_line)"' \
    eval 'grep -q "signzone .*: ok" "$TMP/sidecar.log" && grep -q "nsd-control reload $ZONE: ok" "$TMP/sidecar.log"'
check_within 20 "$T: units: NSD serves $ZONE signed with the distributed keys (RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' eval 'has_all "$(dnskey_tags)" "$KSK" "$ZSK" && [ "$(rrsig_tags DNSKEY)" = "$KSK" ] && [ "$(rrsig_tags SOA)" = "$ZSK" ]'
check "$T: units: the distributed .private files in /var/lib/tdnskrs/keys are tdnskrs 0600" "$(private_modes /var/lib/tdnskrs/keys)" \
    [ "$(private_modes /var/lib/tdnskrs/keys)" = "tdnskrs 600" ]
check "$T: units: the signed zone is group nsd and group-readable (setgid signed_dir; others cannot enter it)" \
    "$(stat -c '%U:%G %a' /var/lib/tdnskrs-nsd/example.test.zone.signed)" \
    eval '[ "$(stat -c %G /var/lib/tdnskrs-nsd/example.test.zone.signed)" = nsd ] &&
          [ $(( 0$(stat -c %a /var/lib/tdnskrs-nsd/example.test.zone.signed) & 040 )) -ne 0 ]'
stop_sandbox
check "$T: units: SIGTERM stops the sidecar cleanly" "$(tail -2 "$TMP/sidecar.log" | one_line)" eval '! is_alive "$SANDBOX_PID"'
stop_server "$NSD_PID" nsd-control -c "$N/nsd.conf" stop
NSD_PID=""

# --- tdns-krs.service as user bind: named, rndc ------------------------------------------------

# own_krs_state USER: /var/lib/tdns-krs and keys/ handed to USER the way the unit's header says
# (dpkg-statoverride, so that an upgrade keeps it), emptied first.
own_krs_state() {
    find /var/lib/tdns-krs -mindepth 1 -maxdepth 1 ! -name keys -exec rm -rf {} +
    find /var/lib/tdns-krs/keys -mindepth 1 -delete
    local d
    for d in /var/lib/tdns-krs/keys /var/lib/tdns-krs; do
        dpkg-statoverride --remove "$d" >/dev/null 2>&1
        dpkg-statoverride --update --add "$1" "$1" 0700 "$d"
    done
}
dropin() { # dropin NAME LINE...: /etc/systemd/system/tdns-krs.service.d/tdnskrs-deb-test-NAME.conf
    mkdir -p /etc/systemd/system/tdns-krs.service.d
    DROPIN=/etc/systemd/system/tdns-krs.service.d/tdnskrs-deb-test-$1.conf
    shift
    printf '%s\n' "$@" >"$DROPIN"
}
krs_conf() { # krs_conf SETTING...: /etc/tdnskrs/krs.conf with the packaged dirs and SETTINGs
    { grep -E '^(state_dir|key_dir)=' "$TMP/krs.conf.dist"; printf '%s\n' "$@"; } >/etc/tdnskrs/krs.conf
}
cp /etc/tdnskrs/krs.conf "$TMP/krs.conf.dist"

NODE=bind1.test.
NOTIFY_PORT=$(unused_port) DNS_PORT=$(unused_port) CTL_PORT=$(unused_port)
B=$SB/bind
mkdir -p "$B/run"
rndc-confgen -a -k rndc-key -c "$B/rndc.key" >/dev/null 2>&1
cat >"$B/rndc.conf" <<EOF
include "$B/rndc.key";
options { default-key "rndc-key"; default-server 127.0.0.1; default-port $CTL_PORT; };
EOF
chgrp bind "$B/rndc.key" "$B/rndc.conf"
chmod 0640 "$B/rndc.key" "$B/rndc.conf"
example_zone >"$B/example.test.db"
cat >"$B/named.conf" <<EOF
include "$B/rndc.key";
controls { inet 127.0.0.1 port $CTL_PORT allow { 127.0.0.1; } keys { "rndc-key"; }; };
options {
    directory "$B";
    pid-file "$B/run/named.pid";
    session-keyfile "$B/run/session.key";
    managed-keys-directory "$B/run";
    listen-on port $DNS_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
zone "$ZONE" {
    type primary;
    file "$B/example.test.db";
    auto-dnssec maintain;
    inline-signing yes;
    key-directory "/var/lib/tdns-krs/keys";
};
EOF
own_krs_state bind
krs_conf key_store=bind rndc=/usr/sbin/rndc "rndc_conf=$B/rndc.conf"
dropin bind '[Service]' 'User=bind' 'Group=bind'
# As Debian runs it: as user bind, which owns the key directory (0700).
chown -R bind:bind "$B"
named -g -u bind -c "$B/named.conf" >"$TMP/named.log" 2>&1 &
NAMED_PID=$!
check_within 30 "$T: units: named (test instance) serves $ZONE unsigned, key-directory /var/lib/tdns-krs/keys" \
    '"$(grep -iE "error|fatal" "$TMP/named.log" | tail -1)"' eval 'qdig "$ZONE" SOA +short | grep -q "^ns1.example.test."'
PKG=$(enrollment_package "$NODE" "127.0.0.1:$NOTIFY_PORT" bind)
enrolled "$T: units: tdns-krs enroll as bind with /etc/tdnskrs/krs.conf (key_store=bind)" \
    runuser -u bind -- /usr/bin/tdns-krs enroll --config /etc/tdnskrs/krs.conf "$PKG" --notify "127.0.0.1:$NOTIFY_PORT"
check "$T: units: tdns-krs.service's ConditionPathExists= ($(condition_path tdns-krs)) exists once enrolled" "missing" \
    test -e "$(condition_path tdns-krs)"
in_sandbox krs-bind /lib/systemd/system/tdns-krs.service "$DROPIN"
check_within 15 "$T: units: tdns-krs run in tdns-krs.service's sandbox + drop-in User=bind, NOTIFY listener up" '"$(tail -2 "$TMP/krs-bind.log" | one_line)"' \
    eval '[ -n "$(ss -Hlnu "sport = :$NOTIFY_PORT" 2>/dev/null)" ]'
check "$T: units: tdns-krs runs as bind, no new privileges, no capabilities, seccomp filter" \
    "$(grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff)' "/proc/$(cat "$TMP/krs-bind.pid" 2>/dev/null)/status" 2>&1 | one_line)" sandboxed krs-bind bind
new_ksk_zsk
check_within 40 "$T: units: KSK $KSK and ZSK $ZSK confirmed by the sandboxed tdns-krs" '"states $(dist_state "$D1") / $(dist_state "$D2"); $(grep -iE "error|fail" "$TMP/krs-bind.log" | tail -1)"' \
    eval 'confirmed "$D1" && confirmed "$D2"'
check_within 15 "$T: units: rndc loadkeys ran inside the sandbox" '"$(grep -F rndc "$TMP/krs-bind.log" | tail -1)"' \
    grep -q "rndc loadkeys $ZONE: ok" "$TMP/krs-bind.log"
check_within 20 "$T: units: named signs $ZONE with the distributed keys (RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' eval 'has_all "$(dnskey_tags)" "$KSK" "$ZSK" && has_all "$(rrsig_tags DNSKEY)" "$KSK" && has_all "$(rrsig_tags SOA)" "$ZSK"'
check "$T: units: the .private files in /var/lib/tdns-krs/keys are bind 0600" "$(private_modes /var/lib/tdns-krs/keys)" \
    [ "$(private_modes /var/lib/tdns-krs/keys)" = "bind 600" ]
stop_sandbox
stop_server "$NAMED_PID" rndc -c "$B/rndc.conf" stop
NAMED_PID=""
rm -f "$DROPIN"

# --- tdns-krs.service as user knot: knotd, keymgr, knotc -----------------------------------------

NODE=knot1.test.
NOTIFY_PORT=$(unused_port) DNS_PORT=$(unused_port)
KN=$SB/knot
mkdir -p "$KN/run" "$KN/db" "$KN/zones"
{ echo "\$ORIGIN example.test."; example_zone; } >"$KN/zones/example.test.zone"
chown -R knot:knot "$KN/run" "$KN/db" "$KN/zones"
cat >"$KN/knot.conf" <<EOF
server:
    rundir: "$KN/run"
    user: knot:knot
    listen: 127.0.0.1@$DNS_PORT

control:
    listen: "$KN/run/knot.sock"

log:
  - target: stderr
    any: info

database:
    storage: "$KN/db"

policy:
  - id: manual
    manual: on
    algorithm: ecdsap256sha256

template:
  - id: default
    storage: "$KN/zones"

zone:
  - domain: $ZONE
    file: example.test.zone
    dnssec-signing: on
    dnssec-policy: manual
EOF
own_krs_state knot
krs_conf key_store=knot "knot_conf=$KN/knot.conf" command_timeout=10
# The unit header's Knot drop-in, with this test's KASP database instead of /var/lib/knot.
dropin knot '[Service]' 'User=knot' 'Group=knot' "ReadWritePaths=$KN/db"
knotd -c "$KN/knot.conf" >"$TMP/knotd.log" 2>&1 &
KNOTD_PID=$!
check_within 30 "$T: units: knotd (test instance, user knot) up, control socket $KN/run/knot.sock" '"$(tail -2 "$TMP/knotd.log" | one_line)"' \
    test -S "$KN/run/knot.sock"
PKG=$(enrollment_package "$NODE" "127.0.0.1:$NOTIFY_PORT" knot)
enrolled "$T: units: tdns-krs enroll as knot with /etc/tdnskrs/krs.conf (key_store=knot)" \
    runuser -u knot -- /usr/bin/tdns-krs enroll --config /etc/tdnskrs/krs.conf "$PKG" --notify "127.0.0.1:$NOTIFY_PORT"
in_sandbox krs-knot /lib/systemd/system/tdns-krs.service "$DROPIN"
check_within 15 "$T: units: tdns-krs run in tdns-krs.service's sandbox + drop-in User=knot, NOTIFY listener up" '"$(tail -2 "$TMP/krs-knot.log" | one_line)"' \
    eval '[ -n "$(ss -Hlnu "sport = :$NOTIFY_PORT" 2>/dev/null)" ]'
check "$T: units: tdns-krs runs as knot, no new privileges, no capabilities, seccomp filter" \
    "$(grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff)' "/proc/$(cat "$TMP/krs-knot.pid" 2>/dev/null)/status" 2>&1 | one_line)" sandboxed krs-knot knot
new_ksk_zsk
# The KSK arrives alone first: installed, but Knot cannot sign with it alone, and the KDC is
# told so (failed_keys with that reason); the ZSK after it is confirmed (README, Knot).
knot_first_key_reported() {
    [ "$(dist_state "$D1")" = failed ] &&
        kdc status --json 2>/dev/null | grep -q "Knot cannot sign $ZONE until it has an active KSK and ZSK"
}
check_within 40 "$T: units: the sandboxed tdns-krs reports the lone KSK $KSK as installed but not signing, and confirms ZSK $ZSK" '"states $(dist_state "$D1") / $(dist_state "$D2"); $(grep -iE "error|fail|cannot sign" "$TMP/krs-knot.log" | tail -1)"' \
    eval 'knot_first_key_reported && confirmed "$D2"'
check "$T: units: keymgr import-bind and knotc ran inside the sandbox" "$(grep -E 'keymgr|knotc' "$TMP/krs-knot.log" | tail -2 | one_line)" \
    eval 'grep -qE "keymgr .*import-bind.*: ok" "$TMP/krs-knot.log" && grep -qE "knotc (zone-keys-load|zone-reload|conf-commit).*: ok" "$TMP/krs-knot.log"'
check_within 30 "$T: units: knotd signs $ZONE with the distributed keys (RRSIG DNSKEY by $KSK, RRSIG SOA by $ZSK)" \
    '"$(signing_state)"' eval 'has_all "$(dnskey_tags)" "$KSK" "$ZSK" && has_all "$(rrsig_tags DNSKEY)" "$KSK" && [ "$(rrsig_tags SOA)" = "$ZSK" ]'
stop_sandbox
stop_server "$KNOTD_PID" knotc -c "$KN/knot.conf" -t 5 stop
KNOTD_PID=""
rm -f "$DROPIN"

stop_pid "$(cat "$TMP/kdc.pid" 2>/dev/null)"
