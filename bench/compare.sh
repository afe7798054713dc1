#!/usr/bin/env bash
# One-core throughput: wrk and loaddensity against the same nginx, side by side in one
# run. nginx is pinned to core 0, the load generator to core 1. Prints a markdown table
# of median requests/s over RUNS interleaved runs, with ratios to wrk and to loaddensity
# without a sink, both as ratios of medians and as medians of run-by-run (paired) ratios.
#
#   bench/compare.sh            # RUNS=3 DURATION=10 CONNECTIONS=32 by default
#   ONLY='all three' RUNS=20 bench/compare.sh   # wrk, no sink and all three sinks only
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18181}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
start_nginx "$PORT"
trap stop_nginx EXIT
URL="http://127.0.0.1:$PORT/"
WORK=$(mktemp -d)

PROM_PORT=${PROM_PORT:-19646}
OTLP_PORT=${OTLP_PORT:-14317}

# The OTLP receiver the OpenTelemetry row exports to (examples/otlp_receiver.rs),
# pinned to TARGET_CPU like the target.
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --example otlp_receiver
taskset -c "$TARGET_CPU" "$ROOT/target/release/examples/otlp_receiver" "127.0.0.1:$OTLP_PORT" 2>/dev/null &
OTLP_RECEIVER=$!
trap 'stop_nginx; kill "$OTLP_RECEIVER" 2>/dev/null' EXIT

# ld_rps_scraped SUMMARY_FILE ARGS...: ld_rps while one keep-alive scraper process
# pinned to TARGET_CPU pulls the Prometheus exporter on PROM_PORT every 100 ms.
ld_rps_scraped() {
    taskset -c "$TARGET_CPU" python3 "$BENCH_DIR/scrape.py" "$PROM_PORT" 0.1 >/dev/null 2>&1 &
    local scraper=$!
    local rps
    rps=$(ld_rps "$@") || { kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null; return 1; }
    kill "$scraper" 2>/dev/null
    wait "$scraper" 2>/dev/null || true
    echo "$rps"
}

UDP_PORT=${UDP_PORT:-18089}

# ld_rps_udp SUMMARY_FILE ARGS...: ld_rps while a UDP sink pinned to TARGET_CPU
# receives and discards the InfluxDB points on UDP_PORT.
ld_rps_udp() {
    taskset -c "$TARGET_CPU" python3 "$BENCH_DIR/udp_discard.py" "$UDP_PORT" 2>/dev/null &
    local sink=$!
    sleep 0.2
    local rps
    rps=$(ld_rps "$@") || { kill "$sink" 2>/dev/null; wait "$sink" 2>/dev/null; return 1; }
    kill "$sink" 2>/dev/null
    wait "$sink" 2>/dev/null || true
    echo "$rps"
}

# ld_rps_all SUMMARY_FILE ARGS...: ld_rps with the Prometheus scraper and the UDP
# receiver both running (for the row with all three sinks attached).
ld_rps_all() {
    taskset -c "$TARGET_CPU" python3 "$BENCH_DIR/scrape.py" "$PROM_PORT" 0.1 >/dev/null 2>&1 &
    local scraper=$!
    local rps status=0
    rps=$(ld_rps_udp "$@") || status=1
    kill "$scraper" 2>/dev/null
    wait "$scraper" 2>/dev/null || true
    [ "$status" -eq 0 ] && echo "$rps"
    return "$status"
}

STATSD_PORT=${STATSD_PORT:-18125}
DD_PORT=${DD_PORT:-18126}
OTLP_HTTP_PORT=${OTLP_HTTP_PORT:-14319}
SIX_UDP_PORT=${SIX_UDP_PORT:-18088}

# The receivers of the StatsD, Datadog and traces rows and of the all-six row
# (examples/discard_receiver.rs), pinned to TARGET_CPU beside nginx: UDP sockets never
# read, and an HTTP server that drops what it is sent. The Python stand-ins the rows
# used before took up to half of nginx's core at 120,000 requests/s, which the rows then
# showed as the sink's cost.
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --example discard_receiver
taskset -c "$TARGET_CPU" "$ROOT/target/release/examples/discard_receiver" \
    --http "$DD_PORT" --http "$OTLP_HTTP_PORT" --udp "$STATSD_PORT" --udp "$SIX_UDP_PORT" 2>/dev/null &
DISCARD_RECEIVER=$!
trap 'stop_nginx; kill "$OTLP_RECEIVER" "$DISCARD_RECEIVER" 2>/dev/null' EXIT
# Spans go over OTLP/HTTP to the discard receiver (the OTLP receiver decodes every span).
TRACES="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf"
TRACES_URL="http://127.0.0.1:$OTLP_HTTP_PORT/v1/traces"

# ld_rps_six SUMMARY_FILE ARGS...: ld_rps while the Prometheus exporter is scraped every
# 100 ms (the other receivers of the six sinks run throughout): Prometheus, InfluxDB,
# OpenTelemetry metrics, StatsD, OpenTelemetry traces and Datadog APM.
ld_rps_six() {
    ld_rps_scraped "$@"
}

# The request log's cost: the same `run` script with the log on (no cap, the worst
# case) and off (`max_records: 0`).
request_log_script() {
    cat > "$WORK/log_$1.json" <<JSON
{"load_density": [["LD_start_test", {"user_count": $CONNECTIONS, "spawn_rate": $((CONNECTIONS * 100)),
  "test_time": $DURATION, "wait_time": {"constant": 0}, "max_records": $2,
  "tasks": [{"method": "get", "url": "$URL"}]}]]}
JSON
}
request_log_script on null
request_log_script off 0

