//! The recent deletes of replicated keys, kept so that a member that comes
//! back (resync.rs) also loses what was deleted while it was away: the walk
//! of the store ships only what is present, so without this a returning
//! member's stale copy of a deleted key (warm from `-e`, resumed after a
//! stop, back from a partition) would be read again, and served by it once
//! it is the key's owner again.
//!
//! ```text
//!   a replicated key deleted here (owner, or a replica applying md ... Y)
//!        └─► push(now, key, CAS the item had)  ─► entries, oldest first, seq n, n+1, …
//!   member m declared down at t ─► kept: entries of the last `margin` seconds before t onwards
//!   m live again ─► resync ships the entries from `first_since(t - margin)` as md ... E<cas> Y
//! ```
//!
//! Bounded by bytes: when full the oldest entry goes, and the newest time so
//! dropped is remembered, so a re-sync can tell that its log does not reach
//! back to the member's departure (`covers`). Entries no one can need any
//! more (older than every down member's departure, or than `margin` before
//! now when none is down) are dropped first.

use std::collections::VecDeque;

use store::RelTime;

/// Bytes an entry costs beyond its key (the key's box, the deque slot).
const ENTRY_OVERHEAD: usize = 40;

struct Entry {
    at: RelTime,
    cas: u64,
    key: Box<[u8]>,
}

/// One shard's log of recent deletes.
pub(super) struct DeleteLog {
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    front_seq: u64,
    bytes: usize,
    budget: usize,
    /// The newest time of an entry dropped for room (not for age).
    overflowed_at: Option<RelTime>,
}

/// One delete as a re-sync ships it.
pub(super) struct Delete<'a> {
    pub key: &'a [u8],
    pub cas: u64,
}

impl DeleteLog {
    pub fn new(budget: usize) -> DeleteLog {
        DeleteLog {
            entries: VecDeque::new(),
            front_seq: 0,
            bytes: 0,
            budget,
            overflowed_at: None,
        }
    }

    /// Records the delete of `key` (whose item had `cas`) at `at`; entries
    /// older than `keep_from` are no longer needed and go first.
    pub fn push(&mut self, at: RelTime, key: &[u8], cas: u64, keep_from: RelTime) {
        let cost = key.len() + ENTRY_OVERHEAD;
        if cost > self.budget {
            self.overflowed_at = self.overflowed_at.max(Some(at));
            return;
        }
        while self.entries.front().is_some_and(|e| e.at < keep_from) {
            self.pop();
        }
        while self.bytes + cost > self.budget {
            let dropped = self.pop();
            self.overflowed_at = self.overflowed_at.max(dropped);
        }
        self.bytes += cost;
        self.entries.push_back(Entry {
            at,
            cas,
            key: key.into(),
        });
    }

    fn pop(&mut self) -> Option<RelTime> {
        let e = self.entries.pop_front()?;
        self.front_seq += 1;
        self.bytes -= e.key.len() + ENTRY_OVERHEAD;
        Some(e.at)
    }

    /// Whether every delete made at `since` or later is still here.
    pub fn covers(&self, since: RelTime) -> bool {
        self.overflowed_at.is_none_or(|t| t < since)
    }

    /// The sequence number of the first entry made at `since` or later (the
    /// next one to be made when there is none).
    pub fn first_since(&self, since: RelTime) -> u64 {
        self.front_seq + self.entries.partition_point(|e| e.at < since) as u64
    }

    /// The entry with sequence number `seq` and the next one's number;
    /// `None` at the end. An entry dropped since is skipped (the returned
    /// number then says how far).
    pub fn get(&self, seq: u64) -> Option<(Delete<'_>, u64)> {
        let seq = seq.max(self.front_seq);
        let e = self.entries.get((seq - self.front_seq) as usize)?;
        let d = Delete {
            key: &e.key,
            cas: e.cas,
        };
        Some((d, seq + 1))
    }

    /// The sequence number the next entry will get.
    pub fn end(&self) -> u64 {
        self.front_seq + self.entries.len() as u64
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_from(log: &DeleteLog, mut seq: u64) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        while let Some((d, next)) = log.get(seq) {
            out.push((d.key.to_vec(), d.cas));
            seq = next;
        }
        out
    }

    #[test]
    fn entries_since_a_time_are_found_in_order() {
        let mut log = DeleteLog::new(1 << 20);
        for (t, k) in [(10, "a"), (11, "b"), (11, "c"), (14, "d")] {
            log.push(t, k.as_bytes(), t as u64 * 100, 0);
        }
        assert_eq!(keys_from(&log, log.first_since(0)).len(), 4);
        let from_11 = keys_from(&log, log.first_since(11));
        assert_eq!(
            from_11,
            vec![
                (b"b".to_vec(), 1100),
                (b"c".to_vec(), 1100),
                (b"d".to_vec(), 1400)
            ]
        );
        assert_eq!(log.first_since(15), log.end());
        assert!(keys_from(&log, log.end()).is_empty());
        assert!(log.covers(0));
    }

    #[test]
    fn entries_no_one_needs_go_first_and_are_not_an_overflow() {
        let mut log = DeleteLog::new(1 << 20);
        log.push(1, b"old", 1, 0);
        log.push(2, b"older-but-kept", 2, 0);
        log.push(20, b"new", 3, 2);
        assert_eq!(log.len(), 2);
        assert!(log.covers(0), "dropped for age, not for room");
        assert_eq!(keys_from(&log, 0)[0].0, b"older-but-kept");
    }

    #[test]
    fn a_full_log_drops_the_oldest_and_says_how_far_it_reaches() {
        let entry = 1 + ENTRY_OVERHEAD;
        let mut log = DeleteLog::new(3 * entry);
        for t in 1..=5 {
            log.push(t, b"k", t as u64, 0);
        }
        assert_eq!(log.len(), 3);
        assert!(!log.covers(2));
        assert!(log.covers(3));
        // A walk that stood at a dropped entry resumes at the oldest kept one.
        let (d, next) = log.get(0).unwrap();
        assert_eq!((d.cas, next), (3, 3));
    }

    #[test]
    fn a_key_larger_than_the_budget_is_not_kept_and_is_a_gap() {
        let mut log = DeleteLog::new(ENTRY_OVERHEAD);
        log.push(1, b"k", 1, 0);
        assert_eq!(log.len(), 0);
        assert!(!log.covers(1), "a delete not kept is a gap");
        assert!(log.covers(2));
    }
}
