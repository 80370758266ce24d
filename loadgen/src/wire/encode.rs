//! The workload's two operations as requests, through `proto`'s client
//! encoders. Keys are generated into a scratch buffer first (proto encodes
//! from key slices); values too, so that `--verify` can checksum them.

use proto::MetaFlag;
use proto::binary::{BinOp, BinRequest, StoreMode};
use proto::client;

use crate::workload::{Generator, write_key};

use super::Protocol;

/// Reusable buffers, so that encoding allocates nothing once warm.
#[derive(Default)]
pub struct Scratch {
    keys: Vec<u8>,
    value: Vec<u8>,
}

/// Appends a get of `keys` (indices into the key space).
///
/// Text: `get k1 k2 ...`. Meta: `mg <key> v k` for one key; for several,
/// quiet `mg <key> v k q` per key (misses are silent) closed by `mn`, the
/// pipelined multi-get the meta protocol documents.
pub fn get(
    out: &mut Vec<u8>,
    protocol: Protocol,
    keys: &[u64],
    key_size: usize,
    scratch: &mut Scratch,
) {
    scratch.keys.clear();
    for &k in keys {
        write_key(&mut scratch.keys, k, key_size);
    }
    let names = scratch.keys.chunks_exact(key_size);
    match protocol {
        Protocol::Text | Protocol::Udp => client::get(out, names),
        Protocol::Meta if keys.len() == 1 => client::mg(
            out,
            &scratch.keys,
            &[MetaFlag::ReturnValue, MetaFlag::ReturnKey],
        ),
        Protocol::Meta => {
            for name in names {
                client::mg(
                    out,
                    name,
                    &[MetaFlag::ReturnValue, MetaFlag::ReturnKey, MetaFlag::Quiet],
                );
            }
            client::mn(out);
        }
        // The key comes back with each hit (getk), so `--verify` can check it.
        Protocol::Binary if keys.len() == 1 => {
            let op = BinOp::Get {
                key: &scratch.keys,
                with_key: true,
            };
            BinRequest::new(op, false, 0, 0).encode(out);
        }
        Protocol::Binary => {
            for key in names {
                let op = BinOp::Get {
                    key,
                    with_key: true,
                };
                BinRequest::new(op, true, 0, 0).encode(out);
            }
            BinRequest::new(BinOp::Noop, false, 0, 0).encode(out);
        }
    }
}

/// Appends a set of key `key` with a value of `len` bytes drawn by `generator`.
pub fn set(
    out: &mut Vec<u8>,
    protocol: Protocol,
    key: u64,
    len: usize,
    generator: &mut Generator,
    scratch: &mut Scratch,
) {
    scratch.keys.clear();
    write_key(&mut scratch.keys, key, generator.key_size());
    scratch.value.clear();
    generator.write_value(&mut scratch.value, &scratch.keys, len);
    match protocol {
        Protocol::Text | Protocol::Udp => client::set(out, &scratch.keys, 0, 0, &scratch.value),
        Protocol::Meta => client::ms(out, &scratch.keys, &scratch.value, &[]),
        Protocol::Binary => {
            let op = BinOp::Store {
                mode: StoreMode::Set,
                key: &scratch.keys,
                flags: 0,
                exptime: 0,
                value: &scratch.value,
            };
            BinRequest::new(op, false, 0, 0).encode(out);
        }
    }
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
                key_owner: None,
            },
            0,
        )
    }

    #[test]
    fn gets_in_each_protocol() {
        let mut out = Vec::new();
        get(
            &mut out,
            Protocol::Text,
            &[1, 22],
            4,
            &mut Scratch::default(),
        );
        assert_eq!(out, b"get k001 k022\r\n");
        out.clear();
        get(&mut out, Protocol::Meta, &[7], 4, &mut Scratch::default());
        assert_eq!(out, b"mg k007 v k\r\n");
        out.clear();
        get(
            &mut out,
            Protocol::Meta,
            &[7, 8],
            4,
            &mut Scratch::default(),
        );
        assert_eq!(out, b"mg k007 v k q\r\nmg k008 v k q\r\nmn\r\n");
        out.clear();
        get(
            &mut out,
            Protocol::Binary,
            &[7, 8],
            4,
            &mut Scratch::default(),
        );
        let mut want = Vec::new();
        for key in [b"k007", b"k008"] {
            let op = BinOp::Get {
                key,
                with_key: true,
            };
            BinRequest::new(op, true, 0, 0).encode(&mut want);
        }
        BinRequest::new(BinOp::Noop, false, 0, 0).encode(&mut want);
        assert_eq!(out, want);
    }

    #[test]
    fn sets_carry_the_value_and_verify_checks_it() {
        let mut g = generator(false);
        let mut out = Vec::new();
        set(
            &mut out,
            Protocol::Text,
            5,
            3,
            &mut g,
            &mut Scratch::default(),
        );
        assert_eq!(out, b"set k005 0 0 3\r\nxxx\r\n");
        out.clear();
        set(
            &mut out,
            Protocol::Meta,
            5,
            3,
            &mut g,
            &mut Scratch::default(),
        );
        assert_eq!(out, b"ms k005 3\r\nxxx\r\n");
        let mut g = generator(true);
        out.clear();
        set(
            &mut out,
            Protocol::Text,
            9,
            40,
            &mut g,
            &mut Scratch::default(),
        );
        let value = &out[b"set k009 0 0 40\r\n".len()..out.len() - 2];
        assert_eq!(crate::verify::check_value(b"k009", value), Ok(()));
    }
}
