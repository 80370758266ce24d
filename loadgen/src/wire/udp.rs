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
//! Stand-in for `proto`'s frame header codec until that lands.

pub const HEADER_LEN: usize = 8;
/// Payload per request datagram we allow (a conservative MTU share).
pub const MAX_REQUEST_PAYLOAD: usize = 1400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub request_id: u16,
    pub seq: u16,
    pub total: u16,
}

impl FrameHeader {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }

    pub fn parse(datagram: &[u8]) -> Option<(FrameHeader, &[u8])> {
        if datagram.len() < HEADER_LEN {
            return None;
        }
        let be = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
        let h = FrameHeader {
            request_id: be(0),
            seq: be(2),
            total: be(4),
        };
        if h.total == 0 || h.seq >= h.total {
            return None;
        }
        Some((h, &datagram[HEADER_LEN..]))
    }
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
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        if self.parts.is_empty() {
            self.parts = vec![None; h.total as usize];
        } else if self.parts.len() != h.total as usize {
            return Err(ReassemblyError::TotalMismatch);
        }
        let slot = &mut self.parts[h.seq as usize];
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
    pub fn is_single(h: &FrameHeader) -> bool {
        h.total == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(id: u16, seq: u16, total: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        FrameHeader {
            request_id: id,
            seq,
            total,
        }
        .write(&mut d);
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn header_round_trips_and_rejects_nonsense() {
        let d = dgram(0xBEEF, 2, 3, b"xy");
        assert_eq!(&d[..8], &[0xBE, 0xEF, 0, 2, 0, 3, 0, 0]);
        let (h, p) = FrameHeader::parse(&d).unwrap();
        assert_eq!(
            (h.request_id, h.seq, h.total, p),
            (0xBEEF, 2, 3, &b"xy"[..])
        );
        assert!(FrameHeader::parse(&d[..7]).is_none());
        assert!(FrameHeader::parse(&dgram(1, 3, 3, b"")).is_none());
        assert!(FrameHeader::parse(&dgram(1, 0, 0, b"")).is_none());
    }

    #[test]
    fn out_of_order_parts_with_a_duplicate_reassemble_in_order() {
        let mut r = Reassembly::default();
        let parts = [(2u16, &b"C"[..]), (0, b"A"), (2, b"C"), (1, b"B")];
        let mut got = None;
        for (i, (seq, p)) in parts.iter().enumerate() {
            let d = dgram(7, *seq, 3, p);
            let (h, payload) = FrameHeader::parse(&d).unwrap();
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
        let (h, p) = FrameHeader::parse(&d).unwrap();
        assert_eq!(r.add(h, p), Ok(None));
        let d = dgram(1, 1, 3, b"B");
        let (h, p) = FrameHeader::parse(&d).unwrap();
        assert_eq!(r.add(h, p), Err(ReassemblyError::TotalMismatch));
    }
}
