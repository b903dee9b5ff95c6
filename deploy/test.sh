#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit and end-to-end tests
# (every test starts its own redis-server on a unix socket in a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/ensure-redis.sh
cargo fmt --all -- --check
# The BullMQ peer of `switchyard bench deliveries`: installing it exactly from
# its lockfile keeps the lockfile in step with package.json.
if command -v npm >/dev/null 2>&1; then
  (cd benches/peers/bullmq && npm ci --no-audit --no-fund --loglevel=error)
elif [ "${CI:-}" = "true" ]; then
  echo "npm not found: CI must install the BullMQ bench peer (npm ci in benches/peers/bullmq)" >&2
  exit 1
else
  echo "npm not found: skipping the BullMQ bench peer install (npm ci in benches/peers/bullmq)" >&2
fi
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
