//! Members added after the start: a node that joined through a running
//! member (`--cluster-join` with `--cluster-advertise`) claims the lowest
//! index free in the list it fetched and carries its entry in its gossip
//! identity; every member adds it to its [`Roster`] from there.
//!
//! ```text
//!   foca members not down, index past the start-up list (added ones)
//!     sorted by (index, generation) ─► resolve():
//!       index == roster.len()            ─► appended (if valid: name, address free, resolves)
//!       index <  roster.len(), same entry ─► nothing (the holder, or its restart)
//!       index <  roster.len(), other entry ─► replaces the holder only if the holder has no
//!                                            identity not down older than the claim
//!       index >  roster.len()            ─► waits for the index before it (no gaps)
//! ```
//!
//! Two joiners that fetched the same list claim one index: the older
//! identity (smaller generation, then smaller name) keeps it on every member,
//! and the younger one finds that it lost ([`lost_to`]) and stops. An entry
//! of the start-up list is never replaced.

use std::net::SocketAddr;

use cluster::Member;

use super::NodeId;
use super::view::Roster;
use crate::config::cluster::MAX_MEMBERS;

/// A member's entry as its identity carries it.
pub fn member_of(id: &NodeId) -> Member {
    Member {
        name: id.entry.name.clone(),
        host: id.entry.host.clone(),
        port: id.entry.port,
        weight: id.entry.weight,
    }
}

/// Why a claim is not taken (logged once per identity).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Full,
    Name(String),
    Address(String),
    Weight,
    Resolve,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full => write!(f, "the list is full ({MAX_MEMBERS} members)"),
            Refused::Name(m) => write!(f, "its name is member `{m}`'s"),
            Refused::Address(m) => write!(f, "its address is member `{m}`'s"),
            Refused::Weight => f.write_str("its weight is 0"),
            Refused::Resolve => f.write_str("its host does not resolve"),
        }
    }
}

/// The roster after the claims (`None` when it stays as it is), and the
/// claims refused. `claims` are identities not down, this node's excluded;
/// `resolve` gives a member's memcached address.
pub fn resolve(
    roster: &Roster,
    claims: &[&NodeId],
    resolve: &dyn Fn(&Member) -> Option<SocketAddr>,
) -> (Option<Roster>, Vec<(NodeId, Refused)>) {
    let mut claims: Vec<&NodeId> = claims
        .iter()
        .copied()
        .filter(|id| usize::from(id.index) >= roster.listed)
        .collect();
    claims.sort_by(|a, b| {
        (a.index, a.generation, &a.entry.name).cmp(&(b.index, b.generation, &b.entry.name))
    });
    let mut next: Option<Roster> = None;
    let mut refused = Vec::new();
    for id in &claims {
        let r = next.as_ref().unwrap_or(roster);
        let i = usize::from(id.index);
        let member = member_of(id);
        if i > r.len() {
            continue;
        }
        if i < r.len() {
            if r.members[i] == member {
                continue;
            }
            // Another entry holds the index: it keeps it while it has an
            // identity not down at least as old as this claim.
            let holder = &r.members[i];
            let held = claims
                .iter()
                .any(|h| usize::from(h.index) == i && member_of(h) == *holder && older(h, id));
            if held {
                continue;
            }
        }
        if i >= MAX_MEMBERS {
            refused.push(((*id).clone(), Refused::Full));
            continue;
        }
        if member.weight == 0 {
            refused.push(((*id).clone(), Refused::Weight));
            continue;
        }
        let others = r.members.iter().enumerate().filter(|&(j, _)| j != i);
        if let Some((_, m)) = others.clone().find(|(_, m)| m.name == member.name) {
            refused.push(((*id).clone(), Refused::Name(m.name.clone())));
            continue;
        }
        if let Some((_, m)) = others
            .clone()
            .find(|(_, m)| m.port == member.port && m.host.eq_ignore_ascii_case(&member.host))
        {
            refused.push(((*id).clone(), Refused::Address(m.name.clone())));
            continue;
        }
        let Some(addr) = resolve(&member) else {
            refused.push(((*id).clone(), Refused::Resolve));
            continue;
        };
        let r = next.get_or_insert_with(|| roster.clone());
        if i == r.len() {
            r.members.push(member);
            r.addrs.push(addr);
        } else {
            r.members[i] = member;
            r.addrs[i] = addr;
        }
    }
    (next, refused)
}

/// Whether `a` claimed before `b`: the smaller generation (start time), then
/// the smaller name.
fn older(a: &NodeId, b: &NodeId) -> bool {
    (a.generation, &a.entry.name) < (b.generation, &b.entry.name)
}

