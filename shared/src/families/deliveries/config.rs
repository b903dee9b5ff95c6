//! Options of the deliveries family (the records and the HTTP sender).

use std::time::Duration;

use clap::Args;

/// Reliable deliveries (webhooks).
#[derive(Args, Debug, Clone)]
pub struct DeliveryOpts {
    /// How long finished (succeeded, dead, cancelled) deliveries are kept.
    #[arg(long, env = "SWITCHYARD_DELIVERY_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub delivery_retention: Duration,

    /// Signing secret for webhook-signature (Standard Webhooks: `whsec_` + base64).
    #[arg(long, env = "SWITCHYARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Connect timeout of a delivery attempt.
    #[arg(long, env = "SWITCHYARD_DELIVERY_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub delivery_connect_timeout: Duration,

    /// Total timeout of a delivery attempt (must stay below the visibility timeout).
    #[arg(long, env = "SWITCHYARD_DELIVERY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub delivery_timeout: Duration,

    /// Response bytes read from a receiver (the rest is discarded).
    #[arg(long, env = "SWITCHYARD_DELIVERY_MAX_RESPONSE_BYTES", default_value_t = 64 * 1024)]
    pub delivery_max_response_bytes: usize,

    /// Attempts in flight to one destination (host:port) per worker.
    #[arg(
        long,
        env = "SWITCHYARD_DELIVERY_PER_DESTINATION",
        default_value_t = 16
    )]
    pub delivery_per_destination: usize,
}

crate::cli_defaults!(DeliveryOpts);
