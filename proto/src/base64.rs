//! Base64 for meta-command keys (`b` flag), with memcached's decoding rules.
//!
//! memcached's decoder (base64.c) skips bytes outside the alphabet, needs the
//! count of alphabet bytes (`=` included) to be a non-zero multiple of four, and
//! stops after the first block that holds padding. Keys that decode here decode
//! there to the same bytes, and vice versa. Encoding is the standard padded form.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const SKIP: u8 = 0x80;

/// Sextet for each byte; `=` decodes as 0 (and is counted as padding); SKIP elsewhere.
const DECODE: [u8; 256] = {
    let mut t = [SKIP; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = 0;
    t
};

/// Longest decoded key: a 250-byte base64 token holds at most 187 bytes.
pub const MAX_DECODED_KEY: usize = 250 / 4 * 3 + 3;

/// Decode `src` into `out`, returning the decoded length, or `None` where memcached
/// answers "error decoding key" (or when `out` is too small).
pub fn decode(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let count = src.iter().filter(|&&b| DECODE[b as usize] != SKIP).count();
    if count == 0 || count % 4 != 0 || count / 4 * 3 > out.len() {
        return None;
    }
    let mut pos = 0;
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &b in src {
        let v = DECODE[b as usize];
        if v == SKIP {
            continue;
        }
        if b == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out[pos] = (block[0] << 2) | (block[1] >> 4);
            out[pos + 1] = (block[1] << 4) | (block[2] >> 2);
            out[pos + 2] = (block[2] << 6) | block[3];
            pos += 3;
            n = 0;
            if pad > 0 {
                match pad {
                    1 => pos -= 1,
                    2 => pos -= 2,
                    _ => return None,
                }
                break;
            }
        }
    }
    Some(pos)
}

/// Whether `src` decodes, without writing anything (used while parsing).
pub fn validate(src: &[u8]) -> bool {
    let mut buf = [0u8; MAX_DECODED_KEY];
    // Keys longer than the key limit are refused before this is asked.
    src.len() <= 252 && decode(src, &mut buf).is_some()
}

/// Append the padded base64 form of `src`.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(src.len().div_ceil(3) * 4);
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.extend_from_slice(&[
            ALPHABET[(c[0] >> 2) as usize],
            ALPHABET[(((c[0] & 0x03) << 4) | (c[1] >> 4)) as usize],
            ALPHABET[(((c[1] & 0x0f) << 2) | (c[2] >> 6)) as usize],
            ALPHABET[(c[2] & 0x3f) as usize],
        ]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[
            ALPHABET[(a >> 2) as usize],
            ALPHABET[((a & 0x03) << 4) as usize],
            b'=',
            b'=',
        ]),
        [a, b] => out.extend_from_slice(&[
            ALPHABET[(a >> 2) as usize],
            ALPHABET[(((a & 0x03) << 4) | (b >> 4)) as usize],
            ALPHABET[((b & 0x0f) << 2) as usize],
            b'=',
        ]),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        // Rows checked against memcached 1.6.18 with `mg <key> b v`: the ones it
        // answers "CLIENT_ERROR error decoding key" are None here.
        let rows: &[(&[u8], Option<&[u8]>)] = &[
            (b"Zm9v", Some(b"foo")),
            (b"Zm9vYg==", Some(b"foob")),
            (b"AAEC", Some(&[0, 1, 2])),
            (b"Zm9v=", None),
            (b"!!!!", None),
            (b"Zm9", None),
            (b"Z", None),
            (b"Zm9vYg", None),
            (b"Zm9vYg=", None),
            (b"Zm9vYg===", None),
            (b"foo", None),
            (b"A===", None),
            (b"====", None),
            // Bytes outside the alphabet are skipped, as memcached does.
            (b"Zm!9v", Some(b"foo")),
            // Decoding stops after the first padded block.
            (b"AA==Zm9v", Some(&[0])),
        ];
        for (src, want) in rows {
            let mut buf = [0u8; 64];
            let got = decode(src, &mut buf).map(|n| buf[..n].to_vec());
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(src));
            assert_eq!(validate(src), want.is_some());
        }
    }

    #[test]
    fn encode_round_trip() {
        for len in 0..40u8 {
            let src: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let mut enc = Vec::new();
            encode(&src, &mut enc);
            assert_eq!(enc.len() % 4, 0);
            if src.is_empty() {
                continue;
            }
            let mut buf = [0u8; 64];
            let n = decode(&enc, &mut buf).unwrap();
            assert_eq!(&buf[..n], &src[..]);
        }
    }
}
