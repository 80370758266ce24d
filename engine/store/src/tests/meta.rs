//! Meta command semantics: vivify, recache, invalidate, win tokens, h/l/t, CAS modes.

use super::super::{
    DeleteOutcome, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet, MetaGetArgs, MetaSetArgs,
    MetaSetMode, StoreMode, StoreOutcome,
};
use super::*;

/// What a test needs from an mg hit, copied out of the borrowed view.
struct Hit {
    value: Vec<u8>,
    ttl: i64,
    ttl_before: i64,
    cas: u64,
    fetched: bool,
    last_access: u32,
    win: bool,
    stale: bool,
    token_sent: bool,
    vivified: bool,
}

fn hit(s: &mut Store, key: &[u8], args: MetaGetArgs) -> Hit {
    match s.meta_get(hk(key), &args) {
        MetaGet::Hit(h) => Hit {
            value: h.item.value.to_vec(),
            ttl: h.item.ttl,
            ttl_before: h.ttl_before,
            cas: h.item.cas,
            fetched: h.item.fetched,
            last_access: h.item.last_access,
            win: h.win,
            stale: h.stale,
            token_sent: h.token_sent,
            vivified: h.vivified,
        },
        MetaGet::Miss => panic!("miss for {:?}", String::from_utf8_lossy(key)),
    }
}

#[test]
fn vivify_on_miss_wins_once() {
    let mut s = small();
    assert_eq!(s.meta_get(hk(b"k"), &MetaGetArgs::default()), MetaGet::Miss);
    let args = MetaGetArgs {
        vivify: Some(30),
        ..Default::default()
    };
    let h = hit(&mut s, b"k", args);
    assert!(h.win && h.vivified && !h.token_sent);
    assert_eq!((h.value.len(), h.ttl), (0, 30));
    let h = hit(&mut s, b"k", args);
    assert!(!h.win && !h.vivified && h.token_sent, "others see Z");
}

#[test]
fn recache_wins_when_ttl_is_below_the_token() {
    let mut s = small();
    s.set(hk(b"k"), b"v", 0, 10);
    let h = hit(
        &mut s,
        b"k",
        MetaGetArgs {
            recache: Some(5),
            ..Default::default()
        },
    );
    assert!(!h.win);
    let h = hit(
        &mut s,
        b"k",
        MetaGetArgs {
            recache: Some(30),
            ..Default::default()
        },
    );
    assert!(h.win && !h.token_sent);
    let h = hit(
        &mut s,
        b"k",
        MetaGetArgs {
            recache: Some(30),
            ..Default::default()
        },
    );
    assert!(!h.win && h.token_sent);
}

#[test]
fn invalidate_marks_stale_and_hands_out_one_win() {
    let mut s = small();
    let StoreOutcome::Stored { cas: c1 } =
        s.store_with_cas(StoreMode::Set, hk(b"k"), 0, 0, b"v", 0)
    else {
        panic!()
    };
    let md = MetaDeleteArgs {
        invalidate: true,
        exptime: Some(30),
        ..Default::default()
    };
    assert_eq!(s.meta_delete(hk(b"k"), &md), DeleteOutcome::Deleted);
    let h = hit(&mut s, b"k", MetaGetArgs::default());
    assert!(h.stale && h.win && !h.token_sent);
    assert_eq!(h.ttl, 30);
    let c2 = h.cas;
    assert!(c2 > c1, "invalidation bumps the CAS");
    let h = hit(&mut s, b"k", MetaGetArgs::default());
    assert!(h.stale && !h.win && h.token_sent);
    // A recache with the old (lower) CAS and I stores, keeping the item stale.
    let ms = MetaSetArgs {
        compare_cas: Some(c1),
        invalidate: true,
        ..Default::default()
    };
    assert!(matches!(
        s.meta_set(hk(b"k"), b"new", &ms),
        StoreOutcome::Stored { .. }
    ));
    // (The winner reads the CAS: mg `c`.)
    let with_cas = MetaGetArgs {
        return_cas: true,
        ..Default::default()
    };
    let h = hit(&mut s, b"k", with_cas);
    assert!(h.stale && h.token_sent && !h.win);
    assert_eq!((&h.value[..], h.ttl), (&b"new"[..], 30));
    // The winner's set with the current CAS clears staleness.
    let cur = h.cas;
    let ms = MetaSetArgs {
        compare_cas: Some(cur),
        ..Default::default()
    };
    assert!(matches!(
        s.meta_set(hk(b"k"), b"fresh", &ms),
        StoreOutcome::Stored { .. }
    ));
    let h = hit(&mut s, b"k", MetaGetArgs::default());
    assert!(!h.stale && !h.token_sent && !h.win);
}

