//! What can go wrong with a delivery operation.

use crate::platform::errors::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("delivery not found")]
    NotFound,
    #[error("delivery is {0}")]
    Conflict(String),
    /// Not the client's fault: Redis down, a reply we do not understand.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for DeliveryError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl DeliveryError {
    pub(crate) fn reply(what: impl std::fmt::Display) -> Self {
        Self::Store(StoreError::Reply(what.to_string()))
    }
}
