//! The item header: 8 bytes in front of every key and value in the arena.
//!
//! ```text
//!  offset 0               4               8
//!         +---------------+---------------+
//!         | atime:24      | klen:8        |
//!         | policy:8      | vlen:18 bits:6|
//!         +---------------+---------------+
//!  then   [prev u32 | next u32]   only for the list policies (lru, fifo): +8
//!         [cas u64]               only once a client can know it (below), or always
//!         [exptime u32]           only when the item has a TTL (or under -M, always)
//!         [client flags u32]      only when the flags are non-zero (as memcached)
//!         [value length u32]      only when vlen is LONG_VLEN (values of 256 KiB - 1 and up)
//!         key (klen bytes), value (vlen bytes)
//! ```
//!
//! - `cas` is the full 64-bit wire CAS (shard id in the low bits), so `E` can set any
//!   value. With CAS words on demand (the default for a store whose CAS values no other
//!   node compares) an item carries the word only once a client can have seen its CAS:
//!   a reply that prints it (gets, gats, mg/ms/ma `c`, every binary reply), an `E`, or a
//!   store in the second of an immediate `flush_all`. Until then no client holds this
//!   version's CAS, so a compare against it fails (`EXISTS`) as it would against any
//!   newer version. Giving an item its word later moves it as the exptime word does
//!   (`Store::give_cas_word`).
//! - `exptime` and `atime` are seconds relative to the store's process start (memcached's
//!   `rel_time_t`). An item without the exptime word never expires (exptime 0); giving
//!   it a TTL later (touch, gat, mg/ma `T`, md `I T`) makes room for the word: in place
//!   when its chunk has 4 spare bytes, else in a chunk of a larger class
//!   (`Store::set_item_exptime`). Under -M (no evictions) every item carries both
//!   words, so that neither a TTL nor a CAS ever needs memory the store may not take.
//!   `atime` keeps 24 bits (194 days): `l` on an item untouched for longer wraps, which
//!   is the price of giving the policy a whole byte.
//! - `klen = 0` marks a free chunk: keys are never empty. A free chunk keeps its free
//!   list link in the atime word.
//! - The six bits: CAS word present, exptime word present, client flags present,
//!   fetched, stale, win token sent.
//!
//! Per-item byte budget for the memory benchmark (32-byte key, 100-byte value, flags 0,
//! no TTL, CAS never read, default policy, no links):
//!
//! ```text
//!   header                          8
//!   key + value                   132
//!   item                          140  -> chunk of 140 (4-byte steps: 128 pages or more;
//!                                          144 from 64 pages, 152 below): 0
//!   index slot (u32, load .68-.85) 4.7-5.9
//!   page tail (1 MiB / 140)        0.01
//!   ------------------------------------
//!   overhead per item          ~13-14 + the process's own baseline
//! ```
//!
//! Every field is read and written unaligned: chunks are only 4-byte aligned, and the
//! header must not force padding on the key and value that follow it.

use std::ptr;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Bytes of the optional CAS word.
pub const CAS_LEN: usize = 8;
/// Bytes of the optional exptime word.
pub const EXPTIME_LEN: usize = 4;
/// Bytes of the prev/next links that list policies append to the header.
pub const LINKS_LEN: usize = 8;
/// The 18-bit length field's mark for "the length is in the word before the key":
/// values of this length and longer (256 KiB - 1 and up) pay 4 bytes more.
const LONG_VLEN: u32 = (1 << 18) - 1;
/// Largest value length an item holds.
pub const MAX_VALUE_LEN: usize = u32::MAX as usize;

const OFF_ATIME: usize = 0;
const OFF_LEN: usize = 4;
pub(crate) const OFF_LINKS: usize = 8;

