//! Packing of io_uring `user_data`: which operation completed, for which slot.
//!
//! ```text
//!  63        56 55                     32 31                              0
//! +------------+-------------------------+--------------------------------+
//! |  op (u8)   |   generation (24 bits)  |          slot (u32)            |
//! +------------+-------------------------+--------------------------------+
//! ```
//! The generation lets a completion that arrives after its slot was freed and
//! reused be recognised as stale and ignored.

/// The decoded form of a completion's `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// What kind of operation this is; the meaning is the caller's.
    pub op: u8,
    /// A 24-bit generation; higher bits are dropped.
    pub generation: u32,
    /// The slot (connection index, buffer index, ...) the operation belongs to.
    pub slot: u32,
}

const GEN_MASK: u32 = (1 << 24) - 1;

impl Token {
    pub const fn new(op: u8, slot: u32, generation: u32) -> Token {
        Token {
            op,
            generation: generation & GEN_MASK,
            slot,
        }
    }

    /// A token that carries no slot (a listener, a timer, a wake-up).
    pub const fn op(op: u8) -> Token {
        Token::new(op, 0, 0)
    }

    pub const fn to_user_data(self) -> u64 {
        ((self.op as u64) << 56) | (((self.generation & GEN_MASK) as u64) << 32) | self.slot as u64
    }

    pub const fn from_user_data(data: u64) -> Token {
        Token {
            op: (data >> 56) as u8,
            generation: ((data >> 32) as u32) & GEN_MASK,
            slot: data as u32,
        }
    }
}

/// The next 24-bit generation after `generation`.
pub const fn next_generation(generation: u32) -> u32 {
    generation.wrapping_add(1) & GEN_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        for (op, slot, generation) in [(0, 0, 0), (255, u32::MAX, GEN_MASK), (7, 12345, 99)] {
            let t = Token::new(op, slot, generation);
            assert_eq!(Token::from_user_data(t.to_user_data()), t);
        }
    }

    #[test]
    fn generation_wraps_within_24_bits() {
        assert_eq!(next_generation(GEN_MASK), 0);
        assert_eq!(Token::new(1, 2, GEN_MASK + 5).generation, 4);
    }
}
