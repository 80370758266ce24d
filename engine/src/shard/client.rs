//! Who a request came from and what became of it: the vocabulary the request
//! path, the UDP front end, the keyless commands and the peers' records share.

use super::mesh::Origin;

/// Who a request came from: a TCP connection or a UDP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Conn { slot: u32, generation: u32 },
    Udp { slot: u32, generation: u32 },
}

/// `Origin::kind` of a record: who on the sending shard awaits its reply.
pub const ORIGIN_CONN: u8 = 0;
pub const ORIGIN_UDP: u8 = 1;
pub const ORIGIN_GATHER: u8 = 2;
/// Nobody awaits the reply: it is dropped on arrival.
pub const ORIGIN_NONE: u8 = 3;

impl Client {
    /// The origin of a record whose reply is part `part` of this client's queue.
    pub fn origin(self, part: u32) -> Origin {
        let (kind, slot, generation) = match self {
            Client::Conn { slot, generation } => (ORIGIN_CONN, slot, generation),
            Client::Udp { slot, generation } => (ORIGIN_UDP, slot, generation),
        };
        Origin {
            kind,
            slot,
            generation,
            part,
        }
    }

    /// The client a reply record is for, if a client awaits it.
    pub fn of_origin(origin: Origin) -> Option<Client> {
        let (slot, generation) = (origin.slot, origin.generation);
        match origin.kind {
            ORIGIN_CONN => Some(Client::Conn { slot, generation }),
            ORIGIN_UDP => Some(Client::Udp { slot, generation }),
            _ => None,
        }
    }
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// A channel to its owner is full: try again later, nothing was done.
    Stall,
    /// The connection is to close once its replies are out (`quit`).
    Close,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_survives_the_trip_through_an_origin() {
        for c in [
            Client::Conn {
                slot: 7,
                generation: 3,
            },
            Client::Udp {
                slot: 1,
                generation: 9,
            },
        ] {
            let o = c.origin(5);
            assert_eq!(o.part, 5);
            assert_eq!(Client::of_origin(o), Some(c));
        }
        let none = Origin {
            kind: ORIGIN_NONE,
            slot: 0,
            generation: 0,
            part: 0,
        };
        assert_eq!(Client::of_origin(none), None);
    }
}
