//! Coloured Petri nets: the definition language and its compiler
//! ([`spec`]), the store whose every state change is one call of the firing
//! script (`lua/nets/fire.lua`), and the owner hooks through which the
//! outbox tells a net that one of its callbacks failed.

pub mod config;
pub mod keys;
pub mod owner;
pub mod scripts;
pub mod spec;
pub mod store;

pub use config::NetOpts;
pub use keys::NetKeys;
pub use owner::{OWNER, owner_hooks};
pub use spec::*;
pub use store::*;
