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
    if [ -n "$KNOTD_PID" ]; then
        if is_alive "$KNOTD_PID"; then
            knotc -c "$TMP/knot.conf" -t 5 stop >/dev/null 2>&1
            wait_exit "$KNOTD_PID" 15 || kill_pid "$KNOTD_PID"
        fi
        wait "$KNOTD_PID" 2>/dev/null
    fi
    if [ -n "$TMP" ]; then
        if [ "$FAILURES" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
            rm -rf "$TMP"
        else
            echo "note: $T files and knotd.log kept in $TMP" >&2
        fi
    fi
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

for tool in knotd knotc dig ss; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "$T: tools present" "$tool not found (knot, knot-dnsutils, iproute2)"
        exit 1
    fi
done
if [ ! -f "$PLUGIN" ]; then
    fail "$T: plugin built" "$PLUGIN missing (make plugins)"
    exit 1
fi
EXPECTED=$(library_version)
if [[ ! $EXPECTED =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    fail "$T: libtdnskrs version readable" "krs_version() from $LIB_DIR/libtdnskrs.so.0 gave '$EXPECTED'"
    exit 1
fi
pass "$T: libtdnskrs version readable ($EXPECTED)"
WANT="\"$EXPECTED\""

# --- configuration (block-style YAML: Knot's parser is not a full YAML parser) ----------------

TMP=$(mktemp -d /tmp/tdnskrs-knot.XXXXXX)
DNS_PORT=$(free_port) || { fail "$T: free port" "none found in 20000-40000"; exit 1; }
mkdir -p "$TMP/run" "$TMP/db" "$TMP/zones"

# The module has no configuration section, so it is referenced by its bare name.
cat >"$TMP/knot.conf" <<EOF
server:
    rundir: "$TMP/run"
    listen: 127.0.0.1@$DNS_PORT

control:
    listen: "$TMP/run/knot.sock"

log:
  - target: stderr
    any: info

database:
    storage: "$TMP/db"

module:
  - id: mod-tdnskrs
    file: "$PLUGIN"

template:
  - id: default
    storage: "$TMP/zones"
    global-module: mod-tdnskrs
EOF
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

answers_or_died() {
    ! is_alive "$KNOTD_PID" || [ -n "$(dig_txt "$DNS_PORT" version.tdnskrs)" ]
}
wait_for 30 answers_or_died
if ! is_alive "$KNOTD_PID"; then
    fail "$T: knotd started" "exited at startup: $(grep -iE 'error|fatal|fail' "$LOG" | tail -1)"
    exit 1
fi
pass "$T: knotd started (pid $KNOTD_PID)"

LOADED="tdnskrs module loaded, libtdnskrs $EXPECTED"
UNLOADED="tdnskrs module unloaded"
check "$T: knotd logged '$LOADED'" "not in knotd's log" \
    wait_for 5 eval '[ "$(count_lines "$LOG" "$LOADED")" -ge 1 ]'

query_ok() {
    local what=$1 got
    say "dig @127.0.0.1 -p $DNS_PORT version.tdnskrs TXT  ($what)"
    dig @127.0.0.1 -p "$DNS_PORT" version.tdnskrs TXT +norec +noall +answer +time=2 +tries=1 2>&1 | show
    got=$(dig_txt "$DNS_PORT" version.tdnskrs)
    if [ "$got" = "$WANT" ]; then
        pass "$T: version.tdnskrs TXT = $WANT ($what)"
    else
        fail "$T: version.tdnskrs TXT = $WANT ($what)" "got '${got:-no answer}'"
    fi
}
query_ok "after start"

FULL=$(dig @127.0.0.1 -p "$DNS_PORT" version.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
check "$T: answer is authoritative (aa, NOERROR)" "flags/status wrong: $(grep -E 'flags:|status:' <<<"$FULL" | tr '\n' ' ')" \
    eval 'grep -q "status: NOERROR" <<<"$FULL" && grep -qE "flags:[^;]* aa[ ;]" <<<"$FULL"'

# Any other query must reach knotd untouched; it serves no zone, so it refuses.
OTHER=$(dig @127.0.0.1 -p "$DNS_PORT" other.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
check "$T: other queries pass through to knotd (other.tdnskrs TXT is REFUSED)" "$(grep -E 'status:' <<<"$OTHER")" \
    eval 'grep -q "status: REFUSED" <<<"$OTHER"'

say "knotd's memory map: libtdnskrs and the module are in-process, no Swift runtime library"
if [ "${DEMO:-0}" = 1 ]; then
    grep -oE '/[^ ]*(libtdnskrs|mod-tdnskrs)[^ ]*' "/proc/$KNOTD_PID/maps" | sort -u | show
fi
check "$T: libtdnskrs.so and mod-tdnskrs.so are mapped in knotd" "not found in /proc/$KNOTD_PID/maps" \
    eval 'grep -q "/libtdnskrs\.so" "/proc/$KNOTD_PID/maps" && grep -q "/mod-tdnskrs\.so" "/proc/$KNOTD_PID/maps"'
check "$T: no libswift*.so mapped in knotd (static Swift runtime)" \
    "$(grep -o '/[^ ]*libswift[^ ]*\.so[^ ]*' "/proc/$KNOTD_PID/maps" 2>/dev/null | sort -u | head -1)" \
    no_swift_runtime_mapped "$KNOTD_PID"

# --- reloads: knotd loads the new module instance, then unloads the old one -------------------

for n in 1 2 3; do
    say "knotc reload (#$n)"
    out=$("${KNOTC[@]}" reload 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass "$T: knotc reload #$n"
    else
        fail "$T: knotc reload #$n" "rc=$rc: $out"
    fi
    name="$T: new module instance loaded and old one unloaded after knotc reload #$n"
    if wait_for 15 eval '[ "$(count_lines "$LOG" "$LOADED")" -ge $((n + 1)) ] && [ "$(count_lines "$LOG" "$UNLOADED")" -ge $n ]'; then
        pass "$name"
    else
        fail "$name" "log has $(count_lines "$LOG" "$LOADED") loads / $(count_lines "$LOG" "$UNLOADED") unloads, want $((n + 1)) / $n"
    fi
    query_ok "after knotc reload #$n"
done

# --- survival --------------------------------------------------------------------------------

check "$T: knotd is still the same process (pid $KNOTD_PID)" "pid gone or pid-file differs" \
    eval 'is_alive "$KNOTD_PID" && [ "$(cat "$TMP/run/knot.pid" 2>/dev/null)" = "$KNOTD_PID" ]'
check "$T: no crash/assertion/fatal lines in knotd's log" \
    "$(grep -iE 'crash|assert|fatal|segfault|critical' "$LOG" | head -1)" \
    eval '! grep -qiE "crash|assert|fatal|segfault|critical" "$LOG"'

# --- stop ------------------------------------------------------------------------------------

say "knotc stop"
"${KNOTC[@]}" stop >/dev/null 2>&1
if wait_exit "$KNOTD_PID" 15; then
    wait "$KNOTD_PID"
    rc=$?
    KNOTD_PID=""
    check "$T: knotc stop, knotd exited cleanly" "exit status $rc" [ "$rc" -eq 0 ]
else
    fail "$T: knotc stop, knotd exited cleanly" "still running after 15 s (killed)"
fi

exit $((FAILURES > 0))
