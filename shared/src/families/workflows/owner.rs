//! The workflows' owner hooks. An `active` participant callback is owned by
//! `workflow:<workitem id>#<delivery id>`: before each attempt the outbox
//! asks [`OwnerHooks::exists`], which holds only while that workitem is
//! proceedable *and* was dispatched by that delivery — so a retry of a
//! proceeded, cancelled or re-dispatched workitem is cancelled instead of
//! sent. A callback that finally fails is an engine input
//! ([`Input::DispatchFailed`]): `on_error` handles it, or the workflow
//! enters `error`.

use std::sync::Arc;

use super::engine::Input;
use super::ids::WorkitemId;
use super::store::{WorkflowError, WorkflowStore};
use crate::platform::errors::StoreError;
use crate::platform::outbox::{BoxFuture, OwnerHooks};

struct WorkflowOwner {
    store: WorkflowStore,
}

/// `<workitem id>#<delivery id>` split in two.
fn split(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('#')
}

fn store_error(e: WorkflowError) -> StoreError {
    match e {
        WorkflowError::Store(e) => e,
        other => StoreError::Reply(other.to_string()),
    }
}

impl OwnerHooks for WorkflowOwner {
    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some((workitem_id, delivery_id)) = split(id) else {
                return Ok(false);
            };
            self.store
                .callback_wanted(workitem_id, delivery_id)
                .await
                .map_err(store_error)
        })
    }

    fn failed<'a>(
        &'a self,
        id: &'a str,
        delivery: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let Some((workitem_id, _)) = split(id) else {
                return Ok(());
            };
            let Some(wi) = WorkitemId::parse(workitem_id) else {
                return Ok(());
            };
            let input = Input::DispatchFailed {
                workitem_id: workitem_id.to_owned(),
                delivery_id: delivery.to_owned(),
                reason: reason.to_owned(),
            };
            match self.store.step(wi.wfid, Some(input)).await {
                Ok(_) | Err(WorkflowError::NotFound) => Ok(()),
                Err(e) => Err(store_error(e)),
            }
        })
    }
}

/// The hooks the registry installs under [`super::OWNER`].
pub fn owner_hooks(store: WorkflowStore) -> Arc<dyn OwnerHooks> {
    Arc::new(WorkflowOwner { store })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_id_names_the_workitem_and_the_delivery() {
        let wi = "0_0!023abf5d398319b1c8fcbfaf70e7c780!20151005-1247-kogadeso-gekunute";
        let owner = format!("{wi}#d3-0190f0b1c2d37e8f9a0b1c2d3e4f5a6b");
        assert_eq!(
            split(&owner),
            Some((wi, "d3-0190f0b1c2d37e8f9a0b1c2d3e4f5a6b"))
        );
        assert_eq!(split("no-delivery"), None);
    }
}
