#!/usr/bin/env bash
# Tests/deb/run.sh — the Debian packages as an operator gets them, on this machine (as root):
#   `make deb` → lintian (no error or warning) → the packages' contents, dependencies and
#   conffiles → dpkg -i → the tdnskrs user, state directories with their owners and modes,
#   enabled units, a C program built with the installed tdnskrs.pc → systemd-analyze verify and
#   security (exposure ≤ 3.0) on the installed units → the BIND and Knot flows of Tests/bind9 and
#   Tests/knot on the installed paths (TDNSKRS_INSTALLED=1, short: enroll, distribute, RRSIGs
#   with the distributed key tags) → each unit's program in its unit's sandbox
#   (Tests/deb/unit-sandbox.py; systemd is not PID 1 here): tdns-kdc serve on /var/lib/tdns-kdc,
#   tdnskrs-nsd run with NSD (dnssec-signzone, nsd-control) on /var/lib/tdnskrs, tdns-krs run
#   with named (rndc) and with knotd (keymgr, knotc) through the drop-ins its unit documents
#   → dpkg --purge with state left: the state and the tdnskrs user are kept (never delete keys)
#   → the state removed by hand, installed again, purged: nothing of the packages is left (files,
#   directories, conffiles, units and their enablement, ownership overrides, the user).
# Output: "PASS: …" / "FAIL: … — reason" lines and a few "PACKAGE:"/"EXPOSURE:" figures.
# Refuses to run (one FAIL) when a package of ours, the tdnskrs user or a state directory is
# already there: it never purges what it did not install. Servers listen on 127.0.0.1 only;
# every process it starts is stopped, and everything it installed is purged, on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=deb
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SANDBOX=$HERE/unit-sandbox.py
DEB_DIR=$REPO_ROOT/build/deb
PACKAGES=(libtdnskrs0 libtdnskrs-dev bind9-dlz-tdnskrs knot-module-tdnskrs tdnskrs-nsd tdns-krs tdns-kdc)
STATE_DIRS=(/var/lib/tdns-kdc /var/lib/tdns-krs /var/lib/tdnskrs /var/lib/tdnskrs-nsd)
UNITS=(tdns-kdc tdns-krs tdnskrs-nsd)
TMP=""
SB=""
INSTALLED=0
PIDS=()

pkgs_present() { local p; for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]' && echo "$p"; done; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    [ -n "${NAMED_PID:-}" ] && stop_server "$NAMED_PID" rndc -c "$SB/bind/rndc.conf" stop
    [ -n "${KNOTD_PID:-}" ] && stop_server "$KNOTD_PID" knotc -c "$SB/knot/knot.conf" -t 5 stop
    [ -n "${NSD_PID:-}" ] && stop_server "$NSD_PID" nsd-control -c "$SB/nsd/nsd.conf" stop
    rm -rf /etc/systemd/system/tdns-krs.service.d/tdnskrs-deb-test-*.conf
    rmdir /etc/systemd/system/tdns-krs.service.d 2>/dev/null
    if [ "$INSTALLED" = 1 ]; then
        # Whatever this run installed and left: purged, with the state it made.
        dpkg --purge "${PACKAGES[@]}" >/dev/null 2>&1
        rm -rf "${STATE_DIRS[@]}"
        getent passwd tdnskrs >/dev/null && deluser --quiet --system tdnskrs >/dev/null 2>&1
        getent group tdnskrs >/dev/null && delgroup --quiet --system tdnskrs >/dev/null 2>&1
    fi
    [ -n "$SB" ] && rm -rf "$SB"
    finish_tmp "logs (make-deb.log, lintian.txt, flows)"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

if [ "$(id -u)" != 0 ]; then
    fail "$T: running as root" "dpkg -i/--purge need root"
    exit 1
