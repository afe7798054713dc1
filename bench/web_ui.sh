#!/usr/bin/env bash
# What the web UI costs the load: requests/s against nginx with the page open in
# headless Chromium (its event stream connected) against without the web UI, RUNS
# interleaved runs of each, medians (bar: ratio >= 0.97), and loaddensity's CPU time
# per request (user + system over requests) of both rows. Then the memory of one long
# run with the page open: RSS after a warm-up and at the end (bar: within 2 MiB).
#
#   bench/web_ui.sh              # RUNS=7 DURATION=20 MEMORY_SECONDS=600
#   bench/web_ui.sh --smoke      # one short round of each, to check the script
#   MEMORY_SECONDS=0 bench/web_ui.sh   # the ratio only; RUNS=0: the memory only
#
# The browser stands for a person's desktop, not for the machine under load: it runs
# at the lowest priority (SCHED_IDLE and nice 19, BROWSER_SCHED), so it takes only CPU
# time neither loaddensity nor nginx wants. The page connects during an LD_sleep before
# the test (PAGE_WAIT seconds), so Chromium's start-up is outside the measured test.
# CPU per request does not depend on where the browser runs.
#
# Needs nginx, taskset, chrt, chromium, and playwright-core in tests/browser
# (scripts/test installs them).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-7}
DURATION=${DURATION:-20}
MEMORY_SECONDS=${MEMORY_SECONDS:-600}
USERS=${USERS:-32}
PORT=${PORT:-18190}
WEB_PORT=${WEB_PORT:-18191}
PAGE_WAIT=${PAGE_WAIT:-5}
BROWSER_SCHED=${BROWSER_SCHED:-chrt --idle 0 nice -n 19}
if [ "${1:-}" = "--smoke" ]; then
    RUNS=1 DURATION=3 MEMORY_SECONDS=15
fi
BROWSER_DIR="$ROOT/tests/browser"
[ -d "$BROWSER_DIR/node_modules/playwright-core" ] \
    || npm install --prefix "$BROWSER_DIR" --silent --no-audit --no-fund

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin loaddensity
start_nginx "$PORT"
WORK=$(mktemp -d)
BROWSER_PID=
LD_PID=
LAUNCHED=
cleanup() {
    [ -n "$BROWSER_PID" ] && kill "$BROWSER_PID" 2>/dev/null || true
    [ -n "$LD_PID" ] && kill "$LD_PID" 2>/dev/null || true
    stop_nginx
    rm -rf "$WORK"
}
trap cleanup EXIT

# script SECONDS [WAIT]: a closed-model test of USERS users with no think time, after
# an LD_sleep of WAIT seconds when given.
script() {
    local wait=${2:-0} sleep=
    [ "$wait" -gt 0 ] && sleep="[\"LD_sleep\", {\"seconds\": $wait}],"
    cat > "$WORK/t.json" <<JSON
{"load_density": [$sleep ["LD_start_test", {
  "user_detail_dict": {"user": "fast_http_user"},
  "user_count": $USERS, "spawn_rate": 10000, "test_time": $1,
  "wait_time": {"constant": 0},
  "tasks": [{"method": "get", "request_url": "http://127.0.0.1:$PORT/"}]
}]]}
JSON
}

# start_with_page SUMMARY SECONDS [TIMES]: starts loaddensity with --web on LOAD_CPU
# (under /usr/bin/time writing TIMES when given; LD_PID is loaddensity's own pid), then
# the page in Chromium at the lowest priority; returns once the page's event stream is
# connected, before the test begins.
start_with_page() {
    local summary=$1 seconds=$2 times=${3:-}
    rm -f "$summary" "$WORK/page.out"
    script "$seconds" "$PAGE_WAIT"
    local timer=()
    [ -n "$times" ] && timer=(/usr/bin/time -f '%U %S' -o "$times")
    taskset -c "$LOAD_CPU" "${timer[@]}" "$ROOT/target/release/loaddensity" --threads 1 --quiet \
        run "$WORK/t.json" --web "127.0.0.1:$WEB_PORT" --summary-json "$summary" >/dev/null 2>"$WORK/ld.err" &
    LAUNCHED=$!
    local launched=$LAUNCHED
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$WEB_PORT/snapshot" >/dev/null 2>&1 && break
        sleep 0.05
    done
    # With /usr/bin/time, Ctrl-C must reach loaddensity itself (time ignores it).
    LD_PID=$launched
    [ -n "$times" ] && LD_PID=$(pgrep -P "$launched")
    # shellcheck disable=SC2086
    (cd "$BROWSER_DIR" && exec taskset -c "$TARGET_CPU" $BROWSER_SCHED node hold_page.mjs \
        "http://127.0.0.1:$WEB_PORT/" $((PAGE_WAIT + seconds + 30))) >"$WORK/page.out" 2>&1 &
    BROWSER_PID=$!
    for _ in $(seq 1 $((PAGE_WAIT * 10))); do
        grep -q '^open' "$WORK/page.out" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q '^open' "$WORK/page.out"; then
        echo "the page did not connect within ${PAGE_WAIT}s (before the test):" >&2
        cat "$WORK/page.out" >&2
        return 1
    fi
}

