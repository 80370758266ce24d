//! The integration-test harness: the real `corecache` binary on a port the
//! kernel picks, a memcached started the same way for differential rows, a
//! line-level client with a deadline on every read, and protocol tables of
//! (bytes sent, bytes expected).
//!
//! Readiness is read from the server's log (`listening on tcp <addr>`), never
//! guessed with a sleep; every child is killed when its handle is dropped.

#![allow(dead_code)]

pub mod cluster;
pub mod netns;
pub mod scripts;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to report that it listens (a debug build on a
/// busy 2-core machine).
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long any one expected reply may take.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

pub const BIN: &str = env!("CARGO_BIN_EXE_corecache");

/// A running `corecache`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub udp: Option<SocketAddr>,
    /// The HTTP port, when `--http-port` was given.
    pub http: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread draining stderr; it ends when the process does.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Why a server did not start: its exit status and what it printed.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<ExitStatus>,
    pub stderr: Vec<String>,
}

impl Server {
    /// Starts `corecache -p 0 <args>` and waits for it to listen.
    pub fn start(args: &[&str]) -> Server {
        Server::try_start(args).unwrap_or_else(|f| panic!("corecache did not start: {f:?}"))
    }

    /// Starts with UDP on a free port as well. `-U 0` means "UDP off" (as in
    /// memcached), so the port is picked here: bound by the kernel, released,
    /// and handed over; a lost race shows up as "in use" and is retried.
    pub fn start_udp(args: &[&str]) -> Server {
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free UDP port")
                .port()
                .to_string();
            let mut all = vec!["-U", &port];
            all.extend_from_slice(args);
            match Server::try_start(&all) {
                Ok(s) => return s,
                Err(f) if f.stderr.iter().any(|l| l.contains("in use")) => continue,
                Err(f) => panic!("corecache did not start: {f:?}"),
            }
        }
        panic!("no free UDP port after 5 tries");
    }

    pub fn try_start(args: &[&str]) -> Result<Server, StartFailure> {
        let mut all = vec!["-p", "0"];
        all.extend_from_slice(args);
        Server::spawn(&all)
    }

    /// Starts `corecache -s <path> <args>` (no TCP: memcached's -s serves
    /// only the socket) and waits until it listens there.
    pub fn start_unix(path: &std::path::Path, args: &[&str]) -> Server {
        let path = path.to_str().expect("a UTF-8 socket path");
        let mut all = vec!["-s", path];
        all.extend_from_slice(args);
        Server::spawn(&all).unwrap_or_else(|f| panic!("corecache did not start: {f:?}"))
    }

    /// Starts `corecache <args>` as given (no `-p 0`: the caller names the
    /// port, e.g. for a cluster whose peer list needs every port up front).
    pub fn try_start_exact(args: &[&str]) -> Result<Server, StartFailure> {
        Server::spawn(args)
    }

    fn spawn(args: &[&str]) -> Result<Server, StartFailure> {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Server::try_start_command(cmd)
    }

    /// Starts `cmd`, a command line that runs corecache (e.g. under `ip netns
    /// exec`, which execs it: the child's pid is the server's), and waits for
    /// it to listen.
    pub fn try_start_command(mut cmd: Command) -> Result<Server, StartFailure> {
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corecache");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let reader = {
            let log = log.clone();
            // Keeps draining the log for the server's whole life, so that a
            // chatty server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            })
        };
        let deadline = Instant::now() + START_DEADLINE;
        let (mut tcp, mut udp, mut http, mut unix) = (None, None, None, false);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = after(&line, "listening on tcp ") {
                        tcp.get_or_insert(a);
                    } else if let Some(a) = after(&line, "listening on udp ") {
                        udp.get_or_insert(a);
                    } else if let Some(a) = after(&line, "listening on http ") {
                        http.get_or_insert(a);
                    } else if line.contains("listening on unix ") {
                        unix = true;
                    } else if line.contains("corecache ready") {
                        // A unix-socket server has no TCP address: its `addr`
                        // is unspecified and tests connect to the path.
                        let unspecified = ([0, 0, 0, 0], 0).into();
                        let addr = tcp
                            .or(unix.then_some(unspecified))
                            .expect("a listener was logged before ready");
                        return Ok(Server {
                            child: Some(child),
                            addr,
                            udp,
                            http,
                            log,
                            reader: Some(reader),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = wait_deadline(&mut child, READ_DEADLINE);
                    let stderr = log.lock().unwrap().clone();
                    return Err(StartFailure { status, stderr });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "corecache not ready within {START_DEADLINE:?}; log: {:?}",
                        log.lock().unwrap()
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A new client connection.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded by READ_DEADLINE) for a log line containing `needle`
    /// after the first `skip` lines, and returns it.
    pub fn wait_log(&self, skip: usize, needle: &str) -> String {
        let deadline = Instant::now() + READ_DEADLINE;
        loop {
            if let Some(l) = self.log().iter().skip(skip).find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {READ_DEADLINE:?}: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident memory, from /proc/<pid>/status, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `sig` and waits (bounded) for the exit; the log stays readable.
    pub fn stop_with(&mut self, sig: libc::c_int) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), sig);
        let status = wait_deadline(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("corecache did not exit within 30 s of signal {sig}");
        });
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_deadline(&mut child, within).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("corecache did not exit within {within:?}");
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        // A shard thread that panics does not stop the process (debug
        // builds unwind the thread only): every test checks the log.
        if !std::thread::panicking() {
            let log = self.log.lock().unwrap();
            if let Some(i) = log.iter().position(|l| l.contains("panicked at")) {
                panic!("the server panicked:\n{}", log[i..].join("\n"));
            }
        }
    }
}

