//! The command words of the text and meta protocols, read in one place: the
//! parser dispatches on them and [`peek_keys`](crate::peek_keys) reads keys by
//! them, so the two cannot disagree on which commands carry keys, or where.

use crate::cmd::{ArithCmd, GetKind, StoreCmd};

/// A command word, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `get gets gat gats` (and the ancient `bget`, read as `get`).
    Get(GetKind),
    /// `set add replace append prepend cas`.
    Store(StoreCmd),
    Delete,
    /// `incr decr`.
    Arith(ArithCmd),
    Touch,
    Stats,
    MetaGet,
    MetaSet,
    MetaDelete,
    MetaArith,
    MetaNoop,
    MetaDebug,
    /// An admin command, or no command at all: the admin parser tells which.
    Other,
}

/// Where a command's keys are on its line, as token indices (the command word
/// is token 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyShape {
    None,
    /// One key, token 1.
    One,
    /// Every token from `first` on is a key.
    List {
        first: usize,
    },
    /// One key, token 1, and a data block whose length is token `len`.
    WithData {
        len: usize,
    },
}

impl Verb {
    /// Classify a command word.
    #[inline]
    pub(crate) fn of(word: &[u8]) -> Verb {
        if let [b'm', c] = *word {
            return match c {
                b'g' => Verb::MetaGet,
                b's' => Verb::MetaSet,
                b'd' => Verb::MetaDelete,
                b'a' => Verb::MetaArith,
                b'n' => Verb::MetaNoop,
                b'e' => Verb::MetaDebug,
                _ => Verb::Other,
            };
        }
        match word {
            b"get" | b"bget" => Verb::Get(GetKind::Get),
            b"gets" => Verb::Get(GetKind::Gets),
            b"gat" => Verb::Get(GetKind::Gat),
            b"gats" => Verb::Get(GetKind::Gats),
            b"set" => Verb::Store(StoreCmd::Set),
            b"add" => Verb::Store(StoreCmd::Add),
            b"replace" => Verb::Store(StoreCmd::Replace),
            b"append" => Verb::Store(StoreCmd::Append),
            b"prepend" => Verb::Store(StoreCmd::Prepend),
            b"cas" => Verb::Store(StoreCmd::Cas),
            b"delete" => Verb::Delete,
            b"incr" => Verb::Arith(ArithCmd::Incr),
            b"decr" => Verb::Arith(ArithCmd::Decr),
            b"touch" => Verb::Touch,
            b"stats" => Verb::Stats,
            _ => Verb::Other,
        }
    }

    /// Where the keys are. No `_` arm: a new verb must say.
    #[inline]
    pub(crate) fn key_shape(self) -> KeyShape {
        match self {
            Verb::Get(kind) => KeyShape::List {
                first: if kind.touches() { 2 } else { 1 },
            },
            // <cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]
            Verb::Store(_) => KeyShape::WithData { len: 4 },
            // ms <key> <datalen> <flags>*
            Verb::MetaSet => KeyShape::WithData { len: 2 },
            Verb::Delete
            | Verb::Arith(_)
            | Verb::Touch
            | Verb::MetaGet
            | Verb::MetaDelete
            | Verb::MetaArith
            | Verb::MetaDebug => KeyShape::One,
            Verb::Stats | Verb::MetaNoop | Verb::Other => KeyShape::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_table() {
        let rows: &[(&[u8], Verb, KeyShape)] = &[
            (b"get", Verb::Get(GetKind::Get), KeyShape::List { first: 1 }),
            (
                b"bget",
                Verb::Get(GetKind::Get),
                KeyShape::List { first: 1 },
            ),
            (
                b"gets",
                Verb::Get(GetKind::Gets),
                KeyShape::List { first: 1 },
            ),
            (b"gat", Verb::Get(GetKind::Gat), KeyShape::List { first: 2 }),
            (
                b"gats",
                Verb::Get(GetKind::Gats),
                KeyShape::List { first: 2 },
            ),
            (
                b"set",
                Verb::Store(StoreCmd::Set),
                KeyShape::WithData { len: 4 },
            ),
            (
                b"add",
                Verb::Store(StoreCmd::Add),
                KeyShape::WithData { len: 4 },
            ),
            (
                b"replace",
                Verb::Store(StoreCmd::Replace),
                KeyShape::WithData { len: 4 },
            ),
            (
                b"append",
                Verb::Store(StoreCmd::Append),
                KeyShape::WithData { len: 4 },
            ),
            (
                b"prepend",
                Verb::Store(StoreCmd::Prepend),
                KeyShape::WithData { len: 4 },
            ),
            (
                b"cas",
                Verb::Store(StoreCmd::Cas),
                KeyShape::WithData { len: 4 },
            ),
            (b"delete", Verb::Delete, KeyShape::One),
            (b"incr", Verb::Arith(ArithCmd::Incr), KeyShape::One),
            (b"decr", Verb::Arith(ArithCmd::Decr), KeyShape::One),
            (b"touch", Verb::Touch, KeyShape::One),
            (b"stats", Verb::Stats, KeyShape::None),
            (b"mg", Verb::MetaGet, KeyShape::One),
            (b"ms", Verb::MetaSet, KeyShape::WithData { len: 2 }),
            (b"md", Verb::MetaDelete, KeyShape::One),
            (b"ma", Verb::MetaArith, KeyShape::One),
            (b"mn", Verb::MetaNoop, KeyShape::None),
            (b"me", Verb::MetaDebug, KeyShape::One),
            (b"mx", Verb::Other, KeyShape::None),
            (b"m", Verb::Other, KeyShape::None),
            (b"", Verb::Other, KeyShape::None),
            (b"GET", Verb::Other, KeyShape::None),
            (b"flush_all", Verb::Other, KeyShape::None),
            (b"version", Verb::Other, KeyShape::None),
        ];
        for &(word, verb, shape) in rows {
            let name = String::from_utf8_lossy(word);
            assert_eq!(Verb::of(word), verb, "{name}");
            assert_eq!(verb.key_shape(), shape, "{name}");
        }
    }
}
