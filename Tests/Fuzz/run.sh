#!/usr/bin/env bash
# Runs the libFuzzer build of tdns-fuzz over each target's corpus (called by `make fuzz`).
#
#   Tests/Fuzz/run.sh BINARY TARGET...
#
# Environment:
#   FUZZ_RUNS   executions per target (default 1000000)
#   FUZZ_WORK   scratch directory (default .build-fuzz/work): new inputs go to
#               $FUZZ_WORK/corpus/<target>, crash inputs to $FUZZ_WORK/artifacts/<target>/
#   FUZZ_MERGE  1: afterwards merge (-merge=1) the new inputs that add edge coverage into
#               Tests/Fuzz/corpus/<target>, the committed corpus the unit tests replay
#   FUZZ_ARGS   extra libFuzzer flags, e.g. "-max_total_time=600" or "-jobs=2"
#
# Prints per target the executions (libFuzzer's stat::number_of_executed_units), the time and
# the corpus sizes; exits non-zero when a target crashed (its log and input are named).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; shift
runs=${FUZZ_RUNS:-1000000}
work=${FUZZ_WORK:-.build-fuzz/work}
status=0
# A known leak inside libcjose (see lsan.supp) must not stop the jwe target.
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# libFuzzer and ASan report crashes themselves; Swift's backtracer would attach to every
# crashing process (and to -minimize_crash's children) and slow them down by minutes.
export SWIFT_BACKTRACE=enable=no

max_len() {  # the largest input each format has in practice
    case $1 in
        dns-message|chunk-rdata|edns-options|json-manifest|kdc-chunk-query|kdc-enroll-update|kdc-confirmation) echo 65535 ;;
        jws|jwe) echo 16384 ;;
        key-file) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

count() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

for target in "$@"; do
    seeds="$here/corpus/$target"
    new="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    log="$work/$target.log"
    mkdir -p "$seeds" "$new" "$artifacts"
    len=$(max_len "$target")
    start=$(date +%s)
    # The writable corpus comes first: libFuzzer adds what it finds there, never to $seeds.
    # shellcheck disable=SC2086
    TDNS_FUZZ_TARGET=$target "$bin" -runs="$runs" -max_len="$len" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" -timeout=30 -rss_limit_mb=4096 ${FUZZ_ARGS:-} \
        "$new" "$seeds" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "$target: ${execs:-?} executions in ${secs}s (max_len $len), corpus $(count "$seeds") committed + $(count "$new") new files, exit $rc"
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "   CRASH — log: $log; inputs: $(ls "$artifacts" | sed "s|^|$artifacts/|" | tr '\n' ' ')"
        grep -m3 -E 'INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY' "$log" | sed 's/^/   /'
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
        before=$(count "$seeds")
        # Edges only (-use_counters=0): a few hundred small files per target, not thousands.
        TDNS_FUZZ_TARGET=$target "$bin" -merge=1 -use_counters=0 -max_len="$len" "$seeds" "$new" >"$work/$target.merge.log" 2>&1
        echo "   merged: $before → $(count "$seeds") files ($(du -sh "$seeds" | cut -f1))"
    fi
done
exit $status
