//! Coloured Petri nets.

mod callbacks;
mod model;
