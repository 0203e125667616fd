#!/bin/sh
# run.sh - `make fuzz`: build every target (build.sh auto) and run each
# for FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus:
# with libFuzzer when clang has it, else with driver.c's blind mutation
# loop. Crash reproducers go to build-fuzz/crashes/TARGET/. Prints one
# line per target (executions, crashes) and fails if any target crashed.
set -u
secs=${FUZZ_SECONDS:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$top/build-fuzz}
cd "$top"
mode=$(sh tests/fuzz/build.sh auto | sed -n 's/^mode: //p')
[ -n "$mode" ] || { echo "fuzz: build failed" >&2; exit 1; }
status=0
summary=""
for t in tests/fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    target=${name#fuzz_}
    work="$out/work/$target"
    crashes="$out/crashes/$target"
    rm -rf "$work"
    mkdir -p "$work" "$crashes"
    cp tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
    log="$out/$name.log"
    if [ "$mode" = libfuzzer ]; then
	"$out/$name" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
	    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    else
	"$out/$name" -t "$secs" -m 4096 -o "$crashes" "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^executions: \([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    found=$(ls "$crashes" | wc -l)
    line="$name: mode=$mode seconds=$secs executions=${execs:-?} crashes=$found exit=$rc"
    echo "$line"
    summary="$summary
$line"
    if [ "$rc" != 0 ] || [ "$found" != 0 ]; then
	status=1
	echo "  see $log and $crashes/" >&2
    fi
done
echo "$summary" >"$out/summary.txt"
exit $status
