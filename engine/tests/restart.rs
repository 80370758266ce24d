//! Warm restart (`-e`): items survive SIGUSR1 (and SIGTERM) byte for byte, with their
//! flags, CAS and TTL less the time stopped; a restart under a writer loses no
//! acknowledged write; anything that does not match starts empty with its reason.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Conn, Server, show, stat};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir")
}

fn start(file: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["-e", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn stop(mut s: Server, sig: libc::c_int) -> Vec<String> {
    let status = s.stop_with(sig);
    assert!(status.success(), "exit {status:?}: {:?}", s.log());
    let log = s.log();
    assert!(
        log.iter().any(|l| l.contains("memory file saved")),
        "{log:?}"
    );
    log
}

fn meta(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.meta", file.display()))
}

/// What `mg <key> v f t c` answers: value, flags, ttl, cas (None on a miss).
type Item = (Vec<u8>, u32, i64, u64);

/// Every key's item, through pipelined `mg` batches of 2000 (with the time each
/// batch was read, for TTLs).
fn snapshot_timed(c: &mut Conn, keys: &[String]) -> (Vec<Option<Item>>, Vec<Instant>) {
    let mut out = Vec::with_capacity(keys.len());
    let mut times = Vec::new();
    for batch in keys.chunks(2000) {
        times.push(Instant::now());
        let mut req = Vec::new();
        for k in batch {
            req.extend_from_slice(format!("mg {k} v f t c\r\n").as_bytes());
        }
        let reply = c.round_trip(&req);
        let mut rest = &reply[..];
        for _ in batch {
            let eol = rest.windows(2).position(|w| w == b"\r\n").expect("a line");
            let line = std::str::from_utf8(&rest[..eol]).unwrap().to_string();
            rest = &rest[eol + 2..];
            if line == "EN" {
                out.push(None);
                continue;
            }
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("VA"), "{line}");
            let len: usize = words.next().unwrap().parse().unwrap();
            let (mut flags, mut ttl, mut cas) = (0, 0, 0);
            for w in words {
                let (tag, v) = w.split_at(1);
                match tag {
                    "f" => flags = v.parse().unwrap(),
                    "t" => ttl = v.parse().unwrap(),
                    "c" => cas = v.parse().unwrap(),
                    _ => panic!("{line}"),
                }
            }
            out.push(Some((rest[..len].to_vec(), flags, ttl, cas)));
            rest = &rest[len + 2..];
        }
        assert!(rest.is_empty(), "{:?}", show(rest));
    }
    (out, times)
}

fn snapshot(c: &mut Conn, keys: &[String]) -> Vec<Option<Item>> {
    snapshot_timed(c, keys).0
}

fn value_of(i: usize) -> Vec<u8> {
    let len = 1 + (i * 7919) % 700;
    let seed = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|j| b'!' + ((seed >> (j % 57)) as u8 ^ j as u8) % 90)
        .collect()
}

