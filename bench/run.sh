#!/usr/bin/env bash
# Proxy benchmark: direct vs Bowline sidecar vs nginx vs haproxy, 1 KB HTTP/1.1 responses. TOPOLOGY=hop (default):
# one plaintext hop; TOPOLOGY=mtls: two proxies of each kind with mutual TLS 1.3 between them.
# See bench/README.md. Usage: [TOPOLOGY=mtls] [RUNS=3] [BOWLINE_BIN=dir-with-bowline.dll] bench/run.sh
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
TOPOLOGY="${TOPOLOGY:-hop}"              # hop: client → proxy → backend; mtls: client → A → (mutual TLS) → B → backend

export DOTNET_TieredPGO=1
export DOTNET_gcServer=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1

for tool in nginx haproxy wrk hey curl python3 dotnet getconf; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not on PATH" >&2; exit 1; }
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: RUNS must be a positive integer" >&2; exit 1; }
[[ "$TOPOLOGY" == hop || "$TOPOLOGY" == mtls ]] || { echo "bench: TOPOLOGY must be hop or mtls" >&2; exit 1; }
if [[ "$TOPOLOGY" == mtls ]]; then command -v openssl >/dev/null || { echo "bench: openssl is not on PATH" >&2; exit 1; }; fi

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

# Per target: the port the load generator talks to, and the proxy processes (A = the one the client talks to; B,
# with TOPOLOGY=mtls, the one in front of the backend). Filled in by the setup below.
declare -A TARGET_PORT TARGET_A TARGET_B

# ---------------------------------------------------------------- backend (both topologies)
read -r BACKEND_PORT <<<"$(free_ports 1)"
mkdir -p "$WORK/backend/www" "$WORK/backend/tmp"
python3 -c 'import sys; sys.stdout.write("x" * 1023 + "\n")' >"$WORK/backend/www/1kb"
chmod -R a+rX "$WORK/backend"
render "$BENCH_DIR/conf/backend-nginx.conf.tmpl" "$WORK/backend/nginx.conf" DIR="$WORK/backend" PORT="$BACKEND_PORT"
start backend nginx -p "$WORK/backend/" -e "$WORK/backend/error.log" -c "$WORK/backend/nginx.conf"
wait_for backend 10 "http://127.0.0.1:$BACKEND_PORT/1kb"
TARGET_PORT[direct]=$BACKEND_PORT; TARGET_A[direct]=backend

# SCENARIO=name adds bench/conf/scenarios/<name>.yaml to the mesh: the cost of config (routes-100, resilience, filters)
# or of telemetry (accesslog, metrics-off, tracing, all-on). A scenario that names @COLLECTOR_PORT@ gets the OTLP sink
# (bench/conf/otlp-sink.py) on that port; @TRACE_SAMPLING@ is TRACE_SAMPLING, a percentage [100].
TRACE_SAMPLING="${TRACE_SAMPLING:-100}"
COLLECTOR_PORT=""
add_scenario() {   # add_scenario CONFIG_DIR
    [[ -n "${SCENARIO:-}" ]] || return 0
    local file="$BENCH_DIR/conf/scenarios/$SCENARIO.yaml"
    [[ -f "$file" ]] || { echo "bench: no scenario $file" >&2; exit 1; }
    if grep -q '@COLLECTOR_PORT@' "$file"; then
        read -r COLLECTOR_PORT <<<"$(free_ports 1)"
        start otlp python3 "$BENCH_DIR/conf/otlp-sink.py" "$COLLECTOR_PORT"
    fi
    render "$file" "$1/$SCENARIO.yaml" COLLECTOR_PORT="$COLLECTOR_PORT" TRACE_SAMPLING="$TRACE_SAMPLING"
}

# BOWLINE_PROXY=path/to/bowline-proxy measures the Native AOT sidecar (dotnet publish src/Bowline.Sidecar) instead.
if [[ -n "${BOWLINE_PROXY:-}" ]]; then PROXY_CMD=("$BOWLINE_PROXY"); else PROXY_CMD=(dotnet "$BIN/bowline.dll" proxy); fi

