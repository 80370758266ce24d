//! The record layer against rustls' own client, in memory: handshakes,
//! records split anywhere, replies larger than a record, client
//! certificates, protocol versions, session resumption and bad input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::conn::{MAX_PLAINTEXT, RECORD_OVERHEAD};
use super::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/tls/testdata")
        .join(name)
}

fn settings() -> Settings {
    Settings {
        chain_cert: data("server.pem"),
        key: data("server.key"),
        ca_cert: None,
        verify_mode: 0,
        min_version: MinVersion::Tls12,
        session_cache: false,
        ciphers: None,
    }
}

fn client_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    with_cert: bool,
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(data("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(roots);
    if with_cert {
        let chain = CertificateDer::pem_file_iter(data("client.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(data("client.key")).unwrap();
        b.with_client_auth_cert(chain, key).unwrap()
    } else {
        b.with_no_client_auth()
    }
}

fn client(config: ClientConfig) -> ClientConnection {
    ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
}

/// A server connection and what it delivered.
struct Pair {
    client: ClientConnection,
    server: TlsConn,
    delivered: Vec<u8>,
    /// Plaintext the client read.
    read: Vec<u8>,
    /// Split every client flight into pieces of this many bytes.
    chunk: usize,
}

impl Pair {
    fn new(server: &Server, client: ClientConnection) -> Pair {
        Pair {
            client,
            server: TlsConn::new(server.config.clone()).unwrap(),
            delivered: Vec::new(),
            read: Vec::new(),
            chunk: usize::MAX,
        }
    }

    /// Moves bytes both ways until neither side has more; the server's last
    /// receive outcome, or the client's error.
    fn pump(&mut self) -> Result<Received, rustls::Error> {
        let mut last = Received::Open;
        for _ in 0..64 {
            let mut wire = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut wire).unwrap();
            }
            for piece in wire.chunks_mut(self.chunk.max(1)) {
                let delivered = &mut self.delivered;
                last = self
                    .server
                    .receive(piece, &mut |p| delivered.extend_from_slice(p));
            }
            let out = std::mem::take(&mut self.server.outgoing);
            if wire.is_empty() && out.is_empty() {
                return Ok(last);
            }
            let mut rd = &out[..];
            while !rd.is_empty() {
                self.client.read_tls(&mut rd).unwrap();
                self.client.process_new_packets()?;
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = self.client.reader().read(&mut buf) {
                    self.read.extend_from_slice(&buf[..n]);
                }
            }
        }
        panic!("no quiet after 64 exchanges");
    }

    fn client_reads(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.read)
    }
}

fn server(s: &Settings) -> Server {
    server_config(s).unwrap()
}

#[test]
fn a_handshake_then_requests_and_replies_both_ways() {
    let srv = server(&settings());
    let mut p = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
    p.client.writer().write_all(b"version\r\n").unwrap();
    assert_eq!(p.pump().unwrap(), Received::Open);
    assert!(!p.server.is_handshaking());
    assert_eq!(p.delivered, b"version\r\n");
    assert!(p.server.describe().unwrap().contains("TLSv1_3"));
    p.server.encrypt(b"VERSION 1.6.18\r\n").unwrap();
    p.pump().unwrap();
    assert_eq!(p.client_reads(), b"VERSION 1.6.18\r\n");
}

#[test]
fn records_split_at_every_size_are_assembled() {
    let srv = server(&settings());
    for chunk in [1, 2, 5, 7, 100, 1000] {
        let mut p = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
        p.chunk = chunk;
        let request: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        p.client.writer().write_all(&request).unwrap();
        assert_eq!(p.pump().unwrap(), Received::Open, "chunk {chunk}");
        assert_eq!(p.delivered, request, "chunk {chunk}");
    }
}

