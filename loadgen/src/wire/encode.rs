//! Client-side request encoders for the workload's two operations, in the
//! text and meta protocols. (Stand-in for `proto`'s encoders until that
//! crate has them; callers only see these two functions.)

use crate::workload::{Generator, MAX_KEY, write_key};

use super::Protocol;

/// Appends a get of `keys` (indices into the key space).
///
/// Text: `get k1 k2 ...`. Meta: `mg <key> v k` for one key; for several,
/// quiet `mg <key> v k q` per key (misses are silent) closed by `mn`, the
/// pipelined multi-get the meta protocol documents.
pub fn get(out: &mut Vec<u8>, protocol: Protocol, keys: &[u64], key_size: usize) {
    match protocol {
        Protocol::Text | Protocol::Udp => {
            out.extend_from_slice(b"get");
            for &k in keys {
                out.push(b' ');
                write_key(out, k, key_size);
            }
            out.extend_from_slice(b"\r\n");
        }
        Protocol::Meta => {
            let quiet = keys.len() > 1;
            for &k in keys {
                out.extend_from_slice(b"mg ");
                write_key(out, k, key_size);
                out.extend_from_slice(if quiet { b" v k q\r\n" } else { b" v k\r\n" });
            }
            if quiet {
                out.extend_from_slice(b"mn\r\n");
            }
        }
    }
}

/// Appends a set of key `key` with a value of `len` bytes drawn by `generator`.
pub fn set(out: &mut Vec<u8>, protocol: Protocol, key: u64, len: usize, generator: &mut Generator) {
    let key_size = generator.key_size();
    let mut name = [0u8; MAX_KEY];
    {
        // The value's checksum needs the key while `out` is being appended
        // to: write it at the end of `out`, copy it to the stack, truncate.
        let at = out.len();
        write_key(out, key, key_size);
        name[..key_size].copy_from_slice(&out[at..]);
        out.truncate(at);
    }
    let name = &name[..key_size];
    let mut num = itoa::Buffer::new();
    match protocol {
        Protocol::Text | Protocol::Udp => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(name);
            out.extend_from_slice(b" 0 0 ");
        }
        Protocol::Meta => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(name);
            out.push(b' ');
        }
    }
    out.extend_from_slice(num.format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
    generator.write_value(out, name, len);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{KeyDist, ValueSizes};
    use crate::workload::Workload;

    fn generator(verify: bool) -> Generator {
        Generator::new(
            &Workload {
                keys: 100,
                key_size: 4,
                value_sizes: ValueSizes::Fixed(32),
                get_weight: 1,
                set_weight: 1,
                mget: 1,
                key_dist: KeyDist::Uniform,
                seed: 1,
                verify,
            },
            0,
        )
    }

    #[test]
    fn gets_in_each_protocol() {
        let mut out = Vec::new();
        get(&mut out, Protocol::Text, &[1, 22], 4);
        assert_eq!(out, b"get k001 k022\r\n");
        out.clear();
        get(&mut out, Protocol::Meta, &[7], 4);
        assert_eq!(out, b"mg k007 v k\r\n");
        out.clear();
        get(&mut out, Protocol::Meta, &[7, 8], 4);
        assert_eq!(out, b"mg k007 v k q\r\nmg k008 v k q\r\nmn\r\n");
    }

    #[test]
    fn sets_carry_the_value_and_verify_checks_it() {
        let mut g = generator(false);
        let mut out = Vec::new();
        set(&mut out, Protocol::Text, 5, 3, &mut g);
        assert_eq!(out, b"set k005 0 0 3\r\nxxx\r\n");
        out.clear();
        set(&mut out, Protocol::Meta, 5, 3, &mut g);
        assert_eq!(out, b"ms k005 3\r\nxxx\r\n");
        let mut g = generator(true);
        out.clear();
        set(&mut out, Protocol::Text, 9, 40, &mut g);
        let value = &out[b"set k009 0 0 40\r\n".len()..out.len() - 2];
        assert_eq!(crate::verify::check_value(b"k009", value), Ok(()));
    }
}
