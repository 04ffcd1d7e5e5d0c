#!/usr/bin/env bash
# Tests/hosting/test-bind9.sh — hosting proof in BIND 9: named dlopens build/lib/dlz_tdnskrs.so,
# which links libtdnskrs, and answers version.tdnskrs TXT with krs_version(); the module must
# survive rndc reconfig / reload / reconfig. Everything runs on 127.0.0.1, high ports, in a
# temporary directory; named is always stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=bind9
PLUGIN=$LIB_DIR/dlz_tdnskrs.so
TMP=""
NAMED_PID=""

cleanup() {
    stop_server "$NAMED_PID" rndc -c "$TMP/rndc.conf" stop
    finish_tmp "files and named.log"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "bind9, bind9-utils, bind9-dnsutils, iproute2" named named-checkconf rndc rndc-confgen dig ss
require_built -n "plugin built" "make plugins" "$PLUGIN"
require_library_version  # EXPECTED, WANT

# --- configuration ---------------------------------------------------------------------------

TMP=$(mktemp -d /tmp/tdnskrs-bind9.XXXXXX)
DNS_PORT=$(free_port) && CTL_PORT=$(free_port) || { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
mkdir -p "$TMP/run"
rndc_setup
{
    named_conf_head
    echo 'dlz "tdnskrs" { database "dlopen '"$PLUGIN"'"; };'
} >"$TMP/named.conf"
RNDC=(rndc -c "$TMP/rndc.conf")
LOG=$TMP/named.log

check "$T: named-checkconf accepts the generated named.conf" "$(named-checkconf "$TMP/named.conf" 2>&1 | head -1)" \
    named-checkconf "$TMP/named.conf"

# --- start -----------------------------------------------------------------------------------

say "starting named on 127.0.0.1#$DNS_PORT with dlz \"tdnskrs\" { database \"dlopen $PLUGIN\"; }"
named -g -c "$TMP/named.conf" >"$LOG" 2>&1 &
NAMED_PID=$!
answering_started named "$NAMED_PID"

LOADED="tdnskrs DLZ loaded, libtdnskrs $EXPECTED"
UNLOADED="tdnskrs DLZ instance unloaded"
check "$T: named logged '$LOADED'" "not in named's log" \
    wait_for 5 grep -qF "$LOADED" "$LOG"

version_query_ok "after start"

authoritative_check

NX=$(dig @127.0.0.1 -p "$DNS_PORT" nothere.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
check "$T: nothere.tdnskrs is NXDOMAIN with the module's SOA" "$(grep -E 'status:' <<<"$NX")" \
    eval 'grep -q "status: NXDOMAIN" <<<"$NX" && grep -qE "^tdnskrs\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+tdnskrs\. hostmaster\.tdnskrs\. 1 " <<<"$NX"'

in_process_checks named "$NAMED_PID" dlz_tdnskrs plugin

# --- reloads: named creates the new DLZ instance, then destroys the old one --------------------

n=0
for cmd in reconfig reload reconfig; do
    n=$((n + 1))
    say "rndc $cmd (#$n)"
    check_command "$T: rndc $cmd #$n" "${RNDC[@]}" "$cmd"
    check_within 15 "$T: new DLZ instance created and old one destroyed after rndc $cmd #$n" \
        '"log has $(count_lines "$LOG" "$LOADED") loads / $(count_lines "$LOG" "$UNLOADED") unloads, want $((n + 1)) / $n"' \
        swapped "$n"
    version_query_ok "after rndc $cmd #$n"
done

# --- survival --------------------------------------------------------------------------------

check "$T: named is still the same process (pid $NAMED_PID)" "pid gone or pid-file differs" \
    same_process "$NAMED_PID" "$TMP/run/named.pid"
check "$T: no crash/assertion/fatal lines in named's log" \
    "$(grep -iE 'crash|assertion|exiting \(due to fatal error\)' "$LOG" | head -1)" \
    eval '! grep -qiE "crash|assertion|exiting \(due to fatal error\)" "$LOG"'

# --- stop ------------------------------------------------------------------------------------

say "rndc stop"
"${RNDC[@]}" stop >/dev/null 2>&1
stopped_cleanly "$NAMED_PID" 15 "$T: rndc stop, named exited cleanly" && NAMED_PID=""

exit $((FAILURES > 0))
