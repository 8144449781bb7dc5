#!/usr/bin/env bash
# One-hop benchmark: direct vs Bowline sidecar vs nginx vs haproxy, 1 KB HTTP/1.1 responses.
# See bench/README.md. Usage: [RUNS=3] [BOWLINE_BIN=dir-with-bowline.dll] bench/run.sh
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"

RUNS="${RUNS:-1}"
WARMUP_SECONDS="${WARMUP_SECONDS:-3}"
WRK_SECONDS="${WRK_SECONDS:-10}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
HEY_SECONDS="${HEY_SECONDS:-15}"
HEY_WORKERS="${HEY_WORKERS:-20}"
HEY_QPS="${HEY_QPS:-50}"                 # per worker: 20 × 50 = 1000 rps
READY_SECONDS="${READY_SECONDS:-20}"     # how long the sidecar may take to route its first request
read -r -a TARGETS <<< "${TARGETS:-direct bowline nginx haproxy}"   # a subset, for quick experiments

export DOTNET_TieredPGO=1
export DOTNET_gcServer=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1

for tool in nginx haproxy wrk hey curl python3 dotnet getconf; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not on PATH" >&2; exit 1; }
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: RUNS must be a positive integer" >&2; exit 1; }

WORK="$(mktemp -d /tmp/bowline-bench.XXXXXX)"
chmod 755 "$WORK"   # nginx workers may run as nobody and must read the backend's file
mkdir -p "$WORK/logs" "$WORK/raw"
STARTED_PIDS=()
STARTED_NAMES=()
SUCCEEDED=0

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    set +e
    local i pid
    # Newest first, so the sidecar stops before its control plane and the proxies before the backend.
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${STARTED_PIDS[i]}"
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "${STARTED_NAMES[i]} (pid $pid) still running 10 s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [[ $SUCCEEDED == 1 && -z "${KEEP_TMP:-}" ]]; then
        rm -rf "$WORK"
    else
        log "logs and raw outputs kept in $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports, all picked at once so they are distinct.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# render TEMPLATE OUT KEY=VALUE...
render() {
    local template="$1" out="$2"; shift 2
    local args=() kv
    for kv in "$@"; do
        args+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
    done
    sed "${args[@]}" "$template" >"$out"
}

# start NAME CMD... : runs CMD in the background, logs to logs/NAME.log, remembers its pid in PID_NAME.
start() {
    local name="$1"; shift
    "$@" >"$WORK/logs/$name.log" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    STARTED_NAMES+=("$name")
    printf -v "PID_$name" '%s' "$pid"
}

# wait_for NAME SECONDS URL [HOST] : until URL answers 200 with a 1024-byte body.
wait_for() {
    local name="$1" seconds="$2" url="$3" host="${4:-backend}"
    local deadline=$((SECONDS + seconds)) pid_var="PID_$name" out
    while ((SECONDS < deadline)); do
        if ! kill -0 "${!pid_var}" 2>/dev/null; then
            log "$name exited early; its log:"; tail -n 40 "$WORK/logs/$name.log" >&2; return 1
        fi
        out="$(curl -s -o /dev/null -m 2 -w '%{http_code} %{size_download}' -H "Host: $host" "$url" || true)"
        [[ "$out" == "200 1024" ]] && return 0
        sleep 0.25
    done
    log "$name did not serve $url (Host: $host) within ${seconds}s (last: '$out'); its log:"
    tail -n 40 "$WORK/logs/$name.log" >&2
    return 1
}

# All pids in the tree rooted at $1.
tree_pids() {
    local pid="$1" child
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do
        tree_pids "$child"
    done
}

# utime+stime, in clock ticks, summed over the given pids.
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        fields="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
        read -r -a f <<<"$fields"
        total=$((total + f[11] + f[12]))   # fields 14 and 15 of stat, after pid and comm
    done
    echo "$total"
}