#[test]
fn meta_delete_with_cas() {
    let mut s = small();
    assert_eq!(
        s.meta_delete(hk(b"k"), &MetaDeleteArgs::default()),
        DeleteOutcome::NotFound
    );
    let StoreOutcome::Stored { cas } = s.store_with_cas(StoreMode::Set, hk(b"k"), 0, 0, b"v", 0)
    else {
        panic!()
    };
    let bad = MetaDeleteArgs {
        compare_cas: Some(cas + 1),
        ..Default::default()
    };
    assert_eq!(s.meta_delete(hk(b"k"), &bad), DeleteOutcome::Exists);
    let good = MetaDeleteArgs {
        compare_cas: Some(cas),
        ..Default::default()
    };
    assert_eq!(s.meta_delete(hk(b"k"), &good), DeleteOutcome::Deleted);
    assert!(s.get(hk(b"k")).is_none());
}

#[test]
fn meta_set_modes_and_cas() {
    let mut s = small();
    let args = |mode, cas| MetaSetArgs {
        mode,
        compare_cas: cas,
        ..Default::default()
    };
    assert_eq!(
        s.meta_set(hk(b"k"), b"v", &args(MetaSetMode::Set, Some(5))),
        StoreOutcome::NotFound
    );
    assert_eq!(
        s.meta_set(hk(b"k"), b"v", &args(MetaSetMode::Replace, None)),
        StoreOutcome::NotStored
    );
    let StoreOutcome::Stored { cas } = s.meta_set(hk(b"k"), b"v", &args(MetaSetMode::Add, None))
    else {
        panic!()
    };
    assert_eq!(
        s.meta_set(hk(b"k"), b"x", &args(MetaSetMode::Add, Some(cas))),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.meta_set(hk(b"k"), b"x", &args(MetaSetMode::Set, Some(cas + 1))),
        StoreOutcome::Exists
    );
    assert_eq!(
        s.meta_set(hk(b"k"), b"x", &args(MetaSetMode::Append, Some(cas + 1))),
        StoreOutcome::Exists
    );
    assert!(matches!(
        s.meta_set(hk(b"k"), b"+a", &args(MetaSetMode::Append, Some(cas))),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        s.meta_set(hk(b"k"), b"p-", &args(MetaSetMode::Prepend, None)),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(value_of(&mut s, b"k").unwrap(), b"p-v+a");
    // Explicit CAS.
    let e = MetaSetArgs {
        new_cas: Some(777),
        flags: 3,
        exptime: 60,
        ..Default::default()
    };
    assert_eq!(
        s.meta_set(hk(b"k"), b"e", &e),
        StoreOutcome::Stored { cas: 777 }
    );
    let v = s.get(hk(b"k")).unwrap();
    assert_eq!((v.cas, v.flags, v.ttl), (777, 3, 60));
    // Append with vivify on a miss.
    let viv = MetaSetArgs {
        mode: MetaSetMode::Append,
        vivify: Some(20),
        ..Default::default()
    };
    assert!(matches!(
        s.meta_set(hk(b"new"), b"abc", &viv),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(s.get(hk(b"new")).unwrap().ttl, 20);
}

#[test]
fn meta_get_reports_state_from_before_the_request() {
    let mut s = small();
    s.set_time(10);
    s.set(hk(b"k"), b"v", 0, 100);
    s.set_time(15);
    let h = hit(
        &mut s,
        b"k",
        MetaGetArgs {
            no_bump: true,
            ..Default::default()
        },
    );
    assert_eq!((h.fetched, h.last_access), (false, 5));
    let h = hit(&mut s, b"k", MetaGetArgs::default());
    assert_eq!((h.fetched, h.last_access), (false, 5), "u did not bump");
    s.set_time(17);
    let h = hit(
        &mut s,
        b"k",
        MetaGetArgs {
            touch: Some(50),
            ..Default::default()
        },
    );
    assert_eq!((h.fetched, h.last_access), (true, 2));
    assert_eq!((h.ttl_before, h.ttl), (93, 50));
    let st = s.stats();
    assert_eq!((st.get_hits, st.touch_hits), (2, 1));
}

#[test]
fn meta_arith_vivify_delta_cas_ttl() {
    let mut s = small();
    assert_eq!(
        s.meta_arith(hk(b"n"), &MetaArithArgs::default()),
        MetaArith::NotFound
    );
    let viv = MetaArithArgs {
        vivify: Some(0),
        initial: 10,
        ..Default::default()
    };
    let MetaArith::Value {
        value,
        cas,
        ttl,
        created,
    } = s.meta_arith(hk(b"n"), &viv)
    else {
        panic!()
    };
    assert_eq!((value, ttl, created), (10, -1, true));
    let bad = MetaArithArgs {
        compare_cas: Some(cas + 1),
        ..Default::default()
    };
    assert_eq!(s.meta_arith(hk(b"n"), &bad), MetaArith::Exists);
    let add = MetaArithArgs {
        delta: 5,
        compare_cas: Some(cas),
        touch: Some(40),
        ..Default::default()
    };
    let MetaArith::Value {
        value,
        ttl,
        created,
        ..
    } = s.meta_arith(hk(b"n"), &add)
    else {
        panic!()
    };
    assert_eq!((value, ttl, created), (15, 40, false));
    let dec = MetaArithArgs {
        incr: false,
        delta: 100,
        new_cas: Some(99),
        ..Default::default()
    };
    assert_eq!(
        s.meta_arith(hk(b"n"), &dec),
        MetaArith::Value {
            value: 0,
            cas: 99,
            ttl: 40,
            created: false,
        }
    );
    s.set(hk(b"t"), b"text", 0, 0);
    assert_eq!(
        s.meta_arith(hk(b"t"), &MetaArithArgs::default()),
        MetaArith::NonNumeric
    );
    let st = s.stats();
    assert_eq!((st.incr_misses, st.incr_hits, st.decr_hits), (1, 1, 1));
}

#[test]
fn peek_does_not_bump() {
    let mut s = small();
    s.set(hk(b"k"), b"v", 0, 0);
    assert!(!s.peek(hk(b"k")).unwrap().fetched);
    assert!(!s.peek(hk(b"k")).unwrap().fetched);
    assert_eq!(s.peek(hk(b"k")).unwrap().class_id, 1);
}

/// memcached's ms takes any `C` token, `C0` included, as a compare-and-swap
/// (its `has_cas`): no item has CAS 0, so C0 answers EX, and NF on a miss.
#[test]
fn meta_set_with_cas_zero_compares() {
    let mut s = small();
    let c0 = MetaSetArgs {
        compare_cas: Some(0),
        ..Default::default()
    };
    assert_eq!(s.meta_set(hk(b"k"), b"v", &c0), StoreOutcome::NotFound);
    assert!(matches!(
        s.meta_set(hk(b"k"), b"v", &MetaSetArgs::default()),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(s.meta_set(hk(b"k"), b"w", &c0), StoreOutcome::Exists);
    let h = hit(&mut s, b"k", MetaGetArgs::default());
    assert_eq!(&h.value[..], b"v");
}
