//! Errors of store construction. Operations never fail with these: they return typed
//! outcomes (NotStored, TooLarge, OutOfMemory, ...).

/// Why a store could not be created. Each message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store setting {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("hugepages = \"on\": {0}")]
    HugePages(String),
    #[error("numa = \"local\": {0}")]
    Numa(String),
    #[error("cannot map the {bytes}-byte arena: {source}; lower memory_limit")]
    Map {
        bytes: usize,
        source: std::io::Error,
    },
}
