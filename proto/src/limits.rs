//! Named limits, with memcached 1.6's defaults.

/// The bounds every parse enforces. `Default` is memcached 1.6 with its default
/// options (`-I 1m`, `KEY_MAX_LENGTH`, its 16 KiB read buffer as the line
/// guard), plus one bound memcached does not have: multi-key get
/// lines, which memcached lets grow without limit, stop at [`Limits::max_get_line_len`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes as sent (before any base64 decoding): 250.
    pub max_key_len: usize,
    /// Longest data block a storage command may declare: 1 MiB. A longer one is
    /// answered `SERVER_ERROR object too large for cache` and swallowed. memcached
    /// counts its item header in the same 1 MiB; the store applies its own overhead.
    pub max_item_size: usize,
    /// Longest command line that is not a `get`/`gets`, terminator excluded:
    /// 16 KiB, memcached's read buffer. memcached parses any line whose newline
    /// arrives within its 16 KiB read (a 5000-byte `mg` in one write is answered
    /// `CLIENT_ERROR opaque token too long`), and closes only when 2048 bytes
    /// sit without one; deciding on the line itself, a line within this bound
    /// is parsed (its errors are the parser's) and a longer one closes the
    /// connection, however TCP cut it.
    pub max_line_len: usize,
    /// Longest `get`/`gets` line, terminator excluded: 64 KiB (about 2,000 keys of
    /// 32 bytes). memcached has no bound here; a longer line is refused with
    /// `CLIENT_ERROR line too long` and the connection is closed.
    pub max_get_line_len: usize,
    /// Refuse keys holding control characters (bytes below 0x20 and 0x7f), as
    /// protocol.txt asks. Off by default because memcached 1.6 stores such keys.
    pub reject_control_keys: bool,
}

/// memcached's `KEY_MAX_LENGTH`.
pub const MAX_KEY_LEN: usize = 250;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: MAX_KEY_LEN,
            max_item_size: 1024 * 1024,
            max_line_len: 16 << 10,
            max_get_line_len: 64 * 1024,
            reject_control_keys: false,
        }
    }
}