fi
require_tools "debhelper, dpkg-dev, lintian, systemd, bubblewrap, python3-seccomp (make deps)" \
    dpkg-buildpackage dh lintian systemd-analyze bwrap setpriv runuser named rndc knotd knotc keymgr nsd nsd-control dig
if ! /usr/bin/python3 -c 'import sys; sys.path.insert(0, "/usr/lib/python3/dist-packages"); import seccomp' 2>/dev/null; then
    fail "$T: tools present" "python3-seccomp not installed (make deps)"
    exit 1
fi
left=$(pkgs_present | xargs)
there=""
for d in "${STATE_DIRS[@]}" /var/lib/bind/tdnskrs /var/lib/knot/tdnskrs; do [ -e "$d" ] && there="$there $d"; done
getent passwd tdnskrs >/dev/null && there="$there user:tdnskrs"
if [ -n "$left$there" ]; then
    fail "$T: a clean machine (no package of ours, no tdnskrs user, no state directory)" \
        "already there: $left$there (dpkg --purge ${PACKAGES[*]}; remove the rest by hand)"
    exit 1
fi
pass "$T: a clean machine (no package of ours, no tdnskrs user, no state directory)"

BIND_LIB_MODE=$(stat -c '%U:%G %a' /var/lib/bind 2>&1)
TMP=$(mktemp -d /tmp/tdnskrs-deb.XXXXXX)
# Files the sandboxed services read live under /run: PrivateTmp= hides /tmp from them.
SB=$(mktemp -d /run/tdnskrs-deb.XXXXXX)
chmod 0755 "$SB"
# The sandbox wrapper re-runs itself inside the unit's sandbox: from /run, so that a checkout
# under /tmp works too.
install -m 0644 "$SANDBOX" "$SB/unit-sandbox.py"
SANDBOX=$SB/unit-sandbox.py

# --- make deb, lintian -----------------------------------------------------------------------

if make -C "$REPO_ROOT" deb >"$TMP/make-deb.log" 2>&1; then
    pass "$T: make deb"
else
    fail "$T: make deb" "$(grep -E 'error|Error|^E: |^W: ' "$TMP/make-deb.log" | tail -3 | one_line)"
    exit 1
fi
DEBS=()
for p in "${PACKAGES[@]}"; do
    f=$(ls "$DEB_DIR/${p}_"*.deb 2>/dev/null | head -1)
    [ -n "$f" ] && DEBS+=("$f")
done
check "$T: make deb built the ${#PACKAGES[@]} packages ${PACKAGES[*]}" "found: $(ls "$DEB_DIR"/*.deb 2>/dev/null | xargs -n1 basename | xargs)" \
    [ "${#DEBS[@]}" -eq "${#PACKAGES[@]}" ]
check "$T: no other package and no -dbgsym" "$(ls "$DEB_DIR"/*.deb | xargs -n1 basename | xargs)" \
    [ "$(ls "$DEB_DIR"/*.deb | wc -l)" -eq "${#PACKAGES[@]}" ]
for f in "${DEBS[@]}"; do
    echo "PACKAGE: $(basename "$f") $(stat -c %s "$f") bytes, Installed-Size $(dpkg-deb -f "$f" Installed-Size) KiB"
done

