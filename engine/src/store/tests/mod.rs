//! Store unit tests, one file per feature.
