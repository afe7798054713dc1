#!/usr/bin/env bash
# What the web UI costs the load: requests/s against nginx with the page open in
# headless Chromium (its event stream connected, the table polled) against without
# the web UI, RUNS interleaved runs of each, medians (bar: ratio >= 0.97). Then the
# memory of one long run with the page open: RSS after a warm-up and at the end
# (bar: within 2 MiB).
#
#   bench/web_ui.sh              # RUNS=7 DURATION=20 MEMORY_SECONDS=600
#   bench/web_ui.sh --smoke      # one short round of each, to check the script
#
# Needs nginx, wrk's neighbours (taskset), chromium, and playwright-core in
# tests/browser (scripts/test installs them).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-7}
DURATION=${DURATION:-20}
MEMORY_SECONDS=${MEMORY_SECONDS:-600}
USERS=${USERS:-32}
PORT=${PORT:-18190}
WEB_PORT=${WEB_PORT:-18191}
if [ "${1:-}" = "--smoke" ]; then
    RUNS=1 DURATION=3 MEMORY_SECONDS=15
fi
BROWSER_DIR="$ROOT/tests/browser"
[ -d "$BROWSER_DIR/node_modules/playwright-core" ] \
    || npm install --prefix "$BROWSER_DIR" --silent --no-audit --no-fund

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
start_nginx "$PORT"
WORK=$(mktemp -d)
BROWSER_PID=
LD_PID=
cleanup() {
    [ -n "$BROWSER_PID" ] && kill "$BROWSER_PID" 2>/dev/null || true
    [ -n "$LD_PID" ] && kill "$LD_PID" 2>/dev/null || true
    stop_nginx
    rm -rf "$WORK"
}
trap cleanup EXIT

# script SECONDS: a closed-model test of USERS users with no think time.
script() {
    cat > "$WORK/t.json" <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "fast_http_user"},
  "user_count": $USERS, "spawn_rate": 10000, "test_time": $1,
  "wait_time": {"constant": 0},
  "tasks": [{"method": "get", "request_url": "http://127.0.0.1:$PORT/"}]
}]]}
JSON
}

# with_page SUMMARY SECONDS: runs the test with --web, the page open in Chromium for
# all of it; prints the summary's requests/s. Leaves LD_PID running when KEEP=1.
with_page() {
    local summary=$1 seconds=$2
    rm -f "$summary"
    script "$seconds"
    taskset -c "$LOAD_CPU" "$ROOT/target/release/loaddensity" --threads 1 --quiet run "$WORK/t.json" \
        --web "127.0.0.1:$WEB_PORT" --summary-json "$summary" >/dev/null 2>"$WORK/ld.err" &
    LD_PID=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$WEB_PORT/snapshot" >/dev/null 2>&1 && break
        sleep 0.05
    done
    # The browser shares the target's core: the load keeps its own.
    (cd "$BROWSER_DIR" && exec taskset -c "$TARGET_CPU" node hold_page.mjs "http://127.0.0.1:$WEB_PORT/" $((seconds + 30))) >/dev/null &
    BROWSER_PID=$!
    for _ in $(seq 1 $(( (seconds + 30) * 10 ))); do
        [ -s "$summary" ] && break
        sleep 0.1
    done
    if [ "${KEEP:-0}" != 1 ]; then
        kill "$BROWSER_PID" 2>/dev/null || true; wait "$BROWSER_PID" 2>/dev/null || true; BROWSER_PID=
        kill -INT "$LD_PID" 2>/dev/null || true; wait "$LD_PID" 2>/dev/null || true; LD_PID=
    fi
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["rps"])' "$summary"
}

without_page() {
    script "$DURATION"
    ld_rps "$WORK/plain.json" run "$WORK/t.json"
}

declare -A RESULTS
ROWS=(
    "without web UI|without_page"
    "web UI open in Chromium|with_page $WORK/web.json $DURATION"
)
run_rows "$RUNS"
plain=$(row_median "without web UI")
web=$(row_median "web UI open in Chromium")
ratio=$(awk -v a="$web" -v b="$plain" 'BEGIN {printf "%.3f", a/b}')

# Memory: one long run with the page open, RSS after 10 s and at the end.
script "$MEMORY_SECONDS"
rm -f "$WORK/long.json"
taskset -c "$LOAD_CPU" "$ROOT/target/release/loaddensity" --threads 1 --quiet run "$WORK/t.json" \
    --web "127.0.0.1:$WEB_PORT" --summary-json "$WORK/long.json" >/dev/null 2>"$WORK/ld.err" &
LD_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$WEB_PORT/snapshot" >/dev/null 2>&1 && break
    sleep 0.05
done
(cd "$BROWSER_DIR" && exec taskset -c "$TARGET_CPU" node hold_page.mjs "http://127.0.0.1:$WEB_PORT/" $((MEMORY_SECONDS + 30))) >/dev/null &
BROWSER_PID=$!
warmup=$(( MEMORY_SECONDS < 60 ? 3 : 10 ))
sleep "$warmup"
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$LD_PID/status")
rss_end=$rss_start
while [ ! -s "$WORK/long.json" ] && kill -0 "$LD_PID" 2>/dev/null; do
    rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$LD_PID/status" 2>/dev/null || echo "$rss_end")
    sleep 1
done
kill "$BROWSER_PID" 2>/dev/null || true; wait "$BROWSER_PID" 2>/dev/null || true; BROWSER_PID=
kill -INT "$LD_PID" 2>/dev/null || true; wait "$LD_PID" 2>/dev/null || true; LD_PID=
growth=$(( rss_end - rss_start ))

echo
echo "| run | median requests/s ($RUNS runs of ${DURATION}s, $USERS users) |"
echo "|---|---:|"
echo "| without web UI | $plain |"
echo "| web UI open in Chromium | $web |"
echo
echo "ratio (page open / without): $ratio (bar: >= 0.97)"
echo "RSS with the page open for ${MEMORY_SECONDS}s: $rss_start KiB after ${warmup}s, $rss_end KiB at the end, growth $growth KiB (bar: <= 2048 KiB)"
