//! The per-core io_uring completion loop shared by the server and the loadgen.
