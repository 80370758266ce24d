//! What every text command family parses with: the context (the buffer, where
//! the command line ends, the limits), the data block that follows a storage
//! line, and what a family's parser gives back.
//!
//! It knows no request type. Each family returns its own value as [`Parsed`];
//! [`crate::request`] wraps it into a `Request`. So the families never import
//! the module that dispatches to them, and a binary codec can build the same
//! requests beside this one.

use crate::Limits;
use crate::error::{ClientError, ErrorReply, Invalid};

/// A family's result: its request and the bytes it took (line and data block),
/// or why it stopped short.
pub(crate) type Parsed<'a, T> = Result<(T, usize), Stop<'a>>;

/// Why a parser stopped short of a request. Framing reports an unfinished line
/// itself, so a family only ever waits for a known number of bytes.
#[derive(Debug)]
pub(crate) enum Stop<'a> {
    /// The rest of a data block: this many more bytes.
    More(usize),
    Invalid(Invalid<'a>),
}

impl<'a> From<Invalid<'a>> for Stop<'a> {
    #[inline]
    fn from(i: Invalid<'a>) -> Self {
        Stop::Invalid(i)
    }
}

/// Parsing context: the buffer, where the command line ends, the limits.
pub(crate) struct Ctx<'a> {
    pub buf: &'a [u8],
    /// Offset just past the command line's `\n`.
    pub next: usize,
    pub limits: Limits,
}

impl<'a> Ctx<'a> {
    /// A request that is the command line alone.
    #[inline]
    pub(crate) fn done<T>(&self, value: T) -> Parsed<'a, T> {
        Ok((value, self.next))
    }

    /// An error answered (unless silenced) after skipping the line.
    #[inline]
    pub(crate) fn invalid<T>(&self, e: impl Into<ErrorReply>, reply: bool) -> Parsed<'a, T> {
        Err(Stop::Invalid(Invalid::line(e, self.next, reply)))
    }

    /// The data block of `vlen` bytes after the line, which must end in `\r\n`
    /// (memcached checks exactly those two bytes: `CLIENT_ERROR bad data chunk`,
    /// the line and block consumed, the connection kept). Also returns where the
    /// request ends.
    #[inline]
    pub(crate) fn data_block(
        &self,
        vlen: usize,
        reply: bool,
    ) -> Result<(&'a [u8], usize), Stop<'a>> {
        let end = self.next + vlen;
        let total = end + 2;
        if self.buf.len() < total {
            return Err(Stop::More(total - self.buf.len()));
        }
        if &self.buf[end..total] != b"\r\n" {
            return Err(Stop::Invalid(Invalid::line(
                ClientError::BadDataChunk,
                total,
                reply,
            )));
        }
        Ok((&self.buf[self.next..end], total))
    }
}
