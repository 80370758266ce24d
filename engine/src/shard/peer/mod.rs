//! Peer links: this shard's own TCP connections to the other nodes of the
//! cluster, on its own io_uring, carrying the requests this shard forwards.
//!
//! ```text
//!   shard k of node A                                   node B (any shard)
//!   ─────────────────                                   ─────────────────
//!   client conn ─ get x ─► handle ─► Target::Node(B)
//!                   reply queue: await_remote() = part 7
//!                                  │
//!   Link to B: out ◄─ "get x\r\n" ─┘ waiting: [.., (conn, part 7, One)]
//!      │ one send in flight            ▲
//!      └─────────── TCP ──────────────►│ cluster_link A (first line): served
//!                                      │ where it lands, never forwarded again
//!      ◄─────────── VALUE x … END ─────┘
//!   recv ─► replies::take_reply ─► conn.replies.resolve(7, bytes)
//! ```
//!
//! One link per peer per shard (a fixed number; one is enough while a
//! shard's requests to a peer fit one pipelined connection), opened lazily by
//! the first request for that peer. Everything is bounded: a link is full at
//! `cluster.max_in_flight` requests or `cluster.max_link_output` unsent bytes
//! (the connections that need it stall, as on a full mesh channel); a connect
//! that takes longer than `cluster.connect_timeout_ms`, a reply later than
//! `cluster.request_timeout_ms`, a reply stream that does not parse, or a close
//! fails the requests in flight on that link (`SERVER_ERROR backend failure`,
//! memcached's proxy wording) and drops it; requests for that peer then fail
//! at once until the backoff (doubling from `cluster.reconnect_backoff_ms` to
//! `cluster.reconnect_backoff_max_ms`) has passed, and the next one reconnects.
//!
//! Under -Z with `cluster.tls` (the default) a link is a TLS client of the
//! peer's memcached listener, on the same loop: the handshake's records go
//! out and come in through the same send and receive, requests are held in
//! `out` (plaintext, within the same bound) until the handshake is done and
//! are then encrypted into the send buffer, and replies are decrypted where
//! the kernel put them ([`tls::TlsRx`]). A link counts as up only once the
//! peer's first reply has arrived over TLS: under TLS 1.3 a peer refusing our
//! certificate says so only after our side thinks the handshake is done. A
//! link that fails before that counts in `tls_failures` and is otherwise
//! failed like a connect that failed.
//!
//! Modules: `replies` (where each reply ends), `forward` (the request path's
//! side: routing to a node, queueing, completions, delivery), `tls` (the
//! receive side of a TLS link).

mod forward;
pub mod replies;
mod report;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use runtime::{Ring, Token, opcode, types};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::ops::{OP_CANCEL, OP_PEER_CONNECT, OP_PEER_RECV, OP_PEER_SEND};
use crate::config::ClusterPlan;
use crate::tls::{Certs, ClientSide, TlsConn};
use replies::Waiting;

/// Bytes a receive asks the kernel for at most.
const RECV_CHUNK: usize = 64 << 10;

/// Counters of one link, for `stats cluster`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Requests sent on the link (the announcement not counted).
    pub forwarded: u64,
    /// Requests answered `SERVER_ERROR backend failure` (or, inside a
    /// multi-get, left out) because the link failed or was down.
    pub failed: u64,
    /// Connects and requests that ran out of time.
    pub timeouts: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// TLS links that failed before the peer's first reply came over them
    /// (a certificate refused either way, no TLS at the other end, a
    /// handshake out of time), and TLS records that did not decrypt.
    pub tls_failures: u64,
    /// TLS links over which the peer's first reply arrived.
    pub tls_handshakes: u64,
}

/// One link's numbers for the stats schema (`stats::schema::LINKS`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkRow {
    pub stats: LinkStats,
    pub in_flight: u64,
    pub up: bool,
}

/// Where a link is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Never used, or failed and may be opened again from `retry_at` on.
    Down {
        retry_at: Option<Instant>,
    },
    Connecting {
        since: Instant,
    },
    /// Connected, TLS handshake under way: up once the peer's first reply
    /// arrives (`since`: when the connect began; the connect timeout covers
    /// both).
    Handshaking {
        since: Instant,
    },
    Up,
}

impl State {
    /// Whether the socket is connected (bytes may be sent and received).
    fn connected(self) -> bool {
        matches!(self, State::Handshaking { .. } | State::Up)
    }
}

