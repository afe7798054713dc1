#!/usr/bin/env bash
# One-core throughput of websocket_user and socket_user: loaddensity against a fast
# local echo server (examples/protocol_echo.rs, pinned to TARGET_CPU), next to a
# minimal tokio client doing the same exchanges (examples/protocol_client.rs) in the
# same run. Both load generators run on LOAD_CPU with one thread. Prints a markdown
# table of median exchanges/s over RUNS runs.
#
#   bench/protocols.sh            # RUNS=3 DURATION=10 CONNECTIONS=32 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WS_PORT=${WS_PORT:-19001}
TCP_PORT=${TCP_PORT:-19002}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" \
    --bin loaddensity --example protocol_echo --example protocol_client
taskset -c "$TARGET_CPU" "$ROOT/target/release/examples/protocol_echo" \
    "127.0.0.1:$WS_PORT" "127.0.0.1:$TCP_PORT" &
ECHO=$!
WORK=$(mktemp -d)
trap 'kill "$ECHO" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$TCP_PORT") 2>/dev/null && break
    sleep 0.1
done

# script USER TASKS: a LoadDensity action script with CONNECTIONS users, no wait.
script() {
    cat <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "$1"},
  "user_count": $CONNECTIONS, "spawn_rate": 100000, "test_time": $DURATION,
  "wait_time": {"constant": 0}, "tasks": $2}]]}
JSON
}
script websocket_user \
    "[{\"method\": \"sendrecv\", \"request_url\": \"ws://127.0.0.1:$WS_PORT/\", \"payload\": \"ping\", \"expect\": \"ping\"}]" \
    > "$WORK/ws.json"
script socket_user \
    "[{\"protocol\": \"tcp\", \"target\": \"127.0.0.1:$TCP_PORT\", \"payload\": \"PING\\n\", \"expect_bytes\": 5, \"keep_alive\": true}]" \
    > "$WORK/tcp.json"
script socket_user \
    "[{\"protocol\": \"tcp\", \"target\": \"127.0.0.1:$TCP_PORT\", \"payload\": \"PING\\n\", \"expect_bytes\": 5}]" \
    > "$WORK/tcp_new.json"

# baseline KIND TARGET: the minimal tokio client's exchanges/s.
baseline() {
    taskset -c "$LOAD_CPU" "$ROOT/target/release/examples/protocol_client" "$1" "$2" "$CONNECTIONS" "$DURATION"
}

declare -A RESULTS
ROWS=(
    "WS sendrecv: tokio-tungstenite client|baseline ws ws://127.0.0.1:$WS_PORT/"
    "WS sendrecv: loaddensity websocket_user|ld_rps $WORK/s.json run $WORK/ws.json"
    "TCP req/resp: tokio client|baseline tcp 127.0.0.1:$TCP_PORT"
    "TCP req/resp: loaddensity socket_user, keep_alive|ld_rps $WORK/s.json run $WORK/tcp.json"
    "TCP req/resp: loaddensity socket_user, new connection per step (LoadDensity's default)|ld_rps $WORK/s.json run $WORK/tcp_new.json"
)
run_rows "$RUNS"

echo
echo "| client | median exchanges/s (${RUNS} runs, ${CONNECTIONS} conns, ${DURATION}s, 1 core) | ratio to the baseline |"
echo "|---|---:|---:|"
ws_base=$(row_median "${ROWS[0]%%|*}")
tcp_base=$(row_median "${ROWS[2]%%|*}")
for row in "${ROWS[@]}"; do
    label=${row%%|*}
    m=$(row_median "$label")
    base=$tcp_base
    [[ $label == WS* ]] && base=$ws_base
    ratio=$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.3f", a/b}')
    printf '| %s | %.0f | %s |\n' "$label" "$m" "$ratio"
done
