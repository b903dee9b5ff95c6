#!/usr/bin/env bash
# Stop what deploy/cluster/start.sh started (by the pid files it wrote), and
# the cluster's redis-servers. The data stays in $SWITCHYARD_CLUSTER_DIR
# (default .switchyard-cluster): start.sh again resumes it; remove the
# directory for a fresh cluster.
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=${SWITCHYARD_CLUSTER_DIR:-.switchyard-cluster}
for f in "$DIR"/haproxy.pid "$DIR"/api-*.pid "$DIR"/worker-*.pid "$DIR"/scheduler-*.pid; do
  [ -f "$f" ] || continue
  kill "$(cat "$f")" 2>/dev/null
  rm -f "$f"
done
for f in "$DIR"/redis-*/pid; do
  [ -f "$f" ] || continue
  port=$(basename "$(dirname "$f")")
  redis-cli -p "${port#redis-}" shutdown >/dev/null 2>&1 || kill "$(cat "$f")" 2>/dev/null
done
echo "stopped (data kept in $DIR)"
