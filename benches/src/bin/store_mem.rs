//! Memory benchmark: loads N items (32-byte keys, 100-byte values by default) into one
//! store in this process and reports resident bytes per item and the overhead over the
//! raw key + value bytes. `--mixed` draws value sizes uniformly from 50..=300 to show
//! size-class rounding on a spread of sizes.
//!
//! `--smaps` adds the resident bytes of the largest mappings, to tell the arena, the
//! index tables and the heap apart.
//!
//! Usage: store_mem [--items N] [--limit-mib M] [--policy P] [--growth F] [--mixed] [--smaps]

use benches::{Rng, key32, rss_bytes};
use store::{HashedKey, Policy, Store, StoreConfig};

fn main() {
    let mut items: u64 = 1_000_000;
    let mut limit_mib: usize = 1024;
    let mut policy = Policy::default();
    let mut growth = StoreConfig::default().growth_factor;
    let mut mixed = false;
    let mut smaps = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("missing value");
        match a.as_str() {
            "--items" => items = val().parse().unwrap(),
            "--limit-mib" => limit_mib = val().parse().unwrap(),
            "--growth" => growth = val().parse().unwrap(),
            "--mixed" => mixed = true,
            "--smaps" => smaps = true,
            "--policy" => {
                let v = val();
                policy = *Policy::ALL
                    .iter()
                    .find(|p| p.name() == v)
                    .expect("unknown policy");
            }
            _ => panic!("unknown argument {a}"),
        }
    }
    let baseline = rss_bytes();
    let cfg = StoreConfig {
        memory_limit: limit_mib << 20,
        eviction: policy,
        growth_factor: growth,
        ..StoreConfig::default()
    };
    let mut s = Store::new(cfg).expect("store");
    let after_new = rss_bytes();
    let mut rng = Rng(7);
    let value = vec![b'v'; 300];
    let mut payload = 0u64;
    for i in 0..items {
        let vlen = if mixed {
            50 + rng.below(251) as usize
        } else {
            100
        };
        s.set(HashedKey::new(&key32(i)), &value[..vlen], 0, 0);
        payload += 32 + vlen as u64;
    }
    // Idle time: let the crawler finish any index migration, as a server would.
    while s.crawl(1 << 16).index_migrating {}
    let loaded = rss_bytes();
    let st = s.stats();
    assert_eq!(st.curr_items, items, "the limit is too small for the items");
    let n = items as f64;
    let raw = payload as f64 / n;
    println!("policy                 {}", policy.name());
    println!("growth_factor          {growth}");
    println!("backing                {}", s.backing().name());
    println!("items                  {items}");
    println!("key+value bytes/item   {raw:.1}");
    println!(
        "process rss            {} bytes (baseline {baseline}, after new {after_new})",
        loaded
    );
    println!("rss bytes/item         {:.1}", loaded as f64 / n);
    println!(
        "overhead/item          {:.1}  (rss/item - key+value)",
        loaded as f64 / n - raw
    );
    println!(
        "  store-only overhead  {:.1}  (rss minus the baseline before Store::new)",
        (loaded - baseline) as f64 / n - raw
    );
    println!(
        "  index bytes/item     {:.2}  ({} slot bytes)",
        st.hash_bytes as f64 / n,
        st.hash_bytes
    );
    println!(
        "  slab bytes/item      {:.2}  ({} bytes of pages)",
        st.slab_bytes as f64 / n,
        st.slab_bytes
    );
    let chunk_bytes: u64 = s
        .slab_stats()
        .iter()
        .map(|c| c.number * c.chunk_size as u64)
        .sum();
    println!(
        "  header+rounding/item {:.2}  (chunk bytes of live items - key+value)",
        chunk_bytes as f64 / n - raw
    );
    println!(
        "  partial-page slack   {:.2}  (pages handed out - chunk bytes)",
        (st.slab_bytes - chunk_bytes) as f64 / n
    );
    println!("  size classes         {}", s.class_sizes().len());
    println!("  side bytes           {}", s.side_bytes());
    for c in s.slab_stats().iter().take(4) {
        println!(
            "  class {:3} chunk {:5} pages {:5} items {:8}",
            c.id, c.chunk_size, c.total_pages, c.number
        );
    }
    if smaps {
        print_largest_mappings(8);
    }
}

/// The `n` mappings of this process with the most resident bytes, from /proc/self/smaps.
fn print_largest_mappings(n: usize) {
    let text = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut maps: Vec<(u64, u64, String)> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let (a, b) = first.split_once('-').unwrap();
            let size = u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap();
            let name = words.nth(4).unwrap_or("[anon]").to_string();
            maps.push((0, size, name));
        } else if first == "Rss:"
            && let Some(m) = maps.last_mut()
        {
            m.0 = words.next().unwrap().parse::<u64>().unwrap() * 1024;
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.0));
    for (rss, size, name) in maps.iter().take(n) {
        println!("  mapping rss {rss:11} of {size:11} bytes  {name}");
    }
    let rest: u64 = maps.iter().skip(n).map(|m| m.0).sum();
    println!("  other mappings rss {rest}");
}