#[test]
fn a_million_items_come_back_byte_exact_with_flags_cas_and_ttls_less_the_time_stopped() {
    const N: usize = 1_000_000;
    let d = dir();
    let file = d.path().join("mem");
    let s = start(&file, &["-m", "1024"]);
    let mut c = s.connect();
    let keys: Vec<String> = (0..N).map(|i| format!("item:{i}")).collect();
    for chunk in (0..N).collect::<Vec<_>>().chunks(5000) {
        let mut req = Vec::new();
        for &i in chunk {
            let v = value_of(i);
            // A quarter live an hour; the rest forever.
            let ttl = if i % 4 == 0 { 3600 } else { 0 };
            req.extend_from_slice(
                format!(
                    "set {} {} {ttl} {} noreply\r\n",
                    keys[i],
                    i % 7 * 1000,
                    v.len()
                )
                .as_bytes(),
            );
            req.extend_from_slice(&v);
            req.extend_from_slice(b"\r\n");
        }
        assert_eq!(show(&c.round_trip(&req)), "");
    }
    // Appends, counters and CAS updates on top.
    let mut req = Vec::new();
    for i in (0..N).step_by(1000) {
        req.extend_from_slice(format!("append {} 0 0 4 noreply\r\n-app\r\n", keys[i]).as_bytes());
    }
    for j in 0..100 {
        req.extend_from_slice(
            format!("set counter:{j} 0 0 2 noreply\r\n10\r\nincr counter:{j} {j}\r\n").as_bytes(),
        );
    }
    let reply = c.round_trip(&req);
    assert_eq!(
        reply.split(|&b| b == b'\n').count() - 1,
        100,
        "{:?}",
        show(&reply)
    );
    let mut all = keys.clone();
    all.extend((0..100).map(|j| format!("counter:{j}")));
    let (before, read_before) = snapshot_timed(&mut c, &all);
    assert!(before.iter().all(Option::is_some));
    assert_eq!(before[N].as_ref().unwrap().0, b"10");
    assert_eq!(before[N + 99].as_ref().unwrap().0, b"109");
    // Short-lived items that expire while the server is stopped: set just
    // before the stop (reading the million items above takes seconds, and an
    // item that expired before the stop may be reclaimed by the crawler
    // instead of being saved and dropped at restore).
    let mut req = Vec::new();
    for j in 0..100 {
        req.extend_from_slice(format!("set short:{j} 0 2 1\r\nx\r\n").as_bytes());
    }
    assert_eq!(c.round_trip(&req), b"STORED\r\n".repeat(100));
    stop(s, libc::SIGUSR1);
    assert!(meta(&file).exists());
    // Long enough for the 2 s items to expire while stopped.
    std::thread::sleep(Duration::from_millis(2100));

    let s = start(&file, &["-m", "1024"]);
    let log = s.log();
    assert!(!meta(&file).exists(), "the meta is consumed at start-up");
    assert!(
        log.iter()
            .any(|l| l.contains("warm restart: items recovered")),
        "{log:?}"
    );
    let mut c = s.connect();
    let (after, read_after) = snapshot_timed(&mut c, &all);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let (b, a) = (
            b.as_ref().unwrap(),
            a.as_ref().unwrap_or_else(|| panic!("{} lost", all[i])),
        );
        assert_eq!((&a.0, a.1, a.3), (&b.0, b.1, b.3), "{}", all[i]);
        if b.2 == -1 {
            assert_eq!(a.2, -1, "{}", all[i]);
        } else {
            // TTLs keep counting while stopped: the TTL fell by the time between
            // the two reads. Both runs keep whole-second clocks whose unix base is
            // truncated at start-up, so each may be up to 2 s off, and reads round.
            let gone = (read_after[i / 2000] - read_before[i / 2000]).as_secs_f64();
            let fell = (b.2 - a.2) as f64;
            assert!(
                (fell - gone).abs() <= 3.5,
                "{}: {} then {} over {gone:.1} s",
                all[i],
                b.2,
                a.2
            );
        }
    }
    let shorts = snapshot(
        &mut c,
        &(0..100).map(|j| format!("short:{j}")).collect::<Vec<_>>(),
    );
    assert!(shorts.iter().all(Option::is_none), "expired while stopped");
    let st = c.stats("");
    assert_eq!(stat(&st, "curr_items"), (N + 100) as u64);
    assert_eq!(stat(&st, "restart_items_restored"), (N + 100) as u64);
    assert_eq!(stat(&st, "restart_items_dropped"), 100);
    // CAS values stay unique: a new write gets a CAS above every one restored on
    // its shard (the low 10 bits of a CAS name the shard).
    c.set("fresh", b"1");
    let fresh = snapshot(&mut c, &["fresh".to_string()])[0]
        .as_ref()
        .unwrap()
        .3;
    let same_shard = |cas: u64| cas & 1023 == fresh & 1023;
    let max_cas = after
        .iter()
        .flatten()
        .map(|i| i.3)
        .filter(|&c| same_shard(c))
        .max();
    assert!(fresh > max_cas.unwrap(), "{fresh} after {max_cas:?}");
    // A cas with a CAS from before the restart still works.
    let b = before[5].as_ref().unwrap();
    let reply = c.round_trip(format!("cas {} 0 0 1 {}\r\nz\r\n", all[5], b.3).as_bytes());
    assert_eq!(show(&reply), "STORED\r\n");
    let items = stat(&c.stats(""), "curr_items");
    assert_eq!(items, (N + 101) as u64);
}