fn after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill() with the pid of a child we started and have not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Stops a child with SIGSTOP and returns once every one of its threads is
/// stopped. kill() only queues the stop: a shard thread already running can
/// still answer a request sent right after it, so a test that needs a silent
/// node waits here for `T` in each /proc/PID/task/*/stat.
pub fn stop(pid: u32) {
    signal(pid, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_threads_stopped(pid) {
        assert!(Instant::now() < deadline, "pid {pid} did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which may hold spaces.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        })
    })
}

/// Polls a child for its exit status until `within` has passed.
pub fn wait_deadline(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Runs a binary with `args` to completion (bounded) and returns its exit
/// code, stdout and stderr.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corecache");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_deadline(&mut child, START_DEADLINE).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("corecache {args:?} did not exit within {START_DEADLINE:?}");
    });
    (status.code(), t_out.join().unwrap(), t_err.join().unwrap())
}

// ---------------------------------------------------------------------------
// memcached, for differential rows

/// The pid a memcached reports in `stats`, read with a deadline.
fn memcached_pid(stream: TcpStream, hello: &[u8]) -> Option<u32> {
    use std::io::{BufRead, BufReader, Write};
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    (&stream).write_all(hello).ok()?;
    (&stream).write_all(b"stats\r\n").ok()?;
    let mut lines = BufReader::new(stream).lines();
    if !hello.is_empty() {
        lines.next()?.ok()?;
    }
    loop {
        let line = lines.next()?.ok()?;
        if let Some(pid) = line.strip_prefix("STAT pid ") {
            return pid.trim().parse().ok();
        }
        if line == "END" {
            return None;
        }
    }
}

/// Debian's memcached, started by the test on a free port; killed on drop.
pub struct Memcached {
    child: Child,
    pub addr: SocketAddr,
}

impl Memcached {
    pub const PATH: &str = "/usr/bin/memcached";

    /// Starts memcached, or returns None (and says so) when it is not installed.
    pub fn start(test: &str) -> Option<Memcached> {
        Memcached::start_with(test, &[])
    }