#[test]
fn a_reply_larger_than_a_record_arrives_whole() {
    let srv = server(&settings());
    let mut p = Pair::new(
        &srv,
        client(client_config(&[&rustls::version::TLS12], false)),
    );
    p.client.writer().write_all(b"get big\r\n").unwrap();
    p.pump().unwrap();
    let reply: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    p.server.encrypt(&reply).unwrap();
    let records = p.server.outgoing.len() - reply.len();
    assert!(records <= (reply.len() / MAX_PLAINTEXT + 1) * RECORD_OVERHEAD);
    p.pump().unwrap();
    assert_eq!(p.client_reads(), reply);
}

#[test]
fn replies_made_during_the_handshake_wait_for_it() {
    let srv = server(&settings());
    let mut p = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
    p.server.encrypt(b"early\r\n").unwrap();
    assert!(p.server.outgoing.is_empty());
    p.pump().unwrap();
    assert_eq!(p.client_reads(), b"early\r\n");
}

#[test]
fn garbage_fails_the_handshake_and_is_counted_as_such() {
    let srv = server(&settings());
    let mut conn = TlsConn::new(srv.config.clone()).unwrap();
    let mut bytes = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    let got = conn.receive(&mut bytes, &mut |_| panic!("nothing to deliver"));
    assert_eq!(got, Received::Failed { handshake: true });
    // Nothing more is taken from it.
    let mut more = b"\x16\x03\x01".to_vec();
    assert!(matches!(
        conn.receive(&mut more, &mut |_| {}),
        Received::Failed { .. }
    ));
}

#[test]
fn close_notify_from_the_client_is_the_end_of_input() {
    let srv = server(&settings());
    let mut p = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
    p.client.writer().write_all(b"quit\r\n").unwrap();
    p.pump().unwrap();
    p.client.send_close_notify();
    assert_eq!(p.pump().unwrap(), Received::PeerClosed);
    p.server.close_notify();
    assert!(!p.server.outgoing.is_empty());
}

#[test]
fn a_required_client_certificate_is_verified() {
    let mut s = settings();
    s.verify_mode = 2;
    assert!(server_config(&s).unwrap_err().contains("ssl_ca_cert"));
    s.ca_cert = Some(data("ca.pem"));
    let srv = server(&s);
    let mut with = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, true)));
    with.client.writer().write_all(b"stats\r\n").unwrap();
    assert_eq!(with.pump().unwrap(), Received::Open);
    assert_eq!(with.delivered, b"stats\r\n");
    let mut without = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
    without.client.writer().write_all(b"stats\r\n").unwrap();
    let got = without.pump();
    assert!(
        matches!(got, Ok(Received::Failed { .. }) | Err(_)),
        "{got:?}"
    );
    assert!(without.delivered.is_empty());
    // Mode 1 asks but lets a client without one in.
    s.verify_mode = 1;
    let srv = server(&s);
    let mut without = Pair::new(&srv, client(client_config(rustls::ALL_VERSIONS, false)));
    without.client.writer().write_all(b"stats\r\n").unwrap();
    assert_eq!(without.pump().unwrap(), Received::Open);
}

#[test]
fn min_version_3_refuses_tls_1_2() {
    let mut s = settings();
    s.min_version = MinVersion::Tls13;
    let srv = server(&s);
    let mut old = Pair::new(
        &srv,
        client(client_config(&[&rustls::version::TLS12], false)),
    );
    old.client.writer().write_all(b"version\r\n").unwrap();
    let got = old.pump();
    assert!(
        matches!(got, Ok(Received::Failed { handshake: true }) | Err(_)),
        "{got:?}"
    );
    let mut new = Pair::new(
        &srv,
        client(client_config(&[&rustls::version::TLS13], false)),
    );
    new.client.writer().write_all(b"version\r\n").unwrap();
    assert_eq!(new.pump().unwrap(), Received::Open);
    assert_eq!(MinVersion::from_memcached("3").unwrap().0.name(), "tlsv1.3");
    assert!(MinVersion::from_memcached("1").unwrap().1.is_some());
    assert!(MinVersion::from_memcached("4").is_err());
}

