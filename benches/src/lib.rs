//! Shared helpers for corecache benchmarks.
