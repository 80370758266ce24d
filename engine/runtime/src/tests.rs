//! The runtime's pieces together over real loopback sockets: multishot
//! accept, multishot receive into provided buffers, sends, buffer recycling.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::*;

const ACCEPT: u8 = 1;
const RECV: u8 = 2;
const SEND: u8 = 3;

/// Echoes what each client sends, upper-cased, until `expected_bytes` have
/// been echoed, with a pool of `bufs` buffers that starts with `first`;
/// returns how many buffers the kernel handed out and how many the pool ended
/// with. A receive that found no buffer is armed again. With `surplus`, every
/// buffer goes back as one no reader waited for, and no ENOBUFS is reported.
fn echo_server(
    listener: OwnedFd,
    expected_bytes: usize,
    bufs: u16,
    first: u16,
    buf_size: u32,
    surplus: bool,
) -> (usize, u16) {
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let mut pool = BufRing::new(&ring, 0, bufs, first, buf_size).unwrap();
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(Token::op(ACCEPT).to_user_data());
    // SAFETY: accept references only the listener, which outlives the loop.
    unsafe { ring.push(&accept).unwrap() };
    let mut conns: Vec<OwnedFd> = Vec::new();
    let mut outs: Vec<Vec<u8>> = Vec::new();
    let mut echoed = 0;
    let mut buffers_used = 0;
    let mut completions = Vec::new();
    while echoed < expected_bytes {
        ring.submit_and_wait(1, Some(Duration::from_secs(10)))
            .unwrap();
        completions.clear();
        ring.drain(&mut completions);
        assert!(!completions.is_empty(), "server stalled");
        for c in &completions {
            let t = c.token();
            match t.op {
                ACCEPT => {
                    assert!(c.result >= 0, "accept failed: {}", c.result);
                    // SAFETY: a successful accept returns a new fd we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
                    let slot = conns.len() as u32;
                    arm(&mut ring, &fd, slot, pool.group());
                    conns.push(fd);
                    outs.push(Vec::new());
                }
                RECV => {
                    if c.result == -libc::ENOBUFS {
                        if !surplus {
                            pool.starved();
                        }
                        let slot = t.slot as usize;
                        arm(&mut ring, &conns[slot], slot as u32, pool.group());
                        continue;
                    }
                    if c.result <= 0 {
                        continue;
                    }
                    let bid = c.buffer_id().expect("multishot receive selects a buffer");
                    buffers_used += 1;
                    let data = pool.get(bid, c.result as usize);
                    let slot = t.slot as usize;
                    // One send at a time per connection, so the Vec is not
                    // touched while the kernel reads it.
                    assert!(outs[slot].is_empty());
                    outs[slot].extend(data.iter().map(|b| b.to_ascii_uppercase()));
                    if surplus {
                        pool.recycle_surplus(bid);
                    } else {
                        pool.recycle(bid);
                    }
                    let out = &outs[slot];
                    let send = opcode::Send::new(
                        types::Fd(conns[slot].as_raw_fd()),
                        out.as_ptr(),
                        out.len() as u32,
                    )
                    .build()
                    .user_data(Token::new(SEND, slot as u32, 0).to_user_data());
                    // SAFETY: outs[slot] is neither grown nor dropped until the
                    // send's completion below clears it.
                    unsafe { ring.push(&send).unwrap() };
                    assert!(c.more(), "multishot receive ended early");
                }
                SEND => {
                    let slot = t.slot as usize;
                    assert_eq!(
                        c.result as usize,
                        outs[slot].len(),
                        "short send in a small test"
                    );
                    echoed += outs[slot].len();
                    outs[slot].clear();
                }
                other => panic!("unexpected op {other}"),
            }
        }
        pool.publish();
    }
    (buffers_used, pool.active())
}

fn arm(ring: &mut Ring, fd: &OwnedFd, slot: u32, group: u16) {
    let recv = opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), group)
        .build()
        .user_data(Token::new(RECV, slot, 0).to_user_data());
    // SAFETY: the receive writes only into provided buffers.
    unsafe { ring.push(&recv).unwrap() };
}

/// `clients` connections to the echo server at `addr`, each sending `msg` `rounds`
/// times and checking every echo; returns when all are done.
fn echo_clients(addr: std::net::SocketAddr, clients: usize, rounds: usize, msg: &'static [u8]) {
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for _ in 0..rounds {
                    s.write_all(msg).unwrap();
                    let mut back = vec![0; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.to_ascii_uppercase());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// Runs `echo_server` (`bufs` buffers, `first` of them handed out at start,
/// 64 bytes each) against `clients` clients of `rounds` messages each; returns
/// what it returns.
fn echo_run(clients: usize, rounds: usize, bufs: u16, first: u16, surplus: bool) -> (usize, u16) {
    let listener = socket::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = socket::local_addr(&listener).unwrap();
    let msg = b"hello ring\r\n";
    let expected = clients * rounds * msg.len();
    let server =
        std::thread::spawn(move || echo_server(listener, expected, bufs, first, 64, surplus));
    echo_clients(addr, clients, rounds, msg);
    server.join().unwrap()
}

#[test]
fn multishot_accept_and_receive_echo_across_clients() {
    // 200 receives through a pool of 8 buffers: recycling works.
    let (used, active) = echo_run(4, 50, 8, 8, false);
    assert!(used >= 4 * 50 / 2);
    assert_eq!(active, 8);
}

/// The pool hands the kernel only `first` buffers and doubles when a turn
/// takes half of them or a receive finds none (the receive is armed again), up
/// to its count; every echo comes back intact.
#[test]
fn the_buffer_pool_starts_small_and_grows_with_the_load() {
    let (used, active) = echo_run(16, 50, 64, 1, false);
    assert!(used >= 16 * 50 / 2, "{used}");
    assert!(active > 1 && active <= 64, "{active}");
}

/// The same load with every buffer given back as surplus (its connection was
/// not reading): the pool stays at its first size, and works through one
/// buffer (an ENOBUFS re-arms the receive).
#[test]
fn surplus_receives_do_not_grow_the_pool() {
    let (used, active) = echo_run(16, 50, 64, 1, true);
    assert!(used >= 16 * 50 / 2, "{used}");
    assert_eq!(active, 1);
}
