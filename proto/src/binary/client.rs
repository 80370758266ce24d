//! The client side: request encoding and response parsing, for the loadgen and
//! the tests.

use super::response::{Fixed, Status, put_packet};
use super::{BinOp, BinRequest, HEADER_LEN, REQUEST_MAGIC, RESPONSE_MAGIC};

impl BinRequest<'_> {
    /// Append this request's packet. The opcode sent is `self.opcode`; build
    /// requests with [`BinRequest::new`] to keep it in step with `op`.
    ///
    /// # Panics
    /// When a key is over 65535 bytes or the body over 4 GiB.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut extras = [0u8; 20];
        let (n, key, value): (usize, &[u8], &[u8]) = match self.op {
            BinOp::Get { key, .. } | BinOp::Delete { key } => (0, key, &[]),
            BinOp::Gat { key, exptime, .. } | BinOp::Touch { key, exptime } => {
                extras[..4].copy_from_slice(&exptime.to_be_bytes());
                (4, key, &[])
            }
            BinOp::Store {
                key,
                flags,
                exptime,
                value,
                ..
            } => {
                extras[..4].copy_from_slice(&flags.to_be_bytes());
                extras[4..8].copy_from_slice(&exptime.to_be_bytes());
                (8, key, value)
            }
            BinOp::Concat { key, value, .. } => (0, key, value),
            BinOp::Arith(a) => {
                extras[..8].copy_from_slice(&a.delta.to_be_bytes());
                extras[8..16].copy_from_slice(&a.initial.to_be_bytes());
                extras[16..].copy_from_slice(&a.exptime.to_be_bytes());
                (20, a.key, &[])
            }
            BinOp::Flush { delay: Some(d) } | BinOp::Verbosity { level: d } => {
                extras[..4].copy_from_slice(&d.to_be_bytes());
                (4, &[], &[])
            }
            BinOp::Stat { key } => (0, key.unwrap_or(&[]), &[]),
            BinOp::SaslAuth { mech, data } | BinOp::SaslStep { mech, data } => (0, mech, data),
            BinOp::Flush { delay: None }
            | BinOp::Quit
            | BinOp::Noop
            | BinOp::Version
            | BinOp::SaslListMechs => (0, &[], &[]),
        };
        let fixed = Fixed {
            magic: REQUEST_MAGIC,
            opcode: self.opcode as u8,
            status: 0,
            opaque: self.opaque,
            cas: self.cas,
        };
        put_packet(out, &fixed, &extras[..n], key, value);
    }
}

/// Append `req`'s packet: [`BinRequest::encode`].
pub fn encode_request(out: &mut Vec<u8>, req: &BinRequest<'_>) {
    req.encode(out);
}

/// A response, its parts borrowed from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinResponse<'a> {
    pub opcode: u8,
    /// The status number as received ([`BinResponse::status`] names it).
    pub status: u16,
    pub opaque: u32,
    pub cas: u64,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl BinResponse<'_> {
    /// The status, if it is one memcached sends.
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status)
    }

    /// The flags of a get or touch hit (4 bytes of extras).
    pub fn flags(&self) -> Option<u32> {
        (self.extras.len() == 4).then(|| super::be32(self.extras))
    }

    /// The value of an increment or decrement reply (8 bytes).
    pub fn counter(&self) -> Option<u64> {
        (self.extras.is_empty() && self.value.len() == 8).then(|| super::be64(self.value))
    }

    /// Append the packet again, byte for byte as received.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let fixed = Fixed {
            magic: RESPONSE_MAGIC,
            opcode: self.opcode,
            status: self.status,
            opaque: self.opaque,
            cas: self.cas,
        };
        put_packet(out, &fixed, self.extras, self.key, self.value);
    }
}

/// Why bytes are not a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The first byte is not 0x81.
    BadMagic(u8),
    /// Extras and key are longer than the body.
    BadLengths,
}

/// The result of parsing the start of a buffer as a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseParse<'a> {
    Complete {
        response: BinResponse<'a>,
        consumed: usize,
    },
    /// At least this many more bytes are needed.
    Incomplete { more: usize },
    /// Not a response: the stream cannot be followed further.
    Invalid(ResponseError),
}

/// Parse one response from the start of `buf`.
pub fn parse_response(buf: &[u8]) -> ResponseParse<'_> {
    if let Some(&m) = buf.first()
        && m != RESPONSE_MAGIC
    {
        return ResponseParse::Invalid(ResponseError::BadMagic(m));
    }
    if buf.len() < HEADER_LEN {
        return ResponseParse::Incomplete {
            more: HEADER_LEN - buf.len(),
        };
    }
    let keylen = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let extlen = buf[4] as usize;
    let bodylen = super::be32(&buf[8..12]) as usize;
    if keylen + extlen > bodylen {
        return ResponseParse::Invalid(ResponseError::BadLengths);
    }
    let total = HEADER_LEN + bodylen;
    if buf.len() < total {
        return ResponseParse::Incomplete {
            more: total - buf.len(),
        };
    }
    let key_at = HEADER_LEN + extlen;
    let value_at = key_at + keylen;
    ResponseParse::Complete {
        response: BinResponse {
            opcode: buf[1],
            status: u16::from_be_bytes([buf[6], buf[7]]),
            opaque: super::be32(&buf[12..16]),
            cas: super::be64(&buf[16..24]),
            extras: &buf[HEADER_LEN..key_at],
            key: &buf[key_at..value_at],
            value: &buf[value_at..total],
        },
        consumed: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::ReplyTo;
    use crate::binary::get::encode_hit;

    #[test]
    fn response_round_trip_and_split() {
        let mut wire = Vec::new();
        let to = ReplyTo {
            opcode: 0x0c,
            opaque: 42,
        };
        encode_hit(&mut wire, to, 7, 99, Some(b"key"), b"value");
        let ResponseParse::Complete { response, consumed } = parse_response(&wire) else {
            panic!()
        };
        assert_eq!(consumed, wire.len());
        assert_eq!(
            (
                response.status(),
                response.flags(),
                response.key,
                response.value,
                response.cas
            ),
            (
                Some(Status::Success),
                Some(7),
                &b"key"[..],
                &b"value"[..],
                99
            )
        );
        let mut again = Vec::new();
        response.encode(&mut again);
        assert_eq!(again, wire);
        for cut in 0..wire.len() {
            assert_eq!(
                parse_response(&wire[..cut]),
                ResponseParse::Incomplete {
                    more: if cut < HEADER_LEN {
                        HEADER_LEN - cut
                    } else {
                        wire.len() - cut
                    }
                }
            );
        }
        assert_eq!(
            parse_response(b"\x80"),
            ResponseParse::Invalid(ResponseError::BadMagic(0x80))
        );
    }
}
