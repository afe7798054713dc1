#!/usr/bin/env bash
# One Locust worker's throughput under a Locust master: a loaddensity worker
# (`loaddensity worker --threads 1`) against a Python Locust worker running a
# FastHttpUser, each alone under its own `locust --master --headless` run with the
# same users, against the same nginx. nginx and the master are pinned to TARGET_CPU
# (the master is idle but for reports), the worker to LOAD_CPU (one core each on a
# 2-core machine). Requests/s is the master's: Aggregated requests / test time from
# its CSV. Prints a markdown table of medians over RUNS interleaved runs and the ratio.
#
#   bench/locust_worker.sh          # RUNS=3 DURATION=20 USERS=32 by default
#   RUNS=1 DURATION=4 LOADDENSITY_BIN=target/ci/loaddensity bench/locust_worker.sh   # a smoke run
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-20}
USERS=${USERS:-32}
PORT=${PORT:-18182}
MASTER_PORT=${MASTER_PORT:-15557}

command -v locust >/dev/null || { echo "needs locust: pip install locust==2.47.0" >&2; exit 1; }
# LOADDENSITY_BIN: a binary already built (no release build then).
if [ -z "${LOADDENSITY_BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    LOADDENSITY_BIN="$ROOT/target/release/loaddensity"
fi
start_nginx "$PORT"
WORK=$(mktemp -d)
trap 'stop_nginx; rm -rf "$WORK"' EXIT

cat > "$WORK/locustfile.py" <<PY
from locust import FastHttpUser, task, constant

class WebUser(FastHttpUser):
    host = "http://127.0.0.1:$PORT"
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/", name="/")
PY
cat > "$WORK/worker.json" <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "fast_http_user"},
  "host": "http://127.0.0.1:$PORT",
  "wait_time": {"constant": 0},
  "tasks": [{"method": "get", "url": "/", "name": "/"}]
}]]}
JSON

# master_rps KIND: one master run with one worker of KIND (loaddensity or python);
# prints the master's Aggregated requests/s.
master_rps() {
    local kind=$1 csv="$WORK/m_$1"
    rm -f "${csv}"_*.csv
    taskset -c "$TARGET_CPU" locust --master --headless --master-bind-host 127.0.0.1 \
        --master-bind-port "$MASTER_PORT" --expect-workers 1 -u "$USERS" -r "$USERS" \
        -t "${DURATION}s" --exit-code-on-error 0 --csv "$csv" -f "$WORK/locustfile.py" \
        >"$WORK/master.log" 2>&1 &
    local master=$!
    if [ "$kind" = loaddensity ]; then
        taskset -c "$LOAD_CPU" "$LOADDENSITY_BIN" --threads 1 --quiet worker \
            "$WORK/worker.json" --master-port "$MASTER_PORT" --user-class WebUser \
            >"$WORK/worker.log" 2>&1 &
    else
        taskset -c "$LOAD_CPU" locust --worker --master-host 127.0.0.1 \
            --master-port "$MASTER_PORT" -f "$WORK/locustfile.py" >"$WORK/worker.log" 2>&1 &
    fi
    local worker=$!
    wait "$master" || { cat "$WORK/master.log" >&2; return 1; }
    # Bounded: the worker exits on the master's quit.
    for _ in $(seq 1 100); do kill -0 "$worker" 2>/dev/null || break; sleep 0.1; done
    kill "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
    python3 - "${csv}_stats.csv" <<'PY'
import csv, sys
for row in csv.DictReader(open(sys.argv[1])):
    if row["Name"] == "Aggregated":
        print(row["Requests/s"])
PY
}

declare -A RESULTS
ROWS=(
    "loaddensity worker|master_rps loaddensity"
    "Locust FastHttpUser worker|master_rps python"
)
run_rows "$RUNS"

ld=$(row_median "loaddensity worker")
py=$(row_median "Locust FastHttpUser worker")
echo
echo "One worker under a Locust 2.47 master, $USERS users, ${DURATION}s, medians of $RUNS runs (worker on one core):"
echo
echo "| worker | requests/s | vs Locust |"
echo "|---|---:|---:|"
printf '| loaddensity worker | %.0f | %.1f× |\n' "$ld" "$(echo "$ld / $py" | bc -l)"
printf '| Locust FastHttpUser worker | %.0f | 1.0× |\n' "$py"
