#!/usr/bin/env bash
# What each sink costs the load generator, as CPU time per request at a fixed arrival
# rate (the open model, so every row sends the same requests whatever its speed):
# user + system time of the loaddensity process (its worker thread and every sink's
# thread) over the requests sent. nginx and every receiver run on TARGET_CPU, the
# generator on LOAD_CPU. Steadier than requests/s on a busy machine; also prints what
# each sink sent and dropped, from the summary.
#
#   bench/sink_cpu.sh               # RUNS=5 RATE=30000 DURATION=6 by default
#   ONLY='statsd;all six' bench/sink_cpu.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-5}
RATE=${RATE:-30000}
DURATION=${DURATION:-6}
PORT=${PORT:-18182}
PROM_PORT=${PROM_PORT:-19647}
OTLP_PORT=${OTLP_PORT:-14318}
UDP_PORT=${UDP_PORT:-18090}
STATSD_PORT=${STATSD_PORT:-18127}
DD_PORT=${DD_PORT:-18128}
OTLP_HTTP_PORT=${OTLP_HTTP_PORT:-14320}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin loaddensity --example otlp_receiver
start_nginx "$PORT"
WORK=$(mktemp -d)
RECEIVERS=()
cleanup() {
    stop_nginx
    for pid in "${RECEIVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Every receiver runs throughout, pinned to TARGET_CPU beside nginx: the OTLP receiver
# (metrics), the discard receiver (examples/discard_receiver.rs: UDP sockets never read;
# HTTP bodies dropped, for Datadog and for spans over OTLP/HTTP) and a Prometheus scraper.
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --example discard_receiver
taskset -c "$TARGET_CPU" "$ROOT/target/release/examples/otlp_receiver" "127.0.0.1:$OTLP_PORT" >/dev/null 2>&1 &
RECEIVERS+=($!)
taskset -c "$TARGET_CPU" "$ROOT/target/release/examples/discard_receiver" \
    --udp "$UDP_PORT" --udp "$STATSD_PORT" --http "$DD_PORT" --http "$OTLP_HTTP_PORT" >/dev/null 2>&1 &
RECEIVERS+=($!)
sleep 0.5
taskset -c "$TARGET_CPU" python3 "$BENCH_DIR/scrape.py" "$PROM_PORT" 0.1 >/dev/null 2>&1 &
RECEIVERS+=($!)
export OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf
TRACES_URL="http://127.0.0.1:$OTLP_HTTP_PORT/v1/traces"

cat > "$WORK/open.json" <<JSON
{"load_density": [["LD_start_test", {"test_time": $DURATION, "max_records": 0,
  "arrival_rate": {"rate": $RATE, "time_unit": 1, "max_users": 256},
  "tasks": [{"method": "get", "url": "http://127.0.0.1:$PORT/"}]}]]}
JSON

# sink_row SUMMARY FLAGS...: runs the open-model script with FLAGS, prints its
# requests/s (ld_rps leaves the CPU time per request in CPU_FILE) and appends what the
# sinks sent and dropped to WORK/sinks.txt.
sink_row() {
    local summary=$1; shift
    LOADDENSITY_LOG=warn OTEL_METRIC_EXPORT_INTERVAL=1000 ld_rps "$summary" run "$WORK/open.json" "$@"
    python3 - "$summary" >>"$WORK/sinks.txt" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for name, report in sorted((doc.get("sinks") or {}).items()):
    if isinstance(report, dict):
        kept = {k: v for k, v in report.items() if isinstance(v, (int, float)) and ("drop" in k or "sent" in k or "export" in k or "fail" in k)}
        print(f"{name}: {kept}")
PY
}

ALL_SIX="--prometheus 127.0.0.1:$PROM_PORT --influxdb-udp 127.0.0.1:$UDP_PORT --otlp http://127.0.0.1:$OTLP_PORT --statsd 127.0.0.1:$STATSD_PORT --datadog-apm http://127.0.0.1:$DD_PORT --otlp-traces $TRACES_URL"
declare -A RESULTS
ROWS=(
    "no sink|sink_row $WORK/s.json"
    "prometheus, scraped every 100 ms|sink_row $WORK/s.json --prometheus 127.0.0.1:$PROM_PORT"
    "influxdb (UDP)|sink_row $WORK/s.json --influxdb-udp 127.0.0.1:$UDP_PORT"
    "opentelemetry metrics, every 1 s|sink_row $WORK/s.json --otlp http://127.0.0.1:$OTLP_PORT"
    "statsd (UDP)|sink_row $WORK/s.json --statsd 127.0.0.1:$STATSD_PORT"
    "opentelemetry traces|sink_row $WORK/s.json --otlp-traces $TRACES_URL"
    "datadog apm|sink_row $WORK/s.json --datadog-apm http://127.0.0.1:$DD_PORT"
    "all six sinks|sink_row $WORK/s.json $ALL_SIX"
)
if [ -n "${ONLY:-}" ]; then
    kept=("${ROWS[0]}")
    IFS=';' read -ra wanted <<<"$ONLY"
    for row in "${ROWS[@]:1}"; do
        for text in "${wanted[@]}"; do
            [[ ${row%%|*} == *"$text"* ]] && kept+=("$row") && break
        done
    done
    ROWS=("${kept[@]}")
fi

run_rows "$RUNS"

base=$(cpu_median "no sink")
echo
echo "| sink (open model, $RATE req/s for ${DURATION}s, $RUNS runs) | median req/s | median CPU µs/request | CPU per request / no sink |"
echo "|---|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    label=${row%%|*}
    cpu=$(cpu_median "$label")
    printf '| %s | %.0f | %s | %s |\n' "$label" "$(row_median "$label")" "$cpu" \
        "$(awk -v a="$cpu" -v b="$base" 'BEGIN {printf "%.2f", a/b}')"
done
echo
echo "What the sinks reported (every run):"
sort "$WORK/sinks.txt" | uniq -c | sort -rn | head -20
