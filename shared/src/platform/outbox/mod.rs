//! The transactional outbox: how every family sends an HTTP callback.
//!
//! A family's script creates the delivery record and queues its first
//! attempt on the same shard, in the same atomic call as the state change
//! (`outbox_delivery` in `lua/platform/outbox.lua`). Work that runs outside
//! a script (a stream handler) enqueues through an [`Outbox`], which the
//! deliveries family provides.
//!
//! A delivery may name its **owner**, `"<family>:<id>"`. The family
//! registers [`OwnerHooks`] under its prefix in [`Owners`]; the delivery
//! worker asks [`OwnerHooks::exists`] before each attempt (a deleted owner's
//! callbacks are cancelled), and the platform's `owner.failed` and
//! `owner.succeeded` work — queued by the delivery's final script in the
//! same call as the outcome — reaches [`OwnerHooks::failed`] and
//! [`OwnerHooks::succeeded`]. So a family learns about its callbacks
//! without knowing the deliveries family, and the deliveries family never
//! names another.

pub mod keys;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use keys::DeliveryKeys;
pub use policy::{Policies, RetryPolicy};

use super::errors::StoreError;

/// A boxed future, as the hooks return them (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The work kind of a delivery attempt, and the timer member prefix.
pub const KIND: &str = "delivery";

/// A new delivery id on `shard`.
pub fn new_id(shard: u16) -> String {
    format!("d{shard}-{}", uuid::Uuid::now_v7().simple())
}

/// The shard a delivery id names, if the id is well-formed for `shards`.
pub fn shard_of_id(id: &str, shards: u16) -> Option<u16> {
    let rest = id.strip_prefix('d')?;
    let (shard, uuid) = rest.split_once('-')?;
    let shard: u16 = shard.parse().ok()?;
    (shard < shards && uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(shard)
}

/// A delivery to create.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    /// The JSON body, as text.
    pub body: String,
    pub policy: String,
    pub idempotency_key: Option<String>,
    /// `host:port`, for per-destination limits and filtering.
    pub destination: String,
    /// The entity told about the outcome ([`Owner`]), e.g. `net:<id>`.
    pub owner: Option<String>,
}

/// Creates deliveries outside a script (the deliveries family implements it).
pub trait Outbox: Send + Sync {
    /// Create a delivery and queue its first attempt. Returns its id and
    /// whether it is new (false: the idempotency key named an existing one).
    fn enqueue<'a>(
        &'a self,
        d: &'a NewDelivery,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>>;
}

/// `"<family>:<id>"`: who a delivery belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    pub family: &'a str,
    pub id: &'a str,
}

impl<'a> Owner<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let (family, id) = s.split_once(':')?;
        (!family.is_empty() && !id.is_empty()).then_some(Self { family, id })
    }

    pub fn format(family: &str, id: &str) -> String {
        format!("{family}:{id}")
    }
}

/// What a family does about its callbacks. Every method has a default, so
/// a family implements only what it needs.
pub trait OwnerHooks: Send + Sync {
    /// False when the owner is gone: its pending callbacks are cancelled
    /// instead of sent.
    fn exists<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(true) })
    }

    /// A callback finally failed (retries exhausted or a permanent error).
    fn failed<'a>(
        &'a self,
        _id: &'a str,
        _delivery: &'a str,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether [`OwnerHooks::succeeded`] does anything: only then is an
    /// `owner.succeeded` notice queued for each delivered callback (a
    /// stream entry per callback is not free).
    fn wants_succeeded(&self) -> bool {
        false
    }

    /// A callback was delivered (only called when
    /// [`OwnerHooks::wants_succeeded`]).
    fn succeeded<'a>(
        &'a self,
        _id: &'a str,
        _delivery: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The registered hooks, by family prefix.
#[derive(Clone, Default)]
pub struct Owners {
    hooks: HashMap<&'static str, Arc<dyn OwnerHooks>>,
}

impl Owners {
    pub fn register(mut self, family: &'static str, hooks: Arc<dyn OwnerHooks>) -> Self {
        self.hooks.insert(family, hooks);
        self
    }

    /// The hooks of an owner string, if its family registered any.
    pub fn of<'a>(&self, owner: &'a str) -> Option<(Arc<dyn OwnerHooks>, &'a str)> {
        let o = Owner::parse(owner)?;
        Some((self.hooks.get(o.family)?.clone(), o.id))
    }

    /// Whether the owner still exists (unknown or no owner: yes).
    pub async fn exists(&self, owner: &str) -> Result<bool, StoreError> {
        match self.of(owner) {
            Some((h, id)) => h.exists(id).await,
            None => Ok(true),
        }
    }

    /// Whether the owner's family wants `owner.succeeded` notices.
    pub fn wants_succeeded(&self, owner: &str) -> bool {
        self.of(owner).is_some_and(|(h, _)| h.wants_succeeded())
    }

    pub fn families(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.hooks.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_shard() {
        let id = new_id(7);
        assert_eq!(shard_of_id(&id, 16), Some(7));
        assert_eq!(shard_of_id(&id, 4), None, "shard out of range");
        assert_eq!(shard_of_id("d7-xyz", 16), None);
        assert_eq!(shard_of_id("../etc", 16), None);
    }

    #[test]
    fn an_owner_names_its_family_and_id() {
        assert_eq!(
            Owner::parse("net:abc:1"),
            Some(Owner {
                family: "net",
                id: "abc:1"
            })
        );
        assert_eq!(Owner::parse("net:"), None);
        assert_eq!(Owner::parse("plain"), None);
        assert_eq!(Owner::format("net", "x"), "net:x");
    }
}
