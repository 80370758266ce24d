//! Differential test of the meta commands: random mg/ms/md/ma (with the flags that
//! change what the store does) against a real memcached 1.6, replies compared after
//! normalising what legitimately differs: CAS numbers are mapped per side, the order of
//! W, X, Z is not compared, and values are compared without spaces.
//!
//! One memcached behaviour is racy: incr/decr update a counter in place (keeping its
//! fetched, stale and win-token bits, padding a shorter number) unless a response still
//! references the item, in which case they write a fresh item. The store always updates
//! in place, so after an arithmetic hit the key's h/t/W/X/Z are not compared until a
//! plain store or delete replaces the item (on that racy path memcached 1.6.18 also
//! loses an `ma ... T` TTL update). Skips when `memcached` is not installed.

use std::collections::{BTreeSet, HashMap};

use super::super::{
    DeleteOutcome, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet, MetaGetArgs, MetaSetArgs,
    MetaSetMode, StoreOutcome,
};
use super::differential::Memcached;
use super::*;

/// A reply reduced to what both servers must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: String,
    value: Option<Vec<u8>>,
    /// Returned flags other than c (compared through the CAS maps).
    tokens: BTreeSet<String>,
}

fn parse(mc: &mut Memcached) -> (Reply, Option<u64>) {
    let line = mc.line();
    let mut parts = line.split(' ');
    let code = parts.next().unwrap_or_default().to_string();
    if code == "CLIENT_ERROR" || code == "SERVER_ERROR" {
        return (
            Reply {
                code: line.clone(),
                value: None,
                tokens: BTreeSet::new(),
            },
            None,
        );
    }
    let mut value = None;
    if code == "VA" {
        let len: usize = parts.next().unwrap().parse().unwrap();
        value = Some(len);
    }
    let mut cas = None;
    let mut tokens = BTreeSet::new();
    for t in parts {
        if let Some(c) = t.strip_prefix('c') {
            cas = Some(c.parse().unwrap());
        } else {
            tokens.insert(t.to_string());
        }
    }
    let value = value.map(|len| mc.block(len));
    (
        Reply {
            code,
            value,
            tokens,
        },
        cas,
    )
}

fn line_has_invalidate(line: &str) -> bool {
    line.split(' ').any(|t| t == "I")
}