    /// Starts memcached with extra flags (e.g. `-A`).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<Memcached> {
        Memcached::start_with_hello(test, extra, b"")
    }

    /// As [`Memcached::start_with`], for a memcached that answers `stats` only
    /// after `hello` (one request with a one-line reply, e.g. a `-Y` login).
    pub fn start_with_hello(test: &str, extra: &[&str], hello: &[u8]) -> Option<Memcached> {
        let path = std::env::var("MEMCACHED").unwrap_or_else(|_| Memcached::PATH.to_string());
        if !std::path::Path::new(&path).exists() {
            println!(
                "{test}: no memcached binary at {path} (set MEMCACHED=...): \
                 the differential half of this test is SKIPPED; corecache's rows were still checked"
            );
            return None;
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free TCP port")
                .port();
            let mut cmd = Command::new(&path);
            cmd.args([
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-l",
                "127.0.0.1",
                "-t",
                "1",
            ]);
            cmd.args(extra);
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memcached");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            // memcached logs nothing when it is ready: poll until it accepts.
            let deadline = Instant::now() + START_DEADLINE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port race: try another
                }
                if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                    // Another test's memcached may hold the port we picked (it was
                    // free when we looked): only ours answers with our child's pid.
                    if memcached_pid(stream, hello) == Some(child.id()) {
                        return Some(Memcached { child, addr });
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("memcached did not start");
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// Waits (bounded) for memcached to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        wait_deadline(&mut self.child, within)
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// A client connection with deadlines

pub struct Conn {
    pub stream: TcpStream,
    /// Bytes read past the last reply taken.
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, READ_DEADLINE).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads until `done(buffered)` returns the length of a complete reply;
    /// panics at the deadline or on EOF.
    fn read_until(&mut self, what: &str, mut done: impl FnMut(&[u8]) -> Option<usize>) -> Vec<u8> {
        let deadline = Instant::now() + READ_DEADLINE;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(n) = done(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no complete {what} within {READ_DEADLINE:?}; have {:?}",
                show(&self.buf)
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed while waiting for {what}; have {:?}",
                    show(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "read error waiting for {what}: {e}; have {:?}",
                    show(&self.buf)
                ),
            }
        }
    }

    /// Exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        self.read_until("reply", |b| (b.len() >= n).then_some(n))
    }

    /// One binary request and its one response: (status, cas).
    pub fn binary(&mut self, request: proto::binary::BinRequest<'_>) -> (u16, u64) {
        let mut wire = Vec::new();
        request.encode(&mut wire);
        self.send(&wire);
        let bytes = self.read_binary_through(request.opcode as u8, request.opaque);
        let proto::binary::ResponseParse::Complete { response, .. } =
            proto::binary::parse_response(&bytes)
        else {
            panic!("not a binary response: {bytes:?}");
        };
        (response.status, response.cas)
    }

    /// Binary responses through the one with `opcode` and `opaque` (a noop's,
    /// sent last to mark the end of a pipeline), that one included.
    pub fn read_binary_through(&mut self, opcode: u8, opaque: u32) -> Vec<u8> {
        self.read_until("binary responses", |b| {
            let mut pos = 0;
            while b.len() >= pos + 24 {
                let body = u32::from_be_bytes(b[pos + 8..pos + 12].try_into().unwrap()) as usize;
                let end = pos + 24 + body;
                if b.len() < end {
                    return None;
                }
                let this = u32::from_be_bytes(b[pos + 12..pos + 16].try_into().unwrap());
                if b[pos + 1] == opcode && this == opaque {
                    return Some(end);
                }
                pos = end;
            }
            None
        })
    }

    /// One line, CRLF included.
    pub fn read_line(&mut self) -> Vec<u8> {
        self.read_until("line", |b| {
            b.windows(2).position(|w| w == b"\r\n").map(|p| p + 2)
        })
    }

    /// Everything up to and including `suffix` at the end of a line.
    pub fn read_through(&mut self, suffix: &[u8]) -> Vec<u8> {
        let suffix = suffix.to_vec();
        self.read_until("reply", move |b| {
            find_line(b, &suffix).map(|p| p + suffix.len())
        })
    }

    /// Sends `bytes` followed by `mn` and returns everything before the
    /// `MN` that answers it: the complete reply to `bytes`, nothing more and
    /// nothing less, even when `bytes` expects no reply at all. `mn` lines
    /// inside `bytes` are counted (so a data block must not hold one).
    pub fn round_trip(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out.extend_from_slice(b"mn\r\n");
        self.send(&out);
        let marks = count_mn(&out);
        self.read_mn(marks)
    }

    /// Reads through the `marks`-th `MN` line and returns what came before the last.
    pub fn read_mn(&mut self, marks: usize) -> Vec<u8> {
        let mut reply = self.read_until("reply ending in MN", |b| {
            let mut seen = 0;
            let mut pos = 0;
            for line in b.split_inclusive(|&c| c == b'\n') {
                if !line.ends_with(b"\n") {
                    break;
                }
                pos += line.len();
                if line == b"MN\r\n" {
                    seen += 1;
                    if seen == marks {
                        return Some(pos);
                    }
                }
            }
            None
        });
        reply.truncate(reply.len() - 4);
        reply
    }

    /// One line, or what came before the server closed without ending one.
    pub fn read_line_or_eof(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + READ_DEADLINE;
        let mut chunk = vec![0u8; 4096];
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.buf.drain(..p + 2).collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "neither a line nor EOF within {READ_DEADLINE:?}"
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return std::mem::take(&mut self.buf);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read error: {e}"),
            }
        }
    }

    /// Reads until the server closes the connection; returns what came first.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + READ_DEADLINE;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "connection still open after {READ_DEADLINE:?}; read {:?}",
                show(&self.buf)
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return std::mem::take(&mut self.buf);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read error waiting for EOF: {e}"),
            }
        }
    }

    /// Asserts that nothing arrives within `quiet` (used sparingly: only to
    /// show that a reply is *not* sent).
    pub fn assert_silent(&mut self, quiet: Duration) {
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("connection closed; expected it to stay open and silent"),
            Ok(n) => panic!("unexpected bytes: {:?}", show(&chunk[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read error: {e}"),
        }
    }

    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    /// set + STORED, the common set-up step.
    pub fn set(&mut self, key: &str, value: &[u8]) {
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.send(&req);
        assert_eq!(show(&self.read_line()), "STORED\r\n", "set {key}");
    }

    /// get of one key: the value, or None on a miss.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
        let reply = self.read_through(b"END\r\n");
        let values = parse_values(&reply);
        assert!(values.len() <= 1, "{:?}", show(&reply));
        values.into_iter().next().map(|(_, v)| v)
    }

    /// `stats [section]` as (name, value) pairs in order.
    pub fn stats(&mut self, section: &str) -> Vec<(String, String)> {
        let cmd = if section.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {section}\r\n")
        };
        self.send(cmd.as_bytes());
        let reply = self.read_through(b"END\r\n");
        parse_stats(&reply)
    }
}

