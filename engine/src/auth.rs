//! Who may talk to the server: memcached's two password schemes, one file
//! format (`user:password` lines, memcached's `-Y` auth file and its
//! `MEMCACHED_SASL_PWDB`).
//!
//! - `-Y FILE`, ascii authentication: a connection starts unauthenticated and
//!   must first send `set <any> <any> <any> <n>` whose data is `user password`
//!   (shard/auth.rs on the shard side).
//! - `-S`, SASL in the binary protocol, mechanism PLAIN, against the file
//!   named by `MEMCACHED_SASL_PWDB`.
//!
//! Unlike memcached, which reads the first 8 entries of the file and drops the
//! rest without a word, every entry is read, and a line without `:` stops the
//! start with its line number. The file is re-read on SIGHUP; a file that no
//! longer parses keeps the old entries (memcached does the same) and says why.
//! Passwords are compared in time independent of where they differ.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The entries of one password file.
#[derive(Debug, Default)]
pub struct Credentials {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read the auth file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the auth file {path} has a malformed entry on line {line}: should be user:password")]
    Malformed { path: String, line: usize },
    #[error("the auth file {path} has no entries: add user:password lines")]
    Empty { path: String },
}

impl Credentials {
    /// Parses `user:password` lines; blank lines are skipped, a trailing
    /// `\r` is not part of the password. `path` names the file in errors.
    pub fn parse(text: &[u8], path: &str) -> Result<Credentials, AuthFileError> {
        let mut entries = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let Some(colon) = memchr::memchr(b':', line) else {
                return Err(AuthFileError::Malformed {
                    path: path.to_string(),
                    line: i + 1,
                });
            };
            entries.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
        if entries.is_empty() {
            return Err(AuthFileError::Empty {
                path: path.to_string(),
            });
        }
        Ok(Credentials { entries })
    }

    pub fn load(path: &Path) -> Result<Credentials, AuthFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| AuthFileError::Read {
            path: shown.clone(),
            source,
        })?;
        Credentials::parse(&text, &shown)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `user` with `pass` is an entry. Every entry is compared, each
    /// in full, so the time taken says nothing about which bytes matched.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let mut found = false;
        for (u, p) in &self.entries {
            found |= constant_time_eq(u, user) & constant_time_eq(p, pass);
        }
        found
    }
}

/// Constant-time equality for equal lengths (a length difference is not a secret):
/// passwords here, the HTTP port's bearer token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A password file in use: its path and the entries last read from it. The
/// lock is taken by an authentication attempt and a reload only, never on
/// the request path of an authenticated connection.
#[derive(Debug)]
pub struct Auth {
    path: PathBuf,
    current: Mutex<Arc<Credentials>>,
}

impl Auth {
    pub fn load(path: &Path) -> Result<Auth, AuthFileError> {
        Ok(Auth {
            path: path.to_path_buf(),
            current: Mutex::new(Arc::new(Credentials::load(path)?)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let creds = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        creds.check(user, pass)
    }

    /// Re-reads the file; on an error the entries in use stay.
    pub fn reload(&self) -> Result<usize, AuthFileError> {
        let fresh = Credentials::load(&self.path)?;
        let n = fresh.len();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_user_colon_password_and_all_of_them_count() {
        let mut text = b"foo:bar\r\nbaaaz:quux\n\n".to_vec();
        for i in 0..20 {
            text.extend_from_slice(format!("u{i}:p:{i}\n").as_bytes());
        }
        let c = Credentials::parse(&text, "f").unwrap();
        assert_eq!(c.len(), 22);
        assert!(c.check(b"foo", b"bar"));
        assert!(c.check(b"baaaz", b"quux"));
        assert!(
            c.check(b"u19", b"p:19"),
            "memcached would drop entries after the 8th"
        );
        assert!(!c.check(b"foo", b"bab"));
        assert!(!c.check(b"foo", b"bar "));
        assert!(!c.check(b"fo", b"bar"));
        assert!(!c.check(b"", b""));
    }

    #[test]
    fn a_line_without_a_colon_names_its_number() {
        let err = Credentials::parse(b"foo:bar\nnocolon\n", "/etc/pw").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the auth file /etc/pw has a malformed entry on line 2: should be user:password"
        );
        assert!(matches!(
            Credentials::parse(b"\n\n", "f"),
            Err(AuthFileError::Empty { .. })
        ));
    }

    #[test]
    fn a_reload_that_fails_keeps_the_entries() {
        let dir = std::env::temp_dir().join(format!("corecache-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "a:1\n").unwrap();
        let auth = Auth::load(&path).unwrap();
        assert!(auth.check(b"a", b"1"));
        std::fs::write(&path, "a:2\nb:3\n").unwrap();
        assert_eq!(auth.reload().unwrap(), 2);
        assert!(auth.check(b"b", b"3") && !auth.check(b"a", b"1"));
        std::fs::write(&path, "broken\n").unwrap();
        assert!(auth.reload().is_err());
        assert!(auth.check(b"b", b"3"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
