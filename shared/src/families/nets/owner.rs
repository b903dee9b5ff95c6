//! The nets' owner hooks: a deleted net's callbacks are not sent, and a
//! callback that finally fails marks its net failed.

use std::sync::Arc;

use super::{NetError, NetOpts, NetStore};
use crate::platform::errors::StoreError;
use crate::platform::keys::Keys;
use crate::platform::outbox::{BoxFuture, OwnerHooks};
use crate::platform::redis::Redis;

/// The owner prefix of net callbacks (`net:<id>`).
pub const OWNER: &str = "net";

struct NetOwner {
    nets: NetStore,
}

fn store_error(e: NetError) -> StoreError {
    match e {
        NetError::Store(e) => e,
        other => StoreError::Reply(other.to_string()),
    }
}

impl OwnerHooks for NetOwner {
    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.nets.exists(id).await.map_err(store_error) })
    }

    fn failed<'a>(
        &'a self,
        id: &'a str,
        delivery: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let reason = format!("callback {delivery} failed: {reason}");
            match self.nets.fail(id, &reason).await {
                Ok(_) | Err(NetError::NotFound) => Ok(()),
                Err(e) => Err(store_error(e)),
            }
        })
    }
}

/// The hooks the registry installs under [`OWNER`].
pub fn owner_hooks(redis: &Redis, keys: &Keys, opts: &NetOpts) -> Arc<dyn OwnerHooks> {
    Arc::new(NetOwner {
        nets: NetStore::new(
            redis.clone(),
            keys.clone(),
            opts.net_fire_bound,
            opts.net_retention,
        ),
    })
}
