#!/usr/bin/env bash
# Tests/hosting/test-knot.sh — hosting proof in Knot DNS: knotd loads build/lib/mod-tdnskrs.so
# as a global module, which links libtdnskrs and answers version.tdnskrs TXT with
# krs_version(); the module must survive three `knotc reload`s. Everything runs on 127.0.0.1,
# a high port, in a temporary directory, with no zones (so nothing is ever NOTIFYed);
# knotd is always stopped on exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=knot
PLUGIN=$LIB_DIR/mod-tdnskrs.so
TMP=""
KNOTD_PID=""

cleanup() {
    stop_server "$KNOTD_PID" knotc -c "$TMP/knot.conf" -t 5 stop
    finish_tmp "files and knotd.log"
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

require_tools "knot, knot-dnsutils, iproute2" knotd knotc dig ss
require_built -n "plugin built" "make plugins" "$PLUGIN"
require_library_version  # EXPECTED, WANT

# --- configuration (block-style YAML: Knot's parser is not a full YAML parser) ----------------

TMP=$(mktemp -d /tmp/tdnskrs-knot.XXXXXX)
DNS_PORT=$(free_port) || { fail "$T: free port" "none found in 20000-40000"; exit 1; }
mkdir -p "$TMP/run" "$TMP/db" "$TMP/zones"

# The module has no configuration section, so it is referenced by its bare name.
{
    knot_conf_head
    cat <<EOF

template:
  - id: default
    storage: "$TMP/zones"
    global-module: mod-tdnskrs
EOF
} >"$TMP/knot.conf"
KNOTC=(knotc -c "$TMP/knot.conf" -t 10)
LOG=$TMP/knotd.log

if out=$("${KNOTC[@]}" conf-check 2>&1); then
    pass "$T: knotc conf-check accepts the generated knot.conf"
else
    fail "$T: knotc conf-check accepts the generated knot.conf" "$(tail -1 <<<"$out")"
fi

# --- start -----------------------------------------------------------------------------------

say "starting knotd on 127.0.0.1@$DNS_PORT with global module mod-tdnskrs ($PLUGIN)"
knotd -c "$TMP/knot.conf" >"$LOG" 2>&1 &
KNOTD_PID=$!
answering_started knotd "$KNOTD_PID"

LOADED="tdnskrs module loaded, libtdnskrs $EXPECTED"
UNLOADED="tdnskrs module unloaded"
check "$T: knotd logged '$LOADED'" "not in knotd's log" \
    wait_for 5 grep -qF "$LOADED" "$LOG"

version_query_ok "after start"

authoritative_check

# Any other query must reach knotd untouched; it serves no zone, so it refuses.
OTHER=$(dig @127.0.0.1 -p "$DNS_PORT" other.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
check "$T: other queries pass through to knotd (other.tdnskrs TXT is REFUSED)" "$(grep -E 'status:' <<<"$OTHER")" \
    eval 'grep -q "status: REFUSED" <<<"$OTHER"'

in_process_checks knotd "$KNOTD_PID" mod-tdnskrs module

# --- reloads: knotd loads the new module instance, then unloads the old one -------------------

for n in 1 2 3; do
    say "knotc reload (#$n)"
    check_command "$T: knotc reload #$n" "${KNOTC[@]}" reload
    check_within 15 "$T: new module instance loaded and old one unloaded after knotc reload #$n" \
        '"log has $(count_lines "$LOG" "$LOADED") loads / $(count_lines "$LOG" "$UNLOADED") unloads, want $((n + 1)) / $n"' \
        swapped "$n"
    version_query_ok "after knotc reload #$n"
done

# --- survival --------------------------------------------------------------------------------

check "$T: knotd is still the same process (pid $KNOTD_PID)" "pid gone or pid-file differs" \
    same_process "$KNOTD_PID" "$TMP/run/knot.pid"
check "$T: no crash/assertion/fatal lines in knotd's log" \
    "$(grep -iE 'crash|assert|fatal|segfault|critical' "$LOG" | head -1)" \
    eval '! grep -qiE "crash|assert|fatal|segfault|critical" "$LOG"'

# --- stop ------------------------------------------------------------------------------------

say "knotc stop"
"${KNOTC[@]}" stop >/dev/null 2>&1
stopped_cleanly "$KNOTD_PID" 15 "$T: knotc stop, knotd exited cleanly" && KNOTD_PID=""

exit $((FAILURES > 0))
