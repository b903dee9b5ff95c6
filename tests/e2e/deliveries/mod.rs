//! Reliable deliveries (webhooks).

mod attempts;
