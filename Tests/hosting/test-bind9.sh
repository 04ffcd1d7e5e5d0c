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
    if [ -n "$NAMED_PID" ]; then
        if is_alive "$NAMED_PID"; then
            rndc -c "$TMP/rndc.conf" stop >/dev/null 2>&1
            wait_exit "$NAMED_PID" 15 || kill_pid "$NAMED_PID"
        fi
        wait "$NAMED_PID" 2>/dev/null
    fi
    if [ -n "$TMP" ]; then
        if [ "$FAILURES" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
            rm -rf "$TMP"
        else
            echo "note: $T files and named.log kept in $TMP" >&2
        fi
    fi
}
trap cleanup EXIT
trap 'fail "$T: run completed" "interrupted"; exit 1' INT TERM HUP

# --- preconditions ---------------------------------------------------------------------------

for tool in named named-checkconf rndc rndc-confgen dig ss; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "$T: tools present" "$tool not found (bind9, bind9-utils, bind9-dnsutils, iproute2)"
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

# --- configuration ---------------------------------------------------------------------------

TMP=$(mktemp -d /tmp/tdnskrs-bind9.XXXXXX)
DNS_PORT=$(free_port) && CTL_PORT=$(free_port) || { fail "$T: free ports" "none found in 20000-40000"; exit 1; }
mkdir -p "$TMP/run"
rndc-confgen -a -k rndc-key -c "$TMP/rndc.key" >/dev/null 2>&1

cat >"$TMP/named.conf" <<EOF
include "$TMP/rndc.key";
controls { inet 127.0.0.1 port $CTL_PORT allow { 127.0.0.1; } keys { "rndc-key"; }; };
options {
    directory "$TMP";
    pid-file "$TMP/run/named.pid";
    session-keyfile "$TMP/run/session.key";
    managed-keys-directory "$TMP/run";
    listen-on port $DNS_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
dlz "tdnskrs" { database "dlopen $PLUGIN"; };
EOF
cat >"$TMP/rndc.conf" <<EOF
include "$TMP/rndc.key";
options { default-key "rndc-key"; default-server 127.0.0.1; default-port $CTL_PORT; };
EOF
RNDC=(rndc -c "$TMP/rndc.conf")
LOG=$TMP/named.log

check "$T: named-checkconf accepts the generated named.conf" "$(named-checkconf "$TMP/named.conf" 2>&1 | head -1)" \
    named-checkconf "$TMP/named.conf"

# --- start -----------------------------------------------------------------------------------

say "starting named on 127.0.0.1#$DNS_PORT with dlz \"tdnskrs\" { database \"dlopen $PLUGIN\"; }"
named -g -c "$TMP/named.conf" >"$LOG" 2>&1 &
NAMED_PID=$!

answers_or_died() {
    ! is_alive "$NAMED_PID" || [ -n "$(dig_txt "$DNS_PORT" version.tdnskrs)" ]
}
wait_for 30 answers_or_died
if ! is_alive "$NAMED_PID"; then
    fail "$T: named started" "exited at startup: $(grep -iE 'error|fatal|fail' "$LOG" | tail -1)"
    exit 1
fi
pass "$T: named started (pid $NAMED_PID)"

LOADED="tdnskrs DLZ loaded, libtdnskrs $EXPECTED"
UNLOADED="tdnskrs DLZ instance unloaded"
check "$T: named logged '$LOADED'" "not in named's log" \
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

NX=$(dig @127.0.0.1 -p "$DNS_PORT" nothere.tdnskrs TXT +norec +time=2 +tries=1 2>&1)
check "$T: nothere.tdnskrs is NXDOMAIN with the module's SOA" "$(grep -E 'status:' <<<"$NX")" \
    eval 'grep -q "status: NXDOMAIN" <<<"$NX" && grep -qE "^tdnskrs\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+tdnskrs\. hostmaster\.tdnskrs\. 1 " <<<"$NX"'

say "named's memory map: libtdnskrs and the plugin are in-process, no Swift runtime library"
if [ "${DEMO:-0}" = 1 ]; then
    grep -oE '/[^ ]*(libtdnskrs|dlz_tdnskrs)[^ ]*' "/proc/$NAMED_PID/maps" | sort -u | show
fi
check "$T: libtdnskrs.so and dlz_tdnskrs.so are mapped in named" "not found in /proc/$NAMED_PID/maps" \
    eval 'grep -q "/libtdnskrs\.so" "/proc/$NAMED_PID/maps" && grep -q "/dlz_tdnskrs\.so" "/proc/$NAMED_PID/maps"'
check "$T: no libswift*.so mapped in named (static Swift runtime)" \
    "$(grep -o '/[^ ]*libswift[^ ]*\.so[^ ]*' "/proc/$NAMED_PID/maps" 2>/dev/null | sort -u | head -1)" \
    no_swift_runtime_mapped "$NAMED_PID"

# --- reloads: named creates the new DLZ instance, then destroys the old one --------------------

n=0
for cmd in reconfig reload reconfig; do
    n=$((n + 1))
    say "rndc $cmd (#$n)"
    out=$("${RNDC[@]}" "$cmd" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass "$T: rndc $cmd #$n"
    else
        fail "$T: rndc $cmd #$n" "rc=$rc: $out"
    fi
    name="$T: new DLZ instance created and old one destroyed after rndc $cmd #$n"
    if wait_for 15 eval '[ "$(count_lines "$LOG" "$LOADED")" -ge $((n + 1)) ] && [ "$(count_lines "$LOG" "$UNLOADED")" -ge $n ]'; then
        pass "$name"
    else
        fail "$name" "log has $(count_lines "$LOG" "$LOADED") loads / $(count_lines "$LOG" "$UNLOADED") unloads, want $((n + 1)) / $n"
    fi
    query_ok "after rndc $cmd #$n"
done

# --- survival --------------------------------------------------------------------------------

check "$T: named is still the same process (pid $NAMED_PID)" "pid gone or pid-file differs" \
    eval 'is_alive "$NAMED_PID" && [ "$(cat "$TMP/run/named.pid" 2>/dev/null)" = "$NAMED_PID" ]'
check "$T: no crash/assertion/fatal lines in named's log" \
    "$(grep -iE 'crash|assertion|exiting \(due to fatal error\)' "$LOG" | head -1)" \
    eval '! grep -qiE "crash|assertion|exiting \(due to fatal error\)" "$LOG"'

# --- stop ------------------------------------------------------------------------------------

say "rndc stop"
"${RNDC[@]}" stop >/dev/null 2>&1
if wait_exit "$NAMED_PID" 15; then
    wait "$NAMED_PID"
    rc=$?
    NAMED_PID=""
    check "$T: rndc stop, named exited cleanly" "exit status $rc" [ "$rc" -eq 0 ]
else
    fail "$T: rndc stop, named exited cleanly" "still running after 15 s (killed)"
fi

exit $((FAILURES > 0))
