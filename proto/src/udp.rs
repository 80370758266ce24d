//! memcached's UDP framing: an 8-byte header before each datagram's payload.
//!
//! ```text
//!  0       2       4       6       8
//!  +-------+-------+-------+-------+---------------------------+
//!  | req id|  seq  | total | rsvd  | payload (≤ 1392 bytes)    |
//!  +-------+-------+-------+-------+---------------------------+
//!  big-endian u16s; a reply is cut into datagrams of at most 1400 bytes, header
//!  included (memcached's UDP_MAX_PAYLOAD_SIZE; checked against 1.6.18, whose
//!  5025-byte reply came back as 1400+1400+1400+857 bytes, seq 0..3 of total 4).
//! ```
//!
//! Requests must fit one datagram: memcached drops (without a reply) any whose
//! sequence is not 0 or whose total is not 1; the reserved field is ignored.

/// Header length.
pub const HEADER_LEN: usize = 8;
/// Largest datagram memcached sends, header included.
pub const MAX_DATAGRAM: usize = 1400;
/// Largest payload per datagram.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN;

/// The frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpHeader {
    pub request_id: u16,
    pub sequence: u16,
    pub total: u16,
    pub reserved: u16,
}

impl UdpHeader {
    /// The 8 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&self.request_id.to_be_bytes());
        h[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        h[4..6].copy_from_slice(&self.total.to_be_bytes());
        h[6..8].copy_from_slice(&self.reserved.to_be_bytes());
        h
    }

    /// Split a datagram into header and payload; `None` if shorter than a header.
    pub fn decode(datagram: &[u8]) -> Option<(UdpHeader, &[u8])> {
        let h = datagram.get(..HEADER_LEN)?;
        let u = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some((
            UdpHeader {
                request_id: u(0),
                sequence: u(2),
                total: u(4),
                reserved: u(6),
            },
            &datagram[HEADER_LEN..],
        ))
    }
}

/// Why a request datagram is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpError {
    /// Fewer than 8 bytes.
    Short,
    /// Part of a multi-datagram request, which memcached does not support.
    MultiDatagram,
}

/// The request id and payload of a request datagram.
pub fn request_payload(datagram: &[u8]) -> Result<(u16, &[u8]), UdpError> {
    let (h, payload) = UdpHeader::decode(datagram).ok_or(UdpError::Short)?;
    if h.sequence != 0 || h.total != 1 {
        return Err(UdpError::MultiDatagram);
    }
    Ok((h.request_id, payload))
}

/// The datagrams of one reply: each item is the header to send and the slice of
/// the reply that follows it (send both with one vectored write; nothing is
/// copied). The count is clamped to 65535 as memcached does; the sequence then
/// wraps, so replies over ~91 MB do not reassemble (no memcached client would
/// ask for one over UDP).
#[derive(Debug, Clone)]
pub struct Datagrams<'a> {
    reply: &'a [u8],
    request_id: u16,
    sequence: u16,
    total: u16,
}

/// Cut `reply` into numbered datagrams for `request_id`. An empty reply yields
/// nothing.
pub fn split_reply(request_id: u16, reply: &[u8]) -> Datagrams<'_> {
    let count = reply.len().div_ceil(MAX_PAYLOAD);
    Datagrams {
        reply,
        request_id,
        sequence: 0,
        total: count.min(usize::from(u16::MAX)) as u16,
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = ([u8; HEADER_LEN], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.reply.is_empty() {
            return None;
        }
        let n = self.reply.len().min(MAX_PAYLOAD);
        let (chunk, rest) = self.reply.split_at(n);
        self.reply = rest;
        let h = UdpHeader {
            request_id: self.request_id,
            sequence: self.sequence,
            total: self.total,
            reserved: 0,
        };
        self.sequence = self.sequence.wrapping_add(1);
        Some((h.encode(), chunk))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.reply.len().div_ceil(MAX_PAYLOAD);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Datagrams<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = UdpHeader {
            request_id: 0x1234,
            sequence: 2,
            total: 4,
            reserved: 0,
        };
        let b = h.encode();
        assert_eq!(b, [0x12, 0x34, 0, 2, 0, 4, 0, 0]);
        let mut d = b.to_vec();
        d.extend_from_slice(b"version\r\n");
        assert_eq!(UdpHeader::decode(&d), Some((h, &b"version\r\n"[..])));
        assert_eq!(UdpHeader::decode(&b[..7]), None);
    }

    #[test]
    fn requests() {
        // memcached 1.6.18 answered the first, ignored its reserved field, and
        // dropped the others silently.
        type Row = (&'static [u8], Result<(u16, &'static [u8]), UdpError>);
        let rows: &[Row] = &[
            (
                b"\x00\x05\x00\x00\x00\x01\x00\x07version\r\n",
                Ok((5, b"version\r\n")),
            ),
            (
                b"\x00\x05\x00\x01\x00\x02\x00\x00version\r\n",
                Err(UdpError::MultiDatagram),
            ),
            (
                b"\x00\x05\x00\x00\x00\x00\x00\x00version\r\n",
                Err(UdpError::MultiDatagram),
            ),
            (b"\x00\x05\x00", Err(UdpError::Short)),
        ];
        for (d, want) in rows {
            assert_eq!(request_payload(d), *want);
        }
    }

    #[test]
    fn split_like_memcached() {
        // A 5000-byte value: "VALUE big 0 5000\r\n" + data + "\r\nEND\r\n" = 5025
        // bytes, sent by memcached 1.6.18 as datagrams of 1400, 1400, 1400, 857.
        let reply = vec![b'x'; 5025];
        let d: Vec<_> = split_reply(0x1234, &reply).collect();
        let sizes: Vec<usize> = d.iter().map(|(h, p)| h.len() + p.len()).collect();
        assert_eq!(sizes, [1400, 1400, 1400, 857]);
        for (i, (h, _)) in d.iter().enumerate() {
            let (hd, _) = UdpHeader::decode(h).unwrap();
            assert_eq!(
                (hd.request_id, hd.sequence, hd.total),
                (0x1234, i as u16, 4)
            );
        }
        let joined: Vec<u8> = d.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        assert_eq!(joined, reply);
        assert_eq!(split_reply(1, b"").count(), 0);
        assert_eq!(split_reply(1, &[0; MAX_PAYLOAD]).len(), 1);
        assert_eq!(split_reply(1, &[0; MAX_PAYLOAD + 1]).len(), 2);
    }
}
