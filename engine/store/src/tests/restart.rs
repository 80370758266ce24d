//! Warm restart: a store saved over a memory file comes back item for item, with its
//! times moved to the new clock; a state that does not fit is refused, never served.

use std::fs::File;

use super::super::{CasLayout, Restored, StoreMode, StoreOutcome};
use super::*;

const LIMIT: usize = 8 << 20;

/// A memory file of one region (tmpfs when the machine has one).
fn region() -> File {
    let f = tempfile::tempfile_in("/dev/shm")
        .or_else(|_| tempfile::tempfile())
        .expect("temp file");
    f.set_len(LIMIT as u64).unwrap();
    f
}

fn cfg_at(policy: Policy, started: u64) -> StoreConfig {
    StoreConfig {
        process_started: started,
        ..config(LIMIT, policy)
    }
}

fn open(
    file: &File,
    cfg: StoreConfig,
    saved: Option<&[u8]>,
) -> (Store, Option<Result<Restored, String>>) {
    Store::with_memory_file(cfg, file, 0, LIMIT, saved).expect("store")
}

type Snapshot = Vec<(Vec<u8>, Vec<u8>, u32, u64, i64)>;

/// Every key's value, flags, CAS and TTL, without bumping anything.
fn snapshot(s: &mut Store, keys: &[Vec<u8>]) -> Snapshot {
    keys.iter()
        .filter_map(|k| {
            s.get(hk(k))
                .map(|v| (k.clone(), v.value.to_vec(), v.flags, v.cas, v.ttl))
        })
        .collect()
}

fn fill(s: &mut Store, n: usize) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for i in 0..n {
        let k = format!("key:{i}").into_bytes();
        let v = vec![b'a' + (i % 26) as u8; 10 + (i * 37) % 3000];
        // Every fifth item lives 100 s, every seventh 5 s; the rest forever.
        let ttl = if i % 7 == 0 {
            5
        } else if i % 5 == 0 {
            100
        } else {
            0
        };
        assert!(matches!(
            s.set(hk(&k), &v, (i % 3) as u32, ttl),
            StoreOutcome::Stored { .. }
        ));
        keys.push(k);
    }
    keys
}

#[test]
fn every_policy_comes_back_item_for_item_with_ttls_counting_the_time_stopped() {
    for policy in Policy::ALL {
        let file = region();
        let (mut s, none) = open(&file, cfg_at(policy, STARTED), None);
        assert!(none.is_none());
        s.set_time(10);
        let keys = fill(&mut s, 3000);
        s.store(StoreMode::Append, hk(b"key:1"), 0, 0, b"-tail", 0);
        s.set(hk(b"n"), b"41", 0, 0);
        s.incr(hk(b"n"), 1);
        s.delete(hk(b"key:2"));
        let before = snapshot(&mut s, &keys);
        let next_cas_before = s.next_cas();
        let state = s.save_state().unwrap();
        drop(s);

        // Stopped for 20 s (the new clock starts at 2, the old one stopped at 10): the
        // 5 s items are gone, the 100 s ones have 20 s less.
        let (mut s, outcome) = open(&file, cfg_at(policy, STARTED + 28), Some(&state));
        let r = outcome.expect("restored").expect("state accepted");
        s.set_time(2);
        let after = snapshot(&mut s, &keys);
        let expect: Snapshot = before
            .iter()
            .filter(|(_, _, _, _, ttl)| *ttl == -1 || *ttl > 20)
            .map(|(k, v, f, c, ttl)| {
                (
                    k.clone(),
                    v.clone(),
                    *f,
                    *c,
                    if *ttl == -1 { -1 } else { ttl - 20 },
                )
            })
            .collect();
        assert_eq!(after.len(), expect.len(), "{policy:?}");
        assert_eq!(after, expect, "{policy:?}");
        assert_eq!(
            r.items as usize,
            expect.len() + 1,
            "{policy:?}: the counter too"
        );
        assert_eq!(
            r.dropped as usize,
            before.len() - expect.len(),
            "{policy:?}"
        );
        assert_eq!(s.get(hk(b"n")).unwrap().value, b"42");
        assert!(s.get(hk(b"key:2")).is_none());
        assert_eq!(s.stats().curr_items, r.items);
        // CAS values never repeat across the restart.
        assert!(s.next_cas() > next_cas_before);
        // The restored store is a working store: fill it far past its limit.
        for i in 0..20_000 {
            let k = format!("more:{i}");
            s.set(hk(k.as_bytes()), &[b'z'; 700], 0, 0);
        }
        assert!(s.stats().evictions > 0, "{policy:?}");
        assert!(s.used_bytes() <= LIMIT);
    }
}

