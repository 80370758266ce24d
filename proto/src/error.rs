//! The error replies memcached sends, as typed values, and what a parse failure
//! tells the connection to do to resynchronise.

use crate::meta::Key;

/// A reply line that reports an error, exactly as memcached 1.6 words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReply {
    /// `ERROR`: unknown command, or a wrong number of tokens.
    Error,
    /// `ERROR <message>` and other fixed error lines some admin commands send.
    Message(ErrorMessage),
    /// `CLIENT_ERROR <reason>`.
    Client(ClientError),
    /// `SERVER_ERROR <reason>`.
    Server(ServerError),
}

impl ErrorReply {
    /// Append the line, `\r\n` included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ErrorReply::Error => out.extend_from_slice(b"ERROR"),
            ErrorReply::Message(m) => out.extend_from_slice(m.line().as_bytes()),
            ErrorReply::Client(c) => {
                out.extend_from_slice(b"CLIENT_ERROR ");
                out.extend_from_slice(c.reason().as_bytes());
            }
            ErrorReply::Server(s) => {
                out.extend_from_slice(b"SERVER_ERROR ");
                out.extend_from_slice(s.reason().as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl From<ClientError> for ErrorReply {
    fn from(e: ClientError) -> Self {
        ErrorReply::Client(e)
    }
}

impl From<ErrorMessage> for ErrorReply {
    fn from(e: ErrorMessage) -> Self {
        ErrorReply::Message(e)
    }
}

impl From<ServerError> for ErrorReply {
    fn from(e: ServerError) -> Self {
        ErrorReply::Server(e)
    }
}

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident, $fn:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            /// The text memcached sends.
            pub fn $fn(&self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            /// Every variant, for tests and docs.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
        }
    };
}

reasons!(
    /// The `<reason>` of a `CLIENT_ERROR` line.
    ClientError, reason {
    BadCommandLineFormat => "bad command line format",
    /// `delete` with a token that is neither `0` nor `noreply`; two spaces as memcached.
    DeleteUsage => "bad command line format.  Usage: delete <key> [noreply]",
    BadDataChunk => "bad data chunk",
    InvalidExptime => "invalid exptime argument",
    InvalidDeltaArgument => "invalid numeric delta argument",
    NonNumericValue => "cannot increment or decrement non-numeric value",
    InvalidFlag => "invalid flag",
    DuplicateFlag => "duplicate flag",
    /// How `md` and `ma` report every flag error.
    InvalidOrDuplicateFlag => "invalid or duplicate flag",
    BadToken => "bad token in command line format",
    IncorrectModeLength => "incorrect length for M token",
    InvalidInitialValue => "invalid numeric initial value",
    InvalidDeltaValue => "invalid numeric delta value",
    ErrorDecodingKey => "error decoding key",
    OpaqueTooLong => "opaque token too long",
    /// `mg` with more than 19 tokens.
    GetOptionsTooLong => "options flags are too long",
    /// `ms`, `md`, `ma` with more than 19 tokens.
    OptionsTooLong => "options flags too long",
    InvalidSetMode => "invalid mode for ms M token",
    InvalidArithMode => "invalid mode for ma M token",
    InvalidShutdownMode => "invalid shutdown mode",
    CrawlerSleepTooLong => "sleep must be one second or less",
    BadCommandLine => "bad command line",
    StatsDetailUsage => "usage: stats detail on|off|dump",
    CachedumpNotAllowed => "stats cachedump not allowed",
    IllegalSlabId => "Illegal slab id",
    SlabReassignDisabled => "slab reassignment disabled",
    CrawlerDisabled => "lru crawler disabled",
    WatchNotAllowed => "watch commands not allowed",
    FlushNotAllowed => "flush_all not allowed",
    /// Ours: a `get` line over `Limits::max_get_line_len` (memcached has no bound).
    LineTooLong => "line too long",
});

reasons!(
    /// The `<reason>` of a `SERVER_ERROR` line.
    ServerError, reason {
    ObjectTooLarge => "object too large for cache",
    OutOfMemoryStoring => "out of memory storing object",
    OutOfMemory => "out of memory",
    OutOfMemoryGet => "out of memory writing get response",
    OutOfMemoryStats => "out of memory writing stats",
    OutOfMemoryNewItem => "Out of memory allocating new item",
    RefcountOverflow => "refcount overflow during fetch",
    /// memcached's proxy (1.6.23+) for a backend that is down, timed out or
    /// broke its reply stream; corecache for a peer node in that state.
    BackendFailure => "backend failure",
});

reasons!(
    /// Fixed error lines that are neither bare `ERROR` nor `CLIENT_/SERVER_ERROR`.
    ErrorMessage, line {
    ShutdownNotEnabled => "ERROR: shutdown not enabled",
    LruPercentsTooHigh => "ERROR hot and warm pcts must not exceed 80",
    LruFactorsNotPositive => "ERROR hot/warm age factors must be greater than 0",
    WatchNotFirst => "ERROR cannot pipeline other commands before watch",
    MetadumpNotFirst => "ERROR cannot pipeline other commands before metadump",
    MetadumpNotAllowed => "ERROR metadump not allowed",
    CrawlerUnknownError => "ERROR an unknown error happened",
    CrawlerStartFailed => "ERROR failed to start lru crawler thread",
    CrawlerStopFailed => "ERROR failed to stop lru crawler thread",
});

/// A request that memcached refuses, and how to get back in step with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid<'a> {
    /// What memcached answers.
    pub error: ErrorReply,
    /// Whether the answer is sent: `false` where `noreply` silences it as it does in
    /// memcached (classic commands only; meta commands always report errors).
    pub reply: bool,
    /// Bytes at the start of the buffer to drop (the offending line, or the line and
    /// its data block when the block was read and found bad).
    pub consumed: usize,
    /// Further bytes to discard after `consumed`: the declared data block of a
    /// refused storage command, `\r\n` included. It may exceed what the buffer holds
    /// (a client declaring 2 GB): count it down as bytes arrive, never buffer it.
    pub swallow: usize,
    /// Close the connection after sending the reply (a line over the length guard).
    pub close: bool,
    /// Unlink this key: memcached drops the old item when a `set` (or any `ms`)
    /// is refused as too large, so that stale data does not outlive the failed write.
    pub unlink: Option<Key<'a>>,
}

impl<'a> Invalid<'a> {
    pub(crate) fn line(error: impl Into<ErrorReply>, consumed: usize, reply: bool) -> Self {
        Invalid {
            error: error.into(),
            reply,
            consumed,
            swallow: 0,
            close: false,
            unlink: None,
        }
    }
}