/// `STAT name value` lines (END excluded).
pub fn parse_stats(reply: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(reply);
    text.lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub fn stat(stats: &[(String, String)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no STAT {name}"))
        .1
        .parse()
        .unwrap_or_else(|_| panic!("STAT {name} is not a number"))
}

/// The (key, value) pairs of a `VALUE ... END` reply, in order.
pub fn parse_values(reply: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = reply;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = &rest[..eol];
        rest = &rest[eol + 2..];
        if line == b"END" {
            break;
        }
        let head = String::from_utf8_lossy(line);
        let mut t = head.split(' ');
        assert_eq!(t.next(), Some("VALUE"), "in {:?}", show(reply));
        let key = t.next().unwrap().as_bytes().to_vec();
        let _flags = t.next();
        let len: usize = t.next().unwrap().parse().unwrap();
        out.push((key, rest[..len].to_vec()));
        assert_eq!(&rest[len..len + 2], b"\r\n");
        rest = &rest[len + 2..];
    }
    out
}

fn find_line(b: &[u8], suffix: &[u8]) -> Option<usize> {
    let mut pos = 0;
    for line in b.split_inclusive(|&c| c == b'\n') {
        if !line.ends_with(b"\n") {
            return None;
        }
        if line == suffix {
            return Some(pos);
        }
        pos += line.len();
    }
    None
}

/// Lines that are `mn` requests (`mn`, `mn <anything>`).
fn count_mn(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n')
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l == b"mn" || l.starts_with(b"mn ")
        })
        .count()
}

/// Bytes for a failure message: printable, CRLF kept visible, long runs cut.
pub fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 300 {
        format!(
            "{}…({} bytes)",
            s.chars().take(300).collect::<String>(),
            b.len()
        )
    } else {
        s.into_owned()
    }
}

// ---------------------------------------------------------------------------
// Protocol tables

/// One row of a protocol table: the bytes sent and the reply expected.
///
/// In `want`, `<n>` stands for an integer (CAS values, times, sizes that
/// legitimately differ), `<cas>` for a CAS value that is remembered, and
/// `<*>` for any text up to the end of the line. In `sent`, `<cas>` is
/// replaced by the last remembered CAS value.
#[derive(Clone, Debug)]
pub struct Row {
    pub sent: Vec<u8>,
    pub want: Vec<u8>,
    /// memcached 1.6.18's reply, where corecache deliberately differs
    /// (docs/protocol.md); `None`: the same as `want`.
    pub memcached: Option<Vec<u8>>,
    /// The server closes the connection after replying.
    pub closes: bool,
}