/// The socket of one connection attempt, kept until the kernel holds
/// nothing of it (its connect address, the send buffer, the receive buffer).
struct Sock {
    fd: OwnedFd,
    /// The connect's address: the kernel reads it until the connect completes.
    _addr: Box<SockAddr>,
    connecting: bool,
    sending: bool,
    receiving: bool,
    /// A cancel of everything on the socket is queued: it is being retired.
    retiring: bool,
}

impl Sock {
    fn idle(&self) -> bool {
        !self.connecting && !self.sending && !self.receiving
    }
}

/// One shard's link to one peer node.
pub struct Link {
    addr: SocketAddr,
    state: State,
    /// The generation of the current socket, in its completions' tokens.
    generation: u32,
    sock: Option<Sock>,
    /// Requests not yet handed to the kernel.
    out: Vec<u8>,
    /// Bytes of the send in flight, and how far the kernel has taken them.
    inflight: Vec<u8>,
    inflight_done: usize,
    /// Reply bytes received and not yet matched to a request (with TLS:
    /// the ciphertext of the last receive).
    rbuf: Vec<u8>,
    /// TLS on the current connection; `None` for a plaintext link.
    tls: Option<Box<TlsConn<ClientSide>>>,
    /// With TLS: decrypted reply bytes not yet matched.
    plain: Vec<u8>,
    /// The name the peer's certificate must carry: its host in
    /// `--cluster-peers` (an IP address is checked against IP SANs).
    server_name: ServerName<'static>,
    /// A failure found outside a completion (encryption), for the next
    /// `check_links`.
    broken: Option<Failure>,
    waiting: VecDeque<Waiting>,
    /// With replicas: the bytes of the reads in `waiting` (from absolute
    /// offset `replay_base` on), so that a failure can send them to another
    /// replica instead of failing them.
    replay: Vec<u8>,
    replay_base: u64,
    backoff: Duration,
    opened: u64,
    pub stats: LinkStats,
}

impl Link {
    /// A link to `member` at `addr`, not opened yet.
    fn closed(addr: SocketAddr, member: &cluster::Member, backoff: Duration) -> Link {
        Link {
            addr,
            // Checked at start-up (config/tls.rs); a host that is
            // no name falls back to its IP address.
            server_name: ServerName::try_from(member.host.clone())
                .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into())),
            state: State::Down { retry_at: None },
            generation: 0,
            sock: None,
            out: Vec::new(),
            inflight: Vec::new(),
            inflight_done: 0,
            rbuf: Vec::new(),
            tls: None,
            plain: Vec::new(),
            broken: None,
            waiting: VecDeque::new(),
            replay: Vec::new(),
            replay_base: 0,
            backoff,
            opened: 0,
            stats: LinkStats::default(),
        }
    }
}

/// Why a link is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    ConnectTimeout,
    RequestTimeout,
    Refused(i32),
    Closed,
    Garbage,
    Io(i32),
    /// Membership declared the peer down.
    MemberDown,
    /// Membership heard the peer under a new identity: it restarted, and
    /// the link's connection was to the process that is gone.
    Restarted,
    /// A TLS error: the handshake failed (a certificate refused, either
    /// way) or a record did not decrypt.
    Tls,
    /// The connect succeeded but the TLS handshake did not finish in time.
    TlsTimeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ConnectTimeout => f.write_str("connect timed out"),
            Failure::RequestTimeout => f.write_str("a reply timed out"),
            Failure::Refused(e) => write!(
                f,
                "cannot connect: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
            Failure::Closed => f.write_str("the peer closed the link"),
            Failure::Garbage => f.write_str("the peer sent a reply that does not parse"),
            Failure::MemberDown => f.write_str("membership declared the peer down"),
            Failure::Restarted => f.write_str("the peer restarted"),
            Failure::Tls => f.write_str("TLS failed"),
            Failure::TlsTimeout => f.write_str("the TLS handshake timed out"),
            Failure::Io(e) => write!(f, "{}", std::io::Error::from_raw_os_error(*e)),
        }
    }
}

/// A shard's links, indexed by ring member (`None` for this node).
pub struct Links {
    links: Vec<Option<Link>>,
    this_name: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    max_in_flight: usize,
    max_output: usize,
    /// The certificates peer links connect with, when they use TLS.
    certs: Option<Arc<Certs>>,
    /// The client configuration last taken from `certs`, and its version.
    tls_config: Option<(u64, Arc<ClientConfig>)>,
}