lintian --display-info --show-overrides "$DEB_DIR"/*.changes >"$TMP/lintian.txt" 2>&1
lintian_rc=$?
check "$T: lintian: no error and no warning (default level)" "$(grep -E '^[EW]: ' "$TMP/lintian.txt" | head -3 | one_line)" \
    eval '[ $lintian_rc -eq 0 ] && ! grep -qE "^[EW]: " "$TMP/lintian.txt"'
echo "LINTIAN: $(grep -c '^E: ' "$TMP/lintian.txt") errors, $(grep -c '^W: ' "$TMP/lintian.txt") warnings," \
    "$(grep -c '^I: ' "$TMP/lintian.txt") info, $(grep -c '^O: ' "$TMP/lintian.txt") overridden:" \
    "$(grep -E '^[IO]: ' "$TMP/lintian.txt" | awk '{ print $1 $2 $3 }' | sort | uniq -c | awk '{ print $2 "×" $1 }' | xargs)"

# --- what the packages hold --------------------------------------------------------------------

deb_of() { local f; for f in "${DEBS[@]}"; do case $(basename "$f") in "$1"_*) echo "$f" ;; esac; done; }
files_of() { dpkg-deb -c "$(deb_of "$1")" | awk '{ print $6 }' | sed 's|^\./|/|'; }
field() { dpkg-deb -f "$(deb_of "$1")" "$2"; }
conffiles_of() { dpkg-deb -I "$(deb_of "$1")" conffiles 2>/dev/null | xargs; }
has_file() { files_of "$1" | grep -qE "$2"; }

MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
VERSION=$(sed -nE 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$REPO_ROOT/Makefile")
KNOTMODS=$(pkg-config --variable=module_instdir knotd)
check "$T: libtdnskrs0 holds the library and its soname link, nothing else" "$(files_of libtdnskrs0 | grep -v '/$' | grep -v /usr/share/doc | xargs)" \
    eval '[ "$(files_of libtdnskrs0 | grep -v "/$" | grep -v /usr/share/doc | xargs)" = "/usr/lib/$MA/libtdnskrs.so.$VERSION /usr/lib/$MA/libtdnskrs.so.0" ]'
check "$T: libtdnskrs-dev: headers, libtdnskrs.so link, tdnskrs.pc, example programs" "$(files_of libtdnskrs-dev | grep -v '/$' | xargs)" \
    eval 'has_file libtdnskrs-dev "^/usr/include/tdnskrs/tdnskrs.h$" && has_file libtdnskrs-dev "^/usr/include/tdnskrs/krs.h$" &&
          has_file libtdnskrs-dev "^/usr/lib/$MA/libtdnskrs.so$" && has_file libtdnskrs-dev "^/usr/lib/$MA/pkgconfig/tdnskrs.pc$" &&
          has_file libtdnskrs-dev "^/usr/share/doc/libtdnskrs-dev/examples/crypto_example.c$"'
check "$T: bind9-dlz-tdnskrs: /usr/lib/bind/dlz_tdnskrs.so (no library copy beside it)" "$(files_of bind9-dlz-tdnskrs | grep -v '/$' | xargs)" \
    eval 'has_file bind9-dlz-tdnskrs "^/usr/lib/bind/dlz_tdnskrs.so$" && ! has_file bind9-dlz-tdnskrs "libtdnskrs"'
check "$T: knot-module-tdnskrs: mod-tdnskrs.so in Knot's module directory $KNOTMODS" "$(files_of knot-module-tdnskrs | grep -v '/$' | xargs)" \
    eval 'has_file knot-module-tdnskrs "^$KNOTMODS/mod-tdnskrs.so$" && ! has_file knot-module-tdnskrs "libtdnskrs"'
for p in tdns-kdc tdns-krs tdnskrs-nsd; do
    check "$T: $p: /usr/bin/$p and /lib/systemd/system/$p.service" "$(files_of "$p" | grep -v '/$' | xargs)" \
        eval 'has_file "$p" "^/usr/bin/$p$" && has_file "$p" "^/lib/systemd/system/$p.service$"'
done
check "$T: conffiles under /etc/tdnskrs: nsd.conf (tdnskrs-nsd), krs.conf (tdns-krs), kdc.defaults (tdns-kdc)" \
    "$(conffiles_of tdnskrs-nsd) | $(conffiles_of tdns-krs) | $(conffiles_of tdns-kdc)" \
    eval '[ "$(conffiles_of tdnskrs-nsd)" = /etc/tdnskrs/nsd.conf ] && [ "$(conffiles_of tdns-krs)" = /etc/tdnskrs/krs.conf ] &&
          [ "$(conffiles_of tdns-kdc)" = /etc/tdnskrs/kdc.defaults ]'
check "$T: /etc/tdnskrs/nsd.conf is Examples/tdnskrs-nsd.conf" "differs" \
    eval 'dpkg-deb --fsys-tarfile "$(deb_of tdnskrs-nsd)" | tar -xOf - ./etc/tdnskrs/nsd.conf | cmp -s - "$REPO_ROOT/Examples/tdnskrs-nsd.conf"'
man_pages=$(ls "$REPO_ROOT"/Sources/Packaging/man/*.[358] 2>/dev/null | xargs -r -n1 basename | xargs)
if [ -n "$man_pages" ]; then
    check "$T: every page of Sources/Packaging/man is in a package ($man_pages)" "missing from the packages" \
        eval 'for m in $man_pages; do for p in "${PACKAGES[@]}"; do files_of "$p"; done | grep -q "/man[358]/$m.gz$" || exit 1; done'
else
    echo "# Sources/Packaging/man has no pages yet: the packages carry none (lintian overrides say so)"
fi

depends_has() { field "$1" Depends | tr ',' '\n' | sed 's/^ *//' | grep -qE "$2"; }
check "$T: Depends: the DLZ module on bind9 and libtdnskrs0 (= version)" "$(field bind9-dlz-tdnskrs Depends)" \
    eval 'depends_has bind9-dlz-tdnskrs "^bind9$" && depends_has bind9-dlz-tdnskrs "^libtdnskrs0 \(= "'
