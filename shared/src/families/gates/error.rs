//! What can go wrong with a gate operation.

use crate::platform::errors::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("Gate not found")]
    ServiceNotFound { service: String },
    #[error("Environment not found")]
    EnvironmentNotFound {
        service: String,
        environment: String,
    },
    #[error("Gate with this name already exists")]
    AlreadyExists { service: String },
    #[error("Ticket does not exist")]
    TicketNotFound,
    #[error("Ticket was issued for other gates")]
    TicketMismatch { gates: Vec<String> },
    #[error("the gates changed concurrently too often; try again")]
    Contended,
    /// Not the client's fault: Redis down, a reply we do not understand.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for GateError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl GateError {
    pub(crate) fn reply(what: impl std::fmt::Display) -> Self {
        Self::Store(StoreError::Reply(what.to_string()))
    }
}
