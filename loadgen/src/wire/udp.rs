//! memcached's UDP framing: every datagram starts with an 8-byte header
//! (request id, sequence number, datagram count, reserved; big endian), a
//! request fits in one datagram, and a reply may be split over many that
//! arrive in any order, or not at all.
//!
//! ```text
//!  0        2        4        6        8
//! +--------+--------+--------+--------+---------------
//! | req id |  seq   | total  |   0    | payload ...
//! +--------+--------+--------+--------+---------------
//! ```
//! The header codec is `proto`'s; the client's reassembly is here.

pub use proto::udp::{HEADER_LEN, MAX_PAYLOAD as MAX_REQUEST_PAYLOAD, UdpHeader};

/// The header of a reply datagram and its payload; `None` when the header
/// is short or impossible (no datagrams, or a sequence past the count).
pub fn parse_reply_datagram(datagram: &[u8]) -> Option<(UdpHeader, &[u8])> {
    let (h, payload) = UdpHeader::decode(datagram)?;
    if h.total == 0 || h.sequence >= h.total {
        return None;
    }
    Some((h, payload))
}

/// The header of a single-datagram request.
pub fn request_header(request_id: u16) -> [u8; HEADER_LEN] {
    UdpHeader {
        request_id,
        sequence: 0,
        total: 1,
        reserved: 0,
    }
    .encode()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReassemblyError {
    #[error("datagram disagrees with earlier ones on the datagram count")]
    TotalMismatch,
}

/// The datagrams of one reply, put back in order.
#[derive(Debug, Default)]
pub struct Reassembly {
    parts: Vec<Option<Vec<u8>>>,
    have: usize,
}

impl Reassembly {
    /// Adds one datagram's payload; returns the whole reply once every part
    /// is in. A duplicate of a part already held is ignored.
    pub fn add(
        &mut self,
        h: UdpHeader,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        if self.parts.is_empty() {
            self.parts = vec![None; h.total as usize];
        } else if self.parts.len() != h.total as usize {
            return Err(ReassemblyError::TotalMismatch);
        }
        let slot = &mut self.parts[h.sequence as usize];
        if slot.is_none() {
            *slot = Some(payload.to_vec());
            self.have += 1;
        }
        if self.have < self.parts.len() {
            return Ok(None);
        }
        let mut whole = Vec::with_capacity(self.parts.iter().flatten().map(Vec::len).sum());
        for p in self.parts.drain(..) {
            whole.extend_from_slice(&p.expect("all parts present"));
        }
        self.have = 0;
        Ok(Some(whole))
    }

    /// A single-datagram reply needs no copy.
    pub fn is_single(h: &UdpHeader) -> bool {
        h.total == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(id: u16, sequence: u16, total: u16, payload: &[u8]) -> Vec<u8> {
        let header = UdpHeader {
            request_id: id,
            sequence,
            total,
            reserved: 0,
        };
        let mut d = header.encode().to_vec();
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn header_round_trips_and_rejects_nonsense() {
        let d = dgram(0xBEEF, 2, 3, b"xy");
        assert_eq!(&d[..8], &[0xBE, 0xEF, 0, 2, 0, 3, 0, 0]);
        let (h, p) = parse_reply_datagram(&d).unwrap();
        assert_eq!(
            (h.request_id, h.sequence, h.total, p),
            (0xBEEF, 2, 3, &b"xy"[..])
        );
        assert!(parse_reply_datagram(&d[..7]).is_none());
        assert!(parse_reply_datagram(&dgram(1, 3, 3, b"")).is_none());
        assert!(parse_reply_datagram(&dgram(1, 0, 0, b"")).is_none());
        assert_eq!(request_header(7), [0, 7, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn out_of_order_parts_with_a_duplicate_reassemble_in_order() {
        let mut r = Reassembly::default();
        let parts = [(2u16, &b"C"[..]), (0, b"A"), (2, b"C"), (1, b"B")];
        let mut got = None;
        for (i, (seq, p)) in parts.iter().enumerate() {
            let d = dgram(7, *seq, 3, p);
            let (h, payload) = parse_reply_datagram(&d).unwrap();
            let out = r.add(h, payload).unwrap();
            if i < 3 {
                assert!(out.is_none(), "complete too early at {i}");
            } else {
                got = out;
            }
        }
        assert_eq!(got.as_deref(), Some(&b"ABC"[..]));
    }

    #[test]
    fn a_missing_part_never_completes_and_a_total_mismatch_is_an_error() {
        let mut r = Reassembly::default();
        let d = dgram(1, 0, 2, b"A");
        let (h, p) = parse_reply_datagram(&d).unwrap();
        assert_eq!(r.add(h, p), Ok(None));
        let d = dgram(1, 1, 3, b"B");
        let (h, p) = parse_reply_datagram(&d).unwrap();
        assert_eq!(r.add(h, p), Err(ReassemblyError::TotalMismatch));
    }
}
