//! `--cluster-node NAME --cluster-peers NAME=HOST:PORT[:WEIGHT],...`: the cluster's
//! members, this node among them.
//!
//! Each entry's address is the memcached address clients use for that node: the
//! ring hashes its text, so it must be written as the clients write it. IPv6
//! addresses go in brackets (`b=[2001:db8::1]:11211`), as in pylibmc's server
//! strings; the ring hashes them without the brackets, as libmemcached does.
//! Every problem is refused at start with one line that names the entry and says
//! what to write instead.

use std::fmt;
use std::net::Ipv6Addr;

use thiserror::Error;

use crate::ring::Member;

/// The validated member list, in the order given (the ring's indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    pub members: Vec<Member>,
    /// This node's index in `members`.
    pub this_node: usize,
}

/// What is wrong with one entry's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    NoEquals,
    EmptyName,
    /// A name with a character that would not survive logs and stats unquoted.
    BadName,
    NoPort,
    BadPort,
    BadWeight,
    BadHost,
    Ipv6WithoutBrackets,
    BadIpv6,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Empty => "is empty; remove the extra ','",
            Problem::NoEquals => "has no '='; write it as NAME=HOST:PORT[:WEIGHT]",
            Problem::EmptyName => "has no name before '='; write it as NAME=HOST:PORT[:WEIGHT]",
            Problem::BadName => {
                "has a name with characters other than letters, digits, '.', '_' and '-'; rename it"
            }
            Problem::NoPort => "has no port; write it as NAME=HOST:PORT[:WEIGHT]",
            Problem::BadPort => "has a bad port; give a port from 1 to 65535",
            Problem::BadWeight => "has a bad weight; give a whole number from 1 to 4294967295",
            Problem::BadHost => {
                "has a bad host; give a host name or an IP address as clients use it"
            }
            Problem::Ipv6WithoutBrackets => {
                "has an IPv6 address without brackets; write it as NAME=[ADDRESS]:PORT[:WEIGHT]"
            }
            Problem::BadIpv6 => {
                "has a bad IPv6 address in brackets; write it as NAME=[ADDRESS]:PORT[:WEIGHT]"
            }
        })
    }
}

/// Why the peer list was refused. The Display is one line for the start-up error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeersError {
    #[error("--cluster-node is empty; give this node's name as --cluster-peers lists it")]
    EmptyNodeName,
    #[error("--cluster-peers entry `{entry}` {problem}")]
    Unparsable { entry: String, problem: Problem },
    #[error(
        "--cluster-peers entry `{entry}` has weight 0; give it a weight of 1 or more, or leave the node out"
    )]
    ZeroWeight { entry: String },
    #[error(
        "--cluster-peers entry `{entry}` repeats the name of `{first}`; give every node a name of its own"
    )]
    DuplicateName { entry: String, first: String },
    #[error(
        "--cluster-peers entry `{entry}` repeats the address of `{first}`; give every node the address clients use for it"
    )]
    DuplicateAddress { entry: String, first: String },
    #[error(
        "--cluster-peers has no entry for this node `{node}` (--cluster-node); add {node}=HOST:PORT with the address clients use for it"
    )]
    MissingThisNode { node: String },
}

impl Peers {
    /// Parses and validates the list `peers` for the node named `this_node`.
    pub fn parse(this_node: &str, peers: &str) -> Result<Peers, PeersError> {
        if this_node.is_empty() {
            return Err(PeersError::EmptyNodeName);
        }
        let entries: Vec<&str> = peers.split(',').map(str::trim).collect();
        let mut members: Vec<Member> = Vec::with_capacity(entries.len());
        for &entry in &entries {
            let member = parse_entry(entry)?;
            if let Some(j) = members.iter().position(|m| m.name == member.name) {
                return Err(PeersError::DuplicateName {
                    entry: entry.to_string(),
                    first: entries[j].to_string(),
                });
            }
            if let Some(j) = members
                .iter()
                .position(|m| m.port == member.port && m.host.eq_ignore_ascii_case(&member.host))
            {
                return Err(PeersError::DuplicateAddress {
                    entry: entry.to_string(),
                    first: entries[j].to_string(),
                });
            }
            members.push(member);
        }
        let this = members
            .iter()
            .position(|m| m.name == this_node)
            .ok_or_else(|| PeersError::MissingThisNode {
                node: this_node.to_string(),
            })?;
        Ok(Peers {
            members,
            this_node: this,
        })
    }

    /// This node's entry.
    /// The list as `--cluster-peers` takes it, every entry with its weight:
    /// [`Peers::parse`] of it gives these members back (`stats cluster`'s
    /// `cluster_peers`, which `--cluster-join` reads).
    pub fn list(&self) -> String {
        list_of(&self.members)
    }

    pub fn this(&self) -> &Member {
        &self.members[self.this_node]
    }
}

