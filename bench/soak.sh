#!/usr/bin/env bash
# Soak: DURATION seconds (10 minutes by default) at full speed against nginx, with a
# templated scenario (placeholders in the URL, a header, a templated name, assertions,
# an extractor) and the Prometheus exporter (scraped every 10 s) and the InfluxDB sink
# (UDP, to bench/udp_discard.py) on. Prints the RSS every 10 s, then the requests,
# the start, end and peak RSS, and the peak-to-start ratio: memory must stay flat.
#
#   bench/soak.sh                 # DURATION=600 USERS=32 by default
#   DURATION=30 bench/soak.sh     # a smoke run (NO_BUILD=1: skip the cargo build)
#   DURATION=3600 bench/soak.sh   # the hour-long churn soak (below)
#
# Churn (CHURN=1, the default from DURATION=3600 on): the test runs in three phases
# with every sink (Prometheus, InfluxDB UDP, OpenTelemetry to a collector that is not
# there) stopped and started again between them (two restarts each); a keep-alive
# scraper (bench/scrape.py) scrapes every 10 s throughout and has to reconnect after
# each exporter restart; and the target (nginx) is taken down for 5 s and back up
# twice, at 1/6 and 1/2 of the run. RATE=N runs an open model at N requests/s
# instead of full speed, so that an hour's soak leaves the machine usable.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-600}
USERS=${USERS:-32}
PORT=${PORT:-18183}
PROM_PORT=${PROM_PORT:-18184}
UDP_PORT=${UDP_PORT:-18185}
CHURN=${CHURN:-$([ "$DURATION" -ge 3600 ] && echo 1 || echo 0)}
RATE=${RATE:-}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# NO_BUILD=1 runs target/release/loaddensity as it is; LD_BIN=PATH runs another build.
LD_BIN=${LD_BIN:-$ROOT/target/release/loaddensity}
[ -n "${NO_BUILD:-}" ] || [ "$LD_BIN" != "$ROOT/target/release/loaddensity" ] || cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d)
UDP_PID=
LD_PID=
SCRAPE_PID=
cleanup() {
    [ -n "$LD_PID" ] && kill "$LD_PID" 2>/dev/null
    [ -n "$SCRAPE_PID" ] && kill "$SCRAPE_PID" 2>/dev/null
    [ -n "$UDP_PID" ] && kill "$UDP_PID" 2>/dev/null && wait "$UDP_PID" 2>/dev/null
    stop_nginx
    rm -rf "$WORK"
}
trap cleanup EXIT
start_nginx "$PORT"
python3 "$BENCH_DIR/udp_discard.py" "$UDP_PORT" 2>"$WORK/udp.txt" &
UDP_PID=$!

# The load of one phase: full speed (closed model), or RATE requests/s (open model).
if [ -n "$RATE" ]; then
    LOAD="\"arrival_rate\": {\"rate\": $RATE, \"time_unit\": 1, \"max_users\": $USERS}"
else
    LOAD="\"user_count\": $USERS, \"spawn_rate\": 1000, \"wait_time\": {\"constant\": 0}"
fi
SINKS_ON='["LD_start_prometheus_exporter", {"port": '$PROM_PORT', "addr": "127.0.0.1"}],
  ["LD_start_influxdb_sink", {"transport": "udp", "host": "127.0.0.1", "port": '$UDP_PORT'}],'
SINKS_OFF='["LD_stop_prometheus_exporter", {}], ["LD_stop_influxdb_sink", {}],'
if [ "$CHURN" = 1 ] && "$LD_BIN" validate - >/dev/null 2>&1 <<<'[["LD_start_opentelemetry_exporter", {"endpoint": "http://127.0.0.1:9"}]]'; then
    SINKS_ON="$SINKS_ON"'
  ["LD_start_opentelemetry_exporter", {"endpoint": "http://127.0.0.1:9", "export_interval_ms": 5000, "timeout_ms": 500}],'
    SINKS_OFF="$SINKS_OFF"' ["LD_stop_opentelemetry_exporter", {}],'
