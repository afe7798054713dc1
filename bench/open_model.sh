#!/usr/bin/env bash
# The open model against nginx: achieved vs requested rate, and the generator's CPU
# time per 1000 requests compared with the closed model at the same throughput
# (USERS users with constant pacing USERS/RATE s). nginx on core 0, loaddensity on
# core 1; medians of RUNS runs.
#
#   bench/open_model.sh        # RATE=20000 USERS=200 DURATION=10 RUNS=3
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-20000}
USERS=${USERS:-200}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
PORT=${PORT:-18183}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
start_nginx "$PORT"
trap stop_nginx EXIT
URL="http://127.0.0.1:$PORT/"
WORK=$(mktemp -d)
PACING=$(awk -v u="$USERS" -v r="$RATE" 'BEGIN {printf "%.6f", u/r}')

# measure MODEL: runs one test, prints "rps cpu_seconds p99_ms dropped".
measure() {
    local args
    if [ "$1" = open ]; then
        args="\"arrival_rate\": {\"rate\": $RATE, \"max_users\": $USERS}"
    else
        args="\"user_count\": $USERS, \"spawn_rate\": $((USERS * 100)), \"wait_time\": {\"constant_pacing\": $PACING}"
    fi
    cat > "$WORK/$1.json" <<JSON
[["LD_start_test", {"test_time": $DURATION, $args,
  "tasks": [{"method": "get", "url": "$URL"}]}]]
JSON
    /usr/bin/time -f "%U %S" -o "$WORK/time" taskset -c "$LOAD_CPU" \
        "$ROOT/target/release/loaddensity" --threads 1 --quiet run "$WORK/$1.json" \
        --summary-json "$WORK/$1-summary.json" >/dev/null
    python3 - "$WORK/$1-summary.json" "$WORK/time" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
t = s["totals"]
print(t["rps"], user + system, s["latency_overall"]["p99_ms"], t.get("dropped_iterations", 0))
PY
}

declare -A RPS CPU P99 DROP
for run in $(seq 1 "$RUNS"); do
    for model in open closed; do
        read -r rps cpu p99 dropped < <(measure "$model")
        RPS[$model]="${RPS[$model]:-} $rps"
        CPU[$model]="${CPU[$model]:-} $(awk -v c="$cpu" -v r="$rps" -v d="$DURATION" 'BEGIN {printf "%.3f", 1e6*c/(r*d)}')"
        P99[$model]="${P99[$model]:-} $p99"
        DROP[$model]="${DROP[$model]:-} $dropped"
        echo "run $run: $model: $rps req/s, cpu ${cpu}s, p99 ${p99} ms, dropped $dropped" >&2
    done
done

med() { echo "$1" | tr ' ' '\n' | grep . | median; }
echo
echo "| model (${RUNS} runs, ${DURATION}s, 1 core) | requested req/s | achieved req/s (median) | achieved / requested | generator CPU µs per request | p99 ms | dropped iterations |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for model in open closed; do
    achieved=$(med "${RPS[$model]}")
    printf '| %s | %s | %.0f | %.4f | %.3f | %.3f | %s |\n' \
        "$([ "$model" = open ] && echo "open (arrival_rate)" || echo "closed ($USERS users, constant_pacing ${PACING}s)")" \
        "$RATE" "$achieved" "$(awk -v a="$achieved" -v r="$RATE" 'BEGIN {print a/r}')" \
        "$(med "${CPU[$model]}")" "$(med "${P99[$model]}")" "$(med "${DROP[$model]}")"
done
rm -rf "$WORK"
