//! Dollar substitution and condition strings (Ruote semantics). See the
//! module docs of [`super`].
