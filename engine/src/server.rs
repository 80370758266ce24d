//! Start-up and shutdown: binds every listener before any thread starts (so a
//! port in use is a clean start-up error), starts one pinned thread per
//! shard, wires the shards together, waits for SIGINT/SIGTERM and drains.
//!
//! ```text
//!  main thread                      shard thread i (pinned to core i)
//!  ───────────                      ─────────────────────────────────
//!  bind listeners (all shards)
//!  block SIGINT/SIGTERM, spawn ───► create ring ─► send its wake address
//!  collect wake addresses    ◄───┘
//!  wire the mesh, send ends  ────► create store (first touch on its node)
//!  wait until all ready      ◄──── arm accept/recv, report ready, loop
//!  sigwait ... signal
//!  set `stopping`, wake all  ────► stop accepting, finish in-flight, drain
//!  join, remove pidfile, exit 0
//! ```

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use runtime::{Ring, RingConfig, Token, WakeTarget, socket};

use crate::auth::Auth;
use crate::config::{Config, ConfigError};
pub use crate::reload::Reload;
use crate::shard::{self, ShardError, ShardParams, ShardReady};
use crate::shared::Shared;

/// The token of a wake-up completion on a shard ring.
pub const WAKE_TOKEN: Token = Token::op(shard::OP_WAKE);

/// Everything one shard listens on.
struct Listeners {
    /// Stream listeners per shard: TCP, or with `-s` one descriptor of the
    /// unix socket each.
    tcp: Vec<Vec<OwnedFd>>,
    /// Per entry of a shard's `tcp`: whether it speaks TLS.
    tcp_tls: Vec<bool>,
    udp: Vec<Option<OwnedFd>>,
    tcp_addrs: Vec<SocketAddr>,
    udp_addrs: Vec<SocketAddr>,
    unix: Option<SocketFile>,
}

/// The unix socket file this server created; removed when the server stops,
/// unless something else has replaced it by then.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == (self.dev, self.ino)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn unix_error(path: &Path, e: std::io::Error) -> ConfigError {
    let fix = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "a file that is not a socket is in the way (move it, or pick another -s)".to_string()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (pick a directory this user may write to)".to_string()
        }
        _ => e.to_string(),
    };
    ConfigError(format!(
        "cannot listen (server.unix_socket): {}: {fix}",
        path.display()
    ))
}

/// Binds the unix socket at `path` and gives every shard a descriptor of it:
/// each shard's ring waits for connections on the same socket and the kernel
/// hands each connection to one of them. A socket file left by an earlier run
/// is replaced (as memcached does); any other file is an error.
fn bind_unix(config: &Config, path: &Path, shards: usize) -> Result<Listeners, ConfigError> {
    let s = &config.server;
    if let Ok(m) = std::fs::symlink_metadata(path)
        && m.file_type().is_socket()
    {
        std::fs::remove_file(path).map_err(|e| unix_error(path, e))?;
    }
    let fd =
        socket::unix_listener(path, s.unix_mask.0, s.backlog).map_err(|e| unix_error(path, e))?;
    let m = std::fs::symlink_metadata(path).map_err(|e| unix_error(path, e))?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    };
    let mut tcp = Vec::with_capacity(shards);
    for _ in 1..shards {
        tcp.push(vec![fd.try_clone().map_err(|e| unix_error(path, e))?]);
    }
    tcp.push(vec![fd]);
    Ok(Listeners {
        tcp,
        tcp_tls: vec![false],
        udp: (0..shards).map(|_| None).collect(),
        tcp_addrs: Vec::new(),
        udp_addrs: Vec::new(),
        unix: Some(file),
    })
}

fn bind_error(what: &str, addr: SocketAddr, e: std::io::Error) -> ConfigError {
    let fix = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("{addr} is in use (pick another port with -p/-U, or stop what holds it)")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("{addr} is not an address of this host (fix -l)")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "{addr}: permission denied (use a port >= 1024 or run with CAP_NET_BIND_SERVICE)"
        ),
        _ => format!("{addr}: {e}"),
    };
    ConfigError(format!("cannot listen ({what}): {fix}"))
}

/// Whether `addr` is free, tested with a plain socket (no SO_REUSEPORT) that
/// is released at once. SO_REUSEPORT lets any socket of the same user join a
/// group on the port, so without this a second corecache (or any program
/// using SO_REUSEPORT) on the port of a running one would start and silently
/// take part of its traffic.
fn port_is_free(addr: SocketAddr, udp: bool) -> std::io::Result<()> {
    if udp {
        std::net::UdpSocket::bind(addr).map(drop)
    } else {
        std::net::TcpListener::bind(addr).map(drop)
    }
}

