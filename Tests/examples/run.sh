#!/usr/bin/env bash
# Tests/examples/run.sh — Examples/ as a C host developer and an operator meet them:
#   krs_status_example.c is built with pkg-config (the build tree's tdnskrs.pc from
#   `make examples`, and json-c) → against a real `tdns-kdc serve` on 127.0.0.1 it enrolls with
#   a package, starts, and receives a ping and a ZSK the test distributes while it runs; the KDC
#   sees them confirmed and the example's printed status shows them → a later run skips
#   enrollment and stops cleanly on SIGTERM → under valgrind, that node and a JOSE node that
#   enrolls receive pings → usage errors exit 2, a bad or a used package exits 1 with the
#   library's reason → named.conf, nsd.conf and tdnskrs-nsd.service pass named-checkconf,
#   nsd-checkconf and systemd-analyze (paths moved to a temporary directory), and the NSD
#   sidecar's settings agree with nsd.conf and the unit → the manual pages in
#   Sources/Packaging/man/ pass mandoc -Tlint -W style and groff's warnings (as lintian runs
#   man), and agree with the code: every command and option of each program's --help and no
#   other, every setting of Settings.swift and no other, every function and table member the
#   headers declare and no other.
# Output: "PASS: …" / "FAIL: … — reason" lines. Everything listens on 127.0.0.1, high ports,
# in a temporary directory; every process this script starts is stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../hosting/lib.sh"

T=examples
EX_SRC=$REPO_ROOT/Examples
KDC_BIN=$BUILD_DIR/bin/tdns-kdc
PC_DIR=$BUILD_DIR/pkgconfig
ZONE=example.test.
NODE=node1.test.
TMP=""
KDC_PID=""
EX_PID=""

