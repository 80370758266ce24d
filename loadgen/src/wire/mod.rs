//! The bytes on the wire: request encoders and reply parsing for the
//! client, a request scanner for the null server, and UDP framing.
//!
//! These are stand-ins for the `proto` crate's codecs, which are being
//! written concurrently: each file keeps its surface small so that it can be
//! replaced by a call into `proto` without touching the connection code.

pub mod encode;
pub mod reply;
pub mod request;
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
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Meta => "meta",
            Protocol::Udp => "udp",
        }
    }
}
