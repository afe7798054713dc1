#!/usr/bin/env bash
# One-core Redis GET throughput: loaddensity's redis_user next to redis-benchmark
# (-P 1 -c CONNECTIONS -t get) against the same redis-server in one run. The server is
# pinned to TARGET_CPU, the load generator to LOAD_CPU. Prints a markdown table of the
# median requests/s over RUNS runs and the ratio to redis-benchmark.
#
#   bench/redis.sh              # RUNS=3 DURATION=10 CONNECTIONS=32 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-16399}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d)
taskset -c "$TARGET_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK" >/dev/null 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do
    [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
redis-cli -p "$PORT" set key:__rand_int__ xxx >/dev/null

cat > "$WORK/get.json" <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "redis_user"},
  "connection": {"url": "redis://127.0.0.1:$PORT/0"},
  "user_count": $CONNECTIONS, "spawn_rate": 100000, "test_time": $DURATION,
  "wait_time": {"constant": 0},
  "tasks": [{"method": "get", "key": "key:__rand_int__", "name": "get"}]
}]]}
JSON

# redis-benchmark runs a fixed number of requests: size it for about DURATION seconds.
bench_rps() {
    local requests=$((DURATION * 60000))
    taskset -c "$LOAD_CPU" redis-benchmark -p "$PORT" -P 1 -c "$CONNECTIONS" -t get -n "$requests" --csv -q \
        | awk -F'","' '/"GET"/ {gsub(/"/, "", $2); print $2}'
}

declare -A RESULTS
ROWS=(
    "redis-benchmark -P 1 -c $CONNECTIONS|bench_rps"
    "loaddensity redis_user get|ld_rps $WORK/summary.json run $WORK/get.json"
)
run_rows "$RUNS"

bench_median=$(row_median "redis-benchmark -P 1 -c $CONNECTIONS")
echo
echo "| tool (one core, GET, $CONNECTIONS connections) | req/s | ratio |"
echo "|---|---|---|"
for row in "${ROWS[@]}"; do
    label=${row%%|*}
    m=$(row_median "$label")
    ratio=$(awk -v a="$m" -v b="$bench_median" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')
    printf '| %s | %.0f | %s |\n' "$label" "$m" "$ratio"
done