vmhwm_kb() {
    local total=0 pid kb
    for pid in "$@"; do
        kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# ---------------------------------------------------------------- Bowline build
if [[ -n "${BOWLINE_BIN:-}" ]]; then
    BIN="$(cd "$BOWLINE_BIN" && pwd)"
    [[ -f "$BIN/bowline.dll" ]] || { echo "bench: $BIN/bowline.dll not found" >&2; exit 1; }
    log "using the Bowline build in $BIN"
else
    BIN="$WORK/bowline"
    log "building Bowline (Release) into $BIN; set BOWLINE_BIN to reuse a build"
    if ! dotnet build "$REPO_DIR/src/Bowline.Cli" -c Release -o "$BIN" >"$WORK/logs/build.log" 2>&1; then
        log "build failed:"; tail -n 40 "$WORK/logs/build.log" >&2; exit 1
    fi
fi

BENCH_START=$SECONDS
read -r BACKEND_PORT NGINX_PORT HAPROXY_PORT XDS_PORT MON_PORT ADMIN_PORT OUTBOUND_PORT <<<"$(free_ports 7)"

# ---------------------------------------------------------------- backend
mkdir -p "$WORK/backend/www" "$WORK/backend/tmp"
python3 -c 'import sys; sys.stdout.write("x" * 1023 + "\n")' >"$WORK/backend/www/1kb"
chmod -R a+rX "$WORK/backend"
render "$BENCH_DIR/conf/backend-nginx.conf.tmpl" "$WORK/backend/nginx.conf" DIR="$WORK/backend" PORT="$BACKEND_PORT"
start backend nginx -p "$WORK/backend/" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf"
wait_for backend 10 "http://127.0.0.1:$BACKEND_PORT/1kb"

# ---------------------------------------------------------------- nginx proxy
mkdir -p "$WORK/nginx/tmp"
render "$BENCH_DIR/conf/proxy-nginx.conf.tmpl" "$WORK/nginx/nginx.conf" DIR="$WORK/nginx" PORT="$NGINX_PORT" BACKEND_PORT="$BACKEND_PORT"
start nginx nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
wait_for nginx 10 "http://127.0.0.1:$NGINX_PORT/1kb"

# ---------------------------------------------------------------- haproxy
mkdir -p "$WORK/haproxy"
render "$BENCH_DIR/conf/haproxy.cfg.tmpl" "$WORK/haproxy/haproxy.cfg" DIR="$WORK/haproxy" PORT="$HAPROXY_PORT" BACKEND_PORT="$BACKEND_PORT"
start haproxy haproxy -db -f "$WORK/haproxy/haproxy.cfg"
wait_for haproxy 10 "http://127.0.0.1:$HAPROXY_PORT/1kb"

# ---------------------------------------------------------------- bowline
mkdir -p "$WORK/mesh"
render "$BENCH_DIR/conf/mesh.yaml.tmpl" "$WORK/mesh/mesh.yaml" BACKEND_PORT="$BACKEND_PORT"
# SCENARIO=name adds bench/conf/scenarios/<name>.yaml (routes-100, resilience, filters) to the mesh: the cost of config.
if [[ -n "${SCENARIO:-}" ]]; then cp "$BENCH_DIR/conf/scenarios/$SCENARIO.yaml" "$WORK/mesh/"; fi
start controlplane dotnet "$BIN/bowline.dll" controlplane --config "$WORK/mesh" \
    --xds-port "$XDS_PORT" --monitoring-port "$MON_PORT" --log-level Warning
# BOWLINE_PROXY=path/to/bowline-proxy measures the Native AOT sidecar (dotnet publish src/Bowline.Sidecar) instead.
if [[ -n "${BOWLINE_PROXY:-}" ]]; then PROXY_CMD=("$BOWLINE_PROXY"); else PROXY_CMD=(dotnet "$BIN/bowline.dll" proxy); fi
start bowline "${PROXY_CMD[@]}" --xds "http://127.0.0.1:$XDS_PORT" \
    --workload bench-client --namespace default --label app=bench-client \
    --admin-port "$ADMIN_PORT" --outbound-port "$OUTBOUND_PORT" --log-level Warning
wait_for bowline "$READY_SECONDS" "http://127.0.0.1:$OUTBOUND_PORT/1kb"
log "all targets answer: backend :$BACKEND_PORT, bowline :$OUTBOUND_PORT, nginx :$NGINX_PORT, haproxy :$HAPROXY_PORT"

# ---------------------------------------------------------------- measure
target_port() {
    case "$1" in
        direct) echo "$BACKEND_PORT" ;; bowline) echo "$OUTBOUND_PORT" ;;
        nginx) echo "$NGINX_PORT" ;; haproxy) echo "$HAPROXY_PORT" ;;
    esac
}
target_root_pid() {
    case "$1" in
        direct) echo "$PID_backend" ;; bowline) echo "$PID_bowline" ;;
        nginx) echo "$PID_nginx" ;; haproxy) echo "$PID_haproxy" ;;
    esac
}
# The processes whose peak RSS is reported: nginx's worker (not the master), the rest whole.
rss_pids() {
    case "$1" in
        direct) pgrep -P "$PID_backend" ;; nginx) pgrep -P "$PID_nginx" ;;
        *) tree_pids "$(target_root_pid "$1")" ;;
    esac
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
SAMPLES="$WORK/samples.tsv"
: >"$SAMPLES"
for run in $(seq "$RUNS"); do
    for target in "${TARGETS[@]}"; do
        url="http://127.0.0.1:$(target_port "$target")/1kb"
        raw="$WORK/raw/run$run-$target"
        log "run $run/$RUNS $target: wrk warm-up ${WARMUP_SECONDS}s, wrk ${WRK_SECONDS}s"
        timeout $((WARMUP_SECONDS + 30)) wrk -t1 -c"$WRK_CONNECTIONS" -d"${WARMUP_SECONDS}s" -H 'Host: backend' "$url" >"$raw-wrk-warmup.txt" 2>&1
        timeout $((WRK_SECONDS + 30)) wrk -t1 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" -H 'Host: backend' "$url" >"$raw-wrk.txt" 2>&1
        grep -E 'Requests/sec|Non-2xx|Socket errors' "$raw-wrk.txt" | sed 's/^/    /' >&2 || true

        log "run $run/$RUNS $target: hey warm-up ${WARMUP_SECONDS}s, hey ${HEY_SECONDS}s at $((HEY_WORKERS * HEY_QPS)) rps"
        timeout $((WARMUP_SECONDS + 30)) hey -z "${WARMUP_SECONDS}s" -q "$HEY_QPS" -c "$HEY_WORKERS" -host backend "$url" >"$raw-hey-warmup.txt" 2>&1
        sleep 1
        mapfile -t proxy_pids < <(tree_pids "$(target_root_pid "$target")")
        mapfile -t backend_pids < <(tree_pids "$PID_backend")
        proxy_before="$(cpu_ticks "${proxy_pids[@]}")"
        backend_before="$(cpu_ticks "${backend_pids[@]}")"
        timeout $((HEY_SECONDS + 30)) hey -z "${HEY_SECONDS}s" -q "$HEY_QPS" -c "$HEY_WORKERS" -host backend "$url" >"$raw-hey.txt" 2>&1
        proxy_after="$(cpu_ticks "${proxy_pids[@]}")"
        backend_after="$(cpu_ticks "${backend_pids[@]}")"
        grep -E '^\s+(50|90|99)% in|\[[0-9]+\]\s+[0-9]+ responses|Error distribution' "$raw-hey.txt" | sed 's/^ */    /' >&2 || true

        mapfile -t peak_pids < <(rss_pids "$target")
        rss="$(vmhwm_kb "${peak_pids[@]}")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$target" "$raw-wrk.txt" "$raw-hey.txt" \
            $((proxy_after - proxy_before)) $((backend_after - backend_before)) "$rss" >>"$SAMPLES"
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - BENCH_START))