impl Links {
    /// No links: a single node.
    pub fn none() -> Links {
        Links {
            links: Vec::new(),
            this_name: String::new(),
            connect_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            backoff_min: Duration::ZERO,
            backoff_max: Duration::ZERO,
            max_in_flight: 0,
            max_output: 0,
            certs: None,
            tls_config: None,
        }
    }

    /// One (closed) link per other member of `plan`, at `addrs`; in TLS
    /// with `certs`' client configuration when given.
    pub fn new(plan: &ClusterPlan, addrs: &[SocketAddr], certs: Option<Arc<Certs>>) -> Links {
        let links = addrs
            .iter()
            .zip(&plan.peers.members)
            .enumerate()
            .map(|(i, (&addr, member))| {
                (i != plan.peers.this_node).then(|| Link::closed(addr, member, plan.backoff))
            })
            .collect();
        Links {
            links,
            this_name: plan.peers.this().name.clone(),
            connect_timeout: plan.connect_timeout,
            request_timeout: plan.request_timeout,
            backoff_min: plan.backoff,
            backoff_max: plan.backoff_max,
            max_in_flight: plan.max_in_flight,
            max_output: plan.max_link_output,
            certs,
            tls_config: None,
        }
    }

    fn link(&mut self, node: usize) -> Option<&mut Link> {
        self.links.get_mut(node)?.as_mut()
    }

    /// How many members the links are indexed over (this node's slot
    /// included).
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// A (closed) link for every member of `members` (at `addrs`) past the
    /// ones already linked: the list grew (a member joined).
    pub fn grow(&mut self, members: &[cluster::Member], addrs: &[SocketAddr]) {
        for (member, &addr) in members.iter().zip(addrs).skip(self.links.len()) {
            self.links
                .push(Some(Link::closed(addr, member, self.backoff_min)));
        }
    }

    /// Whether the link to `node` goes to `addr`.
    pub fn goes_to(&self, node: usize, addr: SocketAddr) -> bool {
        self.links
            .get(node)
            .and_then(Option::as_ref)
            .is_some_and(|l| l.addr == addr)
    }

    /// The link to `node` pointed at another member at that index (`member`
    /// at `addr`: two joiners claimed it and the older one won). The caller
    /// fails the old link first; its socket, if any, is still retired by its
    /// completions (they match the link by slot and generation), and the
    /// next request connects to the new address.
    pub fn replace(&mut self, node: usize, member: &cluster::Member, addr: SocketAddr) {
        let min = self.backoff_min;
        if let Some(link) = self.link(node) {
            let fresh = Link::closed(addr, member, min);
            link.addr = fresh.addr;
            link.server_name = fresh.server_name;
            link.state = fresh.state;
            link.backoff = min;
            link.stats = LinkStats::default();
        }
    }

