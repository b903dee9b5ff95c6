//! Workitem field merging of `concurrence` and `concurrent_iterator` (Ruote
//! semantics: merge types, winners, `over_if`).
