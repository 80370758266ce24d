//! Response statuses and the generic response encoder.

use super::{HEADER_LEN, RESPONSE_MAGIC, ReplyTo};

macro_rules! statuses {
    ($($(#[$m:meta])* $v:ident = $n:literal => $s:literal,)*) => {
        /// A response status, with memcached's number and the message memcached
        /// 1.6.18 sends as the body of an error reply (`write_bin_error`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Status { $($(#[$m])* $v = $n,)* }
        impl Status {
            /// The status with this number, if known.
            pub fn from_code(n: u16) -> Option<Status> {
                match n { $($n => Some(Status::$v),)* _ => None }
            }
            /// The body memcached sends with this status when it reports an error.
            pub fn message(self) -> &'static str {
                match self { $(Status::$v => $s,)* }
            }
            /// Every status, for tests and docs.
            pub const ALL: &'static [Status] = &[$(Status::$v,)*];
        }
    };
}

statuses!(
    Success = 0x00 => "",
    NotFound = 0x01 => "Not found",
    KeyExists = 0x02 => "Data exists for key.",
    TooLarge = 0x03 => "Too large.",
    InvalidArguments = 0x04 => "Invalid arguments",
    NotStored = 0x05 => "Not stored.",
    DeltaBadval = 0x06 => "Non-numeric server-side value for incr or decr",
    AuthError = 0x20 => "Auth failure.",
    /// SASL: another step is needed; the body is the server's challenge.
    AuthContinue = 0x21 => "",
    UnknownCommand = 0x81 => "Unknown command",
    /// memcached also sends this status with other texts ("Out of memory
    /// allocating item"): see [`encode_status_message`].
    OutOfMemory = 0x82 => "Out of memory",
);

impl Status {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// The fixed fields of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The request's opcode, as sent.
    pub opcode: u8,
    pub status: Status,
    pub opaque: u32,
    pub cas: u64,
}

impl ResponseHeader {
    /// A header answering `to`.
    pub fn new(to: ReplyTo, status: Status, cas: u64) -> Self {
        ResponseHeader {
            opcode: to.opcode,
            status,
            opaque: to.opaque,
            cas,
        }
    }
}

/// Append a complete response: header, extras, key, value.
///
/// # Panics
/// When `extras` is over 255 bytes, `key` over 65535, or the body over 4 GiB:
/// the header cannot say so, and no caller has a reason to try.
pub fn encode_response(
    out: &mut Vec<u8>,
    h: &ResponseHeader,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let fixed = Fixed {
        magic: RESPONSE_MAGIC,
        opcode: h.opcode,
        status: h.status.code(),
        opaque: h.opaque,
        cas: h.cas,
    };
    put_packet(out, &fixed, extras, key, value);
}

/// The header fields a packet's parts do not determine.
pub(crate) struct Fixed {
    pub magic: u8,
    pub opcode: u8,
    /// The status of a response; the vbucket (0) of a request.
    pub status: u16,
    pub opaque: u32,
    pub cas: u64,
}

/// Append a request or response packet.
pub(crate) fn put_packet(out: &mut Vec<u8>, f: &Fixed, extras: &[u8], key: &[u8], value: &[u8]) {
    let extlen = u8::try_from(extras.len()).expect("extras fit a byte");
    let keylen = u16::try_from(key.len()).expect("key fits 16 bits");
    let bodylen = u32::try_from(extras.len() + key.len() + value.len()).expect("body fits 32 bits");
    out.reserve(HEADER_LEN + bodylen as usize);
    out.push(f.magic);
    out.push(f.opcode);
    out.extend_from_slice(&keylen.to_be_bytes());
    out.push(extlen);
    out.push(0); // data type: raw bytes, the only one there is
    out.extend_from_slice(&f.status.to_be_bytes());
    out.extend_from_slice(&bodylen.to_be_bytes());
    out.extend_from_slice(&f.opaque.to_be_bytes());
    out.extend_from_slice(&f.cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Success with no body: stored (with the item's new CAS), deleted, flushed,
/// quit, noop (CAS 0 for those).
pub fn encode_ok(out: &mut Vec<u8>, to: ReplyTo, cas: u64) {
    encode_response(
        out,
        &ResponseHeader::new(to, Status::Success, cas),
        &[],
        &[],
        &[],
    );
}

/// A status-only reply, the status's message as the body and CAS 0, as
/// memcached's `write_bin_error` sends it.
pub fn encode_status(out: &mut Vec<u8>, to: ReplyTo, status: Status) {
    encode_status_message(out, to, status, status.message());
}

/// A status-only reply with a message of the caller's (memcached sends
/// `OutOfMemory` with the reason after `SERVER_ERROR ` in its text protocol).
pub fn encode_status_message(out: &mut Vec<u8>, to: ReplyTo, status: Status, message: &str) {
    let h = ResponseHeader::new(to, status, 0);
    encode_response(out, &h, &[], &[], message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_and_messages_are_memcacheds() {
        let want: &[(Status, u16, &str)] = &[
            (Status::Success, 0x00, ""),
            (Status::NotFound, 0x01, "Not found"),
            (Status::KeyExists, 0x02, "Data exists for key."),
            (Status::TooLarge, 0x03, "Too large."),
            (Status::InvalidArguments, 0x04, "Invalid arguments"),
            (Status::NotStored, 0x05, "Not stored."),
            (
                Status::DeltaBadval,
                0x06,
                "Non-numeric server-side value for incr or decr",
            ),
            (Status::AuthError, 0x20, "Auth failure."),
            (Status::AuthContinue, 0x21, ""),
            (Status::UnknownCommand, 0x81, "Unknown command"),
            (Status::OutOfMemory, 0x82, "Out of memory"),
        ];
        assert_eq!(want.len(), Status::ALL.len());
        for &(s, code, msg) in want {
            assert_eq!((s.code(), s.message()), (code, msg));
            assert_eq!(Status::from_code(code), Some(s));
        }
        assert_eq!(Status::from_code(0x07), None);
    }

    #[test]
    fn header_layout() {
        let mut out = Vec::new();
        let h = ResponseHeader {
            opcode: 0x0c,
            status: Status::NotFound,
            opaque: 0x0102_0304,
            cas: 0x1122_3344_5566_7788,
        };
        encode_response(&mut out, &h, &[9, 9, 9, 9], b"ky", b"val");
        assert_eq!(
            out,
            [
                &[0x81, 0x0c, 0, 2, 4, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4][..],
                &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
                &[9, 9, 9, 9],
                b"kyval",
            ]
            .concat()
        );
    }

    #[test]
    fn status_reply_carries_the_message() {
        let mut out = Vec::new();
        let to = ReplyTo {
            opcode: 0x50,
            opaque: 5,
        };
        encode_status(&mut out, to, Status::UnknownCommand);
        assert_eq!(out.len(), HEADER_LEN + 15);
        assert_eq!(&out[6..8], &[0, 0x81]);
        assert_eq!(&out[8..12], &15u32.to_be_bytes());
        assert_eq!(&out[HEADER_LEN..], b"Unknown command");
    }
}
