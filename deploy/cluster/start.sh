#!/usr/bin/env bash
# Start a production-shaped stack locally, without Docker: a Redis Cluster
# of 3 masters + 3 replicas on loopback ports 7100-7105, and on it 2 api
# replicas (8081, 8082) behind haproxy on 8080 (health check GET /readyz;
# without haproxy the api replicas are used directly), 2 workers and 2
# schedulers with GET /healthz and GET /metrics on 9101-9104
# (--metrics-listen). deploy/docker-compose.cluster.yml is the same stack
# in containers. State, logs and pid files go to $SWITCHYARD_CLUSTER_DIR
# (default .switchyard-cluster). Stop it with deploy/cluster/stop.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
./deploy/ensure-redis.sh
DIR=${SWITCHYARD_CLUSTER_DIR:-.switchyard-cluster}
PORTS=(7100 7101 7102 7103 7104 7105)
LISTEN=${SWITCHYARD_LISTEN_PORT:-8080}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

if [ -z "${SWITCHYARD_BIN:-}" ]; then
  cargo build --release --locked
  SWITCHYARD_BIN=$PWD/target/release/switchyard
fi

for p in "${PORTS[@]}"; do
  mkdir -p "$DIR/redis-$p"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$DIR/redis-$p" --daemonize yes \
    --pidfile "$DIR/redis-$p/pid" --logfile "$DIR/redis-$p/log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --cluster-require-full-coverage no --appendonly yes --save ''
done
for p in "${PORTS[@]}"; do
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
done
# A restart finds the nodes.conf files and keeps the cluster it made before.
if ! redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_known_nodes:6'; then
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${PORTS[@]}") \
    --cluster-replicas 1 --cluster-yes >"$DIR/cluster-create.log"
fi
for p in "${PORTS[@]}"; do
  until redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
done
echo "Redis Cluster up on ports ${PORTS[*]}"

SEEDS=$(printf 'redis://127.0.0.1:%s,' "${PORTS[@]:0:3}")
export SWITCHYARD_REDIS_URL=${SEEDS%,}
# Every master has a replica: wait for it after each change, so what a
# client was told is done survives a failover (README, "Redis Cluster").
export SWITCHYARD_REDIS_WAIT_REPLICAS=${SWITCHYARD_REDIS_WAIT_REPLICAS:-1}
export SWITCHYARD_PUBLIC_URL=${SWITCHYARD_PUBLIC_URL:-http://127.0.0.1:$LISTEN}

# role name args…: run one process in the background, pid in $DIR/name.pid.
start() {
  local name=$1
  shift
  nohup "$SWITCHYARD_BIN" "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}
start api-1 api --listen 127.0.0.1:8081
start api-2 api --listen 127.0.0.1:8082
# Workers and schedulers serve GET /healthz and GET /metrics (--metrics-listen).
PROBES=(9101 9102 9103 9104)
start worker-1 worker --worker-name worker-1 --metrics-listen "127.0.0.1:${PROBES[0]}"
start worker-2 worker --worker-name worker-2 --metrics-listen "127.0.0.1:${PROBES[1]}"
start scheduler-1 scheduler --metrics-listen "127.0.0.1:${PROBES[2]}"
start scheduler-2 scheduler --metrics-listen "127.0.0.1:${PROBES[3]}"

if command -v haproxy >/dev/null 2>&1; then
  cat >"$DIR/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend switchyard
  bind 127.0.0.1:$LISTEN
  default_backend api
backend api
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server check inter 1s fall 2 rise 1
  server api-1 127.0.0.1:8081
  server api-2 127.0.0.1:8082
CFG
  haproxy -D -p "$DIR/haproxy.pid" -f "$DIR/haproxy.cfg"
  URL=http://127.0.0.1:$LISTEN
else
  echo "haproxy not found: use the api replicas directly (8081, 8082)" >&2
  URL=http://127.0.0.1:8081
fi

# url: wait up to 30 s for a 200 from it.
healthy() {
  for _ in $(seq 1 300); do
    if curl -fsS "$1" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
for check in "$URL/readyz" $(printf 'http://127.0.0.1:%s/healthz ' "${PROBES[@]}"); do
  if ! healthy "$check"; then
    echo "Switchyard is not healthy: $check; see $DIR/*.log" >&2
    exit 1
  fi
done
echo "Switchyard ready at $URL; workers and schedulers healthy on ports ${PROBES[*]} (logs in $DIR)"