declare -A RESULTS
# Each row is "label|command producing one rps figure". The all-sinks row runs right
# after the plain one, so that each of its paired ratios compares neighbouring runs.
ROWS=(
    "wrk|wrk_rps $URL $CONNECTIONS $DURATION"
    "loaddensity bench|ld_rps $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s"
    "loaddensity + all three sinks|LOADDENSITY_LOG=warn OTEL_METRIC_EXPORT_INTERVAL=1000 ld_rps_all $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s --prometheus 127.0.0.1:$PROM_PORT --influxdb-udp 127.0.0.1:$UDP_PORT --otlp http://127.0.0.1:$OTLP_PORT"
    "loaddensity + prometheus|LOADDENSITY_LOG=warn ld_rps $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s --prometheus 127.0.0.1:0"
    "loaddensity + prometheus, scraped every 100 ms|LOADDENSITY_LOG=warn ld_rps_scraped $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s --prometheus 127.0.0.1:$PROM_PORT"
    "loaddensity + influxdb sink (UDP)|LOADDENSITY_LOG=warn ld_rps_udp $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s --influxdb-udp 127.0.0.1:$UDP_PORT"
    "loaddensity + all six sinks|LOADDENSITY_LOG=warn OTEL_METRIC_EXPORT_INTERVAL=1000 $TRACES ld_rps_six $WORK/s.json run $WORK/log_off.json --prometheus 127.0.0.1:$PROM_PORT --influxdb-udp 127.0.0.1:$SIX_UDP_PORT --otlp http://127.0.0.1:$OTLP_PORT --statsd 127.0.0.1:$STATSD_PORT --datadog-apm http://127.0.0.1:$DD_PORT --otlp-traces $TRACES_URL"
    "loaddensity + opentelemetry traces|LOADDENSITY_LOG=warn $TRACES ld_rps $WORK/s.json run $WORK/log_off.json --otlp-traces $TRACES_URL"
    "loaddensity + statsd sink (UDP)|LOADDENSITY_LOG=warn ld_rps $WORK/s.json run $WORK/log_off.json --statsd 127.0.0.1:$STATSD_PORT"
    "loaddensity + datadog apm|LOADDENSITY_LOG=warn ld_rps $WORK/s.json run $WORK/log_off.json --datadog-apm http://127.0.0.1:$DD_PORT"
    "loaddensity + opentelemetry, exported every 1 s|LOADDENSITY_LOG=warn OTEL_METRIC_EXPORT_INTERVAL=1000 ld_rps $WORK/s.json bench $URL -u $CONNECTIONS -d ${DURATION}s --otlp http://127.0.0.1:$OTLP_PORT"
    "loaddensity run, request log off (max_records: 0)|ld_rps $WORK/s.json run $WORK/log_off.json"
    "loaddensity run, request log on (max_records: null)|ld_rps $WORK/s.json run $WORK/log_on.json"
)
# oha (hyper-based, like http_user) when installed: `cargo install oha`.
if command -v oha >/dev/null 2>&1; then
    ROWS=("${ROWS[0]}" "oha|oha_rps $URL $CONNECTIONS $DURATION" "${ROWS[@]:1}")
fi
if [ -n "${EXTRA_ROWS_FILE:-}" ] && [ -f "$EXTRA_ROWS_FILE" ]; then
    source "$EXTRA_ROWS_FILE"
fi
# ONLY: text, or several texts separated by `;`; only the rows whose labels contain one
# of them run (wrk and "loaddensity bench", the bases of the ratios, always run). The
# StatsD, Datadog and all-six rows run `run` with the request log off (their flags are
# on `run`): compare them with the row "loaddensity run, request log off".
BASES="wrk;loaddensity bench"
# The base of the rows that run `run` with the request log off.
if [[ ${ONLY:-} == *sink* || ${ONLY:-} == *traces* || ${ONLY:-} == *apm* ]]; then
    BASES+=";loaddensity run, request log off (max_records: 0)"
fi
only_rows "$BASES"

run_rows "$RUNS"

wrk_median=$(row_median wrk)
echo
echo "Ratios of medians divide the rows' medians; paired ratios are the median of the run-by-run"
echo "ratios (each run against the other row's run in the same round), which a slow spell cancels out of."
echo
echo "| tool | median req/s (${RUNS} runs, ${CONNECTIONS} conns, ${DURATION}s, 1 core) | ratio to wrk | paired ratio to wrk | ratio to loaddensity, no sink | paired ratio to loaddensity, no sink | CPU µs/request (median) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
RUN_BASE="loaddensity run, request log off (max_records: 0)"
for row in "${ROWS[@]}"; do
    label=${row%%|*}
    m=$(row_median "$label")
    ratio=$(awk -v a="$m" -v b="$wrk_median" 'BEGIN {printf "%.3f", a/b}')
    # Rows that run `run` with the request log off (the StatsD, Datadog, traces and
    # all-six rows) are compared with the plain `run` row when it ran, marked "(run)".
    base_label="loaddensity bench"
    if [[ ${row#*|} == *log_off.json* ]] && [ "$label" != "$RUN_BASE" ] && [ -n "${RESULTS[$RUN_BASE]:-}" ]; then
        base_label=$RUN_BASE
    fi
    base=$(awk -v a="$m" -v b="$(row_median "$base_label")" 'BEGIN {printf "%.3f", a/b}')
    [ "$base_label" = "$RUN_BASE" ] && base="$base (run)"
    printf '| %s | %.0f | %s | %.3f | %s | %.3f | %s |\n' "$label" "$m" "$ratio" \
        "$(paired_ratio "$label" wrk)" "$base" "$(paired_ratio "$label" "$base_label")" \
        "$(cpu_median "$label")"
done
rm -rf "$WORK"
