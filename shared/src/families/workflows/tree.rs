//! The process definition tree and its three source formats (JSON, XML,
//! Radial). See the module docs of [`super`].
