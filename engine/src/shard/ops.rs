//! The operation codes in a shard ring's completion tokens, and its buffer
//! groups: shared by the loop (which dispatches on them) and the network
//! code (which builds the submissions), so they live in a leaf of their own.

pub const OP_ACCEPT: u8 = 1;
pub const OP_RECV: u8 = 2;
pub const OP_SEND: u8 = 3;
pub const OP_WAKE: u8 = 4;
pub const OP_WAKE_FAILED: u8 = 5;
pub const OP_CANCEL: u8 = 6;
pub const OP_UDP_RECV: u8 = 7;
pub const OP_UDP_SEND: u8 = 8;

/// Buffer group of the connections' receives.
pub const TCP_GROUP: u16 = 0;
/// Buffer group of the UDP socket's receives.
pub const UDP_GROUP: u16 = 1;
pub const OP_PEER_CONNECT: u8 = 9;
pub const OP_PEER_SEND: u8 = 10;
pub const OP_PEER_RECV: u8 = 11;