/// Binds one TCP listener per shard per address (SO_REUSEPORT) and, when UDP is
/// on, one UDP socket per shard per address. Port 0 binds the first socket to a
/// free port and the rest to the same one.
fn bind(config: &Config, shards: usize) -> Result<Listeners, ConfigError> {
    let s = &config.server;
    if let Some(path) = &s.unix_socket {
        return bind_unix(config, path, shards);
    }
    let mut tcp: Vec<Vec<OwnedFd>> = (0..shards).map(|_| Vec::new()).collect();
    let mut udp: Vec<Option<OwnedFd>> = (0..shards).map(|_| None).collect();
    let mut tcp_addrs = Vec::new();
    let mut udp_addrs = Vec::new();
    let mut tcp_port = s.port;
    let mut udp_port = s.udp_port;
    for ip in &s.listen {
        if tcp_port != 0 {
            let addr = SocketAddr::new(*ip, tcp_port);
            port_is_free(addr, false).map_err(|e| bind_error("server.port", addr, e))?;
        }
        for per_shard in tcp.iter_mut() {
            let addr = SocketAddr::new(*ip, tcp_port);
            let fd = socket::tcp_listener(addr, s.backlog)
                .map_err(|e| bind_error("server.port", addr, e))?;
            let bound = socket::local_addr(&fd).map_err(|e| bind_error("server.port", addr, e))?;
            tcp_port = bound.port();
            if !tcp_addrs.contains(&bound) {
                tcp_addrs.push(bound);
            }
            per_shard.push(fd);
        }
    }
    let mut tcp_tls = vec![config.tls.enabled; s.listen.len()];
    for &addr in &config.tls.plain {
        port_is_free(addr, false).map_err(|e| bind_error("-l notls:", addr, e))?;
        for per_shard in tcp.iter_mut() {
            let fd = socket::tcp_listener(addr, s.backlog)
                .map_err(|e| bind_error("-l notls:", addr, e))?;
            per_shard.push(fd);
        }
        if !tcp_addrs.contains(&addr) {
            tcp_addrs.push(addr);
        }
        tcp_tls.push(false);
    }
    if s.udp_port != 0 {
        // One UDP address: memcached's UDP replies go out of the socket the
        // request came in on, and one socket per shard is enough for it.
        let ip = s.listen[0];
        let addr = SocketAddr::new(ip, udp_port);
        port_is_free(addr, true).map_err(|e| bind_error("server.udp_port", addr, e))?;
        for slot in udp.iter_mut() {
            let addr = SocketAddr::new(ip, udp_port);
            let fd =
                socket::udp_socket(addr).map_err(|e| bind_error("server.udp_port", addr, e))?;
            let bound =
                socket::local_addr(&fd).map_err(|e| bind_error("server.udp_port", addr, e))?;
            udp_port = bound.port();
            if !udp_addrs.contains(&bound) {
                udp_addrs.push(bound);
            }
            *slot = Some(fd);
        }
    }
    Ok(Listeners {
        tcp,
        tcp_tls,
        udp,
        tcp_addrs,
        udp_addrs,
        unix: None,
    })
}

/// Binds the HTTP port when it is on: one SO_REUSEPORT listener per shard,
/// like the memcached port, so each shard serves its own HTTP connections.
fn bind_http(
    config: &Config,
    shards: usize,
) -> Result<(Vec<Option<OwnedFd>>, Option<SocketAddr>), ConfigError> {
    let Some(mut port) = config.http.port else {
        return Ok(((0..shards).map(|_| None).collect(), None));
    };
    let ip = config.http_ip();
    if port != 0 {
        let addr = SocketAddr::new(ip, port);
        port_is_free(addr, false).map_err(|e| bind_error("http.port", addr, e))?;
    }
    let (mut fds, mut bound) = (Vec::with_capacity(shards), None);
    for _ in 0..shards {
        let addr = SocketAddr::new(ip, port);
        let fd = socket::tcp_listener(addr, config.server.backlog)
            .map_err(|e| bind_error("http.port", addr, e))?;
        let local = socket::local_addr(&fd).map_err(|e| bind_error("http.port", addr, e))?;
        port = local.port();
        bound = Some(local);
        fds.push(Some(fd));
    }
    Ok((fds, bound))
}