pub(crate) const BIT_HAS_CAS: u32 = 1 << 26;
pub(crate) const BIT_HAS_EXP: u32 = 1 << 27;
pub(crate) const BIT_HAS_FLAGS: u32 = 1 << 28;
pub(crate) const BIT_FETCHED: u32 = 1 << 29;
pub(crate) const BIT_STALE: u32 = 1 << 30;
pub(crate) const BIT_TOKEN_SENT: u32 = 1 << 31;

/// A raw pointer to one item's header inside the arena. Copy, no lifetime: the store
/// guarantees the chunk stays mapped for as long as the arena lives, and the accessors
/// are only called by the owning shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ItemPtr(pub(crate) *mut u8);

impl ItemPtr {
    #[inline]
    fn rd32(self, off: usize) -> u32 {
        // SAFETY: `self.0` points at a chunk of at least HEADER_LEN (+ links) bytes inside
        // the live arena mapping (Arena::ptr checks the handle's range); every offset used
        // here is below HEADER_LEN + LINKS_LEN, except the optional words' (after
        // `Layout::hdr`, read only when their bit says the chunk holds them, which
        // `Layout::total` counted).
        unsafe { ptr::read_unaligned(self.0.add(off) as *const u32) }
    }
    #[inline]
    fn wr32(self, off: usize, v: u32) {
        // SAFETY: as in `rd32`; the shard owns the arena exclusively (Store is !Send).
        unsafe { ptr::write_unaligned(self.0.add(off) as *mut u32, v) }
    }
    #[inline]
    pub(crate) fn atime(self) -> u32 {
        self.rd32(OFF_ATIME) & 0x00ff_ffff
    }
    #[inline]
    pub(crate) fn set_atime(self, now: u32) {
        let w = self.rd32(OFF_ATIME);
        self.wr32(OFF_ATIME, (w & 0xff00_0000) | (now & 0x00ff_ffff));
    }
    /// Writes access time and policy byte together (one store on the read path).
    #[inline]
    pub(crate) fn set_atime_policy(self, now: u32, p: u8) {
        self.wr32(OFF_ATIME, (now & 0x00ff_ffff) | ((p as u32) << 24));
    }
    /// Seconds since the last access, given the current relative time (24-bit wrap).
    #[inline]
    pub(crate) fn idle(self, now: u32) -> u32 {
        now.wrapping_sub(self.atime()) & 0x00ff_ffff
    }
    #[inline]
    pub(crate) fn policy(self) -> u8 {
        (self.rd32(OFF_ATIME) >> 24) as u8
    }
    #[inline]
    pub(crate) fn set_policy(self, p: u8) {
        let w = self.rd32(OFF_ATIME);
        self.wr32(OFF_ATIME, (w & 0x00ff_ffff) | ((p as u32) << 24));
    }
    #[inline]
    fn len_word(self) -> u32 {
        self.rd32(OFF_LEN)
    }
    #[inline]
    pub(crate) fn klen(self) -> usize {
        (self.len_word() & 0xff) as usize
    }
    /// The 18-bit length field: the value's length, or LONG_VLEN ([`Layout::vlen`]).
    #[inline]
    fn vlen_field(self) -> u32 {
        (self.len_word() >> 8) & LONG_VLEN
    }
    #[inline]
    pub(crate) fn is_free(self) -> bool {
        self.klen() == 0
    }
    #[inline]
    pub(crate) fn has(self, bit: u32) -> bool {
        self.len_word() & bit != 0
    }
    #[inline]
    pub(crate) fn set_bit(self, bit: u32, on: bool) {
        let w = self.len_word();
        self.wr32(OFF_LEN, if on { w | bit } else { w & !bit });
    }
    /// Writes the length word of a fresh item: key and value lengths, all bits clear
    /// except those saying which optional words it carries.
    #[inline]
    fn init_lens(self, klen: usize, vlen: usize, words: Words) {
        debug_assert!((1..=255).contains(&klen) && vlen <= MAX_VALUE_LEN);
        let Words {
            cas: has_cas,
            exp: has_exp,
            flags: has_flags,
        } = words;
        let mut w = klen as u32 | ((vlen as u32).min(LONG_VLEN) << 8);
        if has_cas {
            w |= BIT_HAS_CAS;
        }
        if has_exp {
            w |= BIT_HAS_EXP;
        }
        if has_flags {
            w |= BIT_HAS_FLAGS;
        }
        self.wr32(OFF_LEN, w);
    }
    /// Marks the chunk free (klen 0); the free list link lives in the atime word.
    #[inline]
    pub(crate) fn mark_free(self, next_free: u32) {
        self.wr32(OFF_LEN, 0);
        self.wr32(OFF_ATIME, next_free);
    }
    #[inline]
    pub(crate) fn free_next(self) -> u32 {
        self.rd32(OFF_ATIME)
    }
    #[inline]
    pub(crate) fn prev(self) -> u32 {
        self.rd32(OFF_LINKS)
    }
    #[inline]
    pub(crate) fn next(self) -> u32 {
        self.rd32(OFF_LINKS + 4)
    }
    #[inline]
    pub(crate) fn set_prev(self, h: u32) {
        self.wr32(OFF_LINKS, h)
    }
    #[inline]
    pub(crate) fn set_next(self, h: u32) {
        self.wr32(OFF_LINKS + 4, h)
    }
}

