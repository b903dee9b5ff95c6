//! The errors every store shares. A family's error enum wraps
//! [`StoreError`] for what is not the client's fault (Redis down, a reply
//! that does not parse), so the API maps all of them the same way.

/// Infrastructure failures of a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or refused the call.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script answered something this version does not understand.
    #[error("unexpected script reply: {0}")]
    Reply(String),
    /// A value of ours could not be encoded for a script.
    #[error("encoding: {0}")]
    Encode(String),
}
