//! Coloured Petri nets: the definition language and its compiler
//! ([`spec`], one module per stage), the store whose every state change is
//! one call of the firing script (`lua/nets/fire.lua`), the typed views it
//! answers with ([`views`]), and the owner hooks through which the outbox
//! tells a net that one of its callbacks failed.

pub mod config;
pub mod keys;
pub mod owner;
pub mod scripts;
pub mod spec;
pub mod store;
pub mod views;

pub use config::NetOpts;
pub use keys::NetKeys;
pub use owner::{OWNER, owner_hooks};
pub use spec::*;
pub use store::*;
pub use views::*;
