//! Store micro-benchmarks: get hit and set of a 100-byte value on one shard's store
//! (32-byte keys, fixed seed). Run pinned: `taskset -c 1 cargo bench -p benches --bench store`.

use std::hint::black_box;

use benches::{Rng, key32};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store::{HashedKey, Store, StoreConfig, key_hash};

const ITEMS: u64 = 100_000;

fn loaded(limit: usize) -> (Store, Vec<[u8; 32]>) {
    let mut s = Store::new(StoreConfig {
        memory_limit: limit,
        ..StoreConfig::default()
    })
    .expect("store");
    let value = [b'v'; 100];
    for i in 0..ITEMS {
        s.set(HashedKey::new(&key32(i)), &value, 0, 0);
    }
    // As the server's collapse thread does for its shards: the wholly carved
    // regions of a THP arena go to huge pages.
    while let Some(region) = s.take_carved() {
        region.collapse();
    }
    let mut rng = Rng(42);
    // 64 Ki keys (2 MiB): the harness's own key reads stay in cache.
    let order = (0..1 << 16).map(|_| key32(rng.below(ITEMS))).collect();
    (s, order)
}

fn store_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    let (mut s, order) = loaded(256 << 20);
    let mask = order.len() - 1;

    let mut i = 0;
    g.bench_function("get_hit_100k_random", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                s.get(HashedKey::new(&order[i & mask]))
                    .map(|v| v.value.len()),
            )
        })
    });
    // The same gets as the shard runs them under pipelined load: the index
    // slot is prefetched eight keys ahead and the item four keys ahead
    // (engine/src/shard/input.rs), so the cache misses overlap. In this tight
    // loop the CPU already overlaps independent gets out of order, so expect
    // little gain here; in the server, parsing and encoding between two gets
    // fill the window and the prefetch is what overlaps the misses.
    // The shard hands the hash it prefetched with over to the store.
    let hashes: Vec<u64> = order.iter().map(|k| key_hash(k)).collect();
    let mut i = 0;
    g.bench_function("get_hit_100k_random_prefetched", |b| {
        b.iter(|| {
            i += 1;
            s.prefetch_index(hashes[(i + 8) & mask]);
            s.prefetch_item(hashes[(i + 4) & mask]);
            let key = HashedKey::with_hash(&order[i & mask], hashes[i & mask]);
            black_box(s.get(key).map(|v| v.value.len()))
        })
    });
    let mut i = 0;
    g.bench_function("set_100b_overwrite_prefetched", |b| {
        b.iter(|| {
            i += 1;
            s.prefetch_index(hashes[(i + 8) & mask]);
            s.prefetch_item(hashes[(i + 4) & mask]);
            let key = HashedKey::with_hash(&order[i & mask], hashes[i & mask]);
            black_box(s.set(key, &[b'w'; 100], 0, 0))
        })
    });
    let mut i = 0;
    g.bench_function("get_hit_1k_hot", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                s.get(HashedKey::new(&order[i & 1023]))
                    .map(|v| v.value.len()),
            )
        })
    });
    let value = [b'w'; 100];
    let mut i = 0;
    g.bench_function("set_100b_overwrite", |b| {
        b.iter(|| {
            i += 1;
            black_box(s.set(HashedKey::new(&order[i & mask]), &value, 0, 0))
        })
    });
    // The CAS word on demand: a set, then a read of the new version. `gets` gives it
    // its CAS word (a move unless its chunk has 8 bytes spare), `get` does not: the
    // difference is what a client that reads everything with its CAS pays per version.
    for with_cas in [false, true] {
        let mut i = 0;
        let name = if with_cas {
            "set_then_gets"
        } else {
            "set_then_get"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let key = HashedKey::new(&order[i & mask]);
                s.set(key, &value, 0, 0);
                let hit = if with_cas { s.gets(key) } else { s.get(key) };
                black_box(hit.map(|v| v.cas))
            })
        });
    }
    let mut i = 0;
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                s.get(HashedKey::new(&key32(ITEMS + (i & 0xffff))))
                    .is_none(),
            )
        })
    });
    drop(s);

    // A full store: every new key evicts one.
    let (mut full, _) = loaded(12 << 20);
    let mut n = ITEMS;
    g.bench_function("set_100b_new_key_evicting", |b| {
        b.iter(|| {
            n += 1;
            black_box(full.set(HashedKey::new(&key32(n)), &value, 0, 0))
        })
    });
    g.finish();
}

criterion_group!(benches, store_ops);
criterion_main!(benches);