/// `members` as `--cluster-peers` takes them, every entry with its weight
/// (what [`Peers::list`] gives, for a list that grew after the parse).
pub fn list_of(members: &[Member]) -> String {
    let entry = |m: &Member| {
        let host = if m.host.contains(':') {
            format!("[{}]", m.host)
        } else {
            m.host.clone()
        };
        format!("{}={host}:{}:{}", m.name, m.port, m.weight)
    };
    members.iter().map(entry).collect::<Vec<_>>().join(",")
}

fn parse_entry(entry: &str) -> Result<Member, PeersError> {
    let bad = |problem| PeersError::Unparsable {
        entry: entry.to_string(),
        problem,
    };
    if entry.is_empty() {
        return Err(bad(Problem::Empty));
    }
    let (name, address) = entry.split_once('=').ok_or(bad(Problem::NoEquals))?;
    if name.is_empty() {
        return Err(bad(Problem::EmptyName));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(Problem::BadName));
    }
    let (host, rest) = split_host(address).map_err(bad)?;
    let (port, weight) = match rest.split_once(':') {
        Some((port, weight)) => (port, Some(weight)),
        None => (rest, None),
    };
    let port = match parse_digits::<u16>(port) {
        Some(0) | None => return Err(bad(Problem::BadPort)),
        Some(port) => port,
    };
    let weight = match weight.map(parse_digits::<u32>) {
        None => 1,
        Some(Some(0)) => {
            return Err(PeersError::ZeroWeight {
                entry: entry.to_string(),
            });
        }
        Some(Some(weight)) => weight,
        Some(None) => return Err(bad(Problem::BadWeight)),
    };
    Ok(Member {
        name: name.to_string(),
        host: host.to_string(),
        port,
        weight,
    })
}

/// Splits `HOST:REST` or `[IPV6]:REST` into the host (without brackets) and what
/// follows the colon after it.
fn split_host(address: &str) -> Result<(&str, &str), Problem> {
    if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(Problem::BadIpv6)?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(Problem::BadIpv6);
        }
        let rest = after.strip_prefix(':').ok_or(Problem::NoPort)?;
        return Ok((host, rest));
    }
    let (host, rest) = address.split_once(':').ok_or(Problem::NoPort)?;
    // More than HOST:PORT:WEIGHT, or a port that is really hex digits of an
    // address: an IPv6 address someone forgot to bracket.
    if rest.matches(':').count() > 1 || address.parse::<Ipv6Addr>().is_ok() {
        return Err(Problem::Ipv6WithoutBrackets);
    }
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !host_ok {
        return Err(Problem::BadHost);
    }
    Ok((host, rest))
}

