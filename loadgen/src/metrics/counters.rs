//! Request and reply counters, kept per thread and summed by the collector.

use serde::{Deserialize, Serialize};

macro_rules! summable {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        impl $name {
            pub fn add(&mut self, o: &$name) {
                $(self.$f.add_from(&o.$f);)*
            }
        }
    };
}

trait AddFrom {
    fn add_from(&mut self, o: &Self);
}
impl AddFrom for u64 {
    fn add_from(&mut self, o: &u64) {
        *self += *o;
    }
}
impl AddFrom for Errors {
    fn add_from(&mut self, o: &Errors) {
        self.add(o);
    }
}

summable! {
    /// Failures by kind. Every request sent ends as a reply or as one of the
    /// `timeout`, `connection` or `unanswered` errors.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Errors {
        /// `ERROR` replies.
        pub error: u64,
        pub client_error: u64,
        pub server_error: u64,
        /// Replies that do not parse or do not fit the request.
        pub protocol: u64,
        /// Get hits whose value failed the `--verify` checksum.
        pub verify: u64,
        /// UDP requests with no complete reply within the timeout.
        pub timeout: u64,
        /// Requests lost with a connection that failed or closed.
        pub connection: u64,
        /// Requests still outstanding when the run ended.
        pub unanswered: u64,
    }
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.error
            + self.client_error
            + self.server_error
            + self.protocol
            + self.verify
            + self.timeout
            + self.connection
            + self.unanswered
    }

    /// Non-zero kinds, for the summary line.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        [
            ("error", self.error),
            ("client_error", self.client_error),
            ("server_error", self.server_error),
            ("protocol", self.protocol),
            ("verify", self.verify),
            ("timeout", self.timeout),
            ("connection", self.connection),
            ("unanswered", self.unanswered),
        ]
        .into_iter()
        .filter(|e| e.1 > 0)
        .collect()
    }
}

summable! {
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Counters {
        /// Requests written to the network (a multi-get is one request).
        pub requests: u64,
        /// Complete replies received.
        pub replies: u64,
        pub gets: u64,
        /// Keys asked for by gets (memcached counts these in cmd_get).
        pub get_keys: u64,
        pub hits: u64,
        pub misses: u64,
        pub sets: u64,
        pub stored: u64,
        pub not_stored: u64,
        pub errors: Errors,
    }
}

impl Counters {
    pub fn hit_ratio(&self) -> f64 {
        let looked = self.hits + self.misses;
        if looked == 0 {
            0.0
        } else {
            self.hits as f64 / looked as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_field() {
        let mut a = Counters {
            requests: 1,
            hits: 2,
            ..Default::default()
        };
        a.errors.timeout = 1;
        let mut b = Counters {
            requests: 10,
            misses: 5,
            ..Default::default()
        };
        b.errors.timeout = 2;
        b.errors.verify = 1;
        a.add(&b);
        assert_eq!((a.requests, a.hits, a.misses), (11, 2, 5));
        assert_eq!(a.errors.total(), 4);
        assert_eq!(a.errors.nonzero(), vec![("verify", 1), ("timeout", 3)]);
        assert!((a.hit_ratio() - 2.0 / 7.0).abs() < 1e-12);
    }
}
