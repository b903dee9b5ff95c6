//! A small sequential reference interpreter of `sequence`, `concurrence`,
//! `participant`, `if` and `cursor`, the model the engine is tested against.