/// A decimal number of digits only (no sign, no spaces), in range for `T`.
fn parse_digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_parses_back_to_the_same_members() {
        let given = "a=10.0.0.1:11211, b=cache-b.example:11300:3,c=[::1]:11211:2";
        let peers = Peers::parse("b", given).unwrap();
        let list = peers.list();
        assert_eq!(
            list,
            "a=10.0.0.1:11211:1,b=cache-b.example:11300:3,c=[::1]:11211:2"
        );
        assert_eq!(Peers::parse("b", &list).unwrap(), peers);
    }

    use super::*;

    fn member(name: &str, host: &str, port: u16, weight: u32) -> Member {
        Member {
            name: name.into(),
            host: host.into(),
            port,
            weight,
        }
    }

    #[test]
    fn good_lists() {
        let table: &[(&str, &str, Vec<Member>, usize)] = &[
            (
                "a",
                "a=10.0.0.1:11211",
                vec![member("a", "10.0.0.1", 11211, 1)],
                0,
            ),
            (
                "b",
                "a=10.0.0.1:11211:3, b=cache-b.example:11300:1,c=[::1]:11211:2",
                vec![
                    member("a", "10.0.0.1", 11211, 3),
                    member("b", "cache-b.example", 11300, 1),
                    member("c", "::1", 11211, 2),
                ],
                1,
            ),
            (
                "n_2",
                "n-1=127.0.0.1:40001,n_2=127.0.0.1:40002:4294967295",
                vec![
                    member("n-1", "127.0.0.1", 40001, 1),
                    member("n_2", "127.0.0.1", 40002, u32::MAX),
                ],
                1,
            ),
            (
                "v6",
                "v6=[2001:db8::7]:65535",
                vec![member("v6", "2001:db8::7", 65535, 1)],
                0,
            ),
        ];
        for (node, list, members, this_node) in table {
            let peers = Peers::parse(node, list).unwrap_or_else(|e| panic!("{list}: {e}"));
            assert_eq!(&peers.members, members, "{list}");
            assert_eq!(peers.this_node, *this_node, "{list}");
            assert_eq!(peers.this().name, *node);
        }
    }

    fn unparsable(entry: &str, problem: Problem) -> PeersError {
        PeersError::Unparsable {
            entry: entry.into(),
            problem,
        }
    }

    #[test]
    fn bad_lists() {
        let table: &[(&str, &str, PeersError)] = &[
            ("a", "", unparsable("", Problem::Empty)),
            ("a", "a=h:1,", unparsable("", Problem::Empty)),
            (
                "a",
                "a10.0.0.1:11211",
                unparsable("a10.0.0.1:11211", Problem::NoEquals),
            ),
            (
                "a",
                "=10.0.0.1:11211",
                unparsable("=10.0.0.1:11211", Problem::EmptyName),
            ),
            ("a b", "a b=h:1", unparsable("a b=h:1", Problem::BadName)),
            ("a", "a=10.0.0.1", unparsable("a=10.0.0.1", Problem::NoPort)),
            (
                "a",
                "a=10.0.0.1:",
                unparsable("a=10.0.0.1:", Problem::BadPort),
            ),
            (
                "a",
                "a=10.0.0.1:x",
                unparsable("a=10.0.0.1:x", Problem::BadPort),
            ),
            (
                "a",
                "a=10.0.0.1:0",
                unparsable("a=10.0.0.1:0", Problem::BadPort),
            ),
            (
                "a",
                "a=10.0.0.1:65536",
                unparsable("a=10.0.0.1:65536", Problem::BadPort),
            ),
            (
                "a",
                "a=10.0.0.1:+80",
                unparsable("a=10.0.0.1:+80", Problem::BadPort),
            ),
            (
                "a",
                "a=10.0.0.1:80:x",
                unparsable("a=10.0.0.1:80:x", Problem::BadWeight),
            ),
            (
                "a",
                "a=10.0.0.1:80:",
                unparsable("a=10.0.0.1:80:", Problem::BadWeight),
            ),
            (
                "a",
                "a=10.0.0.1:80:-1",
                unparsable("a=10.0.0.1:80:-1", Problem::BadWeight),
            ),
            (
                "a",
                "a=h:80:4294967296",
                unparsable("a=h:80:4294967296", Problem::BadWeight),
            ),
            ("a", "a=:80", unparsable("a=:80", Problem::BadHost)),
            ("a", "a=h/x:80", unparsable("a=h/x:80", Problem::BadHost)),
            (
                "a",
                "a=::1:11211",
                unparsable("a=::1:11211", Problem::Ipv6WithoutBrackets),
            ),
            (
                "a",
                "a=fe80::1",
                unparsable("a=fe80::1", Problem::Ipv6WithoutBrackets),
            ),
            (
                "a",
                "a=[::1:11211",
                unparsable("a=[::1:11211", Problem::BadIpv6),
            ),
            (
                "a",
                "a=[zz::1]:11211",
                unparsable("a=[zz::1]:11211", Problem::BadIpv6),
            ),
            ("a", "a=[::1]", unparsable("a=[::1]", Problem::NoPort)),
            (
                "a",
                "a=10.0.0.1:11211:0",
                PeersError::ZeroWeight {
                    entry: "a=10.0.0.1:11211:0".into(),
                },
            ),
            (
                "a",
                "a=10.0.0.1:11211,a=10.0.0.2:11211",
                PeersError::DuplicateName {
                    entry: "a=10.0.0.2:11211".into(),
                    first: "a=10.0.0.1:11211".into(),
                },
            ),
            (
                "a",
                "a=cache:11211,b=CACHE:11211:2",
                PeersError::DuplicateAddress {
                    entry: "b=CACHE:11211:2".into(),
                    first: "a=cache:11211".into(),
                },
            ),
            (
                "c",
                "a=10.0.0.1:11211,b=10.0.0.2:11211",
                PeersError::MissingThisNode { node: "c".into() },
            ),
            ("", "a=10.0.0.1:11211", PeersError::EmptyNodeName),
        ];
        for (node, list, expected) in table {
            assert_eq!(Peers::parse(node, list).as_ref(), Err(expected), "{list}");
        }
    }

    #[test]
    fn the_same_host_on_other_ports_is_fine() {
        let peers = Peers::parse("a", "a=127.0.0.1:1,b=127.0.0.1:2").unwrap();
        assert_eq!(peers.members.len(), 2);
    }

    #[test]
    fn errors_are_one_line_naming_the_entry_and_the_fix() {
        let cases = [
            ("a", "a=h:1,b=h:x"),
            ("a", "a=h:1:0"),
            ("a", "a=h:1,a=g:1"),
            ("a", "a=h:1,b=h:1"),
            ("z", "a=h:1"),
            ("a", "a=::1:11211"),
        ];
        for (node, list) in cases {
            let message = Peers::parse(node, list).unwrap_err().to_string();
            assert!(!message.contains('\n'), "{message}");
            assert!(message.starts_with("--cluster-peers "), "{message}");
            assert!(message.contains("; "), "no fix in: {message}");
        }
        let message = Peers::parse("a", "a=h:1,b=h:x").unwrap_err().to_string();
        assert_eq!(
            message,
            "--cluster-peers entry `b=h:x` has a bad port; give a port from 1 to 65535"
        );
    }
}
