//! Hit ratio of every eviction policy on a zipf workload, all at the same memory limit
//! (so per-item metadata costs capacity): the cache gets the memory that 10% of the key
//! space needs with a 20-byte header (152 bytes per item; since the exptime word went
//! optional the item is 148 bytes in the same 152-byte class, and the limit is kept so
//! that figures compare). Demand fill: a miss sets the key.
//!
//! Usage: hit_ratio [--keys N] [--requests N] [--cache F] [--skews 0.9,1.1]

use benches::{Rng, Zipf, key32};
use store::{HashedKey, HugePages, Policy, Store, StoreConfig};

fn main() {
    let mut keys: usize = 1_000_000;
    let mut requests: u64 = 20_000_000;
    let mut cache = 0.1;
    let mut skews = vec![0.9, 1.1];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("missing value");
        match a.as_str() {
            "--keys" => keys = v.parse().unwrap(),
            "--requests" => requests = v.parse().unwrap(),
            "--cache" => cache = v.parse().unwrap(),
            "--skews" => skews = v.split(',').map(|s| s.parse().unwrap()).collect(),
            _ => panic!("unknown argument {a}"),
        }
    }
    let value = [b'v'; 100];
    // 152 bytes per item: key 32 + value 100 + a 20-byte header (the chunk size).
    let limit = ((keys as f64 * cache * 152.0) as usize).next_multiple_of(1 << 20);
    let warmup = requests / 5;
    println!(
        "keys {keys}, requests {requests} (first {warmup} not counted), memory {} MiB",
        limit >> 20
    );
    println!("| policy | skew | hit ratio | items held | evictions |");
    println!("|---|---|---|---|---|");
    for &skew in &skews {
        let zipf = Zipf::new(keys, skew);
        for policy in Policy::ALL {
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
                let k = key32(zipf.sample(&mut rng) as u64);
                let k = HashedKey::new(&k);
                let hit = s.get(k).is_some();
                if r >= warmup {
                    counted += 1;
                    hits += hit as u64;
                }
                if !hit {
                    s.set(k, &value, 0, 0);
                }
            }
            let st = s.stats();
            println!(
                "| {} | {skew} | {:.4} | {} | {} |",
                policy.name(),
                hits as f64 / counted as f64,
                st.curr_items,
                st.evictions
            );
        }
    }
}
