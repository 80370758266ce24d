//! `-s PATH` and `-a MASK`: memcached's unix stream socket, served by every
//! shard instead of TCP and UDP; the socket file's permissions, a stale file
//! from an earlier run replaced, the file removed on a graceful stop.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{READ_DEADLINE, Server, parse_stats, run_to_exit, show};

/// A directory of its own for one test's socket, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("cc-unix-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("mc.sock")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client on the socket that reads replies up to a line that ends them.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).expect("connect to the unix socket");
        stream.set_read_timeout(Some(READ_DEADLINE)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `bytes`; returns everything through the first line equal to `last`.
    fn ask(&mut self, bytes: &[u8], last: &[u8]) -> Vec<u8> {
        self.stream.write_all(bytes).unwrap();
        let deadline = Instant::now() + READ_DEADLINE;
        let mut chunk = [0u8; 4096];
        loop {
            let mut pos = 0;
            for line in self.buf.split_inclusive(|&b| b == b'\n') {
                pos += line.len();
                if line == last {
                    return self.buf.drain(..pos).collect();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {last:?} in {:?}",
                show(&self.buf)
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("closed; have {:?}", show(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}; have {:?}", show(&self.buf)),
            }
        }
    }

    fn stats(&mut self, section: &str) -> Vec<(String, String)> {
        let line = format!("stats {section}\r\n");
        parse_stats(&self.ask(line.trim_start().as_bytes(), b"END\r\n"))
    }
}

fn value<'a>(stats: &'a [(String, String)], name: &str) -> &'a str {
    &stats
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no STAT {name}"))
        .1
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn set_and_get_over_a_unix_socket_on_every_shard() {
    let dir = Dir::new("setget");
    let path = dir.socket();
    let server = Server::start_unix(&path, &["-t", "2"]);
    assert!(
        !server.log().iter().any(|l| l.contains("listening on tcp")),
        "-s serves no TCP: {:?}",
        server.log()
    );
    // Several connections, so that both shards' accepts take some, and keys
    // of both shards, so that requests cross between them.
    let mut clients: Vec<Client> = (0..8).map(|_| Client::connect(&path)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        for k in 0..8 {
            let set = format!("set k{i}-{k} 0 0 3\r\nv{i}{k}\r\n");
            assert_eq!(c.ask(set.as_bytes(), b"STORED\r\n"), b"STORED\r\n");
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let got = c.ask(
            format!("get k{}-3 k{i}-5\r\n", 7 - i).as_bytes(),
            b"END\r\n",
        );
        let want = format!(
            "VALUE k{j}-3 0 3\r\nv{j}3\r\nVALUE k{i}-5 0 3\r\nv{i}5\r\nEND\r\n",
            j = 7 - i
        );
        assert_eq!(show(&got), want);
    }
    let settings = clients[0].stats("settings");
    assert_eq!(value(&settings, "domain_socket"), path.to_str().unwrap());
    assert_eq!(value(&settings, "umask"), "700");
    let conns = clients[0].stats("conns");
    let listen = format!("unix:{}", path.display());
    let listen_lines: Vec<_> = conns
        .iter()
        .filter(|(k, _)| k.ends_with(":listen_addr"))
        .collect();
    assert_eq!(listen_lines.len(), 8, "{conns:?}");
    assert!(listen_lines.iter().all(|(_, v)| *v == listen), "{conns:?}");
    assert!(
        conns
            .iter()
            .any(|(k, v)| k.ends_with(":addr") && v.starts_with("unix:")),
        "{conns:?}"
    );
}

#[test]
fn the_mask_sets_the_socket_file_s_permissions() {
    let dir = Dir::new("mask");
    let path = dir.socket();
    let server = Server::start_unix(&path, &["-t", "1"]);
    assert_eq!(mode(&path), 0o700, "memcached's default");
    drop(server);
    for (mask, want) in [("0660", 0o660), ("755", 0o755)] {
        let server = Server::start_unix(&path, &["-t", "1", "-a", mask]);
        assert_eq!(mode(&path), want, "-a {mask}");
        let mut c = Client::connect(&path);
        assert_eq!(
            value(&c.stats("settings"), "umask"),
            format!("{want:o}"),
            "-a {mask}"
        );
        drop(server);
    }
}

/// A socket inode at `path` that no socket is bound to.
fn make_socket_file(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFSOCK | 0o755, 0) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn a_stale_socket_file_is_replaced_and_other_files_are_not() {
    let dir = Dir::new("stale");
    let path = dir.socket();
    // What a killed server leaves: a socket file nobody listens on. Made with
    // mknod rather than by binding and closing a listener: a server another
    // test forks at that moment would hold the listener until its exec, and a
    // connect in that window succeeds (seen once in CI).
    make_socket_file(&path);
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket()
    );
    assert!(UnixStream::connect(&path).is_err());
    let server = Server::start_unix(&path, &["-t", "1"]);
    let mut c = Client::connect(&path);
    assert_eq!(c.ask(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"), b"STORED\r\n");
    // Killed, the server leaves its file behind; the next one takes it over.
    drop(server);
    assert!(std::fs::symlink_metadata(&path).is_ok());
    let server = Server::start_unix(&path, &["-t", "1"]);
    let mut c = Client::connect(&path);
    assert_eq!(c.ask(b"get a\r\n", b"END\r\n"), b"END\r\n");
    drop(server);
    std::fs::remove_file(&path).unwrap();

    // A regular file is somebody's data: refuse to start, name the setting.
    std::fs::write(&path, b"not a socket").unwrap();
    let (code, _, stderr) = run_to_exit(&["-s", path.to_str().unwrap(), "-t", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.unix_socket"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[test]
fn the_socket_file_is_removed_on_sigterm() {
    let dir = Dir::new("sigterm");
    let path = dir.socket();
    let server = Server::start_unix(&path, &["-t", "2"]);
    let mut c = Client::connect(&path);
    assert_eq!(c.ask(b"mn\r\n", b"MN\r\n"), b"MN\r\n");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "{} still exists after a graceful stop",
        path.display()
    );
}

#[test]
fn tcp_flags_next_to_s_are_named_as_unused() {
    let dir = Dir::new("flags");
    let path = dir.socket();
    let server = Server::start_unix(&path, &["-t", "1", "-p", "0", "-l", "127.0.0.1"]);
    let log = server.log();
    for flag in ["-p:", "-l:"] {
        assert!(
            log.iter()
                .any(|l| l.contains(flag) && l.contains("only the unix socket")),
            "{flag} {log:?}"
        );
    }
    assert!(
        !log.iter().any(|l| l.contains("listening on tcp")),
        "{log:?}"
    );
    let mut c = Client::connect(&path);
    assert_eq!(c.ask(b"mn\r\n", b"MN\r\n"), b"MN\r\n");
}
