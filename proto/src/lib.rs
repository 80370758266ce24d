//! memcached protocol codecs for corecache: bytes in, typed requests out; typed
//! replies in, bytes out. No I/O, no clock, no allocation on the common path.
