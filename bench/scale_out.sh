#!/usr/bin/env bash
# Scale out: one instance against nginx, then two instances (segments 0/2 and 1/2 of the
# same script, one core each, same --start-at) whose results are merged exactly with
# `loaddensity merge`. Prints both rates and p99s.
#
#   bench/scale_out.sh        # USERS=64 DURATION=10; nginx on core 0, instances on 1 and 2
# On a machine with fewer than 3 cores the two instances share core 1 (a smoke run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
USERS=${USERS:-64}
DURATION=${DURATION:-10}
PORT=${PORT:-18184}
if [ "$(nproc)" -ge 3 ]; then
    CPUS=${CPUS:-"1 2"}
else
    CPUS=${CPUS:-"1 1"}
    echo "note: fewer than 3 cores: both instances on core 1 (figures are not meaningful)" >&2
fi
read -r CPU_A CPU_B <<<"$CPUS"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/loaddensity"
start_nginx "$PORT"
trap stop_nginx EXIT
WORK=$(mktemp -d)
cat > "$WORK/s.json" <<JSON
[["LD_start_test", {"user_count": $USERS, "spawn_rate": $((USERS * 100)), "test_time": $DURATION,
  "wait_time": {"constant": 0},
  "tasks": [{"method": "get", "url": "http://127.0.0.1:$PORT/"}]}]]
JSON

report() { # SUMMARY LABEL
    python3 - "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
print(f'{sys.argv[2]:>22}: {t["requests"] / max(t["duration_s"], 1e-9):>10.0f} req/s'
      f'   p99 {s["latency_overall"]["p99_ms"]:.2f} ms   requests {t["requests"]}')
PY
}

taskset -c "$CPU_A" "$BIN" --threads 1 --quiet run "$WORK/s.json" --summary-json "$WORK/one.json" >/dev/null
AT=$(date -u -d '+2 sec' +%Y-%m-%dT%H:%M:%S.%3NZ)
taskset -c "$CPU_A" "$BIN" --threads 1 --quiet run "$WORK/s.json" --segment 0/2 --start-at "$AT" \
    --summary-json "$WORK/a.json" >/dev/null &
A=$!
taskset -c "$CPU_B" "$BIN" --threads 1 --quiet run "$WORK/s.json" --segment 1/2 --start-at "$AT" \
    --summary-json "$WORK/b.json" >/dev/null &
B=$!
wait "$A" "$B"
"$BIN" merge "$WORK/a.json" "$WORK/b.json" -o "$WORK/merged.json"
report "$WORK/one.json" "one instance"
report "$WORK/merged.json" "two instances, merged"
rm -rf "$WORK"
