#!/usr/bin/env bash
# Peak RSS per virtual user: 10,000 users with a constant 1 s think time against nginx,
# compared with 1 user, measured in the same run (ratio = (RSS_N - RSS_1) / (N - 1)).
#
#   bench/memory.sh            # USERS=10000 DURATION=20 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
USERS=${USERS:-10000}
DURATION=${DURATION:-20}
PORT=${PORT:-18182}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
start_nginx "$PORT"
trap stop_nginx EXIT
WORK=$(mktemp -d)

# peak_rss_kib USERS: runs the test and prints the process's peak RSS (VmHWM) in KiB.
peak_rss_kib() {
    local users=$1
    cat > "$WORK/mem.json" <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "fast_http_user"},
  "user_count": $users, "spawn_rate": 2000, "test_time": $DURATION,
  "wait_time": {"constant": 1},
  "tasks": [{"method": "get", "request_url": "http://127.0.0.1:$PORT/"}]
}]]}
JSON
    taskset -c "$LOAD_CPU" "$ROOT/target/release/loaddensity" --quiet run "$WORK/mem.json" \
        --summary-json "$WORK/summary-$users.json" >/dev/null &
    local pid=$! peak=0 hwm
    while kill -0 "$pid" 2>/dev/null; do
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
        sleep 0.5
    done
    wait "$pid"
    echo "$peak"
}

base=$(peak_rss_kib 1)
full=$(peak_rss_kib "$USERS")
requests=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["totals"]["requests"], s["totals"]["failures"])' "$WORK/summary-$USERS.json")
per_user=$(awk -v a="$full" -v b="$base" -v n="$USERS" 'BEGIN {printf "%.1f", (a-b)/(n-1)}')
echo
echo "| users | peak RSS (KiB) | requests, failures |"
echo "|---:|---:|---|"
echo "| 1 | $base | |"
echo "| $USERS | $full | $requests |"
echo
echo "RSS per user: $per_user KiB (bar: <= 10 KiB)"
rm -rf "$WORK"
