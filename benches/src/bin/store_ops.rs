//! The criterion store workloads timed by this thread's CPU clock
//! (CLOCK_THREAD_CPUTIME_ID): on a machine shared with other builds, time slices given
//! to other processes do not count, which wall-clock criterion figures cannot avoid.
//! Five rounds of each; prints the minimum and the median in ns per operation. Rows
//! without `_hashed` hash the key inside the timed loop, as they did before the store
//! took pre-hashed keys, so their figures stay comparable across commits.
//!
//! Usage: store_ops [--iters N] [--only NAME]

use std::hint::black_box;

use benches::{Rng, key32};
use store::{HashedKey, Store, StoreConfig, key_hash};

const ITEMS: u64 = 100_000;

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn loaded(limit: usize) -> Store {
    let mut s = Store::new(StoreConfig {
        memory_limit: limit,
        ..StoreConfig::default()
    })
    .expect("store");
    for i in 0..ITEMS {
        s.set(HashedKey::new(&key32(i)), &[b'v'; 100], 0, 0);
    }
    // As the server's collapse thread does for its shards: the wholly carved
    // regions of a THP arena go to huge pages.
    while let Some(region) = s.take_carved() {
        region.collapse();
    }
    s
}

/// Set by `--only NAME`: the one measurement to run (for a profiler).
static ONLY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn report(name: &str, iters: u64, mut round: impl FnMut() -> u64) {
    if ONLY.get().is_some_and(|only| only != name) {
        return;
    }
    let mut ns: Vec<f64> = (0..5)
        .map(|_| {
            let t = cpu_ns();
            black_box(round());
            (cpu_ns() - t) as f64 / iters as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    println!("{name:32} min {:6.1} ns   median {:6.1} ns", ns[0], ns[2]);
}

fn main() {
    let mut iters: u64 = 5_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().unwrap().parse().unwrap(),
            "--only" => ONLY.set(args.next().unwrap()).unwrap(),
            _ => panic!("unknown argument {a}"),
        }
    }
    let mut rng = Rng(42);
    let order: Vec<[u8; 32]> = (0..1 << 16).map(|_| key32(rng.below(ITEMS))).collect();
    let mask = order.len() - 1;
    let mut s = loaded(256 << 20);
    let mut i = 0usize;
    report("get_hit_100k_random", iters, || {
        let mut n = 0;
        for _ in 0..iters {
            i += 1;
            n += s
                .get(HashedKey::new(&order[i & mask]))
                .map_or(0, |v| v.value.len());
        }
        n as u64
    });
    report("get_hit_1k_hot", iters, || {
        let mut n = 0;
        for _ in 0..iters {
            i += 1;
            n += s
                .get(HashedKey::new(&order[i & 1023]))
                .map_or(0, |v| v.value.len());
        }
        n as u64
    });
    let value = [b'w'; 100];
    report("set_100b_overwrite", iters, || {
        for _ in 0..iters {
            i += 1;
            black_box(s.set(HashedKey::new(&order[i & mask]), &value, 0, 0));
        }
        0
    });
    report("get_miss", iters, || {
        let mut n = 0;
        for _ in 0..iters {
            i += 1;
            n += s
                .get(HashedKey::new(&key32(ITEMS + (i as u64 & 0xffff))))
                .is_none() as u64;
        }
        n
    });
    // The shard hashes a key once, to route and prefetch it, and hands that hash to
    // the store: these rows time the store's part alone.
    let hashed: Vec<HashedKey<'_>> = order
        .iter()
        .map(|k| HashedKey::with_hash(k, key_hash(k)))
        .collect();
    report("get_hit_100k_random_hashed", iters, || {
        let mut n = 0;
        for _ in 0..iters {
            i += 1;
            n += s.get(hashed[i & mask]).map_or(0, |v| v.value.len());
        }
        n as u64
    });
    report("set_100b_overwrite_hashed", iters, || {
        for _ in 0..iters {
            i += 1;
            black_box(s.set(hashed[i & mask], &value, 0, 0));
        }
        0
    });
    drop(s);
    let mut full = loaded(12 << 20);
    let mut n = ITEMS;
    report("set_100b_new_key_evicting", iters, || {
        for _ in 0..iters {
            n += 1;
            black_box(full.set(HashedKey::new(&key32(n)), &value, 0, 0));
        }
        0
    });
}
