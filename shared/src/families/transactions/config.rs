//! Options of the transactions family.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;

/// Transactions (the Robbyson ingestion API).
#[derive(Args, Debug, Clone)]
pub struct TransactionOpts {
    /// A tenant: `TOKEN=CONTRACTOR_ID` (repeatable). The `token` header of
    /// every transactions call names its tenant; a tenant sees only its own data.
    #[arg(
        long = "transactions-tenant",
        env = "SWITCHYARD_TRANSACTIONS_TENANTS",
        value_delimiter = ','
    )]
    pub transactions_tenants: Vec<String>,

    /// A file of tenants, one `TOKEN=CONTRACTOR_ID` per line (`#` comments).
    #[arg(long, env = "SWITCHYARD_TRANSACTIONS_TENANT_FILE")]
    pub transactions_tenant_file: Option<std::path::PathBuf>,

    /// How long a finished transaction (and its staged items and errors)
    /// is kept. The consolidated store does not expire.
    #[arg(long, env = "SWITCHYARD_TRANSACTION_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub transaction_retention: Duration,

    /// Largest body of a resource batch (bytes); larger is 413.
    #[arg(long, env = "SWITCHYARD_TRANSACTIONS_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub transactions_max_body_bytes: usize,

    /// Most items one transaction may receive (all batches together).
    #[arg(
        long,
        env = "SWITCHYARD_TRANSACTIONS_MAX_ITEMS",
        default_value_t = 1_000_000
    )]
    pub transactions_max_items: u64,

    /// Most open (uncommitted) transactions per tenant; past it a create is 429.
    #[arg(long, env = "SWITCHYARD_TRANSACTIONS_MAX_OPEN", default_value_t = 100)]
    pub transactions_max_open: u64,

    /// Most committed transactions of a tenant waiting for the pipeline;
    /// past it a create or commit is 429 with `Retry-After`.
    #[arg(
        long,
        env = "SWITCHYARD_TRANSACTIONS_MAX_BACKLOG",
        default_value_t = 50
    )]
    pub transactions_max_backlog: u64,

    /// Where each consolidated chunk is also sent (a signed webhook per chunk); none by default.
    #[arg(long, env = "SWITCHYARD_TRANSACTIONS_SINK_URL")]
    pub transactions_sink_url: Option<String>,

    /// Retry policy of status webhooks and sink deliveries.
    #[arg(
        long,
        env = "SWITCHYARD_TRANSACTIONS_CALLBACK_POLICY",
        default_value = "svix"
    )]
    pub transactions_callback_policy: String,
}

crate::cli_defaults!(TransactionOpts);

impl TransactionOpts {
    /// The tenants: token → contractor id, from the flags and the file.
    /// Fails on an entry that is not `TOKEN=CONTRACTOR_ID` or a token given twice.
    pub fn tenants(&self) -> anyhow::Result<HashMap<String, String>> {
        let mut lines: Vec<String> = self.transactions_tenants.clone();
        if let Some(path) = &self.transactions_tenant_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let mut out = HashMap::new();
        for line in lines {
            let (token, contractor) = line
                .trim()
                .split_once('=')
                .map(|(t, c)| (t.trim(), c.trim()))
                .filter(|(t, c)| !t.is_empty() && valid_contractor(c))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--transactions-tenant {line:?}: expected TOKEN=CONTRACTOR_ID (1–64 of [A-Za-z0-9_-])"
                    )
                })?;
            anyhow::ensure!(
                out.insert(token.to_owned(), contractor.to_owned())
                    .is_none(),
                "--transactions-tenant: a token is given twice"
            );
        }
        Ok(out)
    }
}

impl TransactionOpts {
    /// The sink, checked as every callback URL is
    /// ([`CallbackUrl`](crate::platform::ids::CallbackUrl)); a refused one
    /// stops the role at startup.
    pub fn sink(
        &self,
        allow_link_local: bool,
    ) -> anyhow::Result<Option<crate::platform::ids::CallbackUrl>> {
        self.transactions_sink_url
            .as_deref()
            .map(|u| {
                crate::platform::ids::CallbackUrl::parse(u, allow_link_local)
                    .map_err(|e| anyhow::anyhow!("--transactions-sink-url {u:?}: {e}"))
            })
            .transpose()
    }
}

/// A contractor id: 1–64 letters, digits, `_`, `-` (it is part of keys and ids).
pub fn valid_contractor(c: &str) -> bool {
    (1..=64).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        o: TransactionOpts,
    }

    #[test]
    fn tenants_parse_and_bad_ones_fail() {
        let o = P::try_parse_from([
            "x",
            "--transactions-tenant",
            "abc=8",
            "--transactions-tenant",
            "def=9,ghi=10",
            "--transaction-retention",
            "1m",
        ])
        .unwrap()
        .o;
        let t = o.tenants().unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t["abc"], "8");
        assert_eq!(t["ghi"], "10");
        assert_eq!(o.transaction_retention, Duration::from_secs(60));
        for bad in ["nope", "=8", "a=", "a=b c", "a=8,a=9"] {
            let o = P::try_parse_from(["x", "--transactions-tenant", bad])
                .unwrap()
                .o;
            assert!(o.tenants().is_err(), "{bad}");
        }
        assert!(TransactionOpts::default().tenants().unwrap().is_empty());
    }

    #[test]
    fn the_sink_is_checked_like_every_callback_url() {
        let sink = |u: &str, allow: bool| {
            P::try_parse_from(["x", "--transactions-sink-url", u])
                .unwrap()
                .o
                .sink(allow)
        };
        assert!(TransactionOpts::default().sink(false).unwrap().is_none());
        assert_eq!(
            sink("https://sink.example/in", false)
                .unwrap()
                .unwrap()
                .destination(),
            "sink.example:443"
        );
        for bad in ["ftp://x", "/relative", "http://169.254.169.254/"] {
            let e = sink(bad, false).unwrap_err().to_string();
            assert!(e.starts_with("--transactions-sink-url"), "{e}");
        }
        assert!(sink("http://169.254.169.254/", true).is_ok());
    }
}