#[test]
fn with_the_session_cache_a_tls12_session_is_resumed_and_not_counted_again() {
    let mut s = settings();
    s.session_cache = true;
    let srv = server(&s);
    let config = Arc::new(client_config(&[&rustls::version::TLS12], false));
    let handshake = |config: &Arc<ClientConfig>| {
        let c = ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
            .unwrap();
        let mut p = Pair::new(&srv, c);
        p.client.writer().write_all(b"version\r\n").unwrap();
        assert_eq!(p.pump().unwrap(), Received::Open);
        p.client.handshake_kind()
    };
    assert_eq!(handshake(&config), Some(rustls::HandshakeKind::Full));
    let counter = srv.new_sessions.clone().unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    assert_eq!(handshake(&config), Some(rustls::HandshakeKind::Resumed));
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    // Without it nothing is resumed, and nothing is counted.
    let srv = server(&settings());
    assert!(srv.new_sessions.is_none());
    let config = Arc::new(client_config(&[&rustls::version::TLS12], false));
    for _ in 0..2 {
        let c = ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap())
            .unwrap();
        let mut p = Pair::new(&srv, c);
        p.client.writer().write_all(b"version\r\n").unwrap();
        p.pump().unwrap();
        assert_eq!(p.client.handshake_kind(), Some(rustls::HandshakeKind::Full));
    }
}

#[test]
fn cipher_names_map_to_suites_and_unknown_ones_are_refused() {
    let suites = cipher_suites("ECDHE-RSA-AES256-GCM-SHA384").unwrap();
    assert_eq!(
        suites[0],
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    );
    // OpenSSL's list leaves TLS 1.3 on.
    assert_eq!(suites.iter().filter(|s| s.tls13().is_some()).count(), 3);
    assert!(
        cipher_suites("RC4-MD5")
            .unwrap_err()
            .contains("unknown cipher RC4-MD5")
    );
    assert!(cipher_suites(":").is_err());
    // A server limited to one TLS 1.2 suite negotiates it with a 1.2 client.
    let mut s = settings();
    s.ciphers = Some("ECDHE-RSA-CHACHA20-POLY1305".into());
    let srv = server(&s);
    let mut p = Pair::new(
        &srv,
        client(client_config(&[&rustls::version::TLS12], false)),
    );
    p.client.writer().write_all(b"version\r\n").unwrap();
    p.pump().unwrap();
    assert!(
        p.server.describe().unwrap().contains("CHACHA20"),
        "{:?}",
        p.server.describe()
    );
}

#[test]
fn bad_files_are_one_clear_line() {
    let mut s = settings();
    s.chain_cert = data("missing.pem");
    let e = server_config(&s).unwrap_err();
    assert!(
        e.starts_with("Error loading the certificate chain: "),
        "{e}"
    );
    assert!(e.contains("missing.pem"), "{e}");
    let mut s = settings();
    s.key = data("ca.pem");
    let e = server_config(&s).unwrap_err();
    assert!(e.starts_with("Error loading the private key: "), "{e}");
    // A key that is not the certificate's.
    let mut s = settings();
    s.key = data("client.key");
    assert!(server_config(&s).is_err());
}

#[test]
fn kernel_tls_needs_the_tls_ulp_in_the_list() {
    // This machine's list is "mptcp": no offload.
    assert!(!has_tls_ulp("mptcp\n"));
    assert!(has_tls_ulp("mptcp tls\n"));
    assert!(!has_tls_ulp("tlsx"));
}