fi
# test_phase SECONDS: one LD_start_test of the templated scenario.
test_phase() {
    cat <<JSON
  ["LD_start_test", {$LOAD, "test_time": $1,
    "host": "http://127.0.0.1:$PORT", "tasks": {"mode": "weighted", "tasks": [
      {"method": "get", "url": "/items/\${randint(1, 100000)}?u=\${uuid()}", "name": "/items/[id]", "weight": 4,
       "headers": {"X-Request": "\${uuid()}", "X-User": "\${faker.user_name}"},
       "assertions": [{"type": "status_code", "value": 200}, {"type": "contains", "value": "price"}]},
      {"method": "post", "url": "/login", "name": "login",
       "json": {"user": "\${faker.user_name}", "n": "\${randint(1, 9)}"},
       "extract": [{"var": "token", "path": "data.token"}]},
      {"method": "get", "url": "/?page=\${randint(1, 50)}", "name": "page \${randint(1, 20)}"}
    ]}}]
JSON
}
{
    echo '{"load_density": ['
    echo "  $SINKS_ON"
    if [ "$CHURN" = 1 ]; then
        third=$((DURATION / 3))
        test_phase "$third"; echo ","
        echo "  $SINKS_OFF $SINKS_ON"
        test_phase "$third"; echo ","
        echo "  $SINKS_OFF $SINKS_ON"
        test_phase "$((DURATION - 2 * third))"
    else
        test_phase "$DURATION"
    fi
    echo ']}'
} > "$WORK/soak.json"
"$LD_BIN" validate "$WORK/soak.json" >"$WORK/validate.txt" 2>&1 || { cat "$WORK/validate.txt" >&2; exit 1; }

taskset -c "$LOAD_CPU" "$LD_BIN" --quiet run "$WORK/soak.json" \
    --summary-json "$WORK/summary.json" >"$WORK/out.txt" 2>"$WORK/err.txt" &
LD_PID=$!
if [ "$CHURN" = 1 ]; then
    python3 "$BENCH_DIR/scrape.py" "$PROM_PORT" 10 &
    SCRAPE_PID=$!
fi
flips=0

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
start=0 peak=0 last=0 elapsed=0 scrapes=0
echo "| elapsed | RSS (MiB) |"
echo "|---:|---:|"
while kill -0 "$LD_PID" 2>/dev/null && [ "$elapsed" -le $((DURATION + 30)) ]; do
    sleep 1
    elapsed=$((elapsed + 1))
    rss=$(rss_kib "$LD_PID")
    [ -z "$rss" ] && break
    last=$rss
    [ "$rss" -gt "$peak" ] && peak=$rss
    if [ $((elapsed % 10)) -eq 0 ]; then
        # The first sample, once the users are up, is the start.
        [ "$start" -eq 0 ] && start=$rss
        curl -fs "http://127.0.0.1:$PROM_PORT/metrics" >/dev/null && scrapes=$((scrapes + 1))
        # The target off for 5 s and on again, at 1/6 and 1/2 of the run.
        if [ "$CHURN" = 1 ] && { [ $((elapsed / 10)) -eq $((DURATION / 60)) ] || [ $((elapsed / 10)) -eq $((DURATION / 20)) ]; }; then
            stop_nginx
            sleep 5
            start_nginx "$PORT"
            flips=$((flips + 1))
            echo "| target off for 5 s and on again at ${elapsed}s |  |"
        fi
        awk -v t="$elapsed" -v r="$rss" 'BEGIN {printf "| %4ds | %.1f |\n", t, r / 1024}'
    fi
done
wait "$LD_PID" || { echo "loaddensity failed:" >&2; cat "$WORK/err.txt" >&2; exit 1; }
LD_PID=
[ -n "$SCRAPE_PID" ] && kill "$SCRAPE_PID" 2>/dev/null
SCRAPE_PID=
kill "$UDP_PID" 2>/dev/null && wait "$UDP_PID" 2>/dev/null || true
UDP_PID=
[ "$start" -eq 0 ] && start=$last
read -r requests failures rps < <(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["requests"], t["failures"], round(t["rps"]))' "$WORK/summary.json")
echo
echo "requests: $requests ($rps req/s), failures: $failures; Prometheus scrapes: $scrapes; InfluxDB UDP: $(cat "$WORK/udp.txt")"
[ "$CHURN" = 1 ] && echo "churn: every sink restarted twice, target flipped off and on $flips times, keep-alive scraper throughout"
awk -v s="$start" -v e="$last" -v p="$peak" 'BEGIN {
    printf "RSS start %.1f MiB, end %.1f MiB, peak %.1f MiB; peak-to-start ratio %.3f\n", s / 1024, e / 1024, p / 1024, p / s }'