# Every server must still be alive, or the numbers are for something else.
for name in backend nginx haproxy controlplane bowline; do
    pid_var="PID_$name"
    kill -0 "${!pid_var}" 2>/dev/null || { log "$name died during the benchmark; its log:"; tail -n 40 "$WORK/logs/$name.log" >&2; exit 1; }
done

# ---------------------------------------------------------------- report
META="$WORK/meta.txt"
git_commit="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then git_commit="$git_commit (with uncommitted changes)"; fi
{
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "host_cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "nproc=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "load_before=$LOAD_BEFORE"
    echo "load_after=$LOAD_AFTER"
    echo "nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "haproxy_version=$(haproxy -v 2>&1 | head -n1)"
    echo "wrk_version=$(wrk -v 2>&1 | head -n1 | awk '{print $1, $2, $3}')"
    echo "hey_version=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo unknown) (Debian package)"
    echo "dotnet_version=$(dotnet --version 2>/dev/null)"
    echo "runtime_version=$(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "bowline_bin=$BIN"
    echo "git_commit=$git_commit"
    echo "dotnet_env=DOTNET_TieredPGO=$DOTNET_TieredPGO, DOTNET_gcServer=$DOTNET_gcServer"
    echo "warmup_seconds=$WARMUP_SECONDS"
    echo "wrk_seconds=$WRK_SECONDS"
    echo "hey_seconds=$HEY_SECONDS"
    echo "hey_qps=$HEY_QPS"
    echo "hey_workers=$HEY_WORKERS"
    echo "hey_rate=$((HEY_QPS * HEY_WORKERS))"
    echo "order=${TARGETS[*]}"
    echo "scenario=${SCENARIO:-default}"
    echo "elapsed=${ELAPSED} s for $RUNS run(s), not counting the build"
} >"$META"

mkdir -p "$BENCH_DIR/results"
stamp="$(date -u +%Y-%m-%d-%H%M%S)"
result="$BENCH_DIR/results/$stamp.md"
status=0
python3 "$BENCH_DIR/report.py" "$SAMPLES" "$META" "$result.tmp" || status=$?
mv "$result.tmp" "$result"
cp "$result" "$BENCH_DIR/results/latest.md"
log "wrote $result and bench/results/latest.md"
if [[ $status != 0 ]]; then
    log "some responses were not 200 (see 'Response health'); bowline log tail:"
    tail -n 40 "$WORK/logs/bowline.log" >&2
    exit "$status"
fi
SUCCEEDED=1