/// Why the server stopped with an error: the exit code and the line to print.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong or cannot be honoured here (exit code 2).
    #[error("{0}")]
    Config(ConfigError),
    /// A shard could not start with these settings on this host (exit code 2).
    #[error("shard {id}: {source}")]
    Shard { id: usize, source: ShardError },
    /// A shard thread ended before it reported (exit code 2).
    #[error("{0}")]
    Aborted(&'static str),
    /// Something failed after start-up (exit code 1).
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

/// Runs the server until SIGINT, SIGTERM or an enabled `shutdown` command;
/// SIGHUP reloads what `reload` can build again (crate::reload).
pub fn run(config: Config, reload: Reload) -> Result<(), StartError> {
    // --cluster-join: the member list and ring from a running member; only
    // the plan and the cores are made from it (SIGHUP compares against the
    // configuration as given).
    let joined = crate::membership::join::joined(&config)?;
    let effective = joined.as_ref().unwrap_or(&config);
    let cores = effective.shard_cores()?;
    let cluster = effective.cluster_plan()?;
    let cluster_addrs = match &cluster {
        Some(plan) => plan.resolve()?,
        None => Vec::new(),
    };
    let membership = cluster
        .as_ref()
        .map(|plan| crate::membership::initial(plan, &cluster_addrs))
        .transpose()?;
    let gossip_addrs = match &cluster {
        Some(plan) => plan.gossip_addrs(&cluster_addrs)?,
        None => Vec::new(),
    };
    let gossip_socket = match &cluster {
        Some(plan) if plan.gossip.is_some() => Some(crate::membership::bind(plan, &gossip_addrs)?),
        _ => None,
    };
    let shards = cores.len();
    let load = |path: &Option<String>| -> Result<Option<Auth>, StartError> {
        path.as_deref()
            .map(|p| Auth::load(Path::new(p)).map_err(|e| ConfigError(e.to_string()).into()))
            .transpose()
    };
    let ascii_auth = load(&config.server.auth_file)?;
    let sasl_auth = if config.server.sasl {
        load(&config.server.sasl_pwdb)?
    } else {
        None
    };
    let mut memory = match &config.memory.file {
        Some(path) => {
            let region =
                store::Store::arena_len(&config.store_config(0, shards, 0, 0, cluster.as_ref()));
            let plan = crate::restart::Plan::prepare(Path::new(path), shards, region)?;
            if let Some(why) = &plan.cold {
                tracing::warn!("warm restart not possible, starting with an empty cache: {why}");
            }
            Some(plan)
        }
        None => None,
    };
    let mut regions = memory.as_mut().map(|p| p.regions().into_iter());
    let (saved_tx, saved_rx) = mpsc::channel::<(usize, std::io::Result<Vec<u8>>)>();
    let tls = if config.tls.enabled {
        let certs = crate::tls::Certs::load(config.tls.settings()?, config.peer_tls())
            .map_err(ConfigError)?;
        if config.tls.kernel_tls {
            tracing::info!(
                "TLS: kernel offload is not built; every connection uses rustls on its shard"
            );
        }
        Some(Arc::new(certs))
    } else {
        None
    };
    let http_token = match config.http.port {
        Some(_) => config.http_token()?,
        None => None,
    };
    let listeners = bind(&config, shards)?;
    let (http, http_addr) = bind_http(&config, shards)?;
    block_stop_signals();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let config_watcher_buf = config.server.watcher_logbuf_kb as usize * 1024;
    let config_debug_time = config.server.debug_time;
    let shared = Arc::new(Shared {
        verbosity: AtomicU8::new(config.server.verbosity),
        config,
        shards,
        started: Instant::now(),
        started_unix,
        connections: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        drained: AtomicUsize::new(0),
        tcp_addrs: listeners.tcp_addrs.clone(),
        udp_addrs: listeners.udp_addrs.clone(),
        http_addr,
        cluster,
        cluster_addrs,
        membership,
        ascii_auth,
        sasl_auth,
        unix_path: listeners.unix.as_ref().map(|f| f.path.clone()),
        tls,
        collapse: crate::collapse::spawn()
            .inspect_err(|e| tracing::warn!("no huge-page collapse thread: {e}"))
            .ok(),
        http_token: crate::shared::Reloadable::new(http_token),
        logger: crate::logger::Logger::start(shards, config_watcher_buf)
            .map_err(|e| StartError::Runtime(e.into()))?,
        debug_clock: config_debug_time.then(crate::shared::DebugClock::default),
    });
    if let Some(path) = &shared.config.server.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
            ConfigError(format!(
                "invalid setting server.pidfile: cannot write {path}: {e}"
            ))
        })?;
    }

    let (wake_tx, wake_rx) = mpsc::channel::<(usize, WakeTarget)>();
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<ShardReady, ShardError>)>();
    let mut mesh_txs = Vec::new();
    let mut threads = Vec::new();
    // Held until `run` returns: the socket file goes when the server does.
    let Listeners {
        tcp,
        tcp_tls,
        udp,
        unix: _socket_file,
        ..
    } = listeners;
    for (id, (((tcp, udp), http), core)) in tcp
        .into_iter()
        .zip(udp)
        .zip(http)
        .zip(cores.iter().copied())
        .enumerate()
    {
        let (mesh_tx, mesh_rx) = mpsc::channel();
        mesh_txs.push(mesh_tx);
        let params = ShardParams {
            id,
            core,
            tcp,
            tcp_tls: tcp_tls.clone(),
            udp,
            http,
            shared: shared.clone(),
            wake_tx: wake_tx.clone(),
            mesh_rx,
            ready_tx: ready_tx.clone(),
            memory: regions
                .as_mut()
                .and_then(Iterator::next)
                .map(|region| shard::ShardMemory {
                    region,
                    saved_tx: saved_tx.clone(),
                }),
        };
        let thread = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || shard::run(params))
            .map_err(|e| StartError::Runtime(e.into()))?;
        threads.push(thread);
    }
    drop((wake_tx, ready_tx, saved_tx));

    let mut wakes: Vec<Option<WakeTarget>> = vec![None; shards];
    for _ in 0..shards {
        match wake_rx.recv() {
            Ok((id, target)) => wakes[id] = Some(target),
            Err(_) => break,
        }
    }
    let failed = collect_early_failure(&ready_rx, &wakes);
    if let Some(e) = failed {
        drop(mesh_txs);
        stop_and_join(&shared, &[], threads);
        return Err(e);
    }
    let wakes: Vec<WakeTarget> = wakes
        .into_iter()
        .map(|w| w.expect("every shard reported"))
        .collect();
    let cfg = &shared.config.network;
    let meshes = shard::mesh::Mesh::wire(
        &wakes,
        cfg.channel_batches,
        cfg.batch_bytes.0 as usize,
        WAKE_TOKEN,
        Token::op(shard::OP_WAKE_FAILED),
    );
    for (tx, mesh) in mesh_txs.iter().zip(meshes) {
        let _ = tx.send(mesh);
    }
    drop(mesh_txs);

    let mut error = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok((id, Ok(ready))) => tracing::info!(
                shard = id,
                core = ready.core,
                pinned = ready.pinned,
                memory_mb = ready.memory_bytes >> 20,
                backing = ready.backing,
                numa = ready.numa,
                ring = ready.ring_mode,
                "shard ready"
            ),
            Ok((id, Err(source))) => {
                error.get_or_insert(StartError::Shard { id, source });
            }
            Err(_) => {
                error.get_or_insert(StartError::Aborted("a shard thread exited during start-up"));
                break;
            }
        }
    }
    if let Some(e) = error {
        stop_and_join(&shared, &wakes, threads);
        return Err(e);
    }
    for addr in &shared.tcp_addrs {
        if shared.tls.is_some() && !shared.config.tls.plain.contains(addr) {
            // Which path its connections take: rustls on the shard loop
            // (kernel offload is not built).
            tracing::info!("listening on tcp {addr} tls=rustls");
        } else {
            tracing::info!("listening on tcp {addr}");
        }
    }
    for addr in &shared.udp_addrs {
        tracing::info!("listening on udp {addr}");
    }
    if let Some(addr) = &shared.http_addr {
        tracing::info!("listening on http {addr}");
    }
    if let Some(plan) = &shared.cluster {
        let members: Vec<String> = plan
            .peers
            .members
            .iter()
            .zip(&shared.cluster_addrs)
            .map(|(m, a)| format!("{}={a}", m.name))
            .collect();
        tracing::info!(
            node = %plan.peers.this().name,
            ring = plan.ring.kind().name(),
            forwarding = plan.forward,
            members = %members.join(","),
            "cluster member"
        );
    }
    if let Some(path) = &shared.unix_path {
        tracing::info!("listening on unix {}", path.display());
    }
    let gossip = match gossip_socket {
        Some(socket) => Some(
            crate::membership::spawn(shared.clone(), socket, gossip_addrs)
                .map_err(|e| StartError::Runtime(e.into()))?,
        ),
        None => None,
    };
    tracing::info!(shards, version = crate::config::VERSION, "corecache ready");

    let signal = wait_for_stop_signal(&shared, &reload);
    tracing::info!(
        signal,
        "stopping: no new connections; finishing in-flight requests"
    );
    let stop_started = Instant::now();
    stop_and_join(&shared, &wakes, threads);
    shared.logger.stop();
    if let Some(plan) = &memory {
        save_memory(&plan.file, &saved_rx, shards, stop_started);
    }
    if let Some(g) = gossip {
        let _ = g.join();
    }
    if let Some(path) = &shared.config.server.pidfile {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

/// A shard that failed before reporting its wake address reports why on the
/// ready channel; pick that up without blocking.
fn collect_early_failure(
    ready_rx: &mpsc::Receiver<(usize, Result<ShardReady, ShardError>)>,
    wakes: &[Option<WakeTarget>],
) -> Option<StartError> {
    if wakes.iter().all(Option::is_some) {
        return None;
    }
    match ready_rx.recv() {
        Ok((id, Err(source))) => Some(StartError::Shard { id, source }),
        _ => Some(StartError::Aborted("a shard failed to start its io_uring")),
    }
}

fn stop_and_join(shared: &Shared, wakes: &[WakeTarget], threads: Vec<std::thread::JoinHandle<()>>) {
    shared.stopping.store(true, Ordering::SeqCst);
    // Wake every shard so that it sees the flag now rather than at its next tick.
    if let Ok(mut ring) = Ring::new(RingConfig {
        sq_entries: 64,
        cq_entries: 128,
    }) {
        for w in wakes {
            let _ = ring.queue_msg_ring(w.ring_fd(), WAKE_TOKEN, 0, Token::op(0));
        }
        let _ = ring.submit();
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Writes the restart metadata from every shard's saved state; without every
/// shard's state no meta is written, and the next start is cold.
fn save_memory(
    file: &crate::restart::MemoryFile,
    saved_rx: &mpsc::Receiver<(usize, std::io::Result<Vec<u8>>)>,
    shards: usize,
    stop_started: Instant,
) {
    let mut states: Vec<Option<Vec<u8>>> = vec![None; shards];
    while let Ok((id, state)) = saved_rx.try_recv() {
        match state {
            Ok(s) => states[id] = Some(s),
            Err(e) => tracing::error!(shard = id, "cannot sync the memory file: {e}"),
        }
    }
    let Some(states) = states.into_iter().collect::<Option<Vec<_>>>() else {
        tracing::error!(
            "a shard did not save its state: no restart metadata written, the next start is cold"
        );
        return;
    };
    match file.save(&states) {
        Ok(bytes) => tracing::info!(
            file = %file.path().display(),
            meta_bytes = bytes,
            ms = stop_started.elapsed().as_secs_f64() * 1000.0,
            "memory file saved for a warm restart"
        ),
        Err(e) => {
            tracing::error!(file = %file.path().display(), "cannot write the restart metadata: {e}")
        }
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        set
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts, so that
/// only `wait_for_stop_signal` receives them; ignores SIGPIPE (a peer closing
/// mid-send is an error code, not a reason to die).
fn block_stop_signals() {
    let set = stop_signals();
    // SAFETY: pthread_sigmask reads the set; signal() installs SIG_IGN.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Waits for SIGINT or SIGTERM; SIGHUP on the way reloads what can change
/// at run time (crate::reload).
fn wait_for_stop_signal(shared: &Shared, reload: &Reload) -> &'static str {
    let set = stop_signals();
    let mut sig: libc::c_int = 0;
    let mut applied = crate::reload::Applied::new(&shared.config);
    loop {
        // SAFETY: sigwait reads the set and writes the signal number.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        match sig {
            libc::SIGINT => return "SIGINT",
            // memcached's graceful restart signal; with -e every graceful stop saves.
            libc::SIGUSR1 => return "SIGUSR1",
            libc::SIGHUP => crate::reload::on_hup(shared, reload, &mut applied),
            _ => return "SIGTERM",
        }
    }
}