check "$T: Depends: the Knot module on knot of its module ABI (>= 3.x, << 3.x+1~), libknot, libtdnskrs0" "$(field knot-module-tdnskrs Depends)" \
    eval 'depends_has knot-module-tdnskrs "^knot \(>= [0-9.]+\)$" && depends_has knot-module-tdnskrs "^knot \(<< [0-9.]+~\)$" &&
          depends_has knot-module-tdnskrs "^libknot[0-9]+" && depends_has knot-module-tdnskrs "^libtdnskrs0 \(= "'
check "$T: Depends: tdnskrs-nsd on nsd, bind9-utils (dnssec-signzone) and adduser" "$(field tdnskrs-nsd Depends)" \
    eval 'depends_has tdnskrs-nsd "^nsd$" && depends_has tdnskrs-nsd "^bind9-utils$" && depends_has tdnskrs-nsd "^adduser$"'
check "$T: Depends: the programs on the libraries they link (libcjose, libjansson, libssl3)" "$(field tdns-kdc Depends)" \
    eval 'for p in tdns-kdc tdns-krs tdnskrs-nsd; do depends_has $p "^libcjose0" && depends_has $p "^libjansson4" && depends_has $p "^libssl3" || exit 1; done'
check "$T: Depends: libtdnskrs-dev on libtdnskrs0 (= version); the programs not on libtdnskrs0 (Swift linked in)" \
    "$(field libtdnskrs-dev Depends) / $(field tdns-krs Depends)" \
    eval 'depends_has libtdnskrs-dev "^libtdnskrs0 \(= " && ! depends_has tdns-krs "^libtdnskrs0"'

# --- dpkg -i ---------------------------------------------------------------------------------

# Directories of the packages that exist before (shared with other packages: /usr/bin, /etc…)
# are not expected to go at purge.
for p in "${PACKAGES[@]}"; do files_of "$p"; done | sed 's|/$||' | grep -vE '^(|/\.)$' | sort -u >"$TMP/paths"
while read -r path; do [ -e "$path" ] || [ -L "$path" ] && echo "$path"; done <"$TMP/paths" >"$TMP/paths.before"