if [[ "$TOPOLOGY" == hop ]]; then
# ================================================================ TOPOLOGY=hop: client → proxy → backend, plaintext
read -r NGINX_PORT HAPROXY_PORT XDS_PORT MON_PORT ADMIN_PORT OUTBOUND_PORT <<<"$(free_ports 6)"

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
add_scenario "$WORK/mesh"
start controlplane dotnet "$BIN/bowline.dll" controlplane --config "$WORK/mesh" \
    --xds-port "$XDS_PORT" --monitoring-port "$MON_PORT" --log-level Warning
start bowline "${PROXY_CMD[@]}" --xds "http://127.0.0.1:$XDS_PORT" \
    --workload bench-client --namespace default --label app=bench-client \
    --admin-port "$ADMIN_PORT" --status-port 0 --outbound-port "$OUTBOUND_PORT" --log-level Warning
wait_for bowline "$READY_SECONDS" "http://127.0.0.1:$OUTBOUND_PORT/1kb"
log "all targets answer: backend :$BACKEND_PORT, bowline :$OUTBOUND_PORT, nginx :$NGINX_PORT, haproxy :$HAPROXY_PORT"
TARGET_PORT[bowline]=$OUTBOUND_PORT; TARGET_A[bowline]=bowline
TARGET_PORT[nginx]=$NGINX_PORT;      TARGET_A[nginx]=nginx
TARGET_PORT[haproxy]=$HAPROXY_PORT;  TARGET_A[haproxy]=haproxy

else
# ================================================================ TOPOLOGY=mtls: client → A → (mutual TLS 1.3) → B → backend
read -r NGINX_A_PORT NGINX_B_PORT HAPROXY_A_PORT HAPROXY_B_PORT XDS_PORT SECURE_XDS_PORT MON_PORT \
    CLIENT_ADMIN_PORT CLIENT_OUTBOUND_PORT SERVER_ADMIN_PORT SERVER_OUTBOUND_PORT INBOUND_PORT <<<"$(free_ports 12)"

# ---------------------------------------------------------------- test PKI for nginx and haproxy (P-256)
CERTS="$WORK/certs"
mkdir -p "$CERTS"
(
    cd "$CERTS"
    openssl ecparam -name prime256v1 -genkey -noout -out root.key
    openssl req -x509 -new -key root.key -subj "/O=bowline bench/CN=bench test root" -days 2 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out root.pem
    for leaf in server client; do
        if [[ $leaf == server ]]; then eku=serverAuth; else eku=clientAuth; fi
        openssl ecparam -name prime256v1 -genkey -noout -out "$leaf.key"
        openssl req -new -key "$leaf.key" -subj "/O=bowline bench/CN=bench $leaf" -out "$leaf.csr"
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' "$eku" >"$leaf.ext"
        openssl x509 -req -in "$leaf.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 2 -sha256 \
            -extfile "$leaf.ext" -out "$leaf.pem"
        cat "$leaf.pem" "$leaf.key" >"$leaf-bundle.pem"   # haproxy's crt: certificate and key in one file
    done
    openssl verify -CAfile root.pem server.pem client.pem
) >"$WORK/logs/certs.log" 2>&1 || { log "making the test certificates failed:"; tail -n 40 "$WORK/logs/certs.log" >&2; exit 1; }
chmod -R a+rX "$CERTS"   # nginx workers may run as nobody

# ---------------------------------------------------------------- nginx B, then A
for side in b a; do
    mkdir -p "$WORK/nginx_$side/tmp"
done
render "$BENCH_DIR/conf/proxy-nginx-mtls-b.conf.tmpl" "$WORK/nginx_b/nginx.conf" DIR="$WORK/nginx_b" PORT="$NGINX_B_PORT" \
    BACKEND_PORT="$BACKEND_PORT" CERTS="$CERTS"
start nginx_b nginx -p "$WORK/nginx_b/" -e "$WORK/nginx_b/error.log" -c "$WORK/nginx_b/nginx.conf"
render "$BENCH_DIR/conf/proxy-nginx-mtls-a.conf.tmpl" "$WORK/nginx_a/nginx.conf" DIR="$WORK/nginx_a" PORT="$NGINX_A_PORT" \
    PEER_PORT="$NGINX_B_PORT" CERTS="$CERTS"