cleanup() {
    stop_pid "$EX_PID"
    stop_pid "$KDC_PID"
    finish_tmp "files and logs"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "gcc, pkg-config, python3, iproute2, bind9, bind9-utils, nsd, mandoc, man-db" \
    "${CC:-cc}" pkg-config python3 ss named-checkconf rndc-confgen nsd-checkconf mandoc man lexgrog
# mandoc's index builder lives in /usr/sbin, which a user's PATH may not have.
MAKEWHATIS=$(command -v makewhatis || echo /usr/sbin/makewhatis)
require_tools "mandoc" "$MAKEWHATIS"
require_built "make lib bin examples" "$KDC_BIN" "$LIB_DIR/libtdnskrs.so" "$PC_DIR/tdnskrs.pc"

TMP=$(mktemp -d /tmp/tdnskrs-examples.XXXXXX)
KDC_PORT=$(free_port) && NOTIFY_PORT=$(free_port) && SPARE_PORT=$(free_port) ||
    { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
K=$TMP/kdc S=$TMP/node KEYS=$TMP/keys
mkdir -p "$K" "$KEYS"

# --- build, the way the example's header says ------------------------------------------------

EX=$TMP/krs_status_example
export PKG_CONFIG_PATH=$PC_DIR
build_example() {
    "${CC:-cc}" -std=c11 -Wall -Wextra -Werror -pedantic -o "$EX" "$EX_SRC/krs_status_example.c" \
        $(pkg-config --cflags --libs tdnskrs json-c) -Wl,-rpath,"$(pkg-config --variable=libdir tdnskrs)" \
        2>"$TMP/cc.log"
}
check "$T: cc -std=c11 -Wall -Wextra -Werror -pedantic krs_status_example.c \$(pkg-config --cflags --libs tdnskrs json-c)" \
    "$(head -c 800 "$TMP/cc.log" 2>/dev/null | tr '\n' ' ')" build_example
[ -x "$EX" ] || exit 1

# run_example NAME ARGS...: runs the example to completion; $TMP/NAME.{out,err,rc}.
run_example() {
    local name=$1
    shift
    "$EX" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
# start_example NAME COMMAND...: runs COMMAND (the example, maybe under valgrind) in the
# background with output in $TMP/NAME.{out,err}; finish_example NAME SECONDS waits for it and
# writes its exit status (or "timeout", after stopping it) to $TMP/NAME.rc.
start_example() {
    local name=$1
    shift
    : >"$TMP/$name.out"
    : >"$TMP/$name.err"
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    EX_PID=$!
}
finish_example() {
    if wait_exit "$EX_PID" "$2"; then
        wait "$EX_PID"
        echo $? >"$TMP/$1.rc"
    else
        kill_pid "$EX_PID"
        echo timeout >"$TMP/$1.rc"
    fi
    EX_PID=""
}
rc_of() { cat "$TMP/$1.rc"; }
# field NAME RUN: the value of the "NAME: value" line the example printed in run RUN.
field() { sed -n "s/^$1:[[:space:]]*//p" "$TMP/$2.out" | head -1; }

# --- usage -----------------------------------------------------------------------------------

run_example noargs
check "$T: no arguments → usage on stderr, exit 2" "rc=$(rc_of noargs): $(head -1 "$TMP/noargs.err")" \
    eval '[ "$(rc_of noargs)" = 2 ] && grep -q "^usage: krs_status_example" "$TMP/noargs.err"'
run_example onearg "$S"
check "$T: only STATE_DIR → usage, exit 2" "rc=$(rc_of onearg)" \
    eval '[ "$(rc_of onearg)" = 2 ] && grep -q "^usage: " "$TMP/onearg.err"'
run_example badopt -t soon "$S" "$TMP/none.pkg"
check "$T: -t with a non-number → exit 2" "rc=$(rc_of badopt): $(cat "$TMP/badopt.err")" [ "$(rc_of badopt)" = 2 ]

# --- the KDC ---------------------------------------------------------------------------------

check "$T: tdns-kdc init, zone add, enrollment package for $NODE" "a tdns-kdc command failed" \
    kdc_setup kdc.test. "127.0.0.1:$NOTIFY_PORT"
kdc_serve
check_within 15 "$T: tdns-kdc serve listening on 127.0.0.1:$KDC_PORT" '"$(tail -1 "$TMP/kdc.log" 2>/dev/null)"' kdc_listening

# --- a bad package ---------------------------------------------------------------------------

printf '# not an enrollment package\nbm90IGpzb24=\n' >"$TMP/bad.pkg"
mkdir -p "$TMP/bad/keys"
run_example badpkg -n "127.0.0.1:$SPARE_PORT" -t 1 "$TMP/bad/state" "$TMP/bad.pkg" "$TMP/bad/keys"
check "$T: a malformed package → krs_enroll's code and reason on stderr, exit 1" \
    "rc=$(rc_of badpkg): $(cat "$TMP/badpkg.err")" \
    eval '[ "$(rc_of badpkg)" = 1 ] && grep -qE "^krs_status_example: krs_enroll: malformed input \(-7\): .+" "$TMP/badpkg.err"'
check "$T: … and nothing was started (no status printed)" "stdout: $(head -2 "$TMP/badpkg.out")" \
    eval '! [ -s "$TMP/badpkg.out" ]'

# --- enroll, start, receive ------------------------------------------------------------------

ZSK=$(new_key "$ZONE" zsk 2>/dev/null)
check "$T: KDC generated a ZSK for $ZONE" "key generate failed" eval '[[ $ZSK =~ ^[0-9]+$ ]]'

start_example first "$EX" -n "127.0.0.1:$NOTIFY_PORT" -t 90 -c 2 "$S" "$TMP/node.pkg" "$KEYS"
started() { grep -q "^started: node $NODE, listening for NOTIFYs on 127.0.0.1:$NOTIFY_PORT\$" "$TMP/$1.out"; }
check_within 30 "$T: the example enrolled with the package and started" '"$(tail -2 "$TMP/first.err" | one_line)"' \
    started first
enrollment_at_kdc() { kdc status --json | json_get "next((n['enrollment'] for n in d['nodes'] if n['node_id']=='$NODE'), 'missing')"; }
check "$T: the KDC has $NODE enrolled (package used)" "enrollment: $(enrollment_at_kdc)" \
    eval '[ "$(enrollment_at_kdc)" = used ]'

D1=$(distribute --op ping)
check_within 30 "$T: ping to $NODE confirmed at the KDC" '"state $(dist_state "$D1"): $(cat "$TMP/distribute.err")"' \
    confirmed "$D1"
D2=$(distribute --zone "$ZONE" --key "$ZSK")
check_within 30 "$T: ZSK $ZSK to $NODE confirmed at the KDC" '"state $(dist_state "$D2"): $(cat "$TMP/distribute.err")"' \
    confirmed "$D2"

# -c 2: the example stops by itself once both are confirmed on its side.
finish_example first 30
check "$T: the example exited 0 after 2 confirmed distributions (-c 2)" "rc=$(rc_of first): $(tail -2 "$TMP/first.err" | tr '\n' ' ')" \
    [ "$(rc_of first)" = 0 ]
check "$T: status: node_id, control_zone, enrolled, listening" "$(head -8 "$TMP/first.out" | tr '\n' '|')" \
    eval '[ "$(field node_id first)" = "$NODE" ] && [ "$(field control_zone first)" = kdc.test. ] &&
          [ "$(field enrolled first)" = yes ] && [ "$(field listening first)" = yes ] &&
          [ "$(field notify_listen first)" = "127.0.0.1:$NOTIFY_PORT" ] && [ "$(field kdc_address first)" = "127.0.0.1:$KDC_PORT" ]'
check "$T: status: last distribution $D2 installed and confirmed, 1 key changed" \
    "$(grep '^last_distribution' "$TMP/first.out" | tr '\n' '|')" \
    eval '[ "$(field last_distribution.id first)" = "$D2" ] && [ "$(field last_distribution.result first)" = installed ] &&
          [ "$(field last_distribution.confirmed first)" = yes ] && [ "$(field last_distribution.keys_changed first)" = 1 ]'
# (A KDC may repeat a NOTIFY before it sees the confirmation: NOTIFYs and fetches are at least 2.)
check "$T: status: counters (NOTIFYs, fetches, confirmations ≥ 2; 1 key installed; 0 refused)" \
    "$(grep '^counters' "$TMP/first.out" | tr '\n' '|')" \
    eval '[ "$(field counters.notifies first)" -ge 2 ] && [ "$(field counters.fetches first)" -ge 2 ] &&
          [ "$(field counters.confirmations first)" -ge 2 ] && [ "$(field counters.keys_installed first)" = 1 ] &&
          [ "$(field counters.refused first)" = 0 ]' 2>/dev/null
check "$T: status: the ZSK is listed (key: $ZONE key tag $ZSK algorithm 13)" "$(grep '^key' "$TMP/first.out" | tr '\n' '|')" \
    eval '[ "$(field keys first)" = 1 ] && [ "$(field key first)" = "$ZONE key tag $ZSK algorithm 13" ]'
check "$T: key_changed callback reported the install; the K-files are in KEY_DIR" "$(ls "$KEYS" | xargs)" \
    eval 'grep -q "^krs: key installed: zone $ZONE, key tag $ZSK, algorithm 13\$" "$TMP/first.err" &&
          ls "$KEYS" | grep -q "^Kexample\.test\.+013+0*$ZSK\.private\$"'
# aligned RUN: every status line is "name:" padded to 32 columns, a space, then the value.
aligned() {
    grep -v '^started: ' "$TMP/$1.out" | awk '
        substr($0, 1, 32) !~ /^[a-z_.]+: *$/ || substr($0, 33, 1) != " " || substr($0, 34, 1) !~ /[^ ]/ { bad = 1 }
        END { exit bad }'
}
check "$T: status lines are aligned name: value pairs (values in column 34)" "$(grep -v '^started' "$TMP/first.out" | head -3 | tr '\n' '|')" \
    aligned first

# --- enrolled already: the package is not read; SIGTERM ----------------------------------------

start_example term "$EX" -n "127.0.0.1:$NOTIFY_PORT" "$S" "$TMP/no-such.pkg"
check_within 30 "$T: enrolled already → starts without reading PACKAGE_FILE" '"$(tail -2 "$TMP/term.err" | one_line)"' \
    started term
kill -TERM "$EX_PID" 2>/dev/null
finish_example term 20
check "$T: SIGTERM → status printed while listening, krs_stop, exit 0" "rc=$(rc_of term): $(tail -2 "$TMP/term.err" | tr '\n' ' ')" \
    eval '[ "$(rc_of term)" = 0 ] && [ "$(field listening term)" = yes ] && grep -q "^krs: info: stopped" "$TMP/term.err"'

# --- a used package on a fresh node ----------------------------------------------------------

mkdir -p "$TMP/again/keys"
run_example usedpkg -n "127.0.0.1:$SPARE_PORT" -t 1 "$TMP/again/state" "$TMP/node.pkg" "$TMP/again/keys"
check "$T: a used package → the KDC's refusal as krs_enroll's code and reason, exit 1" \
    "rc=$(rc_of usedpkg): $(cat "$TMP/usedpkg.err")" \
    eval '[ "$(rc_of usedpkg)" = 1 ] && grep -qE "^krs_status_example: krs_enroll: DNS protocol error \(-5\): .*token already used" "$TMP/usedpkg.err"'

# --- valgrind --------------------------------------------------------------------------------

# Two runs: node1 (HPKE, enrolled already) receives a ping; node2 (JOSE only, on 127.0.0.2: the
# KDC tells nodes apart by IP) enrolls and receives a ping, so that enrollment and both
# backends' decryption run under valgrind. Errors and definite leaks fail; the static Swift
# runtime's "possibly lost" and still-reachable blocks do not (as in Tests/cabi), and the one
# known libcjose leak is suppressed.
# vg_ping RUN NODE ARGS...: runs the example with ARGS under valgrind, distributes a
# ping to NODE once it has started, and checks the confirmation, the status and valgrind's log.
vg_ping() {
    local run=$1 node=$2 d=""
    shift 2
    start_example "$run" valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --num-callers=30 --suppressions="$REPO_ROOT/Tests/cabi/cjose.supp" \
        --log-file="$TMP/$run.vglog" "$EX" -t 120 -c 1 "$@"
    if wait_for 90 grep -q "^started: node $node," "$TMP/$run.out"; then
        d=$(NODE=$node distribute --op ping)
        check_within 60 "$T: $run: under valgrind, ping $d to $node confirmed at the KDC" '"state $(dist_state "$d")"' \
            confirmed "$d"
    else
        fail "$T: $run: under valgrind, the example started" "$(tail -3 "$TMP/$run.err" | tr '\n' ' ')"
    fi
    finish_example "$run" 90
    check "$T: $run: exit 0, status shows ping ${d:-?} confirmed" \
        "rc=$(rc_of "$run"): $(grep '^last_distribution' "$TMP/$run.out" | tr '\n' '|') $(tail -2 "$TMP/$run.err" | tr '\n' ' ')" \
        eval '[ "$(rc_of "$run")" = 0 ] && [ "$(field last_distribution.id "$run")" = "$d" ] &&
              [ "$(field last_distribution.confirmed "$run")" = yes ]'
    check "$T: $run: valgrind: no memory errors, no definite leaks" \
        "rc=$(rc_of "$run"): $(grep -E '^==[0-9]+== ' "$TMP/$run.vglog" | head -20 | tr '\n' ' ')" \
        eval '[ "$(rc_of "$run")" != 99 ] &&
              ! grep -qE "are definitely lost|Invalid (read|write|free)|Conditional jump|uninitialised|Mismatched free" "$TMP/$run.vglog"'
}
if command -v valgrind >/dev/null 2>&1 && [ "${VALGRIND:-1}" != 0 ]; then
    vg_ping vg-hpke "$NODE" "$S" "$TMP/no-such.pkg"
    NODE2_PORT=$(free_port)
    kdc enroll generate node2.test. --out "$TMP/node2.pkg" --crypto jose --notify "127.0.0.2:$NODE2_PORT" >/dev/null 2>&1 &&
        kdc enroll activate node2.test. >/dev/null 2>&1 ||
        fail "$T: enrollment package for node2.test. (JOSE)" "a tdns-kdc command failed"
    mkdir -p "$TMP/node2/keys"
    vg_ping vg-jose-enroll node2.test. -n "127.0.0.2:$NODE2_PORT" "$TMP/node2/state" "$TMP/node2.pkg" "$TMP/node2/keys"
else
    echo "# valgrind not installed (or VALGRIND=0): the valgrind runs are skipped" >&2
fi

# --- configuration snippets ------------------------------------------------------------------

# The Debian paths of the snippets, moved under $R, so that the checkers find every file.
R=$TMP/root
relocate() {
    sed -e "s|/etc/bind/|$R/etc/bind/|g; s|/var/cache/bind|$R/var/cache/bind|g; s|/var/lib/bind/|$R/var/lib/bind/|g" \
        -e "s|/var/lib/tdnskrs|$R/var/lib/tdnskrs|g; s|/usr/lib/bind/|$R/usr/lib/bind/|g; s|/etc/nsd/|$R/etc/nsd/|g" "$1"
}
mkdir -p "$R/etc/bind" "$R/var/cache/bind/keys" "$R/var/lib/bind" "$R/var/lib/tdnskrs/nsd" "$R/etc/nsd"
rndc-confgen -a -k rndc-key -c "$R/etc/bind/rndc.key" >/dev/null 2>&1
cat >"$R/var/lib/bind/example.test.db" <<EOF
\$TTL 300
@   IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
    IN NS  ns1.example.test.
ns1 IN A   192.0.2.53
EOF
relocate "$EX_SRC/named.conf" >"$TMP/named.conf"
# -z also loads the zone from its file. Only two kinds of lines are expected: "loaded serial"
# and 9.18's notice that auto-dnssec is deprecated; anything else (a missing directory, say) is
# a warning the snippet should not cause, even though named-checkconf exits 0 for it.
named_checkconf_clean() {
    local out
    out=$(named-checkconf -z "$TMP/named.conf" 2>&1) || return 1
    ! grep -vE 'deprecated|loaded serial' <<<"$out" | grep -q .
}
check "$T: named-checkconf -z accepts Examples/named.conf without warnings (paths under a temporary root)" \
    "$(named-checkconf -z "$TMP/named.conf" 2>&1 | grep -vE 'deprecated|loaded serial' | head -3 | tr '\n' ' ')" \
    named_checkconf_clean
check "$T: named.conf: the dlz database line is the one the DLZ module documents" "$(grep -F 'database "dlopen' "$EX_SRC/named.conf")" \
    grep -qF 'database "dlopen /usr/lib/bind/dlz_tdnskrs.so state_dir=/var/lib/tdnskrs rndc=/usr/sbin/rndc rndc_conf=/etc/bind/rndc.conf";' "$EX_SRC/named.conf"

relocate "$EX_SRC/nsd.conf" >"$TMP/nsd.conf"
check "$T: nsd-checkconf accepts Examples/nsd.conf (paths under a temporary root)" \
    "$(nsd-checkconf "$TMP/nsd.conf" 2>&1 | head -3 | tr '\n' ' ')" nsd-checkconf "$TMP/nsd.conf"

# The sidecar's settings agree with nsd.conf and with the unit that starts it.
setting() { sed -n "s/^$1=//p" "$EX_SRC/tdnskrs-nsd.conf"; }
check "$T: tdnskrs-nsd.conf: only key=value lines and comments" "$(grep -vE '^(#.*|[a-z_]+=[^ ]+|)$' "$EX_SRC/tdnskrs-nsd.conf" | head -2)" \
    eval '! grep -qvE "^(#.*|[a-z_]+=[^ ]+|)\$" "$EX_SRC/tdnskrs-nsd.conf"'
check "$T: nsd.conf serves the zone from tdnskrs-nsd.conf's signed_dir" \
    "zonefile $(nsd-checkconf -z example.test -o zonefile "$EX_SRC/nsd.conf" 2>&1), signed_dir $(setting signed_dir)" \
    eval '[ "$(nsd-checkconf -z example.test -o zonefile "$EX_SRC/nsd.conf")" = "$(setting signed_dir)/example.test.zone.signed" ]'
# The unit starts the sidecar with this settings file and may write every directory it names.
unit_fits_settings() {
    local unit=$EX_SRC/tdnskrs-nsd.service rw d
    grep -q '^ExecStart=/usr/bin/tdnskrs-nsd run --config /etc/tdnskrs/nsd.conf$' "$unit" || return 1
    rw=$(sed -n 's/^ReadWritePaths=//p' "$unit")
    local covered p
    for d in "$(setting state_dir)" "$(setting key_dir)" "$(setting signed_dir)"; do
        covered=no
        for p in $rw; do
            case "$d/" in "$p"/*) covered=yes ;; esac
        done
        [ "$covered" = yes ] || return 1
    done
}
check "$T: tdnskrs-nsd.service: run --config /etc/tdnskrs/nsd.conf; ReadWritePaths covers state_dir, key_dir, signed_dir" \
    "$(grep -E '^(ExecStart|ReadWritePaths)=' "$EX_SRC/tdnskrs-nsd.service" | tr '\n' ' ')" unit_fits_settings

# The sidecar itself reads the settings file (it refuses unknown settings), once it is built.
SIDECAR=$BUILD_DIR/bin/tdnskrs-nsd
if [ -x "$SIDECAR" ]; then
    mkdir -p "$R/var/lib/tdnskrs/keys" "$R/var/lib/tdnskrs-nsd" "$R/etc/nsd/unsigned"
    relocate "$EX_SRC/tdnskrs-nsd.conf" >"$TMP/tdnskrs-nsd.conf"
    check "$T: tdnskrs-nsd status --config tdnskrs-nsd.conf accepts every setting" \
        "$("$SIDECAR" status --json --config "$TMP/tdnskrs-nsd.conf" 2>&1 | head -2 | tr '\n' ' ')" \
        eval '"$SIDECAR" status --json --config "$TMP/tdnskrs-nsd.conf" 2>/dev/null |
              json_get "d[\"notify_listen\"]" | grep -qx "127.0.0.1:5398"'
else
    echo "# $SIDECAR not built: tdnskrs-nsd.conf not read by the sidecar" >&2
fi

# --- one port plan ---------------------------------------------------------------------------

# README, Examples/ and the packaged files and pages follow one port plan, so that a KDC and a
# node on one machine do not collide: the KDC's port (`tdns-kdc init … --listen`,
# `kdc_address=`) is never a node's NOTIFY port (`--notify`, `notify_listen=`, the example's -n).
PLAN_FILES=("$REPO_ROOT/README.md" "$EX_SRC" "$REPO_ROOT/Sources/Packaging/etc" "$REPO_ROOT/Sources/Packaging/systemd"
            "$REPO_ROOT/Sources/Packaging/man")
plan_ports() { # plan_ports REGEX: the ports of IP:PORT after REGEX in the plan's files, sorted, unique
    grep -rhoE "($1) ?[^ \"]*:[0-9]+" "${PLAN_FILES[@]}" | sed -E 's/.*:([0-9]+)$/\1/' | sort -u | xargs
}
KDC_PORTS=$(plan_ports 'init .*--listen|kdc_address=')
NODE_PORTS=$(plan_ports '--notify|notify_listen=|example -n')
check "$T: port plan: README/Examples/packaging name the KDC's port ($KDC_PORTS) and the nodes' ($NODE_PORTS)" \
    "KDC '$KDC_PORTS', nodes '$NODE_PORTS'" eval '[ -n "$KDC_PORTS" ] && [ -n "$NODE_PORTS" ]'
collisions=$(comm -12 <(tr ' ' '\n' <<<"$KDC_PORTS" | sort) <(tr ' ' '\n' <<<"$NODE_PORTS" | sort) | xargs)
check "$T: port plan: no node listens on the KDC's port (KDC $KDC_PORTS, nodes $NODE_PORTS)" \
    "both: $collisions ($(grep -rnoE "(--notify|notify_listen=) ?[^ \"]*:(${collisions// /|})\b" "${PLAN_FILES[@]}" | head -3 | one_line))" \
    eval '[ -z "$collisions" ]'
check "$T: port plan: the KDC on 5399, a node on 5398 (or knotd's own 53)" "KDC '$KDC_PORTS', nodes '$NODE_PORTS'" \
    eval '[ "$KDC_PORTS" = 5399 ] && [ "$NODE_PORTS" = "53 5398" ]'

# --- the API reference (make docs) -------------------------------------------------------------

# `make docs` builds the HTML reference from the headers' Doxygen comments with every warning an
# error; here into a scratch BUILD, so that build/ is left alone.
if command -v doxygen >/dev/null 2>&1; then
    DOCS=$TMP/docs-build
    make --no-print-directory -C "$REPO_ROOT" docs BUILD="$DOCS" >"$TMP/docs.out" 2>"$TMP/docs.err"
    rc=$?
    check "$T: make docs succeeds with no Doxygen warning" "rc=$rc: $(head -3 "$TMP/docs.err" | one_line)" \
        eval '[ $rc -eq 0 ] && [ ! -s "$TMP/docs.err" ]'
    check "$T: make docs wrote build/docs/html/index.html and the pages of krs.h and crypto.h" \
        "$(ls "$DOCS/docs/html" 2>&1 | grep -E 'index|_8h\.html' | xargs)" \
        eval '[ -s "$DOCS/docs/html/index.html" ] && [ -s "$DOCS/docs/html/krs_8h.html" ] && [ -s "$DOCS/docs/html/crypto_8h.html" ]'
    check "$T: the krs.h page documents krs_init and krs_process_distribution, the crypto.h page crypto_get_backend" \
        "krs.h page: $(grep -c 'krs_init\|krs_process_distribution' "$DOCS/docs/html/krs_8h.html" 2>&1) mentions" \
        eval 'grep -q "krs_init" "$DOCS/docs/html/krs_8h.html" && grep -q "krs_process_distribution" "$DOCS/docs/html/krs_8h.html" &&
              grep -q "crypto_get_backend" "$DOCS/docs/html/crypto_8h.html"'
    # The same Doxyfile over a copy of the headers with one @param dropped must fail: warnings
    # really are errors (an undocumented parameter cannot slip through).
    # (The copy keeps the directory name: the headers' @file names are tdnskrs/NAME.h.)
    mkdir -p "$TMP/badheaders/tdnskrs"
    cp "$REPO_ROOT"/Include/tdnskrs/*.h "$TMP/badheaders/tdnskrs/"
    sed -i '0,/@param/{/@param/d}' "$TMP/badheaders/tdnskrs/krs.h"
    bad=$( (cd "$REPO_ROOT" && { cat Include/Doxyfile; echo "INPUT = $TMP/badheaders/tdnskrs"; echo "OUTPUT_DIRECTORY = $TMP/docs-bad"; } | doxygen - 2>&1) )
    rc=$?
    check "$T: Doxyfile: a header with an undocumented parameter fails the docs build (WARN_AS_ERROR)" \
        "rc=$rc: $(head -2 <<<"$bad" | one_line)" eval '[ $rc -ne 0 ] && grep -q "is not documented" <<<"$bad" && ! grep -q "not an input file" <<<"$bad"'
else
    fail "$T: make docs" "doxygen not found (apt-get install doxygen; it is in the Makefile's DEBIAN_PACKAGES)"
fi

# --- manual pages ----------------------------------------------------------------------------

# The pages make install and the packages install, checked as lintian and a reader meet them,
# and against the code they describe so that they cannot drift from it silently.
MAN_SRC=$REPO_ROOT/Sources/Packaging/man
MAN_PAGES="tdns-kdc.8 tdns-krs.8 tdnskrs-nsd.8 tdnskrs.conf.5 libtdnskrs.3"
# The headers libtdnskrs(3) documents (TDNSKRS_HEADERS: another tree's, e.g. before a merge).
HEADERS_DIR=${TDNSKRS_HEADERS:-$REPO_ROOT/Include/tdnskrs}
# A manual tree of only these pages, indexed, so that mandoc resolves their references to each
# other (and only to each other: what the machine has installed does not change the result).
MANTREE=$TMP/man
man_tree() {
    local page
    for page in $MAN_PAGES; do
        [ -f "$MAN_SRC/$page" ] || return 1
        mkdir -p "$MANTREE/man${page##*.}" && cp "$MAN_SRC/$page" "$MANTREE/man${page##*.}/" || return 1
    done
    "$MAKEWHATIS" "$MANTREE"
}
check "$T: man: Sources/Packaging/man/ has $MAN_PAGES" \
    "present: $(cd "$MAN_SRC" 2>/dev/null && ls | tr '\n' ' ')" man_tree

# mandoc -Tlint at its strictest level, -W style. Its one message that depends on the machine —
# "referenced manual not found" for a page of another package (named(8), nsd(8), …), looked up
# in MANTREE only — is dropped; a reference to a page of this project (tdns*, libtdnskrs) that
# does not resolve is not.
mandoc_findings() {
    local line
    MANPATH=$MANTREE mandoc -Tlint -W style "$MAN_SRC/$1" 2>&1 | while IFS= read -r line; do
        if [[ $line =~ referenced\ manual\ not\ found:\ Xr\ ([^ ]+)\  ]] && [[ ! ${BASH_REMATCH[1]} =~ ^(tdns|libtdnskrs) ]]; then
            continue
        fi
        echo "$line"
    done
}
# What lintian's manpage check runs (groff's warnings: a line it cannot break, a bad escape, …).
groff_findings() {
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$MAN_SRC/$1" 2>&1 >/dev/null
}
for page in $MAN_PAGES; do
    [ -f "$MAN_SRC/$page" ] || continue
    check "$T: man: mandoc -Tlint -W style $page: no messages" "$(mandoc_findings "$page" | head -5 | one_line)" \
        eval '[ -z "$(mandoc_findings "$page")" ]'
    check "$T: man: $page: no groff warnings (man --warnings, as lintian runs it); lexgrog reads its NAME" \
        "$(groff_findings "$page" | head -3 | one_line) $(lexgrog "$MAN_SRC/$page" 2>&1 | grep -v ' - ' | head -2 | one_line)" \
        eval '[ -z "$(groff_findings "$page")" ] && lexgrog "$MAN_SRC/$page" >/dev/null 2>&1'
done

# help_subcommands PROGRAM [COMMAND…]: the subcommands `PROGRAM COMMAND… --help` lists.
help_subcommands() { "$@" --help 2>/dev/null | awk '/^SUBCOMMANDS:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'; }
# help_commands PROGRAM: every command PROGRAM runs, "sub" or "sub subsub", one per line.
help_commands() {
    local sub leaf subs
    for sub in $(help_subcommands "$1"); do
        subs=$(help_subcommands "$1" "$sub")
        if [ -z "$subs" ]; then echo "$sub"; else for leaf in $subs; do echo "$sub $leaf"; done; fi
    done
}
# help_options PROGRAM: every --option in the help of PROGRAM and of each of its commands.
help_options() {
    local cmd
    { "$1" --help; help_commands "$1" | while read -r cmd; do "$1" $cmd --help; done; } 2>/dev/null |
        grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}
# page_commands PAGE: the commands a program's page describes: the words after `.It Cm` in its
# COMMANDS section, up to the first macro or argument.
page_commands() {
    sed -n '/^\.Sh COMMANDS/,/^\.Sh [^C]/p' "$MAN_SRC/$1" | sed -n 's/^\.It Cm //p' |
        awk '{ s = ""; for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) s = s (s ? " " : "") $i; print s }' | sort -u
}
# page_options PAGE: every --option the page marks up as one of the program's flags: the words
# `-name` after an `Fl` macro on a line (`.Fl -node Ar node | Fl -all`, `.Op Fl -legacy | -signed`).
# Other programs' options in the examples (systemctl --now) are plain text and not counted.
page_options() {
    awk '{ f = 0; for (i = 1; i <= NF; i++) { if ($i == "Fl" || $i == ".Fl") f = 1; else if (f && $i ~ /^-[a-z][a-z0-9-]*$/) print "-" $i } }' \
        "$MAN_SRC/$1" | sort -u
}
set_diff() { # LIST_A LIST_B: "missing: … extra: …" (in A not B, in B not A)
    local missing extra
    missing=$(comm -23 <(sort -u <<<"$1") <(sort -u <<<"$2") | grep . | one_line)
    extra=$(comm -13 <(sort -u <<<"$1") <(sort -u <<<"$2") | grep . | one_line)
    [ -z "$missing$extra" ] || echo "missing: ${missing:-none}; not in the code: ${extra:-none}"
}
# synopsis_options PAGE COMMAND: the --options of COMMAND's lines in the page's SYNOPSIS (from
# its `.Nm` to the next), with those of the `where settings is …` paragraph when the lines use
# `Ar settings`.
synopsis_options() {
    sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$MAN_SRC/$1" | awk -v want="$2" '
        /^\.Nm/ { cmd = ""; common = 0; next }
        /^\.Pp/ { common = 1; next }
        /^\.Cm / && !common { cmd = $2; for (i = 3; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) cmd = cmd " " $i }
        / Ar settings/ && cmd == want { uses = 1 }
        {
            f = 0
            for (i = 1; i <= NF; i++) {
                if ($i == "Fl" || $i == ".Fl") f = 1
                else if (f && $i ~ /^-[a-z][a-z0-9-]*$/) { if (common) shared["-" $i] = 1; else if (cmd == want) own["-" $i] = 1 }
            }
        }
        END { for (o in own) print o; if (uses) for (o in shared) print o }' | sort -u
}
# usage_options PROGRAM COMMAND: the --options of the USAGE line of `PROGRAM COMMAND --help`.
usage_options() { "$1" $2 --help 2>/dev/null | sed -n 's/^USAGE: //p' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
# synopsis_mismatches PAGE PROGRAM: "COMMAND (missing: …; not in the code: …)" for each command
# whose SYNOPSIS lines do not have exactly the options of its USAGE line.
synopsis_mismatches() {
    local cmd d
    while read -r cmd; do
        d=$(set_diff "$(usage_options "$2" "$cmd")" "$(synopsis_options "$1" "$cmd")")
        [ -z "$d" ] || echo "$cmd ($d);"
    done <<<"$(help_commands "$2")"
}
for prog in tdns-kdc tdns-krs tdnskrs-nsd; do
    page=$prog.8 bin=$BIN_DIR/$prog
    [ -f "$MAN_SRC/$page" ] || continue
    if [ ! -x "$bin" ]; then
        fail "$T: man: $page describes every command of $prog --help" "$bin not built"
        continue
    fi
    cmds=$(help_commands "$bin")
    opts=$(help_options "$bin")
    check "$T: man: $page describes every command of \`$prog --help\` ($(wc -l <<<"$cmds") commands), and no other" \
        "$(set_diff "$cmds" "$(page_commands "$page")")" \
        eval '[ -n "$cmds" ] && [ -z "$(set_diff "$cmds" "$(page_commands "$page")")" ]'
    check "$T: man: $page shows every option of $prog and its commands ($(wc -l <<<"$opts") options), and no other" \
        "$(set_diff "$opts" "$(page_options "$page")")" \
        eval '[ -n "$opts" ] && [ -z "$(set_diff "$opts" "$(page_options "$page")")" ]'
    check "$T: man: $page SYNOPSIS: each command with exactly the options of its USAGE line" \
        "$(synopsis_mismatches "$page" "$bin" | one_line)" \
        eval '[ -n "$(usage_options "$bin" "$(head -1 <<<"$cmds")")" ] && [ -z "$(synopsis_mismatches "$page" "$bin")" ]'
done

# Every setting krs_init accepts (KRSSettings.known) has its entry in tdnskrs.conf(5), and the
# page has no entry for a setting the code does not know.
known_settings() {
    sed -n '/static let known: Set<String> = \[/,/\]/p' "$REPO_ROOT/Sources/TDNSKRS/Settings.swift" |
        grep -oE '"[a-z0-9_]+"' | tr -d '"' | sort -u
}
page_settings() { sed -n '/^\.Sh SETTINGS/,/^\.Sh [^S]/p' "$MAN_SRC/tdnskrs.conf.5" | sed -n 's/^\.It Cm \([a-z0-9_]*\) Ns =.*/\1/p' | sort -u; }
if [ -f "$MAN_SRC/tdnskrs.conf.5" ]; then
    settings=$(known_settings)
    check "$T: man: tdnskrs.conf.5 has an entry for each of the $(wc -l <<<"$settings") settings of Settings.swift, and no other" \
        "$(set_diff "$settings" "$(page_settings)")" \
        eval '[ "$(wc -l <<<"$settings")" -ge 20 ] && [ -z "$(set_diff "$settings" "$(page_settings)")" ]'
fi

# Every function the installed headers declare is in libtdnskrs(3)'s SYNOPSIS, and every member
# of crypto_backend_t and krs_host_ops_t in its tables; the SYNOPSIS declares no other function.
header_functions() {
    cat "$HEADERS_DIR"/*.h | grep -E '^[a-z][a-z_0-9 ]*[ *][a-z_0-9]+\(' |
        sed -E 's/^[^(]*[ *]([a-z_0-9]+)\(.*/\1/' | sort -u
}
header_members() { cat "$HEADERS_DIR"/*.h | grep -oE '\(\*[a-z_0-9]+\)\(' | sort -u; }
page_functions() {
    sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$MAN_SRC/libtdnskrs.3" | sed -nE 's/^\.(Fn|Fo) ([a-z_0-9]+).*/\2/p' | sort -u
}
members_missing() {
    local m
    while read -r m; do grep -qF -- "$m" "$MAN_SRC/libtdnskrs.3" || echo "$m"; done <<<"$(header_members)"
}
if [ -f "$MAN_SRC/libtdnskrs.3" ]; then
    functions=$(header_functions)
    check "$T: man: libtdnskrs.3 declares the $(wc -l <<<"$functions") functions of $(basename "$HEADERS_DIR")/*.h, and no other" \
        "$(set_diff "$functions" "$(page_functions)")" \
        eval '[ "$(wc -l <<<"$functions")" -ge 10 ] && [ -z "$(set_diff "$functions" "$(page_functions)")" ]'
    check "$T: man: libtdnskrs.3 shows every callback member of crypto_backend_t and krs_host_ops_t" \
        "missing: $(members_missing | one_line)" \
        eval '[ -n "$(header_members)" ] && [ -z "$(members_missing)" ]'
fi

if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants ExecStart= to exist: the sidecar binary is not installed here, /bin/true is.
    mkdir -p "$TMP/unit"
    # (Examples/tdnskrs-nsd.service is a link to the packaged unit, Sources/Packaging/systemd/.)
    sed 's|^ExecStart=/usr/bin/tdnskrs-nsd |ExecStart=/bin/true |' "$EX_SRC/tdnskrs-nsd.service" >"$TMP/unit/tdnskrs-nsd.service"
    # Documentation=man:tdnskrs-nsd(8) man:nsd(8) man:nsd-control(8): the first from this tree's
    # pages (MANTREE), the others as installed; without them the references are not checked.
    vflags=()
    export MANPATH="$MANTREE:$(manpath -q 2>/dev/null)"
    man -w tdnskrs-nsd nsd nsd-control >/dev/null 2>&1 || vflags=(--man=no)
    # verify exits 0 even for unknown or unparsable settings: any output is a finding.
    check "$T: systemd-analyze verify ${vflags[*]:+${vflags[*]} }tdnskrs-nsd.service: no findings (Documentation= man pages found)" \
        "$(systemd-analyze verify "${vflags[@]}" "$TMP/unit/tdnskrs-nsd.service" 2>&1 | head -3 | tr '\n' ' ')" \
        eval '[ -z "$(systemd-analyze verify "${vflags[@]}" "$TMP/unit/tdnskrs-nsd.service" 2>&1)" ]'
else
    echo "# systemd-analyze not installed: tdnskrs-nsd.service not verified" >&2
fi

exit $((FAILURES > 0))