#[test]
fn corrupted_flights_in_any_pieces_fail_cleanly() {
    let srv = server(&settings());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut c = client(client_config(rustls::ALL_VERSIONS, false));
        c.writer().write_all(b"get k\r\n").unwrap();
        let mut server = TlsConn::new(srv.config.clone()).unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        // Flip a few bytes, or cut the flight short, then feed it in pieces.
        for _ in 0..(round % 4) {
            let i = next() as usize % wire.len();
            wire[i] ^= (next() as u8) | 1;
        }
        if round % 5 == 0 {
            wire.truncate(next() as usize % wire.len());
        }
        let mut at = 0;
        while at < wire.len() {
            let n = (next() as usize % 300 + 1).min(wire.len() - at);
            let got = server.receive(&mut wire[at..at + n], &mut |_| {});
            at += n;
            if matches!(got, Received::Failed { .. }) {
                assert!(matches!(
                    server.receive(&mut [0x16, 3, 3], &mut |_| {}),
                    Received::Failed { .. }
                ));
                break;
            }
        }
        server.encrypt(b"END\r\n").unwrap();
        server.close_notify();
    }
}

// ---------------------------------------------------------------------------
// Both ends ours, as on a peer link: a client-side `TlsConn` (this node
// linking to a peer) against a server-side one (the peer's listener), with
// the certificates of testdata/peer (scripts/make-peer-test-certs.sh).

fn peer(name: &str) -> PathBuf {
    data("peer").join(name)
}

/// A node's settings: its certificate `node`, trusting the CA `ca`.
fn node_settings(node: &str, ca: &str, verify_mode: u8) -> Settings {
    Settings {
        chain_cert: peer(&format!("{node}.pem")),
        key: peer(&format!("{node}.key")),
        ca_cert: Some(peer(ca)),
        verify_mode,
        min_version: MinVersion::Tls12,
        session_cache: false,
        ciphers: None,
    }
}

/// Two of our record layers wired to each other in memory.
struct Ends {
    client: TlsConn<ClientSide>,
    server: TlsConn<ServerSide>,
    /// Plaintext each side received.
    at_client: Vec<u8>,
    at_server: Vec<u8>,
    /// Split every flight into pieces of this many bytes.
    chunk: usize,
}

impl Ends {
    fn new(client: &Settings, server: &Settings, name: &str) -> Ends {
        let config = peer_client_config(client).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        Ends {
            client: TlsConn::client(config, name).unwrap(),
            server: TlsConn::new(server_config(server).unwrap().config).unwrap(),
            at_client: Vec::new(),
            at_server: Vec::new(),
            chunk: usize::MAX,
        }
    }

    /// Moves records both ways until both are quiet; the first failure each
    /// side saw (client, server), else `Open` or `PeerClosed`.
    fn pump(&mut self) -> (Received, Received) {
        let keep = |seen: &mut Received, now: Received| {
            if !matches!(seen, Received::Failed { .. }) {
                *seen = now;
            }
        };
        let (mut at_c, mut at_s) = (Received::Open, Received::Open);
        for _ in 0..64 {
            let mut to_server = std::mem::take(&mut self.client.outgoing);
            let mut to_client = std::mem::take(&mut self.server.outgoing);
            if to_server.is_empty() && to_client.is_empty() {
                return (at_c, at_s);
            }
            for piece in to_server.chunks_mut(self.chunk.max(1)) {
                let got = &mut self.at_server;
                let r = self
                    .server
                    .receive(piece, &mut |p| got.extend_from_slice(p));
                keep(&mut at_s, r);
            }
            for piece in to_client.chunks_mut(self.chunk.max(1)) {
                let got = &mut self.at_client;
                let r = self
                    .client
                    .receive(piece, &mut |p| got.extend_from_slice(p));
                keep(&mut at_c, r);
            }
        }
        panic!("no quiet after 64 exchanges");
    }
}

