#!/usr/bin/env bash
# The cost of the scenario language, on one core against nginx (pinned to the other):
# a plain GET, the same GET with 2 placeholders and a status assertion, a
# realistic weighted script (login + extract, browse, cart with CSV data, assertions),
# and the plain GET with LoadDensity 0.0.79's `retry`, `think_time: 0` and a `${db.*}`
# placeholder (a SQLite database source made here).
# Prints median requests/s over RUNS interleaved runs, the ratio to the plain GET both
# of medians and paired (the median of run-by-run ratios; see paired_ratio in lib.sh),
# and the generator's CPU time per request.
#
#   bench/scenario.sh                  # RUNS=3 DURATION=10 USERS=32 by default
#   ONLY='retry' RUNS=7 bench/scenario.sh   # the plain GET and the rows whose labels contain `retry`
#   SKIP_BUILD=1 bench/scenario.sh      # use target/release/loaddensity as built (no cargo build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
USERS=${USERS:-32}
PORT=${PORT:-18182}

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
start_nginx "$PORT"
trap stop_nginx EXIT
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
printf 'sku,qty\nSKU-1,1\nSKU-2,2\nSKU-3,3\n' > "$WORK/products.csv"
python3 - "$WORK/products.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE products (sku TEXT, qty INTEGER)")
db.executemany("INSERT INTO products VALUES (?, ?)", [(f"SKU-{i}", i) for i in range(1, 101)])
db.commit()
PY

# write_script NAME TASKS_JSON: an LD_start_test of USERS users for DURATION seconds.
write_script() {
    cat > "$WORK/$1.json" <<JSON
{"load_density": [
  ["LD_register_csv_source", {"name": "products", "file_path": "$WORK/products.csv"}],
  ["LD_register_db_source", {"name": "catalog", "connection_string": "sqlite:///$WORK/products.db",
    "query": "SELECT sku, qty FROM products"}],
  ["LD_start_test", {"user_count": $USERS, "spawn_rate": 1000, "test_time": $DURATION,
    "wait_time": {"constant": 0}, "host": "$BASE", "tasks": $2}]
]}
JSON
}
write_script plain '[{"method": "get", "url": "/"}]'
write_script templated '[{"method": "get", "url": "/?id=${randint(1, 1000)}", "name": "/",
  "headers": {"X-Request": "${uuid()}"},
  "assertions": [{"type": "status_code", "value": 200}]}]'
write_script realistic '{"mode": "weighted", "tasks": [
  {"method": "post", "url": "/login", "name": "login", "skip_if": "${var.token}",
   "json": {"user": "${faker.user_name}"},
   "extract": [{"var": "token", "path": "data.token"}],
   "assertions": [{"type": "status_code", "value": 200}]},
  {"method": "get", "url": "/whoami", "name": "profile", "run_if": "${var.token}",
   "auth": {"type": "bearer", "token": "${var.token}"},
   "assertions": [{"type": "json_path", "path": "token", "value": "${var.token}"}]},
  {"method": "get", "url": "/items/${randint(1, 100)}", "name": "/items/[id]", "run_if": "${var.token}", "weight": 6,
   "assertions": [{"type": "status_code", "value": 200}, {"type": "contains", "value": "price"}]},
  {"method": "post", "url": "/cart", "name": "/cart", "run_if": "${var.token}", "weight": 2,
   "auth": {"type": "bearer", "token": "${var.token}"},
   "json": {"sku": "${csv.products.sku}", "qty": "${csv.products.qty}"},
   "assertions": [{"type": "status_code", "value": 200}]}
]}'
# LoadDensity 0.0.79's task fields on the plain GET: a `retry` policy (no failures, so
# no retries), `think_time: 0` and a `${db.SOURCE.COLUMN}` placeholder read from the
# SQLite source. Issue #28 asks this row to hold at least 0.95 of the plain GET.
write_script task_fields '[{"method": "get", "url": "/?sku=${db.catalog.sku}", "name": "/",
  "retry": {"transient": 5, "flaky": 2, "permanent": 0}, "think_time": 0}]'

declare -A RESULTS
ROWS=(
    "wrk, plain GET|wrk_rps $BASE/ $USERS $DURATION"
    "loaddensity, plain GET|ld_rps $WORK/s.json run $WORK/plain.json"
    "loaddensity, 2 placeholders + status assertion|ld_rps $WORK/s.json run $WORK/templated.json"
    "loaddensity, realistic weighted script|ld_rps $WORK/s.json run $WORK/realistic.json"
    "loaddensity, plain GET + retry + think_time 0 + \${db.*}|ld_rps $WORK/s.json run $WORK/task_fields.json"
)
# ONLY: text, or several separated by `;`: only the rows whose labels contain one of
# them run, beside the plain GET (the base of the ratios).
only_rows "loaddensity, plain GET"
run_rows "$RUNS"

base=$(row_median "loaddensity, plain GET")
echo
echo "| scenario | median req/s (${RUNS} runs, ${USERS} users, ${DURATION}s, 1 core) | ratio to plain GET | paired ratio to plain GET | CPU µs/request (median) |"
echo "|---|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    label=${row%%|*}
    m=$(row_median "$label")
    printf '| %s | %.0f | %s | %.3f | %s |\n' "$label" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.3f", a/b}')" \
        "$(paired_ratio "$label" "loaddensity, plain GET")" "$(cpu_median "$label")"
done
rm -rf "$WORK"
