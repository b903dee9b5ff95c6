//! State machines.

mod transitions;
