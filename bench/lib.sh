# Shared helpers for bench/*.sh: start nginx pinned to one core, run a command pinned
# to the other, and take medians.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TARGET_CPU=${TARGET_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

# start_nginx PORT: starts nginx on 127.0.0.1:PORT pinned to TARGET_CPU; sets NGINX_DIR.
start_nginx() {
    local port=$1
    NGINX_DIR=$(mktemp -d)
    sed -e "s|@DIR@|$NGINX_DIR|g" -e "s|@PORT@|$port|g" "$BENCH_DIR/nginx.conf.in" > "$NGINX_DIR/nginx.conf"
    taskset -c "$TARGET_CPU" nginx -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
        curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nginx did not start" >&2
    cat "$NGINX_DIR/error.log" >&2
    return 1
}

stop_nginx() {
    [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    [ -n "${NGINX_DIR:-}" ] && rm -rf "$NGINX_DIR"
    NGINX_PID=
}

# median: the median of the numbers on stdin, one a line.
median() {
    sort -g | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'
}

# wrk_rps URL CONNECTIONS SECONDS: wrk's requests/s, one thread on LOAD_CPU.
wrk_rps() {
    taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3"s "$1" | awk '/Requests\/sec/ {print $2}'
}

# oha_rps URL CONNECTIONS SECONDS: oha's requests/s on LOAD_CPU (oha runs on tokio;
# one worker thread, as loaddensity's --threads 1).
oha_rps() {
    TOKIO_WORKER_THREADS=1 taskset -c "$LOAD_CPU" oha --no-tui -z "$3s" -c "$2" "$1" \
        | awk '/Requests\/sec/ {print $2}'
}

# Where ld_rps leaves the CPU time per request of its last run (microseconds, user +
# system over the run's requests, the generator's threads and its sinks' together):
# run_rows collects it beside requests/s. Steadier than requests/s on a busy machine.
CPU_FILE=${CPU_FILE:-$(mktemp)}

# ld_rps SUMMARY_FILE ARGS...: runs loaddensity on LOAD_CPU with one worker thread and
# prints the summary's requests/s (and writes its CPU time per request to CPU_FILE).
ld_rps() {
    local summary=$1; shift
    local times
    times=$(mktemp)
    taskset -c "$LOAD_CPU" /usr/bin/time -f '%U %S' -o "$times" \
        "$ROOT/target/release/loaddensity" --threads 1 --quiet "$@" --summary-json "$summary" >/dev/null
    summary_rps "$summary" "$times"
    rm -f "$times"
}

# summary_rps SUMMARY_FILE TIMES_FILE: prints the summary's requests/s and writes the
# CPU time per request (TIMES_FILE: `/usr/bin/time -f '%U %S'` of the run) to CPU_FILE.
summary_rps() {
    python3 - "$1" "$2" "$CPU_FILE" <<'PY'
import json, sys
totals = json.load(open(sys.argv[1]))["totals"]
user, system = (float(x) for x in open(sys.argv[2]).read().split()[-2:])
requests = max(1, totals["requests"])
open(sys.argv[3], "w").write(f"{(user + system) / requests * 1e6:.3f}\n")
print(totals["rps"])
PY
}

# run_rows RUNS: runs the "label|command" entries of the ROWS array RUNS times,
# interleaved run by run so that drift affects every row alike; each command prints
# one requests/s figure, appended to RESULTS[label] (an associative array the caller
# declares). A loaddensity row's CPU time per request goes to CPU_PER_REQUEST[label].
declare -A CPU_PER_REQUEST
run_rows() {
    local run row label rps
    for run in $(seq 1 "$1"); do
        for row in "${ROWS[@]}"; do
            label=${row%%|*}
            rps=$(eval "${row#*|}")
            if [ -z "$rps" ]; then
                # An empty figure would shift every later pair of paired_ratio.
                echo "run $run: $label: no requests/s figure" >&2
                return 1
            fi
            RESULTS[$label]="${RESULTS[$label]:-} $rps"
            local cpu=
            if [ -s "$CPU_FILE" ]; then
                cpu=$(cat "$CPU_FILE")
                CPU_PER_REQUEST[$label]="${CPU_PER_REQUEST[$label]:-} $cpu"
                : > "$CPU_FILE"
            fi
            echo "run $run: $label: $rps req/s${cpu:+, $cpu µs CPU/request}" >&2
        done
    done
}

# cpu_median LABEL: the median CPU time per request of LABEL's runs in microseconds,
# or "-" for a row that is not loaddensity (wrk, oha).
cpu_median() {
    local values=${CPU_PER_REQUEST[$1]:-}
    if [ -z "$values" ]; then echo -; return; fi
    echo "$values" | tr ' ' '\n' | grep . | median
}

# row_median LABEL: the median of RESULTS[LABEL].
row_median() {
    echo "${RESULTS[$1]}" | tr ' ' '\n' | grep . | median
}

# paired_ratio LABEL BASE_LABEL: the median over runs of RESULTS[LABEL] / RESULTS[BASE_LABEL]
# taken run by run. run_rows interleaves the rows, so each ratio compares two runs of the
# same round (at most one round apart, instead of the whole benchmark), and a slow spell
# of the machine cancels out of it.
paired_ratio() {
    paste -d ' ' <(echo "${RESULTS[$1]}" | tr ' ' '\n' | grep .) \
        <(echo "${RESULTS[$2]}" | tr ' ' '\n' | grep .) \
        | awk '$2 > 0 {print $1 / $2}' | median
}

# only_rows BASES: with ONLY set (texts separated by `;`), keeps in the ROWS array only
# the rows whose labels contain one of its texts, and the rows whose labels are in BASES
# (labels separated by `;`: the bases of the ratios, which always run). Exits 2, listing
# the rows, when ONLY matches none of them.
only_rows() {
    [ -n "${ONLY:-}" ] || return 0
    local row label text keep matched=0 kept=() wanted bases
    IFS=';' read -ra wanted <<<"$ONLY"
    IFS=';' read -ra bases <<<"$1"
    for row in "${ROWS[@]}"; do
        label=${row%%|*}
        keep=0
        for text in "${bases[@]}"; do
            [ "$label" = "$text" ] && keep=1
        done
        for text in "${wanted[@]}"; do
            if [[ $label == *"$text"* ]]; then
                keep=1
                matched=1
            fi
        done
        [ "$keep" = 1 ] && kept+=("$row")
    done
    if [ "$matched" = 0 ]; then
        echo "ONLY='$ONLY' matches no row; the rows are:" >&2
        printf '  %s\n' "${ROWS[@]%%|*}" >&2
        exit 2
    fi
    ROWS=("${kept[@]}")
}
