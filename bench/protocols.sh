#!/usr/bin/env bash
# One-core throughput of the protocol user types, each next to a baseline doing the
# same exchanges against the same server in the same run: websocket_user and
# socket_user against a fast local echo server (examples/protocol_echo.rs), next to a
# minimal tokio client (examples/protocol_client.rs). Every server is pinned to
# TARGET_CPU; every load generator runs on LOAD_CPU with one thread. Prints a markdown
# table per group: the median steps/s over RUNS runs (every step, connect and close
# included, counts one), the median CPU time per step of loaddensity's rows, and the
# median paired ratio to the row's baseline (lib.sh's paired_ratio).
#
# Then amqp_user and nats_user against a private RabbitMQ node and a nats-server (each
# pinned to TARGET_CPU), next to examples/messaging_client.rs doing the same steps with
# the same crates (no `nats bench` or RabbitMQ PerfTest is packaged in Debian): per
# connection, connect, PUBLISHES publishes, close. Skipped when the servers are not
# installed.
#
#   bench/protocols.sh            # RUNS=3 DURATION=10 CONNECTIONS=32 PUBLISHES=100 by default
#   BUILD=0 bench/protocols.sh    # the release binaries are built already (under bench_quiet.sh)
#   ONLY='nats_user;sql_user' bench/protocols.sh   # those rows and their baselines only
#
# loaddensity runs with the request log off (`"max_records": 0`), as `loaddensity bench`
# runs against wrk in compare.sh: the baselines keep no record of each request. One
# extra row, nats_user with the log at its default (1,000,000 records), shows what the
# log costs on the lightest step; REQUEST_LOG=on runs every row with it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
# The scripts' `max_records`: 0 (the log off) unless REQUEST_LOG=on (the default, 1,000,000).
if [ "${REQUEST_LOG:-off}" = on ]; then MAX_RECORDS=1000000; else MAX_RECORDS=0; fi
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WS_PORT=${WS_PORT:-19001}
TCP_PORT=${TCP_PORT:-19002}

if [ "${BUILD:-1}" = 1 ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin loaddensity \
        --example protocol_echo --example protocol_client --example messaging_client --example store_client
fi
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
  "wait_time": {"constant": 0}, "max_records": $MAX_RECORDS, "tasks": $2}]]}
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

# baseline KIND TARGET [CA_FILE]: the minimal tokio client's exchanges/s.
baseline() {
    taskset -c "$LOAD_CPU" "$ROOT/target/release/examples/protocol_client" "$1" "$2" "$CONNECTIONS" "$DURATION" "${@:3}"
}

# table WHAT: the markdown table of the ROWS just run; BASE[label] names each row's
# baseline (a baseline names itself; a row without one shows n/a).
declare -A BASE
table() {
    echo
    echo "| client | median $1/s (${RUNS} runs, ${CONNECTIONS} conns, ${DURATION}s, 1 core) | µs CPU/step | median paired ratio to the baseline |"
    echo "|---|---:|---:|---:|"
    local row label ratio
    for row in "${ROWS[@]}"; do
        label=${row%%|*}
        ratio=n/a
        [ -n "${BASE[$label]:-}" ] && ratio=$(printf '%.3f' "$(paired_ratio "$label" "${BASE[$label]}")")
        printf '| %s | %.0f | %s | %s |\n' "$label" "$(row_median "$label")" "$(cpu_median "$label")" "$ratio"
    done
}

# selected: with ONLY set (texts separated by `;`), keeps in ROWS the rows whose labels
# contain one of its texts, and their baselines (BASE); false when it keeps none (the
# table is skipped). Without ONLY, every row runs.
selected() {
    [ -n "${ONLY:-}" ] || return 0
    local row label text wanted kept=()
    local -A keep=()
    IFS=';' read -ra wanted <<<"$ONLY"
    for row in "${ROWS[@]}"; do
        label=${row%%|*}
        for text in "${wanted[@]}"; do
            if [[ $label == *"$text"* ]]; then
                keep[$label]=1
                [ -n "${BASE[$label]:-}" ] && keep[${BASE[$label]}]=1
            fi
        done
    done
    for row in "${ROWS[@]}"; do
        [ -n "${keep[${row%%|*}]:-}" ] && kept+=("$row")
    done
    [ "${#kept[@]}" -gt 0 ] || return 1
    ROWS=("${kept[@]}")
}

# pair BASE_LABEL LABEL...: LABEL's rows compare with BASE_LABEL's.
pair() {
    local base=$1 label
    shift
    BASE[$base]=$base
    for label in "$@"; do BASE[$label]=$base; done
}

