#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit and end-to-end tests
# (every test starts its own redis-server on a unix socket in a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/ensure-redis.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
