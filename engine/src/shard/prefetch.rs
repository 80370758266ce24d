//! Prefetching a receive's keys ahead of running them, and the one hash of
//! each key.
//!
//! The first touch of the index slot and of the item was most of the store's
//! time, at depth 1 and at depth 16; the key hashes let both be prefetched
//! ahead of use so that the latencies overlap instead of adding up: index
//! slots one receive ahead (`Shard::run_loop`), items a few requests ahead
//! (`request::process`). Items are not all prefetched at once: a receive's
//! worth of item lines at once is more misses than the core can have in
//! flight, and the prefetches stall.
//!
//! The hash computed here is also the one routing and the store use: each
//! entry remembers where its key lies in the receive buffer, and a request
//! parsed from that same place takes the hash instead of computing it again
//! (a request assembled in a connection's read buffer, or a guess that was
//! wrong, hashes its key itself).

use store::Store;

use super::route;

/// The keys of the requests in one receive, in request order.
pub struct Prefetch {
    entries: [Entry; PREFETCH_MAX],
    len: usize,
    /// How many entries have had their item prefetched.
    items_done: usize,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    /// Address and length of the key in the receive buffer.
    at: usize,
    len: usize,
    hash: u64,
    local: bool,
}

/// Items prefetched ahead of the request running.
pub const ITEMS_AHEAD: usize = 4;

/// Keys prefetched per receive; a receive holds at most a few dozen requests.
const PREFETCH_MAX: usize = 64;

impl Prefetch {
    pub fn new() -> Prefetch {
        Prefetch {
            entries: [Entry::default(); PREFETCH_MAX],
            len: 0,
            items_done: 0,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.items_done = 0;
    }

    /// First stage, one receive ahead: for every key of the requests in
    /// `input`, its hash; for the keys shard `me` of `shards` owns, their
    /// index slot is brought towards the cache. `proto::peek_keys` finds the
    /// keys without parsing the requests (they are parsed once, when they
    /// run); a receive that starts inside a split request yields no keys
    /// until its first complete line, and a wrong guess only wastes a
    /// prefetch.
    pub fn scan(&mut self, input: &[u8], store: &Store, me: usize, shards: usize) {
        self.clear();
        proto::peek_keys(input, PREFETCH_MAX, |key| {
            let hash = route::key_hash(key);
            let local = shards == 1 || route::shard_of_hash(hash, shards) == me;
            if local {
                store.prefetch_index(hash);
            }
            self.entries[self.len] = Entry {
                at: key.as_ptr() as usize,
                len: key.len(),
                hash,
                local,
            };
            self.len += 1;
        });
    }

    /// Second stage: keeps item prefetches `ITEMS_AHEAD` keys ahead of
    /// `until`, the keys of the requests handled so far in this receive.
    pub fn items_until(&mut self, store: &Store, until: usize) {
        let until = until.min(self.len);
        while self.items_done < until {
            let e = self.entries[self.items_done];
            if e.local {
                store.prefetch_item(e.hash);
            }
            self.items_done += 1;
        }
    }

    /// The hash of `key`, the `index`-th key of this receive: the one the scan
    /// computed when the key is the very bytes it hashed, otherwise computed now.
    #[inline]
    pub fn hash_of(&self, index: usize, key: &[u8]) -> u64 {
        match self.entries[..self.len].get(index) {
            Some(e) if e.at == key.as_ptr() as usize && e.len == key.len() => e.hash,
            _ => route::key_hash(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(store::StoreConfig {
            memory_limit: 4 << 20,
            hugepages: store::HugePages::Off,
            ..store::StoreConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_key_parsed_from_the_scanned_bytes_reuses_its_hash() {
        let input = b"get alpha beta\r\nset gamma 0 0 1\r\nx\r\n";
        let mut p = Prefetch::new();
        p.scan(input, &store(), 0, 1);
        assert_eq!(p.len, 3);
        let beta = &input[10..14];
        assert_eq!(beta, b"beta");
        assert_eq!(p.hash_of(1, beta), route::key_hash(b"beta"));
        assert_eq!(
            p.entries[1].at,
            beta.as_ptr() as usize,
            "taken from the scan"
        );
    }

    #[test]
    fn other_bytes_or_a_wrong_index_hash_the_key_again() {
        let input = b"get alpha\r\n";
        let mut p = Prefetch::new();
        p.scan(input, &store(), 0, 1);
        let copy = b"alpha".to_vec();
        assert_eq!(p.hash_of(0, &copy), route::key_hash(b"alpha"));
        assert_eq!(p.hash_of(5, b"zeta"), route::key_hash(b"zeta"));
        // The right bytes at the wrong index are hashed, not misattributed.
        assert_eq!(p.hash_of(1, &input[4..9]), route::key_hash(b"alpha"));
    }

    #[test]
    fn keys_of_other_shards_are_not_prefetched_but_keep_their_hash() {
        let input = b"get a b c d e f g h\r\n";
        let mut p = Prefetch::new();
        let s = store();
        p.scan(input, &s, 0, 4);
        assert_eq!(p.len, 8);
        let locals = p.entries[..p.len].iter().filter(|e| e.local).count();
        assert!(locals < 8, "some keys belong to other shards");
        for e in &p.entries[..p.len] {
            assert_eq!(e.local, route::shard_of_hash(e.hash, 4) == 0);
        }
        p.items_until(&s, 100);
        assert_eq!(p.items_done, 8);
    }
}
