//! The bytes on the wire, on top of the `proto` crate: the workload's
//! requests through proto's client encoders, the client's UDP reassembly.
//! Replies are parsed by `proto::client::parse_reply` (client::fold) and the
//! null server parses requests with `proto::parse`.

pub mod encode;
pub mod udp;

use serde::{Deserialize, Serialize};

/// What the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// memcached's classic text protocol over TCP.
    Text,
    /// The meta protocol (mg/ms/mn) over TCP.
    Meta,
    /// The text protocol over UDP (8-byte frame header per datagram).
    Udp,
    /// memcached's binary protocol over TCP: getk for one key, getkq per key
    /// closed by a noop for several, set.
    Binary,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Meta => "meta",
            Protocol::Udp => "udp",
            Protocol::Binary => "binary",
        }
    }
}
