//! SIGHUP: what changes while the server runs, and what it says about the
//! rest.
//!
//! ```text
//!  SIGHUP ─► password files (-Y, -S) re-read       ─► each kept as it was when it does not parse
//!         ─► TLS certificate and key re-read       ─► kept as it was when they do not load
//!         ─► configuration built again (the file    ─► invalid: everything kept, one warning
//!            re-read, the same flags over it)
//!              ├─ server.verbosity  → the log filter (tracing's reload layer)
//!              ├─ http.token / http.token_file (re-read) → Shared::http_token (shards take it
//!              │                                           at their next HTTP request)
//!              └─ any other setting that differs from the running one:
//!                   "SIGHUP: <setting> changed in <file>; needs a restart"
//! ```
//!
//! Flags still win over the file, as at start-up: a setting given as a flag
//! keeps its flag value however the file changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::config::{Config, ConfigError, log_level};
use crate::shared::Shared;

/// What SIGHUP needs from whoever built the configuration.
pub struct Reload {
    /// The TOML file the server was started with (`--config`), if any.
    pub file: Option<PathBuf>,
    /// Builds the configuration again: the file re-read, the same flags.
    pub rebuild: Box<dyn Fn() -> Result<Config, ConfigError>>,
    /// Sets the log level for a verbosity; an error says why it cannot.
    pub set_log_level: Box<dyn Fn(u8) -> Result<(), String>>,
}

/// The settings SIGHUP applies live; every other one needs a restart.
const LIVE: [&str; 3] = ["server.verbosity", "http.token", "http.token_file"];

/// What the last SIGHUP applied (the start-up values before the first).
pub struct Applied {
    verbosity: u8,
}

impl Applied {
    pub fn new(config: &Config) -> Applied {
        Applied {
            verbosity: config.server.verbosity,
        }
    }
}

/// Everything SIGHUP does, on the main thread.
pub fn on_hup(shared: &Shared, reload: &Reload, applied: &mut Applied) {
    reload_auth(shared);
    let file = reload
        .file
        .as_ref()
        .map_or_else(|| "the flags".to_string(), |f| f.display().to_string());
    let fresh = (reload.rebuild)().and_then(|config| {
        // The token is read now so that a missing or empty token file keeps
        // everything, the token included, as it was.
        let token = match shared.config.http.port {
            Some(_) => config.http_token()?,
            None => None,
        };
        Ok((config, token))
    });
    let (config, token) = match fresh {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("SIGHUP: {e}; keeping the running settings");
            return;
        }
    };
    if config.server.verbosity != applied.verbosity {
        let v = config.server.verbosity;
        match (reload.set_log_level)(v) {
            Ok(()) => {
                applied.verbosity = v;
                shared.verbosity.store(v, Ordering::Relaxed);
                tracing::info!(
                    "SIGHUP: log level now {} (server.verbosity = {v})",
                    log_level(v)
                );
            }
            Err(why) => tracing::warn!("SIGHUP: server.verbosity changed in {file}; {why}"),
        }
    }
    let running = shared.http_token.load();
    if *running != token {
        let what = match (running.is_some(), token.is_some()) {
            (_, false) => "removed: every HTTP path is open",
            (false, true) => "set: every HTTP path but /health needs it",
            (true, true) => "replaced",
        };
        shared.http_token.replace(token);
        tracing::info!("SIGHUP: HTTP token {what}");
    }
    for setting in changed(&shared.config, &config) {
        tracing::warn!("SIGHUP: {setting} changed in {file}; needs a restart");
    }
}

/// The settings (`section.key`) whose values differ between `running` and
/// `fresh`, other than those applied live.
pub fn changed(running: &Config, fresh: &Config) -> Vec<String> {
    let (a, b) = (flatten(running), flatten(fresh));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| !LIVE.contains(&n.as_str()) && a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}

/// Every setting as `section.key` (nested tables further dotted) with its
/// value as TOML; a setting that is not set is absent.
fn flatten(config: &Config) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, value: toml::Value, out: &mut BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let name = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, v, out);
                }
            }
            v => {
                out.insert(prefix.to_string(), v);
            }
        }
    }
    let mut out = BTreeMap::new();
    let value = toml::Value::try_from(config).expect("the config always serialises");
    walk("", value, &mut out);
    out
}

/// Re-reads the password files, as memcached does, and the TLS certificate
/// and key.
fn reload_auth(shared: &Shared) {
    for auth in [&shared.ascii_auth, &shared.sasl_auth]
        .into_iter()
        .flatten()
    {
        match auth.reload() {
            Ok(entries) => {
                tracing::info!(file = %auth.path().display(), entries, "SIGHUP: auth file reloaded")
            }
            Err(e) => tracing::warn!("SIGHUP: {e}; keeping the entries read before"),
        }
    }
    if let Some(certs) = &shared.tls {
        match certs.refresh() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
            Err(e) => tracing::warn!("SIGHUP: {e}; keeping the certificate loaded before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_that_need_a_restart_are_named() {
        let running = Config::default();
        let mut fresh = running.clone();
        assert!(changed(&running, &fresh).is_empty());
        fresh.server.verbosity = 2;
        fresh.http.token = Some("t".into());
        assert!(changed(&running, &fresh).is_empty(), "both apply live");
        fresh.memory.limit_mb = 128;
        fresh.http.port = Some(8080);
        fresh.shards.cores = crate::config::CoreList::List(vec![0, 1]);
        // Each shard took its share of the rate at start-up.
        fresh.cluster.resync_rate = 0;
        assert_eq!(
            changed(&running, &fresh),
            [
                "cluster.resync_rate",
                "http.port",
                "memory.limit_mb",
                "shards.cores"
            ]
        );
        // A setting that goes away is a change too.
        assert_eq!(changed(&fresh, &running).len(), 4);
    }
}
