//! Options of the workflows family.

use std::time::Duration;

use clap::Args;

/// Workflows (the Scriptoria API).
#[derive(Args, Debug, Clone)]
pub struct WorkflowOpts {
    /// How long a finished (completed or cancelled) workflow is kept.
    #[arg(long, env = "SWITCHYARD_WORKFLOW_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub workflow_retention: Duration,

    /// Retry policy of `active` participant callbacks (Scriptoria's n^5+30 s, 12 attempts).
    /// `cancel`, `timeout` and `error` callbacks are sent once (policy `once`).
    #[arg(
        long,
        env = "SWITCHYARD_WORKFLOW_CALLBACK_POLICY",
        default_value = "scriptoria"
    )]
    pub workflow_callback_policy: String,

    /// History events kept per workflow (the oldest are dropped).
    #[arg(long, env = "SWITCHYARD_WORKFLOW_HISTORY_LEN", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub workflow_history_len: u32,

    /// How long an `Idempotency-Key` of `POST /v1/workflows` names its workflow.
    #[arg(long, env = "SWITCHYARD_WORKFLOW_IDEMPOTENCY_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub workflow_idempotency_ttl: Duration,
}

crate::cli_defaults!(WorkflowOpts);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        o: WorkflowOpts,
    }

    #[test]
    fn defaults_are_scriptorias() {
        let o = WorkflowOpts::default();
        assert_eq!(o.workflow_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(o.workflow_callback_policy, "scriptoria");
        assert_eq!(o.workflow_history_len, 1000);
        assert_eq!(o.workflow_idempotency_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn flags_parse() {
        let o = P::try_parse_from([
            "x",
            "--workflow-retention",
            "150ms",
            "--workflow-callback-policy",
            "fast",
            "--workflow-history-len",
            "5",
            "--workflow-idempotency-ttl",
            "1m",
        ])
        .unwrap()
        .o;
        assert_eq!(o.workflow_retention, Duration::from_millis(150));
        assert_eq!(o.workflow_callback_policy, "fast");
        assert_eq!(o.workflow_history_len, 5);
        assert_eq!(o.workflow_idempotency_ttl, Duration::from_secs(60));
        assert!(P::try_parse_from(["x", "--workflow-history-len", "0"]).is_err());
    }
}