declare -A RESULTS
ROWS=(
    "WS sendrecv: tokio-tungstenite client|baseline ws ws://127.0.0.1:$WS_PORT/"
    "WS sendrecv: loaddensity websocket_user|ld_rps $WORK/s.json run $WORK/ws.json"
    "TCP req/resp: tokio client|baseline tcp 127.0.0.1:$TCP_PORT"
    "TCP req/resp: loaddensity socket_user, keep_alive|ld_rps $WORK/s.json run $WORK/tcp.json"
    "TCP req/resp: loaddensity socket_user, new connection per step (LoadDensity's default)|ld_rps $WORK/s.json run $WORK/tcp_new.json"
)
pair "${ROWS[0]%%|*}" "${ROWS[1]%%|*}"
pair "${ROWS[2]%%|*}" "${ROWS[3]%%|*}" "${ROWS[4]%%|*}"
if selected; then
    run_rows "$RUNS"
    table exchanges
fi

# The web user types (sse_user, graphql_ws_user, http3_user, async_http_user) against
# the test servers of tests/servers/ and nginx (HTTP/2 over TLS, a CA made by openssl),
# each server pinned to TARGET_CPU. async_http_user's baseline is h2load (Debian's
# nghttp2-client); the others' is examples/protocol_client.rs doing the same steps
# with the same crates (the Python servers are the limit of both). WEB=0 skips this table.
if [ "${WEB:-1}" = 1 ]; then
    SSE_PORT=${SSE_PORT:-19003}
    GQL_PORT=${GQL_PORT:-19004}
    H3_PORT=${H3_PORT:-19005}
    H2_PORT=${H2_PORT:-19006}
    ( cd "$WORK" \
        && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
            -subj "/CN=bench CA" -keyout ca.key -out ca.pem \
        && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj /CN=localhost -keyout key.pem -out leaf.csr \
        && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > leaf.ext \
        && openssl x509 -req -days 1 -CAcreateserial -in leaf.csr -CA ca.pem -CAkey ca.key \
            -extfile leaf.ext -out cert.pem ) >/dev/null 2>&1
    taskset -c "$TARGET_CPU" python3 "$ROOT/tests/servers/sse_server.py" "$SSE_PORT" >/dev/null &
    WEB_PIDS=($!)
    taskset -c "$TARGET_CPU" python3 "$ROOT/tests/servers/graphql_server.py" "$GQL_PORT" >/dev/null 2>&1 &
    WEB_PIDS+=($!)
    taskset -c "$TARGET_CPU" python3 "$ROOT/tests/servers/http3_server.py" \
        "$WORK/cert.pem" "$WORK/key.pem" "$WORK/h3stats.json" "$H3_PORT" >/dev/null &
    WEB_PIDS+=($!)
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$H2_PORT ssl http2;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    location / { default_type text/plain; return 200 "hello"; }
  }
}
CONF
    taskset -c "$TARGET_CPU" nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
    WEB_PIDS+=($!)
    trap 'kill "$ECHO" "${WEB_PIDS[@]}" 2>/dev/null; rm -rf "$WORK"' EXIT
    sleep 3
    script sse_user \
        "[{\"method\": \"open\", \"request_url\": \"http://127.0.0.1:$SSE_PORT/events?count=0\"}, {\"method\": \"wait\", \"expect\": \"ready\"}, {\"method\": \"close\"}]" \
        > "$WORK/sse.json"
    script graphql_ws_user \
        "[{\"method\": \"connect\", \"url\": \"ws://127.0.0.1:$GQL_PORT/graphql\"}, {\"method\": \"subscribe\", \"query\": \"subscription { count(target: 1) }\", \"max_messages\": 2}, {\"method\": \"close\"}]" \
        > "$WORK/gql.json"
    script http3_user \
        "[{\"method\": \"get\", \"request_url\": \"https://localhost:$H3_PORT/ok\", \"ca_file\": \"$WORK/ca.pem\"}]" \
        > "$WORK/h3.json"
    sed 's/"user_detail_dict"/"http2": true, "user_detail_dict"/' <(script async_http_user \
        "[{\"method\": \"get\", \"request_url\": \"https://localhost:$H2_PORT/\", \"ca_file\": \"$WORK/ca.pem\"}]") \
        > "$WORK/h2.json"
    # h2load_rps: h2load's requests/s, one thread on LOAD_CPU, one stream per connection.
    h2load_rps() {
        taskset -c "$LOAD_CPU" h2load -t1 -c"$CONNECTIONS" -m1 -D"$DURATION" \
            "https://localhost:$H2_PORT/" | awk '/^finished in/ {print $4}'
    }
    declare -A RESULTS=() BASE=()
    ROWS=()
    if command -v h2load >/dev/null 2>&1; then
        ROWS+=("HTTP/2 GET (nginx): h2load|h2load_rps")
        pair "HTTP/2 GET (nginx): h2load" "HTTP/2 GET (nginx): loaddensity async_http_user"
    fi
    ROWS+=(
        "HTTP/2 GET (nginx): loaddensity async_http_user|ld_rps $WORK/s.json run $WORK/h2.json"
        "HTTP/3 GET (aioquic): quinn + h3 client|baseline h3 https://localhost:$H3_PORT/ok $WORK/ca.pem"
        "HTTP/3 GET (aioquic): loaddensity http3_user|ld_rps $WORK/s.json run $WORK/h3.json"
        "SSE open/wait/close (http.server): hyper client|baseline sse http://127.0.0.1:$SSE_PORT/events?count=0"
        "SSE open/wait/close (http.server): loaddensity sse_user|ld_rps $WORK/s.json run $WORK/sse.json"
        "GraphQL connect/subscribe/close (strawberry): tokio-tungstenite client|baseline graphql-ws ws://127.0.0.1:$GQL_PORT/graphql"
        "GraphQL connect/subscribe/close (strawberry): loaddensity graphql_ws_user|ld_rps $WORK/s.json run $WORK/gql.json"
    )
    n=${#ROWS[@]}
    for i in $((n - 6)) $((n - 4)) $((n - 2)); do pair "${ROWS[$i]%%|*}" "${ROWS[$((i + 1))]%%|*}"; done
    if selected; then
        run_rows "$RUNS"
        table steps
    fi
fi
# Data stores: sql_user against PostgreSQL next to `pgbench -S -M prepared` (the same
# one-row primary-key SELECT, prepared once per connection as sql_user does, one
# thread, CONNECTIONS clients), and memcached_user and
# etcd_user against their servers next to examples/store_client.rs doing the same
# steps with the same crates (no baseline client is packaged in Debian:
# memtier_benchmark and mc-crusher are not, nor is etcd's benchmark tool), each
# server pinned to TARGET_CPU with a temporary data directory. DATA_ROWS=0 skips them.
if [ "${DATA_ROWS:-1}" = 1 ]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PG_PORT=${PG_PORT:-19013}
    MC_PORT=${MC_PORT:-19014}
    ETCD_PORT=${ETCD_PORT:-19015}
    as_pg=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$WORK"
        as_pg=(runuser -u postgres --)
    fi
    "${as_pg[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U ld --auth=trust --no-sync >/dev/null
    "${as_pg[@]}" taskset -c "$TARGET_CPU" "$PG_BIN/postgres" -D "$WORK/pg" -k "$WORK" -p "$PG_PORT" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 >"$WORK/pg.log" 2>&1 &
    PG=$!
    taskset -c "$TARGET_CPU" memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -u root -t 1 &
    MC=$!
    taskset -c "$TARGET_CPU" etcd --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls http://127.0.0.1:19016 \
        --initial-advertise-peer-urls http://127.0.0.1:19016 --initial-cluster default=http://127.0.0.1:19016 \
        --log-level error >"$WORK/etcd.log" 2>&1 &
    ETCD=$!
    trap 'kill "$ECHO" "${WEB_PIDS[@]:-}" "$PG" "$MC" "$ETCD" 2>/dev/null; sleep 1; rm -rf "$WORK"' EXIT
    for _ in $(seq 1 100); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        sleep 0.1
    done
    "$PG_BIN/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$PG_PORT" -U ld postgres >/dev/null 2>&1
    script sql_user \
        "[{\"method\": \"execute\", \"sql\": \"SELECT abalance FROM pgbench_accounts WHERE aid = :aid\", \"params\": {\"aid\": \"\${randint(1, 100000)}\"}, \"expect_rows\": 1}]" |
        sed "s|\"tasks\"|\"connection_string\": \"postgresql://ld@127.0.0.1:$PG_PORT/postgres\", \"tasks\"|" > "$WORK/sql.json"
    script memcached_user \
        "[{\"method\": \"connect\", \"port\": $MC_PORT}, {\"method\": \"set\", \"key\": \"k\${randint(1, 1000)}\", \"value\": \"hello\"}, {\"method\": \"get\", \"key\": \"k\${randint(1, 1000)}\"}, {\"method\": \"close\"}]" \
        > "$WORK/mc.json"
    script etcd_user \
        "[{\"method\": \"connect\", \"port\": $ETCD_PORT}, {\"method\": \"put\", \"key\": \"k\${randint(1, 1000)}\", \"value\": \"hello\"}, {\"method\": \"get\", \"key\": \"k\${randint(1, 1000)}\"}]" \
        > "$WORK/etcd.json"
    pgbench_tps() {
        taskset -c "$LOAD_CPU" "$PG_BIN/pgbench" -S -n -M prepared -c "$CONNECTIONS" -j 1 -T "$DURATION" \
            -h 127.0.0.1 -p "$PG_PORT" -U ld postgres 2>/dev/null |
            awk '/^tps = / {print $3; exit}'
    }
    # store_baseline KIND ADDRESS: examples/store_client.rs's operations/s.
    store_baseline() {
        taskset -c "$LOAD_CPU" "$ROOT/target/release/examples/store_client" "$1" "$2" "$CONNECTIONS" "$DURATION"
    }
    declare -A RESULTS=() BASE=()
    ROWS=(
        "SQL primary-key SELECT: pgbench -S -M prepared|pgbench_tps"
        "SQL primary-key SELECT: loaddensity sql_user|ld_rps $WORK/s.json run $WORK/sql.json"
        "memcached connect+set+get+close: async-memcached client|store_baseline memcached 127.0.0.1:$MC_PORT"
        "memcached connect+set+get+close: loaddensity memcached_user|ld_rps $WORK/s.json run $WORK/mc.json"
        "etcd connect+put+get: tonic client|store_baseline etcd 127.0.0.1:$ETCD_PORT"
        "etcd connect+put+get: loaddensity etcd_user|ld_rps $WORK/s.json run $WORK/etcd.json"
    )
    for i in 0 2 4; do pair "${ROWS[$i]%%|*}" "${ROWS[$((i + 1))]%%|*}"; done
    if selected; then
        run_rows "$RUNS"
        table steps
    fi
fi
# --- amqp_user and nats_user -------------------------------------------------------
PUBLISHES=${PUBLISHES:-100}
RABBIT_SCRIPTS=/usr/lib/rabbitmq/bin
if [ ! -x "$RABBIT_SCRIPTS/rabbitmq-server" ] || ! { command -v nats-server || [ -x /usr/sbin/nats-server ]; } >/dev/null 2>&1; then
    echo "(amqp_user and nats_user rows skipped: install rabbitmq-server and nats-server)" >&2
    exit 0
fi
NATS_PORT=${NATS_PORT:-19023}
AMQP_PORT=${AMQP_PORT:-19024}
RABBIT_DIR="$WORK/rabbitmq"
mkdir -p "$RABBIT_DIR"
echo '[].' > "$RABBIT_DIR/enabled_plugins"
: > "$RABBIT_DIR/env.conf"
# A private node: its own name, ports, epmd, cookie and data (as tests/it/common/rabbitmq.rs).
rabbit_env() {
    env HOME="$RABBIT_DIR" RABBITMQ_NODENAME=ld_bench@localhost ERL_EPMD_PORT=19025 \
        ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_DIST_PORT=19026 RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" \
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
    epmd -port 19025 -kill >/dev/null 2>&1
    kill "$ECHO" "${WEB_PIDS[@]:-}" "${PG:-}" "${MC:-}" "${ETCD:-}" 2>/dev/null
    sleep 1
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
  "wait_time": {"constant": 0}, "max_records": $MAX_RECORDS, "tasks": $3}]]}