INSTALLED=1
check_command "$T: dpkg -i the ${#DEBS[@]} packages" dpkg -i "${DEBS[@]}"
echo "$OUT" >"$TMP/dpkg-install.log"
check "$T: dpkg: every package installed and configured" "$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>&1 | grep -v ' ii' | xargs)" \
    eval '[ "$(dpkg-query -W -f="\${db:Status-Abbrev}\n" "${PACKAGES[@]}" | grep -c "^ii")" -eq ${#PACKAGES[@]} ]'

# --- user, directories, units --------------------------------------------------------------------

u_line=$(getent passwd tdnskrs)
check "$T: system user tdnskrs (uid < 1000, group tdnskrs, home /nonexistent, shell nologin)" "'$u_line'" \
    eval 'IFS=: read -r _ _ uid gid _ home shell <<<"$u_line" && [ "$uid" -lt 1000 ] &&
          [ "$(getent group "$gid" | cut -d: -f1)" = tdnskrs ] && [ "$home" = /nonexistent ] && [ "$shell" = /usr/sbin/nologin ]'
check "$T: tdnskrs is in group nsd (nsd-control keys, signed zones)" "groups: $(id -nG tdnskrs 2>&1)" \
    eval 'id -nG tdnskrs | tr " " "\n" | grep -qx nsd'

owner_mode() { stat -c '%U:%G %a' "$1" 2>&1; }
expect_dir() { # expect_dir PATH OWNER:GROUP MODE
    check "$T: $1 is $2 $3" "$(owner_mode "$1")" [ "$(owner_mode "$1")" = "$2 $3" ]
}
expect_dir /var/lib/tdns-kdc tdnskrs:tdnskrs 700
expect_dir /var/lib/tdns-krs tdnskrs:tdnskrs 700
expect_dir /var/lib/tdns-krs/keys tdnskrs:tdnskrs 700
expect_dir /var/lib/tdnskrs tdnskrs:nsd 700
expect_dir /var/lib/tdnskrs/keys tdnskrs:nsd 700
expect_dir /var/lib/tdnskrs-nsd tdnskrs:nsd 2750
expect_dir /var/lib/bind/tdnskrs bind:bind 700
expect_dir /var/lib/bind/tdnskrs/keys bind:bind 700
expect_dir /var/lib/knot/tdnskrs knot:knot 700
expect_dir /var/lib/knot/tdnskrs/keys knot:knot 700
check "$T: the owners and modes of the shipped directories are dpkg-statoverrides (kept across upgrades)" "$(dpkg-statoverride --list | grep -E 'tdns|tdnskrs' | xargs)" \
    eval '[ "$(dpkg-statoverride --list | grep -cE " /var/lib/(tdns-kdc|tdns-krs|tdnskrs|knot/tdnskrs)")" -eq 8 ]'
check "$T: /var/lib/bind/tdnskrs is made by postinst, not shipped (dpkg must never remove bind9's /var/lib/bind)" \
    "$(files_of bind9-dlz-tdnskrs | grep /var/lib | xargs)" eval '! files_of bind9-dlz-tdnskrs | grep -q "^/var/lib"'

wants=/etc/systemd/system/multi-user.target.wants
check "$T: tdns-kdc.service and tdnskrs-nsd.service enabled, tdns-krs.service not" "$(ls "$wants" 2>&1 | grep tdns | xargs)" \
    eval '[ -L "$wants/tdns-kdc.service" ] && [ -L "$wants/tdnskrs-nsd.service" ] && [ ! -e "$wants/tdns-krs.service" ]'

for u in "${UNITS[@]}"; do
    unit=/lib/systemd/system/$u.service
    # Without the program's man page (not written yet) verify would report Documentation=man:…
    vflags=()
    man -w "$u" >/dev/null 2>&1 || { vflags=(--man=no); echo "# $u(8) not installed: systemd-analyze verify --man=no"; }
    out=$(systemd-analyze verify "${vflags[@]}" "$unit" 2>&1)
    check "$T: systemd-analyze verify $u.service: no findings" "$(one_line <<<"$out")" [ -z "$out" ]
    exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "EXPOSURE: $u.service $exposure"
    check "$T: systemd-analyze security $u.service: exposure ${exposure:-?} ≤ 3.0" "exposure '${exposure}'" \
        eval '[ -n "$exposure" ] && python3 -c "import sys; sys.exit(0 if float(\"$exposure\") <= 3.0 else 1)"'
