//! delete deleteq. Request body: the key. The header's CAS, when not 0, must
//! match the item's (`KeyExists` otherwise). Success: [`super::response::encode_ok`] with CAS 0.

use super::{Check, Header};

/// memcached: no extras (the old 4-byte expiration is refused), a key, nothing else.
pub(crate) fn check<'a>(h: &Header) -> Check<'a> {
    if h.extlen == 0 && h.keylen > 0 && h.bodylen == h.keylen {
        Check::Body
    } else {
        h.einval()
    }
}