start nginx_a nginx -p "$WORK/nginx_a/" -e "$WORK/nginx_a/error.log" -c "$WORK/nginx_a/nginx.conf"
wait_for nginx_a 10 "http://127.0.0.1:$NGINX_A_PORT/1kb"

# ---------------------------------------------------------------- haproxy B, then A
mkdir -p "$WORK/haproxy_a" "$WORK/haproxy_b"
render "$BENCH_DIR/conf/haproxy-mtls-b.cfg.tmpl" "$WORK/haproxy_b/haproxy.cfg" DIR="$WORK/haproxy_b" PORT="$HAPROXY_B_PORT" \
    BACKEND_PORT="$BACKEND_PORT" CERTS="$CERTS"
start haproxy_b haproxy -db -f "$WORK/haproxy_b/haproxy.cfg"
render "$BENCH_DIR/conf/haproxy-mtls-a.cfg.tmpl" "$WORK/haproxy_a/haproxy.cfg" DIR="$WORK/haproxy_a" PORT="$HAPROXY_A_PORT" \
    PEER_PORT="$HAPROXY_B_PORT" CERTS="$CERTS"
start haproxy_a haproxy -db -f "$WORK/haproxy_a/haproxy.cfg"
wait_for haproxy_a 10 "http://127.0.0.1:$HAPROXY_A_PORT/1kb"

# Both B's must refuse a client without a certificate, or the hop is not mutual TLS.
for pair in "nginx_b $NGINX_B_PORT" "haproxy_b $HAPROXY_B_PORT"; do
    read -r name port <<<"$pair"
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' --cacert "$CERTS/root.pem" -H 'Host: backend' "https://localhost:$port/1kb" || true)"
    if [[ "$code" == 200 ]]; then log "$name served a client without a certificate: not mutual TLS"; exit 1; fi
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' --tlsv1.3 --cacert "$CERTS/root.pem" --cert "$CERTS/client.pem" --key "$CERTS/client.key" \
        -H 'Host: backend' "https://localhost:$port/1kb" || true)"
    if [[ "$code" != 200 ]]; then log "$name did not serve a TLS 1.3 client with the client certificate (HTTP '$code'); its log:"; tail -n 40 "$WORK/logs/$name.log" >&2; exit 1; fi
done

# ---------------------------------------------------------------- bowline: control plane with its CA, two sidecars
mkdir -p "$WORK/mesh/config" "$WORK/mesh/tokens"
chmod 700 "$WORK/mesh/tokens"
render "$BENCH_DIR/conf/mesh-mtls.yaml.tmpl" "$WORK/mesh/config/mesh.yaml" INBOUND_PORT="$INBOUND_PORT"
add_scenario "$WORK/mesh/config"
CA_DIR="$WORK/mesh/ca"
start controlplane dotnet "$BIN/bowline.dll" controlplane --config "$WORK/mesh/config" --ca-dir "$CA_DIR" \
    --xds-port "$XDS_PORT" --secure-xds-port "$SECURE_XDS_PORT" --monitoring-port "$MON_PORT" --log-level Warning
deadline=$((SECONDS + READY_SECONDS))
until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$MON_PORT/ready" || true)" == 200 && -s "$CA_DIR/root-cert.pem" ]]; do
    if ! kill -0 "$PID_controlplane" 2>/dev/null || ((SECONDS >= deadline)); then
        log "the control plane did not get ready with its CA; its log:"; tail -n 40 "$WORK/logs/controlplane.log" >&2; exit 1
    fi
    sleep 0.25
done
# What bowline up does (StateLayout.WriteControlPlaneRoot): sidecars verify the TLS xDS port against a copy of the root.
cp "$CA_DIR/root-cert.pem" "$WORK/mesh/ca-root.pem"