#[test]
fn sigterm_saves_too_and_stats_settings_names_the_file() {
    let d = dir();
    let file = d.path().join("mem");
    let s = start(&file, &[]);
    let mut c = s.connect();
    let settings = c.stats("settings");
    assert!(settings.contains(&("memory_file".to_string(), file.display().to_string())));
    c.set("k", b"v");
    stop(s, libc::SIGTERM);
    let s = start(&file, &[]);
    assert_eq!(s.connect().get("k").as_deref(), Some(&b"v"[..]));
}

/// The value a writer stores for `key` at step `seq`: self-describing, so a torn or
/// stale value is recognised.
fn versioned(key: usize, seq: u64) -> Vec<u8> {
    let head = format!("{key}:{seq}:");
    let len = head.len() + (seq as usize * 13 + key) % 300;
    head.bytes().cycle().take(len).collect()
}

fn parse_versioned(key: usize, v: &[u8]) -> u64 {
    let text = std::str::from_utf8(v).expect("utf-8 value");
    let mut parts = text.splitn(3, ':');
    assert_eq!(parts.next(), Some(key.to_string().as_str()), "{text}");
    let seq: u64 = parts.next().unwrap().parse().expect("a sequence number");
    assert_eq!(v, versioned(key, seq), "a corrupt value for key {key}");
    seq
}

#[test]
fn a_hundred_restarts_under_a_writer_lose_no_acknowledged_write() {
    const KEYS: usize = 500;
    let d = dir();
    let file = d.path().join("mem");
    // Per key: the last sequence acknowledged, and the last sent.
    let mut acked: HashMap<usize, u64> = HashMap::new();
    let mut sent: HashMap<usize, u64> = HashMap::new();
    let mut seq = 0u64;
    for round in 0..100 {
        let s = start(&file, &["-t", "2"]);
        if round > 0 {
            assert!(
                s.log()
                    .iter()
                    .any(|l| l.contains("warm restart: items recovered")),
                "round {round}: {:?}",
                s.log()
            );
        }
        // Everything acknowledged so far is there, and nothing newer than was sent.
        let mut c = s.connect();
        for k in 0..KEYS {
            let got = c.get(&format!("w:{k}"));
            match (acked.get(&k), got) {
                (None, None) => {}
                (Some(a), None) => panic!("round {round}: key {k} lost (acked {a})"),
                (a, Some(v)) => {
                    let v = parse_versioned(k, &v);
                    assert!(
                        a.is_none_or(|a| v >= *a),
                        "round {round}: key {k} went back to {v} from {a:?}"
                    );
                    assert!(
                        v <= sent[&k],
                        "round {round}: key {k} holds {v}, never sent"
                    );
                    acked.insert(k, v);
                }
            }
        }
        // A writer, stopped by the signal: each STORED it read is acknowledged.
        let stop_flag = Arc::new(AtomicBool::new(false));
        let w = std::net::TcpStream::connect(s.addr).unwrap();
        let writer = {
            let stop_flag = stop_flag.clone();
            let start_seq = seq;
            std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                let mut w = w;
                let mut r = std::io::BufReader::new(w.try_clone().unwrap());
                let mut line = Vec::new();
                let mut acked = Vec::new();
                let mut sent = Vec::new();
                let mut seq = start_seq;
                while !stop_flag.load(Ordering::Relaxed) {
                    seq += 1;
                    let k = (seq as usize * 7) % KEYS;
                    let v = versioned(k, seq);
                    let mut req = format!("set w:{k} 0 0 {}\r\n", v.len()).into_bytes();
                    req.extend_from_slice(&v);
                    req.extend_from_slice(b"\r\n");
                    sent.push((k, seq));
                    if w.write_all(&req).is_err() {
                        break;
                    }
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(_) if line == b"STORED\r\n" => acked.push((k, seq)),
                        _ => break,
                    }
                }
                (acked, sent, seq)
            })
        };
        // Let it write a while, then restart under it.
        std::thread::sleep(Duration::from_millis(20 + (round % 5) * 10));
        let mut s = s;
        let status = s.stop_with(if round % 2 == 0 {
            libc::SIGUSR1
        } else {
            libc::SIGTERM
        });
        assert!(status.success());
        stop_flag.store(true, Ordering::Relaxed);
        let (a, snt, last) = writer.join().unwrap();
        assert!(!a.is_empty(), "round {round}: the writer got nothing done");
        for (k, q) in snt {
            sent.insert(k, q);
        }
        for (k, q) in a {
            acked.insert(k, q);
        }
        seq = last;
    }
}