/// A row both servers answer the same way.
pub fn row(sent: impl AsRef<[u8]>, want: impl AsRef<[u8]>) -> Row {
    Row {
        sent: sent.as_ref().to_vec(),
        want: want.as_ref().to_vec(),
        memcached: None,
        closes: false,
    }
}

/// A row where corecache deliberately answers differently from memcached.
pub fn deviation(
    sent: impl AsRef<[u8]>,
    corecache: impl AsRef<[u8]>,
    memcached: impl AsRef<[u8]>,
) -> Row {
    Row {
        memcached: Some(memcached.as_ref().to_vec()),
        ..row(sent, corecache)
    }
}

/// A row after which the server closes the connection (the next row gets a
/// new one).
pub fn closing(sent: impl AsRef<[u8]>, want: impl AsRef<[u8]>) -> Row {
    Row {
        closes: true,
        ..row(sent, want)
    }
}

/// Which server a table runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Corecache,
    Memcached,
}

/// Runs the rows in order over one connection (a new one after a closing
/// row), asserting each reply.
pub fn run_table(addr: SocketAddr, target: Target, rows: &[Row]) {
    let mut conn = Conn::connect(addr);
    let mut cas = String::from("0");
    for (i, r) in rows.iter().enumerate() {
        let sent = replace(&r.sent, b"<cas>", cas.as_bytes());
        let want = match (target, &r.memcached) {
            (Target::Memcached, Some(m)) => m,
            _ => &r.want,
        };
        let got = if r.closes {
            conn.send(&sent);
            let got = conn.read_to_eof();
            conn = Conn::connect(addr);
            got
        } else {
            conn.round_trip(&sent)
        };
        if let Err(why) = matches(want, &got, &mut cas) {
            panic!(
                "{target:?}, row {i}: sent {:?}\n  want {:?}\n  got  {:?}\n  ({why})",
                show(&sent),
                show(want),
                show(&got)
            );
        }
    }
}

/// Runs a table against corecache and, when memcached is installed, against
/// memcached as well: the table is then a differential test.
/// memcached goes first: a row it fails is a wrong row, not a corecache bug.
pub fn run_differential(test: &str, server: &Server, rows: &[Row]) {
    if let Some(mc) = Memcached::start(test) {
        run_table(mc.addr, Target::Memcached, rows);
    }
    run_table(server.addr, Target::Corecache, rows);
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Matches `got` against the pattern `want` (see [`Row`]).
pub fn matches(want: &[u8], got: &[u8], cas: &mut String) -> Result<(), String> {
    let (mut w, mut g) = (0, 0);
    while w < want.len() {
        let rest = &want[w..];
        if rest.starts_with(b"<n>") || rest.starts_with(b"<cas>") {
            let start = g;
            if got.get(g) == Some(&b'-') {
                g += 1;
            }
            while got.get(g).is_some_and(u8::is_ascii_digit) {
                g += 1;
            }
            if g == start {
                return Err(format!("expected a number at byte {start}"));
            }
            if rest.starts_with(b"<cas>") {
                *cas = String::from_utf8_lossy(&got[start..g]).into_owned();
                w += 5;
            } else {
                w += 3;
            }
        } else if rest.starts_with(b"<*>") {
            while g < got.len() && got[g] != b'\r' {
                g += 1;
            }
            w += 3;
        } else {
            if got.get(g) != Some(&want[w]) {
                return Err(format!("first difference at byte {g}"));
            }
            w += 1;
            g += 1;
        }
    }
    if g != got.len() {
        return Err(format!("{} unexpected bytes at the end", got.len() - g));
    }
    Ok(())
}

/// Asserts byte equality, printing both sides readably (cut when long).
#[track_caller]
pub fn assert_bytes(got: impl AsRef<[u8]>, want: impl AsRef<[u8]>, context: &str) {
    let (got, want) = (got.as_ref(), want.as_ref());
    if got != want {
        let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        panic!(
            "{context}: replies differ at byte {at} (got {} bytes, want {})\n  got  …{:?}\n  want …{:?}",
            got.len(),
            want.len(),
            show(&got[at.saturating_sub(40)..]),
            show(&want[at.saturating_sub(40)..]),
        );
    }
}