JSON
}
script_with amqp_user "$AMQP_URL" \
    "$(cycle '{"method": "publish", "exchange": "", "routing_key": "ld_bench_nowhere", "body": "hello"}')" \
    > "$WORK/amqp.json"
script_with nats_user "$NATS_URL" \
    "$(cycle '{"method": "publish", "subject": "ld.bench", "payload": "hello"}')" > "$WORK/nats.json"
sed 's/"max_records": [0-9]*/"max_records": 1000000/' "$WORK/nats.json" > "$WORK/nats_log.json"

messaging_baseline() {
    taskset -c "$LOAD_CPU" "$ROOT/target/release/examples/messaging_client" "$1" "$2" "$CONNECTIONS" "$DURATION" "$PUBLISHES"
}
declare -A RESULTS=() BASE=()
ROWS=(
    "AMQP publish: lapin client|messaging_baseline amqp $AMQP_URL"
    "AMQP publish: loaddensity amqp_user|ld_rps $WORK/s.json run $WORK/amqp.json"
    "NATS publish: async-nats client|messaging_baseline nats $NATS_URL"
    "NATS publish: loaddensity nats_user|ld_rps $WORK/s.json run $WORK/nats.json"
    "NATS publish: loaddensity nats_user, request log on (1,000,000 records)|ld_rps $WORK/s.json run $WORK/nats_log.json"
)
pair "${ROWS[0]%%|*}" "${ROWS[1]%%|*}"
pair "${ROWS[2]%%|*}" "${ROWS[3]%%|*}" "${ROWS[4]%%|*}"
if selected; then
    run_rows "$RUNS"
    table "steps (connect + ${PUBLISHES} publishes + close)"
fi