    /// Every link's numbers, by ring member.
    pub fn report(&self) -> impl Iterator<Item = (usize, LinkRow)> + '_ {
        self.links.iter().enumerate().filter_map(|(i, l)| {
            l.as_ref().map(|l| {
                // The announcement is not a request anybody sent.
                let own = l.waiting.iter().filter(|w| w.client.is_some()).count();
                let row = LinkRow {
                    stats: l.stats,
                    in_flight: own as u64,
                    up: l.state == State::Up,
                };
                (i, row)
            })
        })
    }

    /// Whether any link has work whose time can run out: the loop then wakes
    /// often enough to notice.
    pub fn has_deadlines(&self) -> bool {
        self.links.iter().flatten().any(|l| {
            !l.waiting.is_empty()
                || matches!(
                    l.state,
                    State::Connecting { .. } | State::Handshaking { .. }
                )
                || l.broken.is_some()
                || l.sock.as_ref().is_some_and(|s| s.retiring)
        })
    }

    /// Whether a request for `node` can be taken now: the link is not full
    /// (the announcement of a link being opened takes one of its places).
    /// A link that is down takes requests (they fail at once). With TLS the
    /// records encrypted and not yet handed to the kernel count too.
    pub fn has_room(&self, node: usize) -> bool {
        match self.links.get(node).and_then(Option::as_ref) {
            Some(l) => {
                let sealed = l.tls.as_ref().map_or(0, |t| t.outgoing.len());
                l.waiting.len() < self.max_in_flight && l.out.len() + sealed < self.max_output
            }
            None => false,
        }
    }

    /// How many more requests the link to `node` takes now (0 when its
    /// output is full or there is no link).
    pub fn room(&self, node: usize) -> usize {
        match self.links.get(node).and_then(Option::as_ref) {
            Some(_) if !self.has_room(node) => 0,
            Some(l) => self.max_in_flight - l.waiting.len(),
            None => 0,
        }
    }

    /// Whether requests for `node` fail at once: the link is down and its
    /// backoff has not passed, or the socket of its last failure is not yet
    /// retired.
    pub fn refuses(&self, node: usize, now: Instant) -> bool {
        match self.links.get(node).and_then(Option::as_ref) {
            Some(l) => match l.state {
                State::Down { retry_at } => l.sock.is_some() || retry_at.is_some_and(|t| now < t),
                _ => false,
            },
            None => true,
        }
    }

    /// Whether the link to `node` failed and has not connected since (in its
    /// backoff or past it; not a link never opened, nor one membership said
    /// is back): reads with replicas go to another replica meanwhile.
    /// Whether the link to `node` has a connection (up or being opened).
    pub fn open(&self, node: usize) -> bool {
        self.links
            .get(node)
            .and_then(Option::as_ref)
            .is_some_and(|l| !matches!(l.state, State::Down { .. }))
    }

    pub fn failed(&self, node: usize) -> bool {
        match self.links.get(node).and_then(Option::as_ref) {
            Some(l) => match l.state {
                State::Down { retry_at } => l.sock.is_some() || retry_at.is_some(),
                _ => false,
            },
            None => true,
        }
    }

    /// Queues `parts` (one request's bytes) on the link to `node`, opening it
    /// if it is down; the caller checked [`Links::has_room`] and
    /// [`Links::refuses`]. Returns false when the link could not be opened
    /// (the request was not queued).
    pub fn push(&mut self, ring: &mut Ring, node: usize, parts: &[&[u8]], w: Waiting) -> bool {
        let Some(Some(link)) = self.links.get_mut(node) else {
            return false;
        };
        if matches!(link.state, State::Down { .. }) {
            let tls = match &self.certs {
                Some(certs) => match certs.peer_config(&mut self.tls_config) {
                    Some(config) => Some(config),
                    None => return false,
                },
                None => None,
            };
            if !link.open(ring, node, &self.this_name, tls, w.since) {
                return false;
            }
        }
        for p in parts {
            link.out.extend_from_slice(p);
        }
        link.waiting.push_back(w);
        link.stats.forwarded += 1;
        true
    }

    /// [`Links::push`] for a read whose bytes are kept until its reply
    /// comes, to be sent elsewhere if the link fails first.
    pub fn push_read(&mut self, ring: &mut Ring, node: usize, parts: &[&[u8]], w: Waiting) -> bool {
        if !self.push(ring, node, parts, w) {
            return false;
        }
        let Some(link) = self.link(node) else {
            return false;
        };
        let start = link.replay_base + link.replay.len() as u64;
        let mut len = 0;
        for p in parts {
            link.replay.extend_from_slice(p);
            len += p.len();
        }
        if let Some(back) = link.waiting.back_mut() {
            back.replay = Some((start, len as u32));
        }
        true
    }

    /// Takes the link's kept reads: the absolute offset of the buffer's
    /// first byte, and the bytes.
    pub fn take_replay(&mut self, node: usize) -> (u64, Vec<u8>) {
        let Some(link) = self.link(node) else {
            return (0, Vec::new());
        };
        let base = link.replay_base;
        let bytes = std::mem::take(&mut link.replay);
        link.replay_base = base + bytes.len() as u64;
        (base, bytes)
    }

    /// End of turn: hand every up link's queued requests to the kernel.
    pub fn flush(&mut self, ring: &mut Ring) {
        for (node, link) in self.links.iter_mut().enumerate() {
            if let Some(link) = link {
                link.send(ring, node);
            }
        }
    }

    /// Links whose connect or oldest request ran out of time; the caller
    /// fails them.
    pub fn expired(&self, now: Instant) -> Vec<(usize, Failure)> {
        let mut out = Vec::new();
        for (node, link) in self.links.iter().enumerate() {
            let Some(link) = link else { continue };
            if let Some(why) = link.broken {
                out.push((node, why));
                continue;
            }
            match link.state {
                State::Connecting { since } if now - since > self.connect_timeout => {
                    out.push((node, Failure::ConnectTimeout));
                }
                State::Handshaking { since } if now - since > self.connect_timeout => {
                    out.push((node, Failure::TlsTimeout));
                }
                State::Up
                    if link
                        .waiting
                        .front()
                        .is_some_and(|w| now - w.since > self.request_timeout) =>
                {
                    out.push((node, Failure::RequestTimeout));
                }
                _ => {}
            }
        }
        out
    }

    /// Drops the link to `node`: returns the requests that were waiting on
    /// it (for the caller to answer), cancels what the kernel holds and
    /// starts the backoff.
    pub fn fail(
        &mut self,
        ring: &mut Ring,
        node: usize,
        why: Failure,
        now: Instant,
    ) -> VecDeque<Waiting> {
        let (min, max) = (self.backoff_min, self.backoff_max);
        let Some(link) = self.link(node) else {
            return VecDeque::new();
        };
        if matches!(
            why,
            Failure::ConnectTimeout | Failure::RequestTimeout | Failure::TlsTimeout
        ) {
            link.stats.timeouts += 1;
        }
        if matches!(link.state, State::Handshaking { .. }) || why == Failure::Tls {
            link.stats.tls_failures += 1;
        }
        let tls_error = link
            .tls
            .as_ref()
            .and_then(|t| t.error())
            .map(|e| e.to_string());
        tracing::warn!(
            peer = %link.addr,
            in_flight = link.waiting.len(),
            retry_in_ms = link.backoff.as_millis() as u64,
            tls_error = tls_error.as_deref().unwrap_or(""),
            "cluster link failed: {why}"
        );
        link.state = State::Down {
            retry_at: Some(now + link.backoff),
        };
        link.backoff = (link.backoff * 2).clamp(min, max);
        link.out.clear();
        link.rbuf.clear();
        link.replay_base += link.replay.len() as u64;
        link.replay.clear();
        link.tls = None;
        link.plain = Vec::new();
        link.broken = None;
        link.stats.failed += link.waiting.iter().filter(|w| w.client.is_some()).count() as u64;
        if let Some(sock) = link.sock.as_mut()
            && !sock.retiring
        {
            sock.retiring = true;
            let fd = sock.fd.as_raw_fd();
            // A cancel may miss an operation already running in the kernel;
            // shutting the socket down ends a blocked receive or send too, so
            // the socket is always retired.
            // SAFETY: shutdown on a descriptor we own; no memory is passed.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            let _ = ring.queue_cancel_fd(fd, Token::op(OP_CANCEL));
        }
        link.retire_if_idle();
        std::mem::take(&mut link.waiting)
    }

    /// Requests waiting on the link to `node`.
    pub fn in_flight(&self, node: usize) -> usize {
        self.links
            .get(node)
            .and_then(Option::as_ref)
            .map_or(0, |l| l.waiting.len())
    }

    /// Membership says `node` is back: a link waiting out its backoff may
    /// be opened by the next request, and the backoff starts over.
    pub fn revive(&mut self, node: usize) {
        let min = self.backoff_min;
        if let Some(link) = self.link(node) {
            link.backoff = min;
            if let State::Down { retry_at } = &mut link.state {
                *retry_at = None;
            }
        }
    }

    /// A reply on the link to `node` arrived in time: the backoff starts over.
    fn healthy(&mut self, node: usize) {
        let min = self.backoff_min;
        if let Some(link) = self.link(node) {
            link.backoff = min;
        }
    }
}

