//! One environment file configures every role: each role accepts every
//! family's options and the outbox's (the scheduler used to refuse
//! `--net-retention`, `--sm-retention` and `--net-callback-policy`).

use std::process::Command;

/// Flags of every family and of the outbox, with valid values.
const SHARED_FLAGS: &[&str] = &[
    "--gate-namespace",
    "default",
    "--gate-grant-ttl",
    "1h",
    "--sweep-interval",
    "1s",
    "--delivery-retention",
    "1d",
    "--webhook-secret",
    "whsec_c3dpdGNo",
    "--net-retention",
    "7d",
    "--net-fire-bound",
    "64",
    "--net-callback-policy",
    "svix",
    "--sm-retention",
    "7d",
    "--sm-check-interval",
    "10s",
    "--workflow-retention",
    "7d",
    "--workflow-callback-policy",
    "scriptoria",
    "--workflow-history-len",
    "1000",
    "--workflow-idempotency-ttl",
    "24h",
    "--retry-policy",
    "fast=schedule:1s",
    "--default-retry-policy",
    "svix",
    "--public-url",
    "http://127.0.0.1:8080",
    "--allow-link-local",
    "--shards",
    "64",
];

#[test]
fn every_role_accepts_every_familys_flags() {
    for role in ["api", "worker", "scheduler", "dev"] {
        // Clap refuses an unknown flag before it reaches --help, so a zero
        // exit means every flag parsed.
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg(role)
            .args(SHARED_FLAGS)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
