#!/usr/bin/env bash
# Start the whole system locally: api + worker + scheduler in one process,
# with a private redis-server on a unix socket in ./.switchyard (AOF on).
# Extra arguments go to `switchyard dev` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/ensure-redis.sh
exec cargo run --release -- dev --listen "${SWITCHYARD_LISTEN:-127.0.0.1:8080}" --data-dir "${SWITCHYARD_DATA_DIR:-.switchyard}" "$@"
