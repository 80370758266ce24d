//! Hit ratio of every eviction policy on a zipf workload, all at the same memory limit
//! (so per-item metadata costs capacity): the cache gets the memory that 10% of the key
//! space needs with a 20-byte header (152 bytes per item; the item is 140 bytes since the
//! 8-byte header, and the limit is kept so that figures compare across header changes).
//! Demand fill: a miss sets the key.
//!
//! `--mixed` gives each key a value of 50..300 bytes (uniform, fixed per key, as
//! `mc_load --mixed` draws them); the limit is then the same fraction of the keys'
//! bytes counted the same way (key + value + 20 per key, whatever the size classes),
//! so runs with different classes compare at equal memory. `--memory-mib` sets the
//! limit outright (the shard default is 32 MiB).
//!
//! Usage: hit_ratio [--keys N] [--requests N] [--cache F] [--skews 0.9,1.1] [--mixed]
//!                  [--memory-mib M] [--policies s3fifo,lru]

use benches::{Rng, Zipf, key32};
use store::{HashedKey, HugePages, Policy, Store, StoreConfig};

/// Bytes per item the limit is computed with: a 20-byte header (the store's until
/// 2026-12-07, kept so that figures compare), key and value.
const ITEM_OVERHEAD: usize = 20;

fn main() {
    let mut keys: usize = 1_000_000;
    let mut requests: u64 = 20_000_000;
    let mut cache = 0.1;
    let mut skews = vec![0.9, 1.1];
    let mut mixed = false;
    let mut memory_mib: Option<usize> = None;
    let mut policies = Policy::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--mixed" {
            mixed = true;
            continue;
        }
        let v = args.next().expect("missing value");
        match a.as_str() {
            "--keys" => keys = v.parse().unwrap(),
            "--requests" => requests = v.parse().unwrap(),
            "--cache" => cache = v.parse().unwrap(),
            "--skews" => skews = v.split(',').map(|s| s.parse().unwrap()).collect(),
            "--memory-mib" => memory_mib = Some(v.parse().unwrap()),
            "--policies" => {
                policies = v
                    .split(',')
                    .map(|n| {
                        *Policy::ALL
                            .iter()
                            .find(|p| p.name() == n)
                            .unwrap_or_else(|| panic!("unknown policy {n}"))
                    })
                    .collect()
            }
            _ => panic!("unknown argument {a}"),
        }
    }
    // The value length of key `i`: 100 bytes, or 50..300 drawn once per key.
    let vlens: Vec<u16> = if mixed {
        let mut rng = Rng(7);
        (0..keys).map(|_| 50 + rng.below(251) as u16).collect()
    } else {
        vec![100; keys]
    };
    let key_space: usize = vlens.iter().map(|&v| 32 + v as usize + ITEM_OVERHEAD).sum();
    let limit = match memory_mib {
        Some(m) => m << 20,
        None => ((key_space as f64 * cache) as usize).next_multiple_of(1 << 20),
    };
    let value = [b'v'; 300];
    let warmup = requests / 5;
    println!(
        "keys {keys}, values {}, requests {requests} (first {warmup} not counted), memory {} MiB ({:.1}% of the keys' bytes)",
        if mixed { "50..300 B" } else { "100 B" },
        limit >> 20,
        limit as f64 * 100.0 / key_space as f64
    );
    println!("| policy | skew | hit ratio | items held | evictions | classes used |");
    println!("|---|---|---|---|---|---|");
    for &skew in &skews {
        let zipf = Zipf::new(keys, skew);
        for &policy in &policies {
            let cfg = StoreConfig {
                memory_limit: limit,
                eviction: policy,
                hugepages: HugePages::Off,
                ..StoreConfig::default()
            };
            let mut s = Store::new(cfg).expect("store");
            let mut rng = Rng(2024);
            let (mut hits, mut counted) = (0u64, 0u64);
            for r in 0..requests {
                if r % 100_000 == 0 {
                    s.set_time(2 + (r / 100_000) as u32);
                }
                let i = zipf.sample(&mut rng);
                let k = key32(i as u64);
                let k = HashedKey::new(&k);
                let hit = s.get(k).is_some();
                if r >= warmup {
                    counted += 1;
                    hits += hit as u64;
                }
                if !hit {
                    s.set(k, &value[..vlens[i] as usize], 0, 0);
                }
            }
            let st = s.stats();
            let used = s.slab_stats().iter().filter(|c| c.total_pages > 0).count();
            println!(
                "| {} | {skew} | {:.4} | {} | {} | {used} |",
                policy.name(),
                hits as f64 / counted as f64,
                st.curr_items,
                st.evictions
            );
        }
    }
}