# Bootstrap tokens. There is no CLI command for this; bowline up calls BootstrapTokenStore.Issue in-process
# (StateLayout.IssueToken). This writes exactly what Issue writes: a random 32-byte base64url token, and in the
# CA's bootstrap-tokens.json (0600, which the store reloads when it changes) its SHA-256, base64url, for the identity.
issue_token() {   # issue_token NAMESPACE SERVICE_ACCOUNT OUT_FILE
    python3 - "$CA_DIR/bootstrap-tokens.json" "$1" "$2" "$3" <<'EOF'
import base64, datetime, hashlib, json, os, secrets, sys
path, ns, sa, out = sys.argv[1:5]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
token = b64(secrets.token_bytes(32))
entries = json.load(open(path))["tokens"] if os.path.exists(path) else []
entries.append({"namespace": ns, "serviceAccount": sa, "sha256": b64(hashlib.sha256(token.encode()).digest()),
                "issuedAt": datetime.datetime.now(datetime.timezone.utc).isoformat()})
tmp = path + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as f: json.dump({"tokens": entries}, f, indent=2)
os.replace(tmp, path)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as f: f.write(token)
EOF
}
issue_token default backend "$WORK/mesh/tokens/server.token"
issue_token default bench-client "$WORK/mesh/tokens/client.token"
XDS_ARGS=(--xds "https://127.0.0.1:$SECURE_XDS_PORT" --ca-root-file "$WORK/mesh/ca-root.pem")
start bowline_b "${PROXY_CMD[@]}" "${XDS_ARGS[@]}" --ca-token-file "$WORK/mesh/tokens/server.token" \
    --node-id "sidecar~127.0.0.1~backend-1.default~default.svc.cluster.local" \
    --workload backend-1 --namespace default --label app=backend --service-account backend \
    --admin-port "$SERVER_ADMIN_PORT" --status-port 0 --bind 127.0.0.1 --outbound-port "$SERVER_OUTBOUND_PORT" \
    --inbound "80=$INBOUND_PORT:$BACKEND_PORT" --log-level Warning
start bowline_a "${PROXY_CMD[@]}" "${XDS_ARGS[@]}" --ca-token-file "$WORK/mesh/tokens/client.token" \
    --node-id "sidecar~127.0.0.1~bench-client.default~default.svc.cluster.local" \
    --workload bench-client --namespace default --label app=bench-client --service-account bench-client \
    --admin-port "$CLIENT_ADMIN_PORT" --status-port 0 --bind 127.0.0.1 --outbound-port "$CLIENT_OUTBOUND_PORT" --log-level Warning
wait_for bowline_a "$READY_SECONDS" "http://127.0.0.1:$CLIENT_OUTBOUND_PORT/1kb"

# The hop must provably be mesh mTLS: the server sidecar counted TLS handshakes on its inbound listener, and
# (STRICT) it refuses a plaintext client.
HANDSHAKE_STAT="listener.127.0.0.1_$INBOUND_PORT.ssl.handshake"
bowline_handshakes() {
    curl -s -m 5 "http://127.0.0.1:$SERVER_ADMIN_PORT/stats" | awk -F': ' -v k="$HANDSHAKE_STAT" '$1 == k {print $2; found=1} END {if (!found) print "n/a"}'
}
hs="$(bowline_handshakes)"
if ! [[ "$hs" =~ ^[0-9]+$ ]] || ((hs < 1)); then
    log "the server sidecar shows no TLS handshake on its inbound listener ($HANDSHAKE_STAT = $hs); its stats:"
    curl -s -m 5 "http://127.0.0.1:$SERVER_ADMIN_PORT/stats" | grep -E 'ssl|listener' | head -n 40 >&2
    exit 1