impl Link {
    /// Opens a new connection (a TLS client with `tls`): its first line
    /// announces this node, so the peer serves what comes on it where it
    /// lands.
    fn open(
        &mut self,
        ring: &mut Ring,
        node: usize,
        this_name: &str,
        tls: Option<Arc<ClientConfig>>,
        now: Instant,
    ) -> bool {
        debug_assert!(self.sock.is_none());
        let tls = match tls.map(|c| TlsConn::client(c, self.server_name.clone())) {
            None => None,
            Some(Ok(t)) => Some(Box::new(t)),
            Some(Err(e)) => {
                tracing::warn!(peer = %self.addr, "cannot start TLS on a cluster link: {e}");
                self.stats.tls_failures += 1;
                return false;
            }
        };
        // Blocking, as the shard's accepted sockets are: io_uring waits for
        // readiness itself, and an O_NONBLOCK socket may make some kernels
        // hand EAGAIN back instead.
        let socket = match Socket::new(
            Domain::for_address(self.addr),
            Type::STREAM.cloexec(),
            Some(Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(peer = %self.addr, "cannot create a cluster link socket: {e}");
                return false;
            }
        };
        let _ = socket.set_tcp_nodelay(true);
        self.generation = runtime::next_generation(self.generation);
        let addr = Box::new(SockAddr::from(self.addr));
        let entry = opcode::Connect::new(
            types::Fd(socket.as_raw_fd()),
            addr.as_ptr().cast(),
            addr.len(),
        )
        .build()
        .user_data(Token::new(OP_PEER_CONNECT, node as u32, self.generation).to_user_data());
        // SAFETY: the address lives in `Sock::addr`, which is not dropped
        // before the connect's completion has been seen (`Sock::idle`).
        if unsafe { ring.push(&entry) }.is_err() {
            return false;
        }
        self.sock = Some(Sock {
            fd: socket.into(),
            _addr: addr,
            connecting: true,
            sending: false,
            receiving: false,
            retiring: false,
        });
        if self.opened > 0 {
            self.stats.reconnects += 1;
        }
        self.opened += 1;
        self.state = State::Connecting { since: now };
        self.tls = tls;
        self.plain.clear();
        self.out.clear();
        self.out.extend_from_slice(b"cluster_link ");
        self.out.extend_from_slice(this_name.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.waiting.push_back(Waiting {
            client: None,
            part: 0,
            expect: replies::Expect::One,
            on_failure: replies::OnFailure::Nothing,
            since: now,
            then: replies::Then::Nothing,
            replay: None,
        });
        true
    }

    /// Sends what is queued, if the link is connected and no send is in
    /// flight. With TLS: the handshake's records, and once it is done the
    /// queued requests, encrypted straight into the send buffer.
    fn send(&mut self, ring: &mut Ring, node: usize) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if !self.state.connected() || sock.sending || sock.retiring || self.broken.is_some() {
            return;
        }
        if self.inflight_done == self.inflight.len() {
            self.inflight.clear();
            self.inflight_done = 0;
            // A burst of large requests leaves no large buffer behind.
            if self.inflight.capacity() > 1 << 20 {
                self.inflight = Vec::new();
            }
            match &mut self.tls {
                None => {
                    if self.out.is_empty() {
                        return;
                    }
                    std::mem::swap(&mut self.inflight, &mut self.out);
                }
                Some(tls) => {
                    // Requests wait in `out` (under the link's bound) while
                    // the handshake runs, and while a send is in flight: one
                    // batch of records at a time is sealed.
                    if !tls.is_handshaking() && !self.out.is_empty() {
                        if tls.encrypt(&self.out).is_err() {
                            self.broken = Some(Failure::Tls);
                            return;
                        }
                        self.out.clear();
                    }
                    if tls.outgoing.is_empty() {
                        return;
                    }
                    std::mem::swap(&mut self.inflight, &mut tls.outgoing);
                }
            }
        }
        let token = Token::new(OP_PEER_SEND, node as u32, self.generation);
        let rest = &self.inflight[self.inflight_done..];
        // SAFETY: `inflight` is not written or dropped while `sending` is
        // set, and the socket is kept until the send has completed.
        if unsafe { ring.queue_send(sock.fd.as_raw_fd(), rest, libc::MSG_NOSIGNAL, token) }.is_ok()
        {
            sock.sending = true;
        }
    }