#[test]
fn a_flush_before_the_stop_stays_in_force_and_a_delayed_one_takes_effect() {
    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::Lru, STARTED), None);
    s.set_time(10);
    s.set(hk(b"old"), b"1", 0, 0);
    s.set_time(11);
    s.flush_all(0);
    s.set_time(12);
    s.set(hk(b"new"), b"2", 0, 0);
    let state = s.save_state().unwrap();
    drop(s);
    let (mut s, r) = open(&file, cfg_at(Policy::Lru, STARTED + 100), Some(&state));
    assert_eq!(r.unwrap().unwrap().items, 1);
    s.set_time(2);
    assert!(s.get(hk(b"old")).is_none());
    assert!(s.get(hk(b"new")).is_some());

    // A delayed flush whose time passes while stopped empties the store.
    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::Lru, STARTED), None);
    s.set_time(10);
    s.set(hk(b"k"), b"1", 0, 0);
    s.flush_all(5);
    let state = s.save_state().unwrap();
    drop(s);
    let (mut s, r) = open(&file, cfg_at(Policy::Lru, STARTED + 100), Some(&state));
    let r = r.unwrap().unwrap();
    assert_eq!((r.items, r.dropped), (0, 1));
    s.set_time(2);
    assert!(s.get(hk(b"k")).is_none());

    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::Lru, STARTED), None);
    s.set_time(10);
    s.set(hk(b"k"), b"1", 0, 0);
    s.flush_all(50); // at 59 on the old clock; the new one runs 20 s behind it
    let state = s.save_state().unwrap();
    drop(s);
    let (mut s, _) = open(&file, cfg_at(Policy::Lru, STARTED + 20), Some(&state));
    s.set_time(2);
    assert!(s.get(hk(b"k")).is_some());
    s.set_time(38);
    assert!(s.get(hk(b"k")).is_some());
    s.set_time(40);
    assert!(
        s.get(hk(b"k")).is_none(),
        "the delayed flush keeps its unix time"
    );
}

#[test]
fn a_state_that_does_not_fit_is_refused_and_the_store_starts_empty() {
    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::S3fifo, STARTED), None);
    s.set_time(10);
    let keys = fill(&mut s, 500);
    let state = s.save_state().unwrap();
    drop(s);

    let refused = |cfg: StoreConfig, state: &[u8], why: &str| {
        let (mut s, r) = open(&file, cfg, Some(state));
        let e = r.unwrap().unwrap_err();
        assert!(e.contains(why), "{e} (wanted {why})");
        s.set_time(2);
        assert!(snapshot(&mut s, &keys).is_empty());
        assert_eq!(s.len(), 0);
        assert!(matches!(
            s.set(hk(b"x"), b"1", 0, 0),
            StoreOutcome::Stored { .. }
        ));
    };
    let other = StoreConfig {
        eviction: Policy::Lru,
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "eviction policy");
    let other = StoreConfig {
        growth_factor: 1.25,
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "growth factor");
    // The same shard under another CAS layout (a cluster node, or another
    // index in the member list) would reuse the counter under another tag.
    let other = StoreConfig {
        cas_layout: Some(CasLayout {
            tag: 1 << 7,
            tag_bits: 14,
        }),
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "CAS tag");
    // memcached's -C: the saved items have CAS values a store without CAS
    // must not show (and the other way round, items without one).
    let other = StoreConfig {
        use_cas: false,
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "CAS setting (-C)");
    // Under -M every item carries the exptime word; an evicting run's items may not.
    let other = StoreConfig {
        evictions: false,
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "eviction setting (-M)");
    // Items stored with CAS words on demand may have none: a store whose every item
    // must carry one (a cluster node's) cannot read them.
    let other = StoreConfig {
        cas_on_demand: false,
        ..cfg_at(Policy::S3fifo, STARTED)
    };
    refused(other, &state, "CAS words");
    // A state written before 4-byte handles (version 6) starts cold.
    let mut old = state.clone();
    old[..4].copy_from_slice(&6u32.to_le_bytes());
    refused(
        cfg_at(Policy::S3fifo, STARTED),
        &old,
        "version 6, this build reads 7",
    );
    refused(
        cfg_at(Policy::S3fifo, STARTED),
        &state[..state.len() / 2],
        "truncated",
    );
    let mut flipped = state.clone();
    flipped[40] ^= 0x10;
    refused(cfg_at(Policy::S3fifo, STARTED), &flipped, "");
    // The items themselves changed behind the state's back: the checksum says so.
    let (s, _) = open(&file, cfg_at(Policy::S3fifo, STARTED), None);
    drop(s);
    // SAFETY: no store maps the file now.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    let at = map.iter().position(|&b| b == b'k').unwrap();
    map[at] = b'K';
    map.flush().unwrap();
    drop(map);
    refused(cfg_at(Policy::S3fifo, STARTED), &state, "contents differ");
}

#[test]
fn an_empty_start_after_a_failed_restore_keeps_no_flush_of_the_old_run() {
    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::Lru, STARTED), None);
    s.set_time(10);
    s.flush_all(50); // a delayed flush, due at 60 on this clock
    // What a restore that read this state and then failed leaves behind.
    s.set_time(33);
    s.reset_empty(1);
    s.set_time(2);
    s.set(hk(b"k"), b"1", 0, 0);
    s.set_time(70);
    assert!(
        s.get(hk(b"k")).is_some(),
        "the old run's delayed flush must not flush the new run's items"
    );
}

#[test]
fn s3fifo_keeps_its_ghost_history_across_a_restart() {
    let file = region();
    let (mut s, _) = open(&file, cfg_at(Policy::S3fifo, STARTED), None);
    // Four times what fits: the small queue evicts into the ghost.
    for i in 0..(4 * LIMIT / 200) {
        s.set(hk(format!("g:{i}").as_bytes()), &[b'g'; 150], 0, 0);
    }
    assert!(s.stats().evictions > 0);
    let (ghost, turn) = s.policies.ghost_words().expect("an s3fifo ghost");
    assert!(
        ghost.iter().any(|&fp| fp != 0),
        "nothing was evicted into the ghost"
    );
    let state = s.save_state().unwrap();
    drop(s);
    let (s, outcome) = open(&file, cfg_at(Policy::S3fifo, STARTED + 5), Some(&state));
    outcome.expect("restored").expect("state accepted");
    assert_eq!(s.policies.ghost_words(), Some((ghost, turn)));
}