#[test]
fn what_does_not_match_starts_empty_and_says_why() {
    const VALUE: &[u8] = b"the one value of the restart-mismatch test";
    let d = dir();
    let file = d.path().join("mem");
    let saved = |extra: &[&str]| {
        let s = start(&file, extra);
        s.connect().set("k", VALUE);
        stop(s, libc::SIGUSR1);
    };
    let cold = |extra: &[&str], why: &str| {
        let s = start(&file, extra);
        let log = s.log().join("\n");
        assert!(
            log.contains("starting with an empty cache") || log.contains("the shard starts empty"),
            "{log}"
        );
        assert!(log.contains(why), "wanted {why:?} in {log}");
        assert_eq!(s.connect().get("k"), None);
    };
    let base = ["-m", "64", "-t", "2"];
    let with = |more: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    saved(&base);
    cold(&["-m", "128", "-t", "2"], "layout");
    saved(&base);
    cold(&["-m", "64", "-t", "1"], "shards");
    saved(&base);
    cold(&with(&["-f", "1.25"]), "growth factor");
    saved(&base);
    cold(&with(&["--eviction", "lru"]), "eviction policy");
    saved(&base);
    cold(&with(&["-I", "512k"]), "item size limit");
    // Flipped bytes in the meta.
    saved(&base);
    let mut b = std::fs::read(meta(&file)).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(meta(&file), &b).unwrap();
    cold(&base, "checksum");
    // A truncated memory file.
    saved(&base);
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    cold(&base, "bytes, not");
    // Flipped bytes in the memory file's header.
    saved(&base);
    flip(&file, 20);
    cold(&base, "header");
    // Flipped bytes among the items: the shard's checksum catches them.
    saved(&base);
    let content = std::fs::read(&file).unwrap();
    // (A value no header is likely to hold by chance: a one-byte one was
    // once found in the header's varying bytes first.)
    let at = content
        .windows(VALUE.len())
        .position(|w| w == VALUE)
        .unwrap();
    flip(&file, at as u64);
    cold(&base, "contents differ");
    // No meta at all (a crash): cold, and said so.
    cold(&base, "no restart metadata");
    // A zero-length meta stops the start, as in memcached.
    std::fs::write(meta(&file), b"").unwrap();
    let f = Server::try_start(&["-e", file.to_str().unwrap()])
        .err()
        .expect("refused");
    assert!(f.stderr.join("\n").contains("empty"), "{:?}", f.stderr);
}

fn flip(file: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x01;
    f.write_all_at(&b, at).unwrap();
}