# stop_with_page MIN_RENDERS: closes the page (which prints what it rendered) and
# stops loaddensity; fails when the page rendered fewer than MIN_RENDERS snapshots.
stop_with_page() {
    kill "$BROWSER_PID" 2>/dev/null || true; wait "$BROWSER_PID" 2>/dev/null || true; BROWSER_PID=
    kill -INT "$LD_PID" 2>/dev/null || true
    wait "$LAUNCHED" 2>/dev/null || true
    LD_PID=
    local rendered
    rendered=$(awk '/^rendered/ {print $2}' "$WORK/page.out")
    echo "page: $(grep '^rendered' "$WORK/page.out" || echo 'no report')" >&2
    if [ "${rendered:-0}" -lt "$1" ]; then
        echo "the page rendered ${rendered:-0} snapshots, expected at least $1: it was not live" >&2
        return 1
    fi
}

# with_page: one test with the page open for all of it; prints the summary's
# requests/s and leaves loaddensity's CPU time per request in CPU_FILE.
with_page() {
    start_with_page "$WORK/web.json" "$DURATION" "$WORK/web.times"
    for _ in $(seq 1 $(( (PAGE_WAIT + DURATION + 30) * 10 ))); do
        [ -s "$WORK/web.json" ] && break
        sleep 0.1
    done
    # One snapshot a second: allow a few late ones under load.
    stop_with_page $(( DURATION * 3 / 4 )) || return 1
    summary_rps "$WORK/web.json" "$WORK/web.times"
}

without_page() {
    script "$DURATION"
    ld_rps "$WORK/plain.json" run "$WORK/t.json"
}

declare -A RESULTS
ROWS=(
    "without web UI|without_page"
    "web UI open in Chromium|with_page"
)
if [ "$RUNS" -gt 0 ]; then
    run_rows "$RUNS"
    plain=$(row_median "without web UI")
    web=$(row_median "web UI open in Chromium")
    ratio=$(awk -v a="$web" -v b="$plain" 'BEGIN {printf "%.3f", a/b}')
    paired=$(paired_ratio "web UI open in Chromium" "without web UI")
    echo
    echo "| run | median requests/s ($RUNS runs of ${DURATION}s, $USERS users) | CPU µs/request |"
    echo "|---|---:|---:|"
    echo "| without web UI | $plain | $(cpu_median "without web UI") |"
    echo "| web UI open in Chromium | $web | $(cpu_median "web UI open in Chromium") |"
    echo
    echo "ratio of medians (page open / without): $ratio, median of paired ratios: $paired (bar: >= 0.97)"
fi

# Memory: one long run with the page open, RSS after a warm-up and at the end.
if [ "$MEMORY_SECONDS" -gt 0 ]; then
    start_with_page "$WORK/long.json" "$MEMORY_SECONDS"
    warmup=$(( MEMORY_SECONDS < 60 ? 3 : 10 ))
    sleep $(( PAGE_WAIT + warmup ))
    rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$LD_PID/status")
    rss_end=$rss_start
    rss_max=$rss_start
    while [ ! -s "$WORK/long.json" ] && kill -0 "$LD_PID" 2>/dev/null; do
        rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$LD_PID/status" 2>/dev/null || echo "$rss_end")
        [ "$rss_end" -gt "$rss_max" ] && rss_max=$rss_end
        sleep 1
    done
    live=yes
    stop_with_page $(( MEMORY_SECONDS * 3 / 4 )) || live="NO (see above)"
    growth=$(( rss_end - rss_start ))
    echo "RSS with the page open for ${MEMORY_SECONDS}s: $rss_start KiB after ${warmup}s of the test," \
        "$rss_end KiB at the end (peak $rss_max KiB), growth $growth KiB (bar: <= 2048 KiB); page live: $live"
fi