#[test]
fn a_client_side_conn_sends_its_hello_at_once_and_talks_to_a_server_side_one() {
    let (a, b) = (
        node_settings("node0", "ca.pem", 0),
        node_settings("node1", "ca.pem", 0),
    );
    for chunk in [usize::MAX, 1, 7, 1000] {
        let mut e = Ends::new(&a, &b, "127.0.0.1");
        e.chunk = chunk;
        assert!(!e.client.outgoing.is_empty(), "the ClientHello is queued");
        assert!(e.client.is_handshaking());
        assert_eq!(e.pump(), (Received::Open, Received::Open), "chunk {chunk}");
        assert!(!e.client.is_handshaking() && !e.server.is_handshaking());
        // Requests larger than a record, as a deep pipeline makes them.
        let mut requests = b"cluster_link n0\r\n".to_vec();
        requests.extend((0..50_000u32).map(|i| b'a' + (i % 26) as u8));
        e.client.encrypt(&requests).unwrap();
        e.pump();
        assert_eq!(e.at_server, requests, "chunk {chunk}");
        let reply: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        e.server.encrypt(&reply).unwrap();
        e.pump();
        assert_eq!(e.at_client, reply, "chunk {chunk}");
        assert!(e.client.describe().unwrap().contains("TLSv1_3"));
    }
}

#[test]
fn the_client_refuses_a_peer_of_another_ca_or_under_another_name() {
    let a = node_settings("node0", "ca.pem", 0);
    let stranger = node_settings("other", "other-ca.pem", 0);
    let mut e = Ends::new(&a, &stranger, "127.0.0.1");
    let (c, _) = e.pump();
    assert_eq!(c, Received::Failed { handshake: true });
    let err = e.client.error().unwrap().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    e.client.encrypt(b"get k\r\n").unwrap();
    assert!(e.at_server.is_empty(), "nothing reached the stranger");
    // Our own CA's certificate, but not for this address.
    let b = node_settings("node1", "ca.pem", 0);
    let mut e = Ends::new(&a, &b, "10.1.2.3");
    assert_eq!(e.pump().0, Received::Failed { handshake: true });
    let err = e.client.error().unwrap().to_string();
    assert!(err.contains("not valid for name"), "{err}");
}

#[test]
fn under_mutual_tls_the_node_certificate_is_presented_and_a_stranger_refused() {
    let server = node_settings("node1", "ca.pem", 3);
    let a = node_settings("node0", "ca.pem", 0);
    let mut e = Ends::new(&a, &server, "127.0.0.1");
    assert_eq!(e.pump(), (Received::Open, Received::Open));
    e.client.encrypt(b"cluster_link n0\r\n").unwrap();
    e.pump();
    assert_eq!(e.at_server, b"cluster_link n0\r\n");
    // A client whose certificate another CA signed (it trusts our CA, so
    // its side of the handshake completes under TLS 1.3): the server
    // refuses it, and the client learns so from the alert.
    let mut stranger = node_settings("other", "ca.pem", 0);
    stranger.chain_cert = peer("other.pem");
    let mut e = Ends::new(&stranger, &server, "127.0.0.1");
    e.client.encrypt(b"cluster_link x\r\n").unwrap();
    let (c, s) = e.pump();
    assert_eq!(s, Received::Failed { handshake: true });
    assert!(matches!(c, Received::Failed { .. }), "{c:?}");
    assert!(e.at_server.is_empty());
}

#[test]
fn peer_links_need_a_ca_and_loadable_files() {
    let mut s = node_settings("node0", "ca.pem", 0);
    s.ca_cert = None;
    let e = peer_client_config(&s).unwrap_err();
    assert!(
        e.contains("ssl_ca_cert") && e.contains("--cluster-tls off"),
        "{e}"
    );
    let mut s = node_settings("node0", "ca.pem", 0);
    s.key = peer("missing.key");
    assert!(
        peer_client_config(&s)
            .unwrap_err()
            .starts_with("Error loading the private key")
    );
    // Certs with peers loads both and reloads both.
    let certs = Certs::load(node_settings("node0", "ca.pem", 0), true).unwrap();
    let mut cached = None;
    let first = certs.peer_config(&mut cached).unwrap();
    certs.refresh().unwrap();
    let second = certs.peer_config(&mut cached).unwrap();
    assert!(!Arc::ptr_eq(&first, &second), "a refresh makes a new one");
    let plain = Certs::load(node_settings("node0", "ca.pem", 0), false).unwrap();
    assert!(plain.peer_config(&mut None).is_none());
}
