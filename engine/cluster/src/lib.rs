//! Cluster placement for corecache: which node owns a key, and which shard of it.
//!
//! Pure code, no I/O. A node's start-up turns `--cluster-node` and
//! `--cluster-peers` into a [`Peers`] list, builds a [`Ring`] from it, and every
//! shard then routes each key with [`Router::route`]: node first (the ring), then
//! shard (the same multiply-shift of xxh3 the engine uses on one node).
//!
//! ```text
//!   --cluster-peers a=10.0.0.1:11211,b=10.0.0.2:11211:2 ──► peers::parse ──► Peers
//!                                                                            │
//!   --cluster-ring libketama | libmemcached-ketama ──► RingKind ──► Ring::new(&peers.members)
//!                                                                            │
//!   key ──► Router { ring, this node, this shard, shards, forwarding }.route(key, xxh3(key))
//!             ├─ another node owns it (forwarding on) ──► Target::Node(i)
//!             ├─ another shard of this node           ──► Target::Shard(s)
//!             └─ this shard                           ──► Target::Local
//! ```
//!
//! Modules: `ring` (the ketama continuum and its two client conventions), `hash`
//! (the MD5 and one-at-a-time hashes as libmemcached computes them), `peers` (the
//! peer list and its validation), `route` (the routing function).

mod hash;
pub mod peers;
pub mod ring;
pub mod route;

pub use peers::{Peers, PeersError, list_of};
pub use ring::{KETAMA_DEFAULT_PORT, MAX_REPLICAS, Member, Replicas, Ring, RingError, RingKind};
pub use route::{Router, Target, shard_of_hash};
