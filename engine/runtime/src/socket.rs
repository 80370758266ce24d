//! Socket set-up for shards and load generators. Every shard binds its own
//! socket to the same address with SO_REUSEPORT and the kernel spreads
//! connections (TCP) and datagrams (UDP) across them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A TCP listener on `addr` that other shards may also bind (SO_REUSEPORT).
pub fn tcp_listener(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A UDP socket bound to `addr` with SO_REUSEPORT.
pub fn udp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM.cloexec(),
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket.into())
}

/// A unix stream listener on `path`, its file created with permission bits
/// `mode` (e.g. 0o700). The bits are applied through the umask while binding,
/// so the file never exists with wider permissions; the umask is
/// process-wide, so call this before other threads create files.
pub fn unix_listener(path: &Path, mode: u32, backlog: i32) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    let address = SockAddr::unix(path)?;
    // SAFETY: umask only swaps the process's file-creation mask.
    let old = unsafe { libc::umask(!(mode as libc::mode_t) & 0o777) };
    let bound = socket.bind(&address);
    // SAFETY: as above, restoring the mask found.
    unsafe { libc::umask(old) };
    bound?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A connected TCP socket with Nagle off, for clients.
pub fn tcp_connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.connect(&SockAddr::from(addr))?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

/// The address a socket is bound to (to learn the port the kernel picked for port 0).
pub fn local_addr(fd: &impl AsFd) -> io::Result<SocketAddr> {
    let socket = socket2::SockRef::from(fd);
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))
}

/// The address of the peer of a connected socket.
pub fn peer_addr(fd: &impl AsFd) -> io::Result<SocketAddr> {
    let socket = socket2::SockRef::from(fd);
    socket
        .peer_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))
}

/// Turns Nagle's algorithm off: replies are already batched per loop turn.
pub fn set_nodelay(fd: &impl AsFd) -> io::Result<()> {
    socket2::SockRef::from(fd).set_tcp_nodelay(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_listener_has_the_permissions_asked_for() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("runtime-unix-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        for mode in [0o700, 0o666, 0o750] {
            let fd = unix_listener(&path, mode, 16).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{mode:o}");
            std::os::unix::net::UnixStream::connect(&path).unwrap();
            drop(fd);
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn two_listeners_share_one_ephemeral_port() {
        let first = tcp_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = local_addr(&first).unwrap();
        assert_ne!(addr.port(), 0);
        let second = tcp_listener(addr, 16).unwrap();
        assert_eq!(local_addr(&second).unwrap(), addr);
        let client = tcp_connect(addr).unwrap();
        assert_eq!(peer_addr(&client).unwrap(), addr);
    }

    #[test]
    fn udp_sockets_share_a_port() {
        let first = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = local_addr(&first).unwrap();
        let second = udp_socket(addr).unwrap();
        assert_eq!(local_addr(&second).unwrap(), addr);
    }
}