#[test]
fn random_meta_commands_reply_as_memcached_does() {
    let Some(mut mc) = Memcached::start() else {
        println!("skipping: memcached is not installed (scripts/install-test-deps.sh)");
        return;
    };
    let mut s = store(64 << 20, Policy::default());
    let mut rng = 0x5eed_1234_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Last CAS seen per key: (ours, memcached's).
    let mut cas: HashMap<String, (u64, u64)> = HashMap::new();
    let mut hist: HashMap<String, Vec<String>> = HashMap::new();
    let mut uncertain: BTreeSet<String> = BTreeSet::new();
    for step in 0..8000 {
        let key = format!("m{}", next(10));
        let pick_cas = |next: &mut dyn FnMut(u64) -> u64, cas: &HashMap<String, (u64, u64)>| {
            let (o, t) = cas.get(&key).copied().unwrap_or((1 << 50, 1 << 50));
            match next(4) {
                0 => (o + (1 << 40), t + (1 << 40)),
                // A lower CAS than the item's, for I (invalidate) sets.
                1 if o > 1 && t > 1 => (o - 1, t - 1),
                _ => (o, t),
            }
        };
        let op = next(10);
        let ctx = format!("step {step} op {op} key {key}");
        let (ours, theirs, our_cas, their_cas) = match op {
            // mg with v c f h, maybe N, R, T, u.
            0..=3 => {
                // Without `c` the item may stay without its CAS word (and a later
                // compare must still fail against a CAS of an older version).
                let return_cas = next(3) != 0;
                let mut args = MetaGetArgs {
                    return_cas,
                    ..MetaGetArgs::default()
                };
                let mut line = format!("mg {key} v f h t{}", if return_cas { " c" } else { "" });
                if next(4) == 0 {
                    args.vivify = Some(300);
                    line += " N300";
                }
                if next(4) == 0 {
                    let r = [100, 500][next(2) as usize];
                    args.recache = Some(r);
                    line += &format!(" R{r}");
                }
                if next(6) == 0 {
                    args.touch = Some(400);
                    line += " T400";
                }
                if next(5) == 0 {
                    args.no_bump = true;
                    line += " u";
                }
                mc.send(format!("{line}\r\n").as_bytes());
                let (theirs, their_cas) = parse(&mut mc);
                let (ours, our_cas) = match s.meta_get(hk(key.as_bytes()), &args) {
                    MetaGet::Miss => (
                        Reply {
                            code: "EN".into(),
                            value: None,
                            tokens: BTreeSet::new(),
                        },
                        None,
                    ),
                    MetaGet::Hit(h) => {
                        let mut tokens = BTreeSet::new();
                        tokens.insert(format!("f{}", h.item.flags));
                        tokens.insert(format!("h{}", h.item.fetched as u8));
                        // `t` precedes N and T on our line: the TTL before them.
                        tokens.insert(format!("t{}", h.ttl_before));
                        for (on, t) in [(h.win, "W"), (h.stale, "X"), (h.token_sent, "Z")] {
                            if on {
                                tokens.insert(t.to_string());
                            }
                        }
                        let r = Reply {
                            code: "VA".into(),
                            value: Some(h.item.value.to_vec()),
                            tokens,
                        };
                        (r, return_cas.then_some(h.item.cas))
                    }
                };
                (ours, theirs, our_cas, their_cas)
            }
            // ms with F, T, maybe C (fresh, stale or lower), I, mode.
            4..=6 => {
                let value: Vec<u8> = if next(3) == 0 {
                    next(500).to_string().into_bytes()
                } else {
                    (0..next(40)).map(|i| b'a' + (i as u8 % 26)).collect()
                };
                let flags = next(3) as u32;
                let return_cas = next(3) != 0;
                let mut args = MetaSetArgs {
                    flags,
                    exptime: 500,
                    return_cas,
                    ..Default::default()
                };
                let c = if return_cas { " c" } else { "" };
                let mut line = format!("ms {key} {} F{flags} T500{c}", value.len());
                let (mode, m) = [
                    (MetaSetMode::Set, "S"),
                    (MetaSetMode::Add, "E"),
                    (MetaSetMode::Replace, "R"),
                    (MetaSetMode::Append, "A"),
                    (MetaSetMode::Prepend, "P"),
                ][[0, 0, 0, 1, 2, 3, 4][next(7) as usize]];
                // Appending to a counter after a racy incr/decr would expose whether
                // memcached padded it (see the module note): set it afresh instead.
                let (mode, m) = if uncertain.contains(&key)
                    && matches!(mode, MetaSetMode::Append | MetaSetMode::Prepend)
                {
                    (MetaSetMode::Set, "S")
                } else {
                    (mode, m)
                };
                args.mode = mode;
                line += &format!(" M{m}");
                let mut tc = None;
                if next(2) == 0 {
                    let (o, t) = pick_cas(&mut next, &cas);
                    args.compare_cas = Some(o);
                    tc = Some(t);
                    line += &format!(" C{t}");
                    if next(2) == 0 {
                        args.invalidate = true;
                        line += " I";
                    }
                }
                let _ = tc;
                let mut req = format!("{line}\r\n").into_bytes();
                req.extend_from_slice(&value);
                req.extend_from_slice(b"\r\n");
                mc.send(&req);
                let (theirs, their_cas) = parse(&mut mc);
                let out = s.meta_set(hk(key.as_bytes()), &value, &args);
                let (code, our_cas) = match out {
                    StoreOutcome::Stored { cas } => ("HD", return_cas.then_some(cas)),
                    StoreOutcome::NotStored => ("NS", None),
                    StoreOutcome::Exists => ("EX", None),
                    StoreOutcome::NotFound => ("NF", None),
                    StoreOutcome::TooLarge | StoreOutcome::OutOfMemory => ("SERVER_ERROR", None),
                };
                let their_cas = if theirs.code == "HD" { their_cas } else { None };
                let ours = Reply {
                    code: code.into(),
                    value: None,
                    tokens: BTreeSet::new(),
                };
                (ours, theirs, our_cas, their_cas)
            }
            // md, maybe C, I with T.
            7 => {
                let mut args = MetaDeleteArgs::default();
                let mut line = format!("md {key}");
                if next(3) == 0 {
                    let (o, t) = pick_cas(&mut next, &cas);
                    args.compare_cas = Some(o);
                    line += &format!(" C{t}");
                }
                if next(2) == 0 {
                    args.invalidate = true;
                    args.exptime = Some(300);
                    line += " I T300";
                }
                mc.send(format!("{line}\r\n").as_bytes());
                let (theirs, _) = parse(&mut mc);
                let code = match s.meta_delete(hk(key.as_bytes()), &args) {
                    DeleteOutcome::Deleted => "HD",
                    DeleteOutcome::NotFound => "NF",
                    DeleteOutcome::Exists => "EX",
                    DeleteOutcome::NotStored => "NS",
                    DeleteOutcome::OutOfMemory => "SERVER_ERROR out of memory",
                };
                // An invalidation changes the CAS: forget ours and theirs alike.
                cas.remove(&key);
                (
                    Reply {
                        code: code.into(),
                        value: None,
                        tokens: BTreeSet::new(),
                    },
                    theirs,
                    None,
                    None,
                )
            }
            // ma with D, mode, maybe N/J, C, T; v for the value.
            _ => {
                let mut args = MetaArithArgs {
                    delta: next(20),
                    incr: next(3) != 0,
                    return_cas: true,
                    ..Default::default()
                };
                let mut line = format!(
                    "ma {key} v c D{} M{}",
                    args.delta,
                    if args.incr { "I" } else { "D" }
                );
                if next(2) == 0 {
                    args.vivify = Some(300);
                    args.initial = next(50);
                    line += &format!(" N300 J{}", args.initial);
                }
                if next(4) == 0 {
                    let (o, t) = pick_cas(&mut next, &cas);
                    args.compare_cas = Some(o);
                    line += &format!(" C{t}");
                }
                if next(4) == 0 {
                    args.touch = Some(600);
                    line += " T600";
                }
                mc.send(format!("{line}\r\n").as_bytes());
                let (theirs, their_cas) = parse(&mut mc);
                let empty = BTreeSet::new;
                let (ours, our_cas) = match s.meta_arith(hk(key.as_bytes()), &args) {
                    MetaArith::Value { value, cas, .. } => (
                        Reply {
                            code: "VA".into(),
                            value: Some(value.to_string().into_bytes()),
                            tokens: empty(),
                        },
                        Some(cas),
                    ),
                    MetaArith::NotFound => (
                        Reply {
                            code: "NF".into(),
                            value: None,
                            tokens: empty(),
                        },
                        None,
                    ),
                    MetaArith::NotStored => (
                        Reply {
                            code: "NS".into(),
                            value: None,
                            tokens: empty(),
                        },
                        None,
                    ),
                    MetaArith::Exists => (
                        Reply {
                            code: "EX".into(),
                            value: None,
                            tokens: empty(),
                        },
                        None,
                    ),
                    MetaArith::NonNumeric => (
                        Reply {
                            code: "CLIENT_ERROR cannot increment or decrement non-numeric value"
                                .into(),
                            value: None,
                            tokens: empty(),
                        },
                        None,
                    ),
                    MetaArith::OutOfMemory => (
                        Reply {
                            code: "SERVER_ERROR".into(),
                            value: None,
                            tokens: empty(),
                        },
                        None,
                    ),
                };
                (ours, theirs, our_cas, their_cas)
            }
        };
        let (mut ours, mut theirs) = (ours, theirs);
        for r in [&mut ours, &mut theirs] {
            if let Some(v) = &mut r.value {
                v.retain(|&b| b != b' ');
            }
        }
        // memcached's clock may tick during the run: TTLs agree within a second.
        let ttl = |r: &mut Reply| {
            let t = r.tokens.iter().find(|t| t.starts_with('t')).cloned();
            t.map(|t| {
                r.tokens.remove(&t);
                t[1..].parse::<i64>().unwrap()
            })
        };
        let (ot, tt) = (ttl(&mut ours), ttl(&mut theirs));
        if let (Some(a), Some(b), false) = (ot, tt, uncertain.contains(&key)) {
            let h = hist
                .get(&key)
                .map(|h| h[h.len().saturating_sub(8)..].to_vec());
            assert!(
                (a - b).abs() <= 1 && (a == -1) == (b == -1),
                "{ctx}: ttl {a} vs {b}; ours {ours:?} theirs {theirs:?}; history {h:?}"
            );
        }
        if op <= 3 && uncertain.contains(&key) {
            ours.tokens.retain(|t| t.starts_with('f'));
            theirs.tokens.retain(|t| t.starts_with('f'));
        }
        let replaced = (theirs.code == "EN")
            || (op == 7 && theirs.code == "HD" && !line_has_invalidate(mc.last_sent()))
            || ((4..=6).contains(&op)
                && theirs.code == "HD"
                && !line_has_invalidate(mc.last_sent())
                // append/prepend carry the old item's TTL and bytes over.
                && !mc.last_sent().contains(" MA")
                && !mc.last_sent().contains(" MP"));
        if op >= 8 && theirs.code == "VA" {
            uncertain.insert(key.clone());
        } else if replaced {
            uncertain.remove(&key);
        }
        let ours_now = s
            .peek(hk(key.as_bytes()))
            .map(|v| String::from_utf8_lossy(v.value).into_owned());
        let h = hist.entry(key.clone()).or_default();
        h.push(format!("{step}: {} -> {:?}", mc.last_sent(), theirs.code));
        assert_eq!(
            ours,
            theirs,
            "{ctx}; our value now {ours_now:?}; history {:?}",
            &h[h.len().saturating_sub(8)..]
        );
        if let (Some(o), Some(t)) = (our_cas, their_cas) {
            cas.insert(key.clone(), (o, t));
        }
    }
}