/// Which optional words an item carries (the links and the long length aside: those
/// follow from the policy and the value's length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Words {
    pub(crate) cas: bool,
    pub(crate) exp: bool,
    pub(crate) flags: bool,
}

/// When items carry the CAS word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CasWords {
    /// memcached's -C: no item has a CAS (it reads 0).
    Never,
    /// Once a client can know the item's CAS (see the module doc).
    OnDemand,
    /// Every item: under -M (giving an item its word must never need memory), and
    /// where other stores compare CAS values with this one's (a cluster's replicas).
    Always,
}

/// Where the variable parts of an item start, fixed per store (the policy decides
/// whether links are present, -M whether every item carries the exptime word).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Header plus links.
    pub(crate) hdr: usize,
    /// Every item carries the exptime word, even without a TTL (under -M, where giving
    /// an item a TTL must never need memory: see `Store::set_item_exptime`).
    pub(crate) always_exp: bool,
    pub(crate) cas_words: CasWords,
}

impl Layout {
    pub(crate) fn new(links: bool, always_exp: bool, cas_words: CasWords) -> Layout {
        Layout {
            hdr: HEADER_LEN + if links { LINKS_LEN } else { 0 },
            always_exp,
            cas_words,
        }
    }
    /// The words an item with these flags and exptime carries; `cas_wanted`: a client
    /// is to learn its CAS (or it is given one).
    #[inline]
    pub(crate) fn words(self, flags: u32, exptime: u32, cas_wanted: bool) -> Words {
        Words {
            cas: match self.cas_words {
                CasWords::Never => false,
                CasWords::OnDemand => cas_wanted,
                CasWords::Always => true,
            },
            exp: exptime != 0 || self.always_exp,
            flags: flags != 0,
        }
    }
    /// The words a live item carries.
    #[inline]
    pub(crate) fn words_of(self, it: ItemPtr) -> Words {
        Words {
            cas: it.has(BIT_HAS_CAS),
            exp: it.has(BIT_HAS_EXP),
            flags: it.has(BIT_HAS_FLAGS),
        }
    }
    /// Bytes an item of this shape occupies (before chunk rounding).
    #[inline]
    pub(crate) fn total(self, klen: usize, vlen: usize, words: Words) -> usize {
        let long = if vlen >= LONG_VLEN as usize { 4 } else { 0 };
        let cas = if words.cas { CAS_LEN } else { 0 };
        let exp = if words.exp { EXPTIME_LEN } else { 0 };
        let flags = if words.flags { 4 } else { 0 };
        self.hdr + cas + exp + flags + long + klen + vlen
    }
    /// Offset of the exptime word (after the CAS word, if any).
    #[inline]
    fn exp_off(self, it: ItemPtr) -> usize {
        self.hdr + if it.has(BIT_HAS_CAS) { CAS_LEN } else { 0 }
    }
    /// Offset of the flags word (after the exptime word, if any).
    #[inline]
    fn flags_off(self, it: ItemPtr) -> usize {
        self.exp_off(it) + if it.has(BIT_HAS_EXP) { EXPTIME_LEN } else { 0 }
    }
    /// Offset of the long length word (after the flags word, if any).
    #[inline]
    fn long_off(self, it: ItemPtr) -> usize {
        self.flags_off(it) + if it.has(BIT_HAS_FLAGS) { 4 } else { 0 }
    }
    #[inline]
    pub(crate) fn key_off(self, it: ItemPtr) -> usize {
        self.long_off(it) + if it.vlen_field() == LONG_VLEN { 4 } else { 0 }
    }
    /// The item's CAS, 0 when it carries no CAS word.
    #[inline]
    pub(crate) fn cas(self, it: ItemPtr) -> u64 {
        if !it.has(BIT_HAS_CAS) {
            return 0;
        }
        // SAFETY: the word sits right after the header (and links) of a live item whose
        // chunk holds `total()` bytes, which counted it.
        unsafe { ptr::read_unaligned(it.0.add(self.hdr) as *const u64) }
    }
    /// Writes the CAS of an item that carries the CAS word.
    #[inline]
    pub(crate) fn set_cas_word(self, it: ItemPtr, cas: u64) {
        debug_assert!(it.has(BIT_HAS_CAS));
        // SAFETY: as in `cas`; the shard owns the arena exclusively.
        unsafe { ptr::write_unaligned(it.0.add(self.hdr) as *mut u64, cas) }
    }
    /// The item's expiry (relative seconds), 0 = never.
    #[inline]
    pub(crate) fn exptime(self, it: ItemPtr) -> u32 {
        if it.has(BIT_HAS_EXP) {
            it.rd32(self.exp_off(it))
        } else {
            0
        }
    }
    /// Writes the expiry of an item that carries the exptime word.
    #[inline]
    pub(crate) fn set_exptime_word(self, it: ItemPtr, exptime: u32) {
        debug_assert!(it.has(BIT_HAS_EXP));
        it.wr32(self.exp_off(it), exptime);
    }
    /// Opens `len` bytes at offset `at` of a live item, moving what follows up. The
    /// caller checked that its chunk holds `item_total(it) + len` bytes, and sets the bit
    /// that says the new word is there.
    fn open_gap(self, it: ItemPtr, at: usize, len: usize) {
        let rest = self.item_total(it) - at;
        // SAFETY: the chunk holds item_total + len bytes (checked by the caller);
        // `ptr::copy` allows the overlap, and the shard owns the arena exclusively.
        unsafe { ptr::copy(it.0.add(at), it.0.add(at + len), rest) }
    }
    /// Gives an item without the exptime word the word, moving flags, key and value
    /// 4 bytes up. The caller checked that its chunk holds `item_total(it) + 4` bytes.
    pub(crate) fn insert_exp_word(self, it: ItemPtr, exptime: u32) {
        debug_assert!(!it.has(BIT_HAS_EXP));
        self.open_gap(it, self.exp_off(it), EXPTIME_LEN);
        it.set_bit(BIT_HAS_EXP, true);
        self.set_exptime_word(it, exptime);
    }
    /// Gives an item without the CAS word the word, moving everything after the header
    /// 8 bytes up. The caller checked that its chunk holds `item_total(it) + 8` bytes.
    pub(crate) fn insert_cas_word(self, it: ItemPtr, cas: u64) {
        debug_assert!(!it.has(BIT_HAS_CAS));
        self.open_gap(it, self.hdr, CAS_LEN);
        it.set_bit(BIT_HAS_CAS, true);
        self.set_cas_word(it, cas);
    }
    /// The value's length.
    #[inline]
    pub(crate) fn vlen(self, it: ItemPtr) -> usize {
        let f = it.vlen_field();
        if f != LONG_VLEN {
            return f as usize;
        }
        // SAFETY: a long item's chunk holds the length word at long_off (written by
        // `init`, counted by `total`).
        unsafe { ptr::read_unaligned(it.0.add(self.long_off(it)) as *const u32) as usize }
    }
    /// Bytes the live item `it` occupies (before chunk rounding).
    #[inline]
    pub(crate) fn item_total(self, it: ItemPtr) -> usize {
        self.total(it.klen(), self.vlen(it), self.words_of(it))
    }
    #[inline]
    pub(crate) fn flags(self, it: ItemPtr) -> u32 {
        if it.has(BIT_HAS_FLAGS) {
            // SAFETY: the flags word sits at flags_off of a live item whose chunk holds
            // `total()` bytes.
            unsafe { ptr::read_unaligned(it.0.add(self.flags_off(it)) as *const u32) }
        } else {
            0
        }
    }
    #[inline]
    fn set_flags_word(self, it: ItemPtr, flags: u32) {
        debug_assert!(it.has(BIT_HAS_FLAGS));
        // SAFETY: as in `flags`; the caller allocated room for the word.
        unsafe { ptr::write_unaligned(it.0.add(self.flags_off(it)) as *mut u32, flags) }
    }
    /// The key bytes of a live item.
    ///
    /// The returned slice's lifetime is chosen by the caller, who must not let it outlive
    /// the item (the store only hands it out tied to a borrow of itself).
    #[inline]
    pub(crate) fn key<'a>(self, it: ItemPtr) -> &'a [u8] {
        // SAFETY: a live item's chunk holds key_off + klen + vlen bytes (checked at
        // allocation), and nothing writes the key while it is linked.
        unsafe { std::slice::from_raw_parts(it.0.add(self.key_off(it)), it.klen()) }
    }
    #[inline]
    pub(crate) fn value<'a>(self, it: ItemPtr) -> &'a [u8] {
        // SAFETY: as in `key`.
        unsafe { std::slice::from_raw_parts(it.0.add(self.key_off(it) + it.klen()), self.vlen(it)) }
    }
    /// Mutable value bytes, up to `cap` bytes (the chunk's room for the value).
    #[inline]
    pub(crate) fn value_mut<'a>(self, it: ItemPtr, len: usize) -> &'a mut [u8] {
        // SAFETY: the caller checked that key_off + klen + len fits the chunk; the
        // shard owns the arena exclusively.
        unsafe { std::slice::from_raw_parts_mut(it.0.add(self.key_off(it) + it.klen()), len) }
    }
    /// Writes a fresh item's header fields and key (a CAS word reads 0 until the item
    /// is linked); the value is written by the caller.
    #[inline]
    pub(crate) fn init(
        self,
        it: ItemPtr,
        key: &[u8],
        vlen: usize,
        flags: u32,
        exptime: u32,
        words: Words,
    ) {
        debug_assert!(words.exp || exptime == 0);
        debug_assert_eq!(words.flags, flags != 0);
        // atime word: zero policy byte and time.
        it.wr32(OFF_ATIME, 0);
        it.init_lens(key.len(), vlen, words);
        if words.cas {
            self.set_cas_word(it, 0);
        }
        if words.exp {
            self.set_exptime_word(it, exptime);
        }
        if words.flags {
            self.set_flags_word(it, flags);
        }
        if vlen >= LONG_VLEN as usize {
            // SAFETY: `total` counted the word; the chunk holds it.
            unsafe { ptr::write_unaligned(it.0.add(self.long_off(it)) as *mut u32, vlen as u32) }
        }
        // SAFETY: the chunk holds total(klen, vlen, words) bytes; key_off + klen is within.
        unsafe {
            ptr::copy_nonoverlapping(key.as_ptr(), it.0.add(self.key_off(it)), key.len());
        }
    }
}
