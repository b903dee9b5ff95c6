#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit and end-to-end tests
# (every test starts its own redis-server on a unix socket in a temp dir),
# then every family's main scenario on a local Redis Cluster.
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
# Headless Chromium for the web console's browser test (tests/e2e/ui/browser.rs);
# with SWITCHYARD_TEST_BROWSER=1 a missing browser fails that test instead
# of skipping it.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found and cannot install it (needs root and apt-get): the browser test will fail" >&2
  fi
fi
export SWITCHYARD_TEST_BROWSER=1
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# Every family's main scenario again, on a local Redis Cluster of three
# masters (tests/e2e/support/redis.rs starts it per test process; every test
# on it ends by checking that no node refused a call with CROSSSLOT). The
# workers read per shard there, and two of the runs kill or stop a worker.
# cluster:: tests start a cluster of their own with replicas (one shard's
# slot moved under load; a master killed under load, with
# --redis-wait-replicas 1).
CLUSTER_SCENARIOS=(
  gates::tickets::test_and_set_grants_queues_and_closes_the_gate
  deliveries::attempts::failing_twice_then_succeeding_logs_three_attempts
  deliveries::crashes::a_killed_worker_loses_nothing
  nets::callbacks::split_join_sends_1_1_3_1_callbacks
  machines::transitions::the_seed_machine_follows_both_of_its_timelines
  workflows::concurrence::a_concurrence_waits_for_every_branch_before_the_next_step
  workflows::race::sixteen_concurrent_proceeds_on_one_concurrence_each_apply_once
  transactions::pipeline::status_webhooks_and_the_sink
  platform::script_flush::script_flush_on_every_node_under_load_fails_no_call
  cluster::resharding::a_slot_moved_under_load_loses_nothing
  cluster::failover::a_killed_master_fails_over_with_only_503s_and_loses_nothing
)
if cargo nextest --version >/dev/null 2>&1; then
  filter=$(printf 'test(=%s) | ' "${CLUSTER_SCENARIOS[@]}")
  # One at a time: each starts a cluster of its own (the cluster:: ones six
  # nodes and a load), and on 2 cores side by side they starve each other.
  SWITCHYARD_TEST_REDIS=cluster cargo nextest run -p switchyard --test e2e --locked \
    --no-fail-fast --test-threads 1 -E "${filter% | }"
else
  # One process per test, so each gets a cluster of its own.
  for t in "${CLUSTER_SCENARIOS[@]}"; do
    SWITCHYARD_TEST_REDIS=cluster cargo test -p switchyard --test e2e --locked -- --exact "$t"
  done
fi