/// For a node that added itself (`me` at an index past the start-up list):
/// an identity not down that claims the same index for another entry and is
/// older, to which this node lost the index.
pub fn lost_to<'a>(me: &NodeId, claims: &[&'a NodeId]) -> Option<&'a NodeId> {
    claims
        .iter()
        .copied()
        .find(|id| id.index == me.index && id.entry != me.entry && older(id, me))
}

#[cfg(test)]
mod tests {
    use super::super::Entry;
    use super::*;

    fn member(name: &str, port: u16) -> Member {
        Member {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
            weight: 1,
        }
    }

    fn id(index: u16, name: &str, port: u16, generation: u64) -> NodeId {
        NodeId {
            index,
            addr: SocketAddr::from(([127, 0, 0, 1], port + 1000)),
            generation,
            entry: Entry {
                name: name.into(),
                host: "127.0.0.1".into(),
                port,
                weight: 1,
            },
        }
    }

    fn three() -> Roster {
        let members = vec![member("a", 1), member("b", 2), member("c", 3)];
        let addrs = members
            .iter()
            .map(|m| SocketAddr::from(([127, 0, 0, 1], m.port)))
            .collect();
        Roster::new(members, addrs)
    }

    fn local(m: &Member) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], m.port)))
    }

    #[test]
    fn a_claim_of_the_next_index_is_appended_and_listed_ones_are_left_alone() {
        let r = three();
        let d = id(3, "d", 4, 10);
        let (next, refused) = resolve(&r, &[&d], &local);
        let next = next.expect("d added");
        assert!(refused.is_empty());
        assert_eq!(next.len(), 4);
        assert_eq!(next.members[3], member("d", 4));
        assert_eq!(next.listed, 3);
        // Known already: nothing changes; a restart of d (newer) neither.
        assert_eq!(resolve(&next, &[&d, &id(3, "d", 4, 99)], &local).0, None);
        // A claim of a listed index, or one past a gap, is not taken.
        let (none, _) = resolve(&r, &[&id(1, "x", 9, 1), &id(4, "e", 5, 1)], &local);
        assert_eq!(none, None);
        // Both at once: e waits for d, then follows it.
        let (both, _) = resolve(&r, &[&id(4, "e", 5, 1), &d], &local);
        assert_eq!(both.unwrap().len(), 5);
    }

    #[test]
    fn two_claims_of_one_index_go_to_the_older_identity_and_the_younger_knows_it_lost() {
        let r = three();
        let (old, young) = (id(3, "d", 4, 10), id(3, "e", 5, 20));
        for claims in [[&old, &young], [&young, &old]] {
            let next = resolve(&r, &claims, &local).0.unwrap();
            assert_eq!(next.members[3].name, "d", "{claims:?}");
        }
        // A member that took the younger one first switches to the older.
        let took_young = resolve(&r, &[&young], &local).0.unwrap();
        let switched = resolve(&took_young, &[&young, &old], &local).0.unwrap();
        assert_eq!(switched.members[3].name, "d");
        assert_eq!(switched.addrs[3].port(), 4);
        // The holder down (no claim of it): a live claimant takes the index.
        let d_down = resolve(&r, &[&old], &local).0.unwrap();
        assert_eq!(
            resolve(&d_down, &[&young], &local).0.unwrap().members[3].name,
            "e"
        );
        assert_eq!(lost_to(&young, &[&old]), Some(&old));
        assert_eq!(lost_to(&old, &[&young]), None);
        assert_eq!(lost_to(&young, &[&id(3, "e", 5, 1)]), None, "its own entry");
    }

    #[test]
    fn a_claim_with_a_name_or_address_in_use_or_past_the_cas_bits_is_refused() {
        let r = three();
        let (next, refused) = resolve(&r, &[&id(3, "a", 9, 1)], &local);
        assert_eq!(next, None);
        assert_eq!(refused[0].1, Refused::Name("a".into()));
        let (_, refused) = resolve(&r, &[&id(3, "z", 2, 1)], &local);
        assert_eq!(refused[0].1, Refused::Address("b".into()));
        let (_, refused) = resolve(&r, &[&id(3, "z", 9, 1)], &|_| None);
        assert_eq!(refused[0].1, Refused::Resolve);
        let mut full = r.clone();
        for i in 3..MAX_MEMBERS {
            full.members.push(member(&format!("m{i}"), 100 + i as u16));
            full.addrs.push(local(&full.members[i]).unwrap());
        }
        let (next, refused) = resolve(&full, &[&id(MAX_MEMBERS as u16, "z", 9, 1)], &local);
        assert_eq!(next, None);
        assert_eq!(refused[0].1, Refused::Full);
    }
}
