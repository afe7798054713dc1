#!/usr/bin/env bash
# One-core throughput of websocket_user and socket_user: loaddensity against a fast
# local echo server (examples/protocol_echo.rs, pinned to TARGET_CPU), next to a
# minimal tokio client doing the same exchanges (examples/protocol_client.rs) in the
# same run. Both load generators run on LOAD_CPU with one thread. Prints a markdown
# table of median exchanges/s over RUNS runs.
#
# Then amqp_user and nats_user against a private RabbitMQ node and a nats-server (each
# pinned to TARGET_CPU), next to examples/messaging_client.rs doing the same steps with
# the same crates (no `nats bench` or RabbitMQ PerfTest is packaged in Debian): per
# connection, connect, PUBLISHES publishes, close. Skipped when the servers are not
# installed.
#
#   bench/protocols.sh            # RUNS=3 DURATION=10 CONNECTIONS=32 PUBLISHES=100 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WS_PORT=${WS_PORT:-19001}
TCP_PORT=${TCP_PORT:-19002}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" \
    --bin loaddensity --example protocol_echo --example protocol_client --example messaging_client
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

# --- amqp_user and nats_user -------------------------------------------------------
PUBLISHES=${PUBLISHES:-100}
RABBIT_SCRIPTS=/usr/lib/rabbitmq/bin
if [ ! -x "$RABBIT_SCRIPTS/rabbitmq-server" ] || ! { command -v nats-server || [ -x /usr/sbin/nats-server ]; } >/dev/null 2>&1; then
    echo "(amqp_user and nats_user rows skipped: install rabbitmq-server and nats-server)" >&2
    exit 0
fi
NATS_PORT=${NATS_PORT:-19003}
AMQP_PORT=${AMQP_PORT:-19004}
RABBIT_DIR="$WORK/rabbitmq"
mkdir -p "$RABBIT_DIR"
echo '[].' > "$RABBIT_DIR/enabled_plugins"
: > "$RABBIT_DIR/env.conf"
# A private node: its own name, ports, epmd, cookie and data (as tests/it/common/rabbitmq.rs).
rabbit_env() {
    env HOME="$RABBIT_DIR" RABBITMQ_NODENAME=ld_bench@localhost ERL_EPMD_PORT=19005 \
        ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_DIST_PORT=19006 RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" \
        RABBITMQ_LOG_BASE="$RABBIT_DIR/log" RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/env.conf" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" "$@"
}
taskset -c "$TARGET_CPU" "$(command -v nats-server || echo /usr/sbin/nats-server)" \
    -a 127.0.0.1 -p "$NATS_PORT" >/dev/null 2>&1 &
NATS_PID=$!
rabbit_env taskset -c "$TARGET_CPU" "$RABBIT_SCRIPTS/rabbitmq-server" >"$RABBIT_DIR/server.log" 2>&1 &
RABBIT_PID=$!
stop_messaging() {
    kill "$NATS_PID" 2>/dev/null
    rabbit_env "$RABBIT_SCRIPTS/rabbitmqctl" -n ld_bench@localhost stop >/dev/null 2>&1 || kill -9 "$RABBIT_PID" 2>/dev/null
    wait "$RABBIT_PID" 2>/dev/null
    epmd -port 19005 -kill >/dev/null 2>&1
    kill "$ECHO" 2>/dev/null
    rm -rf "$WORK"
}
trap stop_messaging EXIT
for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null && break
    sleep 0.2
done
AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2F"
NATS_URL="nats://127.0.0.1:$NATS_PORT"

# cycle METHOD_FIELDS: connect, PUBLISHES publishes with METHOD_FIELDS, close.
cycle() {
    python3 -c 'import json,sys; n=int(sys.argv[2]); p=json.loads(sys.argv[1]); print(json.dumps([{"method": "connect"}] + [p]*n + [{"method": "close"}]))' "$1" "$PUBLISHES"
}
script_with() {
    cat <<JSON
{"load_density": [["LD_start_test", {
  "user_detail_dict": {"user": "$1"}, "connection": {"url": "$2"},
  "user_count": $CONNECTIONS, "spawn_rate": 100000, "test_time": $DURATION,
  "wait_time": {"constant": 0}, "tasks": $3}]]}
JSON
}
script_with amqp_user "$AMQP_URL" \
    "$(cycle '{"method": "publish", "exchange": "", "routing_key": "ld_bench_nowhere", "body": "hello"}')" \
    > "$WORK/amqp.json"
script_with nats_user "$NATS_URL" \
    "$(cycle '{"method": "publish", "subject": "ld.bench", "payload": "hello"}')" > "$WORK/nats.json"

messaging_baseline() {
    taskset -c "$LOAD_CPU" "$ROOT/target/release/examples/messaging_client" "$1" "$2" "$CONNECTIONS" "$DURATION" "$PUBLISHES"
}
declare -A RESULTS=()
ROWS=(
    "AMQP publish: lapin client|messaging_baseline amqp $AMQP_URL"
    "AMQP publish: loaddensity amqp_user|ld_rps $WORK/s.json run $WORK/amqp.json"
    "NATS publish: async-nats client|messaging_baseline nats $NATS_URL"
    "NATS publish: loaddensity nats_user|ld_rps $WORK/s.json run $WORK/nats.json"
)
run_rows "$RUNS"

echo
echo "| client | median steps/s (${RUNS} runs, ${CONNECTIONS} conns, connect + ${PUBLISHES} publishes + close, ${DURATION}s, 1 core) | median paired ratio to the baseline |"
echo "|---|---:|---:|"
for pair in "0 1" "2 3"; do
    set -- $pair
    base_label=${ROWS[$1]%%|*}
    for i in "$1" "$2"; do
        label=${ROWS[$i]%%|*}
        printf '| %s | %.0f | %.3f |\n' "$label" "$(row_median "$label")" \
            "$(paired_ratio "$label" "$base_label")"
    done
done