done
for u in named knot; do
    e=$(systemd-analyze security --offline=true "/lib/systemd/system/$u.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "EXPOSURE: $u.service (Debian's, for comparison) $e"
done

# --- the development package -------------------------------------------------------------------

check "$T: cc Examples/crypto_example.c \$(pkg-config --cflags --libs tdnskrs) with the installed package, runs" \
    "$(tail -2 "$TMP/example.out" 2>/dev/null | one_line)" \
    eval '${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$TMP/crypto_example" "$REPO_ROOT/Examples/crypto_example.c" \
              $(pkg-config --cflags --libs tdnskrs) >"$TMP/example.out" 2>&1 &&
          "$TMP/crypto_example" >>"$TMP/example.out" 2>&1 && grep -q "decrypted \"DNSSEC keys travel safely\"" "$TMP/example.out" &&
          [ "$(pkg-config --variable=libdir tdnskrs)" = "/usr/lib/$MA" ]'
stray=$(ls /usr/lib/bind/libtdnskrs.so* "$KNOTMODS"/libtdnskrs.so* 2>/dev/null | while read -r f; do dpkg -S "$f" >/dev/null 2>&1 || echo "$f"; done | xargs)
check "$T: no libtdnskrs copy from a 'make install' beside the plugins (it would be loaded instead of the package's)" \
    "found $stray" [ -z "$stray" ]

# --- the BIND and Knot flows on the installed paths ---------------------------------------------

run_flow() { # run_flow NAME SCRIPT: its PASS/FAIL lines become ours; a silent non-zero exit is a FAIL
    local name=$1 script=$2 rc
    TDNSKRS_INSTALLED=1 TDNSKRS_SHORT=1 bash "$script" >"$TMP/$name.log" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL): ' "$TMP/$name.log"
    FAILURES=$((FAILURES + $(grep -c '^FAIL: ' "$TMP/$name.log")))
    if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$TMP/$name.log"; then
        fail "$T: $name flow on the installed packages" "exit $rc: $(tail -3 "$TMP/$name.log" | one_line)"
    fi
}
run_flow bind9 "$REPO_ROOT/Tests/bind9/run.sh"
run_flow knot "$REPO_ROOT/Tests/knot/run.sh"
check "$T: the flows used the installed plugins and programs" "$(grep -hE 'dlopen|file:' "$TMP/bind9.log" | head -1)" \
    eval 'TDNSKRS_INSTALLED=1 bash -c ". \"$REPO_ROOT/Tests/hosting/lib.sh\"; [ \"\$DLZ_PLUGIN\" = /usr/lib/bind/dlz_tdnskrs.so ] &&
          [ \"\$KNOT_PLUGIN\" = $KNOTMODS/mod-tdnskrs.so ] && [ \"\$BIN_DIR\" = /usr/bin ] && [ \"\$LIB_DIR\" = /usr/lib/$MA ]"'

. "$HERE/units.sh"

# --- purge ------------------------------------------------------------------------------------

for p in "${PACKAGES[@]}"; do dpkg -L "$p" 2>/dev/null; done | grep -vE '^(|/\.)$' | sort -u >"$TMP/installed.paths"
rm -rf /etc/systemd/system/tdns-krs.service.d
check_command "$T: dpkg --purge the packages while their state is there" dpkg --purge "${PACKAGES[@]}"
echo "$OUT" >"$TMP/purge1.log"
check "$T: purge kept every non-empty state directory (keys are never deleted): ${STATE_DIRS[*]}" \
    "$(ls -d "${STATE_DIRS[@]}" 2>&1 | one_line)" eval 'for d in "${STATE_DIRS[@]}"; do [ -d "$d" ] || exit 1; done'
check "$T: purge kept the node's keys (/var/lib/tdnskrs/keys/*.private) and the KDC's kdc.json" "$(ls /var/lib/tdnskrs/keys /var/lib/tdns-kdc 2>&1 | one_line)" \
    eval 'ls /var/lib/tdnskrs/keys/*.private >/dev/null 2>&1 && [ -s /var/lib/tdns-kdc/kdc.json ]'
check "$T: purge kept the tdnskrs user, which still owns that state, and said so" "$(grep -i tdnskrs "$TMP/purge1.log" | head -2 | one_line)" \
    eval 'getent passwd tdnskrs >/dev/null && grep -q "Keeping the tdnskrs user" "$TMP/purge1.log"'
check "$T: purge left bind9's /var/lib/bind and knot's /var/lib/knot alone" "$(ls -ld /var/lib/bind /var/lib/knot 2>&1 | one_line)" \
    eval '[ "$(stat -c "%U:%G %a" /var/lib/bind)" = "$BIND_LIB_MODE" ] && [ -d /var/lib/knot ]'
check "$T: purge removed the conffiles, the units and the empty module state directories" \
    "$(ls -d /etc/tdnskrs /lib/systemd/system/tdns-kdc.service /var/lib/bind/tdnskrs /var/lib/knot/tdnskrs 2>&1 | grep -v 'No such' | xargs)" \
    eval '[ ! -e /etc/tdnskrs ] && [ ! -e /lib/systemd/system/tdns-kdc.service ] && [ ! -e /var/lib/bind/tdnskrs ] && [ ! -e /var/lib/knot/tdnskrs ]'

# The operator removes the state by hand; then a second install and purge leave nothing.
rm -rf "${STATE_DIRS[@]}"
check_command "$T: dpkg -i again (the user already there is reused)" dpkg -i "${DEBS[@]}"
check_command "$T: dpkg --purge again, without state" dpkg --purge "${PACKAGES[@]}"
echo "$OUT" >"$TMP/purge2.log"
INSTALLED=0
left=$(cat "$TMP/installed.paths" "$TMP/paths" | sort -u | comm -23 - "$TMP/paths.before" |
    while read -r path; do [ -e "$path" ] || [ -L "$path" ] && echo "$path"; done | xargs)
check "$T: after purge no file or directory of the packages is left" "left: $left" [ -z "$left" ]
check "$T: after purge the packages are unknown to dpkg (no config-files state)" "$(pkgs_present | xargs)" [ -z "$(pkgs_present)" ]
check "$T: after purge the tdnskrs user and group are gone" "$(getent passwd tdnskrs) $(getent group tdnskrs)" \
    eval '! getent passwd tdnskrs >/dev/null && ! getent group tdnskrs >/dev/null'
check "$T: after purge no ownership override is left" "$(dpkg-statoverride --list | grep -E 'tdns|tdnskrs' | xargs)" \
    eval '! dpkg-statoverride --list | grep -qE "tdns|tdnskrs"'
check "$T: after purge no unit, enablement link or deb-systemd-helper state is left" \
    "$(find /etc/systemd /lib/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'tdns*' 2>/dev/null | xargs)" \
    eval '[ -z "$(find /etc/systemd /lib/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name "tdns*" 2>/dev/null)" ]'
check "$T: after purge no state directory is left" "$(ls -d "${STATE_DIRS[@]}" /var/lib/bind/tdnskrs /var/lib/knot/tdnskrs 2>/dev/null | xargs)" \
    eval '[ -z "$(ls -d "${STATE_DIRS[@]}" /var/lib/bind/tdnskrs /var/lib/knot/tdnskrs 2>/dev/null)" ]'

exit $((FAILURES > 0))
