//! Handler attributes (`on_error`, `on_timeout`, `on_cancel`): their values
//! parsed into what the engine does (Ruote semantics).