    /// Arms one receive into the spare room of `rbuf`.
    fn arm_recv(&mut self, ring: &mut Ring, node: usize) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if sock.receiving || sock.retiring {
            return;
        }
        self.rbuf.reserve(RECV_CHUNK);
        let spare = self.rbuf.spare_capacity_mut();
        let len = spare.len().min(u32::MAX as usize) as u32;
        let entry = opcode::Recv::new(
            types::Fd(sock.fd.as_raw_fd()),
            spare.as_mut_ptr().cast(),
            len,
        )
        .build()
        .user_data(Token::new(OP_PEER_RECV, node as u32, self.generation).to_user_data());
        // SAFETY: `rbuf` is neither grown, shrunk nor dropped while
        // `receiving` is set (only `on_recv`, after the completion, touches
        // it), and the socket is kept until the receive has completed.
        if unsafe { ring.push(&entry) }.is_ok() {
            sock.receiving = true;
        }
    }

    /// Closes the socket once the kernel holds nothing of it.
    fn retire_if_idle(&mut self) {
        if self.sock.as_ref().is_some_and(|s| s.retiring && s.idle()) {
            self.sock = None;
            self.inflight.clear();
            self.inflight_done = 0;
        }
    }
}

impl Links {
    fn current(&mut self, t: Token) -> Option<&mut Link> {
        self.link(t.slot as usize)
            .filter(|l| l.generation == t.generation && l.sock.is_some())
    }