fi
code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Host: backend' "http://127.0.0.1:$INBOUND_PORT/1kb" || true)"
if [[ "$code" == 200 ]]; then log "the server sidecar served a plaintext client although PeerAuthentication is STRICT"; exit 1; fi
log "bowline hop is mTLS: $HANDSHAKE_STAT = $hs; plaintext to the inbound port got '$code'"
log "all targets answer: backend :$BACKEND_PORT, bowline :$CLIENT_OUTBOUND_PORT → :$INBOUND_PORT, nginx :$NGINX_A_PORT → :$NGINX_B_PORT, haproxy :$HAPROXY_A_PORT → :$HAPROXY_B_PORT"
TARGET_PORT[bowline]=$CLIENT_OUTBOUND_PORT; TARGET_A[bowline]=bowline_a; TARGET_B[bowline]=bowline_b
TARGET_PORT[nginx]=$NGINX_A_PORT;           TARGET_A[nginx]=nginx_a;     TARGET_B[nginx]=nginx_b
TARGET_PORT[haproxy]=$HAPROXY_A_PORT;       TARGET_A[haproxy]=haproxy_a; TARGET_B[haproxy]=haproxy_b
fi

# ---------------------------------------------------------------- measure
for target in "${TARGETS[@]}"; do
    [[ -n "${TARGET_PORT[$target]:-}" ]] || { echo "bench: unknown target '$target'" >&2; exit 1; }
done
root_pid() { local v="PID_$1"; echo "${!v}"; }
# The processes whose peak RSS is reported: an nginx's worker (not the master), the rest whole.
rss_pids() {
    case "$1" in
        backend | nginx*) pgrep -P "$(root_pid "$1")" ;;
        *) tree_pids "$(root_pid "$1")" ;;
    esac
}
# TLS handshakes B accepted so far, where that is cheap to read (bowline's /stats); n/a otherwise.
handshakes() {
    if [[ "$1" == bowline && "$TOPOLOGY" == mtls ]]; then bowline_handshakes; else echo n/a; fi
}
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
SAMPLES="$WORK/samples.tsv"
: >"$SAMPLES"
for run in $(seq "$RUNS"); do
    for target in "${TARGETS[@]}"; do
        url="http://127.0.0.1:${TARGET_PORT[$target]}/1kb"
        raw="$WORK/raw/run$run-$target"
        log "run $run/$RUNS $target: wrk warm-up ${WARMUP_SECONDS}s, wrk ${WRK_SECONDS}s"
        timeout $((WARMUP_SECONDS + 30)) wrk -t1 -c"$WRK_CONNECTIONS" -d"${WARMUP_SECONDS}s" -H 'Host: backend' "$url" >"$raw-wrk-warmup.txt" 2>&1
        timeout $((WRK_SECONDS + 30)) wrk -t1 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" -H 'Host: backend' "$url" >"$raw-wrk.txt" 2>&1
        grep -E 'Requests/sec|Non-2xx|Socket errors' "$raw-wrk.txt" | sed 's/^/    /' >&2 || true

        log "run $run/$RUNS $target: hey warm-up ${WARMUP_SECONDS}s, hey ${HEY_SECONDS}s at $((HEY_WORKERS * HEY_QPS)) rps"
        timeout $((WARMUP_SECONDS + 30)) hey -z "${WARMUP_SECONDS}s" -q "$HEY_QPS" -c "$HEY_WORKERS" -host backend "$url" >"$raw-hey-warmup.txt" 2>&1
        sleep 1
        proc_a="${TARGET_A[$target]}"; proc_b="${TARGET_B[$target]:-}"
        mapfile -t a_pids < <(tree_pids "$(root_pid "$proc_a")")
        b_pids=(); if [[ -n "$proc_b" ]]; then mapfile -t b_pids < <(tree_pids "$(root_pid "$proc_b")"); fi
        mapfile -t backend_pids < <(tree_pids "$PID_backend")
        a_before="$(cpu_ticks "${a_pids[@]}")"; b_before="$(cpu_ticks "${b_pids[@]}")"
        backend_before="$(cpu_ticks "${backend_pids[@]}")"
        hs_before="$(handshakes "$target")"
        timeout $((HEY_SECONDS + 30)) hey -z "${HEY_SECONDS}s" -q "$HEY_QPS" -c "$HEY_WORKERS" -host backend "$url" >"$raw-hey.txt" 2>&1
        a_after="$(cpu_ticks "${a_pids[@]}")"; b_after="$(cpu_ticks "${b_pids[@]}")"
        backend_after="$(cpu_ticks "${backend_pids[@]}")"
        hs_after="$(handshakes "$target")"
        grep -E '^\s+(50|90|99)% in|\[[0-9]+\]\s+[0-9]+ responses|Error distribution' "$raw-hey.txt" | sed 's/^ */    /' >&2 || true

        mapfile -t peak_a < <(rss_pids "$proc_a")
        rss_a="$(vmhwm_kb "${peak_a[@]}")"; rss_b=0
        if [[ -n "$proc_b" ]]; then mapfile -t peak_b < <(rss_pids "$proc_b"); rss_b="$(vmhwm_kb "${peak_b[@]}")"; fi
        hs_run=n/a
        if [[ "$hs_before" =~ ^[0-9]+$ && "$hs_after" =~ ^[0-9]+$ ]]; then hs_run=$((hs_after - hs_before)); fi
        # Columns 5–7 are the pair's totals (as in the one-hop topology); 8–12 per proxy, and B's TLS handshakes.
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$target" "$raw-wrk.txt" "$raw-hey.txt" \
            $((a_after - a_before + b_after - b_before)) $((backend_after - backend_before)) $((rss_a + rss_b)) \
            $((a_after - a_before)) $((b_after - b_before)) "$rss_a" "$rss_b" "$hs_run" >>"$SAMPLES"
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - BENCH_START))

# Every server must still be alive, or the numbers are for something else.
for name in "${STARTED_NAMES[@]}"; do
    pid_var="PID_$name"
    kill -0 "${!pid_var}" 2>/dev/null || { log "$name died during the benchmark; its log:"; tail -n 40 "$WORK/logs/$name.log" >&2; exit 1; }
done

# ---------------------------------------------------------------- report
# What the telemetry did during the whole benchmark, so a scenario is seen to have been on: the client sidecar's
# access log lines (its output), its span counters, and what the OTLP sink received.
telemetry_evidence() {
    local sidecar="${TARGET_A[bowline]:-}" admin stats lines
    [[ -n "$sidecar" ]] || { echo "n/a"; return; }
    if [[ "$TOPOLOGY" == mtls ]]; then admin=$CLIENT_ADMIN_PORT; else admin=$ADMIN_PORT; fi
    lines="$(grep -c '" [0-9][0-9][0-9] ' "$WORK/logs/$sidecar.log" || true)"
    stats="$(curl -s -m 5 "http://127.0.0.1:$admin/stats" | awk -F': ' '$1 ~ /^tracing\.opentelemetry\./ {printf "%s=%s ", $1, $2}')"
    printf 'access log lines %s; %s' "${lines:-0}" "${stats:-no tracing stats}"
    if [[ -n "$COLLECTOR_PORT" ]]; then curl -s -m 5 "http://127.0.0.1:$COLLECTOR_PORT/counts" | tr '\n' ' '; fi
}
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
    echo "dotnet_env=DOTNET_TieredPGO=$DOTNET_TieredPGO, DOTNET_gcServer=$DOTNET_gcServer, BOWLINE_DATA_PATH_INLINE=${BOWLINE_DATA_PATH_INLINE:-1}"
    echo "warmup_seconds=$WARMUP_SECONDS"
    echo "wrk_seconds=$WRK_SECONDS"
    echo "hey_seconds=$HEY_SECONDS"
    echo "hey_qps=$HEY_QPS"
    echo "hey_workers=$HEY_WORKERS"
    echo "hey_rate=$((HEY_QPS * HEY_WORKERS))"
    echo "order=${TARGETS[*]}"
    echo "scenario=${SCENARIO:-default}$(grep -qs '@TRACE_SAMPLING@' "$BENCH_DIR/conf/scenarios/${SCENARIO:-none}.yaml" && echo " with TRACE_SAMPLING=$TRACE_SAMPLING")"
    echo "telemetry=$(telemetry_evidence)"
    echo "topology=$TOPOLOGY"
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
    log "some responses were not 200 (see 'Response health'); log tails:"
    for name in "${STARTED_NAMES[@]}"; do
        log "--- $name"; tail -n 20 "$WORK/logs/$name.log" >&2
    done
    exit "$status"
fi
SUCCEEDED=1