    /// A connect completed with `result`.
    pub fn on_connect(&mut self, ring: &mut Ring, t: Token, result: i32) -> Option<Failure> {
        let link = self.current(t)?;
        let sock = link.sock.as_mut().expect("current has a socket");
        sock.connecting = false;
        if sock.retiring {
            link.retire_if_idle();
            return None;
        }
        if result < 0 {
            return Some(Failure::Refused(-result));
        }
        link.state = match (link.state, &link.tls) {
            (State::Connecting { since }, Some(_)) => State::Handshaking { since },
            _ => State::Up,
        };
        link.arm_recv(ring, t.slot as usize);
        None
    }

    /// A send completed with `result`.
    pub fn on_send(&mut self, ring: &mut Ring, t: Token, result: i32) -> Option<Failure> {
        let link = self.current(t)?;
        let sock = link.sock.as_mut().expect("current has a socket");
        sock.sending = false;
        if sock.retiring {
            link.retire_if_idle();
            return None;
        }
        if result < 0 {
            return Some(Failure::Io(-result));
        }
        link.inflight_done += result as usize;
        link.send(ring, t.slot as usize);
        None
    }

    /// A receive completed with `result`: `Ok(true)` when bytes were added
    /// to the link's reply buffer.
    pub fn on_recv(&mut self, t: Token, result: i32) -> Result<bool, Failure> {
        let Some(link) = self.current(t) else {
            return Ok(false);
        };
        let sock = link.sock.as_mut().expect("current has a socket");
        sock.receiving = false;
        if sock.retiring {
            link.retire_if_idle();
            return Ok(false);
        }
        match result {
            0 => Err(Failure::Closed),
            n if n < 0 => Err(Failure::Io(-n)),
            n => {
                let n = n as usize;
                debug_assert!(n <= link.rbuf.capacity() - link.rbuf.len());
                // SAFETY: the kernel wrote `n` bytes into the spare capacity
                // the receive was given, starting at the old length.
                unsafe { link.rbuf.set_len(link.rbuf.len() + n) };
                Ok(true)
            }
        }
    }
}

/// What `forward.rs` uses to match replies without holding a borrow of the
/// link across deliveries.
impl Links {
    fn take_rbuf(&mut self, node: usize) -> Vec<u8> {
        self.link(node)
            .map(|l| std::mem::take(&mut l.rbuf))
            .unwrap_or_default()
    }

    fn put_rbuf(&mut self, node: usize, rbuf: Vec<u8>) {
        if let Some(l) = self.link(node) {
            l.rbuf = rbuf;
            if l.rbuf.is_empty() && l.rbuf.capacity() > 4 * RECV_CHUNK {
                l.rbuf = Vec::new();
            }
        }
    }

    fn front(&self, node: usize) -> Option<Waiting> {
        self.links.get(node)?.as_ref()?.waiting.front().copied()
    }

    fn pop_front(&mut self, node: usize) {
        let Some(l) = self.link(node) else {
            return;
        };
        let Some(w) = l.waiting.pop_front() else {
            return;
        };
        if w.replay.is_none() {
            return;
        }
        // The kept bytes before the oldest read still waiting are done with;
        // they are dropped once they are most of the buffer.
        let end = l.replay_base + l.replay.len() as u64;
        let keep_from = l.waiting.iter().find_map(|w| w.replay).map_or(end, |r| r.0);
        let done = (keep_from - l.replay_base) as usize;
        if done == l.replay.len() {
            l.replay.clear();
            l.replay_base = end;
        } else if done >= 4096 && done * 2 >= l.replay.len() {
            l.replay.drain(..done);
            l.replay_base = keep_from;
        }
    }

    fn rearm(&mut self, ring: &mut Ring, node: usize) {
        if let Some(l) = self.link(node)
            && l.state.connected()
        {
            l.arm_recv(ring, node);
        }
    }

    /// A request for `node` was answered with a failure without being sent.
    fn count_failed(&mut self, node: usize) {
        if let Some(l) = self.link(node) {
            l.stats.failed += 1;
        }
    }
}
