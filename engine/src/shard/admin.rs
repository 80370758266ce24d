//! Commands without a key: those that concern every shard (`stats`,
//! `flush_all`, `stats reset`) go to every shard by message; the rest are
//! answered here.

use std::io::Write;
use std::sync::atomic::Ordering;

use proto::cmd::admin::{AdminReply, DebugTime, LruCrawler, ShutdownMode, Slabs};
use proto::cmd::stats::Stats;
use proto::reply::{Status, encode_version};
use proto::{ClientError, ErrorMessage, ErrorReply, Request};

use proto::binary::ReplyTo;

use super::Core;
use super::binary::stats_to_binary;
use super::client::{Client, Handled, ORIGIN_GATHER};
use super::mesh::{Kind, Origin};
use super::stats::{self, Merged, ProcessInfo, Section};
use crate::config::VERSION;

/// A `stats` request waiting for the other shards' snapshots.
pub(super) struct Gather {
    client: Client,
    part: u32,
    section: Section,
    waiting: usize,
    merged: Merged,
    /// Asked for over the binary protocol: the reply's opcode and opaque.
    binary: Option<ReplyTo>,
}

impl Core {
    pub(super) fn handle_keyless(&mut self, client: Client, request: &Request<'_>) -> Handled {
        match request {
            Request::Stats(s) => return self.stats_command(client, s, None),
            Request::FlushAll(f) => {
                if self.shared.config.server.disable_flush_all {
                    return self.reply(client, |out| {
                        if !f.noreply {
                            ErrorReply::from(ClientError::FlushNotAllowed).encode(out)
                        }
                    });
                }
                if !self.flush_all_shards(client, i64::from(f.delay.unwrap_or(0))) {
                    return Handled::Stall;
                }
                return self.reply(client, |out| {
                    if !f.noreply {
                        Status::Ok.encode(out)
                    }
                });
            }
            Request::Version => return self.reply(client, |out| encode_version(out, VERSION)),
            Request::Verbosity(v) => {
                self.shared
                    .verbosity
                    .store(v.level.min(3) as u8, Ordering::Relaxed);
                return self.reply(client, |out| {
                    if !v.noreply {
                        Status::Ok.encode(out)
                    }
                });
            }
            Request::Quit => return Handled::Close,
            Request::Shutdown(mode) => {
                if !self.shared.config.server.enable_shutdown {
                    return self.reply(client, |out| {
                        ErrorReply::Message(ErrorMessage::ShutdownNotEnabled).encode(out)
                    });
                }
                if *mode == ShutdownMode::Invalid {
                    return self.reply(client, |out| {
                        ErrorReply::from(ClientError::InvalidShutdownMode).encode(out)
                    });
                }
                tracing::info!(shard = self.id, "shutdown requested by a client");
                crate::shared::request_stop();
                return Handled::Close;
            }
            Request::CacheMemlimit(c) => {
                // The arena is reserved at start-up; it cannot be resized at run time.
                let reply = if c.megabytes < 8 {
                    AdminReply::MemlimitTooSmall
                } else if c.megabytes > 1_000_000_000 {
                    AdminReply::MemlimitNotBytes
                } else {
                    AdminReply::MemlimitFailed
                };
                return self.reply(client, |out| reply.encode(out));
            }
            Request::Slabs(Slabs::Reassign { .. }) => {
                // Pages move between classes automatically (the store rebalances).
                return self.reply(client, |out| AdminReply::ReassignBusy.encode(out));
            }
            Request::Slabs(
                Slabs::Automove { noreply, .. } | Slabs::AutomoveRatio { noreply, .. },
            ) => {
                return self.reply(client, |out| {
                    if !noreply {
                        Status::Ok.encode(out)
                    }
                });
            }
            Request::LruCrawler(LruCrawler::Metadump(_)) => {
                return self.reply(client, |out| {
                    ErrorReply::Message(ErrorMessage::MetadumpNotAllowed).encode(out)
                });
            }
            Request::LruCrawler(op) => {
                if let LruCrawler::Crawl(_) = op {
                    self.store.crawl(usize::MAX >> 1);
                }
                return self.reply(client, |out| Status::Ok.encode(out));
            }
            Request::Lru(l) => {
                return self.reply(client, |out| {
                    if !l.noreply {
                        Status::Ok.encode(out)
                    }
                });
            }
            Request::Watch(w) => return self.start_watch(client, *w),
            Request::RefreshCerts => {
                // memcached's answers: OK, or the loader's one-line error;
                // without -Z there is nothing to refresh.
                let result = self.shared.tls.as_ref().map(|c| c.refresh());
                return self.reply(client, |out| match result {
                    None => ErrorReply::Error.encode(out),
                    Some(Ok(())) => Status::Ok.encode(out),
                    Some(Err(e)) => {
                        tracing::warn!("refresh_certs: {e}");
                        out.extend_from_slice(e.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                });
            }
            Request::DebugTime(d) if self.shared.debug_clock.is_some() => {
                if !self.debug_time_all_shards(client, *d) {
                    return Handled::Stall;
                }
                return self.reply(client, |out| Status::Ok.encode(out));
            }
            Request::Misbehave | Request::DebugTime(_) => {
                // Debug-build commands: a release memcached answers ERROR
                // (and so does corecache without -o debug_time).
                return self.reply(client, |out| ErrorReply::Error.encode(out));
            }
            // `mn` has no key, but its reply must follow every reply before
            // it, remote ones included: the queue sees to that.
            Request::MetaNoop => return self.reply(client, proto::meta::get::encode_mn),
            Request::ClusterLink(name) => {
                if let Client::Conn { slot, generation } = client
                    && let Some(conn) = self.net.conns.get_mut(slot, generation)
                {
                    conn.peer_link = true;
                    tracing::debug!(
                        shard = self.id,
                        peer = %String::from_utf8_lossy(name),
                        "a cluster peer opened a link"
                    );
                }
                return self.reply(client, |out| Status::Ok.encode(out));
            }
            // Keyed requests are routed by `handle` and never get here.
            Request::Get(_)
            | Request::Store(_)
            | Request::Delete(_)
            | Request::Arith(_)
            | Request::Touch(_)
            | Request::MetaGet(_)
            | Request::MetaSet(_)
            | Request::MetaDelete(_)
            | Request::MetaArith(_)
            | Request::MetaDebug(_) => {}
        }
        debug_assert!(false, "keyed request in handle_keyless");
        Handled::Done
    }

    pub(super) fn reply(&mut self, client: Client, write: impl FnOnce(&mut Vec<u8>)) -> Handled {
        if let Some(q) = self.net.queue(client) {
            write(q.sink());
        }
        Handled::Done
    }

    /// A `stats` reply written as text by `write`, sent as text or, for a
    /// binary request, as binary stat packets.
    fn stats_reply(
        &mut self,
        client: Client,
        binary: Option<ReplyTo>,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Handled {
        match binary {
            None => self.reply(client, write),
            Some(to) => {
                let mut text = Vec::new();
                write(&mut text);
                self.reply(client, |out| stats_to_binary(&text, to, out))
            }
        }
    }

    /// `flush_all` with `delay` on every shard; false (and nothing done)
    /// when a channel to another shard is full. Each other shard answers
    /// with an empty part of `client`'s reply, so the reply the caller then
    /// queues leaves only once every shard has applied the flush: after `OK`,
    /// no request on any connection sees an item the flush removed.
    pub(super) fn flush_all_shards(&mut self, client: Client, delay: i64) -> bool {
        if !self.can_broadcast() {
            return false;
        }
        self.store.flush_all(delay);
        self.stats.cmd_flush += 1;
        let delay = delay.to_le_bytes();
        match self.net.queue(client) {
            Some(queue) => {
                for peer in (0..self.mesh.shards()).filter(|&p| p != self.id) {
                    let part = queue.await_remote();
                    self.mesh
                        .push(peer, Kind::Flush, client.origin(part), &[&delay]);
                }
            }
            // The client is gone: the flush still happens everywhere.
            None => self.broadcast(Kind::Flush, &delay),
        }
        true
    }

    /// `debugtime` (with `-o debug_time`): the shared clock moved, this
    /// shard's store reads it at once and every other shard on the message,
    /// each answering with an empty part of `client`'s reply, so that after
    /// `OK` every key's shard runs on the new clock (as memcached's one
    /// `current_time`). False (and nothing done) when a channel is full.
    fn debug_time_all_shards(&mut self, client: Client, d: DebugTime) -> bool {
        let Some(clock) = &self.shared.debug_clock else {
            return true;
        };
        if !self.can_broadcast() {
            return false;
        }
        match d {
            DebugTime::Advance(n) => clock.shift_by(n),
            DebugTime::Pause => clock.pause(self.shared.started.elapsed().as_secs()),
            DebugTime::Resume => clock.resume(),
        }
        self.update_clock();
        match self.net.queue(client) {
            Some(queue) => {
                for peer in (0..self.mesh.shards()).filter(|&p| p != self.id) {
                    let part = queue.await_remote();
                    self.mesh.push(peer, Kind::Clock, client.origin(part), &[]);
                }
            }
            None => self.broadcast(Kind::Clock, &[]),
        }
        true
    }

    fn can_broadcast(&self) -> bool {
        (0..self.mesh.shards())
            .filter(|&p| p != self.id)
            .all(|p| self.mesh.can_send(p))
    }

    fn broadcast(&mut self, kind: Kind, payload: &[u8]) {
        let origin = Origin {
            kind: ORIGIN_GATHER,
            slot: 0,
            generation: 0,
            part: 0,
        };
        for peer in (0..self.mesh.shards()).filter(|&p| p != self.id) {
            self.mesh.push(peer, kind, origin, &[payload]);
        }
    }

    pub(super) fn stats_command(
        &mut self,
        client: Client,
        s: &Stats<'_>,
        binary: Option<ReplyTo>,
    ) -> Handled {
        let section = match s.subcommand() {
            None => Section::General,
            Some(b"slabs") => Section::Slabs,
            Some(b"items") => Section::Items,
            Some(b"conns") => Section::Conns,
            Some(b"cluster") => Section::Cluster,
            Some(b"shards") => Section::Shards,
            Some(b"settings") => {
                let mut text = Vec::new();
                self.format_settings(&mut text);
                return self.stats_reply(client, binary, |out| out.extend_from_slice(&text));
            }
            Some(b"reset") => {
                if !self.can_broadcast() {
                    return Handled::Stall;
                }
                self.stats.reset();
                self.store.reset_stats();
                self.broadcast(Kind::StatsReset, &[]);
                return self.stats_reply(client, binary, |out| Status::Reset.encode(out));
            }
            Some(b"sizes") => {
                return self.stats_reply(client, binary, |out| {
                    out.extend_from_slice(b"STAT sizes_status disabled\r\nEND\r\n")
                });
            }
            Some(b"detail") => {
                // Per-prefix stats are never collected: `dump` is always empty.
                let arg = s.args().nth(1);
                return self.stats_reply(client, binary, |out| match arg {
                    Some(b"dump") => Status::End.encode(out),
                    Some(b"on" | b"off") => Status::Ok.encode(out),
                    _ => ErrorReply::from(ClientError::StatsDetailUsage).encode(out),
                });
            }
            Some(b"cachedump") => {
                return self.stats_reply(client, binary, |out| {
                    ErrorReply::from(ClientError::CachedumpNotAllowed).encode(out)
                });
            }
            Some(_) => {
                return self.stats_reply(client, binary, |out| ErrorReply::Error.encode(out));
            }
        };
        if !self.can_broadcast() {
            return Handled::Stall;
        }
        let mut merged = Merged::default();
        let mut mine = Vec::new();
        self.snapshot(section, &mut mine);
        merged.add(section, &mine);
        let peers = self.mesh.shards() - 1;
        if peers == 0 {
            let mut text = Vec::new();
            self.format_section(section, &merged, &mut text);
            return self.stats_reply(client, binary, |out| out.extend_from_slice(&text));
        }
        let Some(queue) = self.net.queue(client) else {
            return Handled::Done;
        };
        let part = queue.await_remote();
        let (id, generation) = self.gathers.insert(|_| Gather {
            client,
            part,
            section,
            waiting: peers,
            merged,
            binary,
        });
        let origin = Origin {
            kind: ORIGIN_GATHER,
            slot: id,
            generation,
            part: 0,
        };
        for peer in (0..self.mesh.shards()).filter(|&p| p != self.id) {
            self.mesh
                .push(peer, Kind::Stats, origin, &[&[section.code()]]);
        }
        Handled::Done
    }

    /// This shard's part of a `stats` reply, serialised for merging.
    pub(super) fn snapshot(&self, section: Section, out: &mut Vec<u8>) {
        if section == Section::Cluster {
            return self.cluster_snapshot(out);
        }
        if section == Section::Shards {
            return stats::shard_snapshot(self.id, &self.stats, &self.store, out);
        }
        if section != Section::Conns {
            return stats::snapshot(section, &self.stats, &self.store, out);
        }
        for c in self.net.conns.iter() {
            let fd = c.raw_fd();
            if let Some(path) = &self.shared.unix_path {
                // What memcached prints for a unix peer, which has no name.
                let _ = write!(out, "STAT {fd}:addr unix:<AF 1>\r\n");
                let _ = write!(out, "STAT {fd}:listen_addr unix:{}\r\n", path.display());
            } else {
                let peer = c
                    .peer
                    .map_or_else(|| "unknown".to_string(), |p| p.to_string());
                let _ = write!(out, "STAT {fd}:addr tcp:{peer}\r\n");
                let listen = if c.wire == super::net::conn::Wire::Http {
                    self.shared.http_addr.as_ref()
                } else {
                    self.shared
                        .tcp_addrs
                        .get(c.listener as usize)
                        .or(self.shared.tcp_addrs.first())
                };
                if let Some(l) = listen {
                    let _ = write!(out, "STAT {fd}:listen_addr tcp:{l}\r\n");
                }
            }
            let state = if c.sending {
                "conn_mwrite"
            } else {
                "conn_parse_cmd"
            };
            let _ = write!(out, "STAT {fd}:state {state}\r\n");
            let _ = write!(
                out,
                "STAT {fd}:secs_since_last_cmd {}\r\n",
                self.life.now.saturating_sub(c.last_cmd)
            );
        }
    }

    /// Another shard's snapshot arrived for gather `id` of `generation`.
    pub(super) fn gather_arrived(&mut self, id: u32, generation: u32, snapshot: &[u8]) {
        let Some(g) = self.gathers.get_mut(id, generation) else {
            return;
        };
        g.merged.add(g.section, snapshot);
        g.waiting -= 1;
        if g.waiting > 0 {
            return;
        }
        let g = self.gathers.remove(id).expect("present");
        let mut text = Vec::new();
        self.format_section(g.section, &g.merged, &mut text);
        if let Some(to) = g.binary {
            let mut packets = Vec::new();
            stats_to_binary(&text, to, &mut packets);
            text = packets;
        }
        self.deliver_to(g.client, g.part, &text);
    }

    fn format_section(&self, section: Section, merged: &Merged, out: &mut Vec<u8>) {
        match section {
            Section::General => {
                let mut up = self.shared.started.elapsed().as_secs();
                // memcached's uptime and time are read from its current_time,
                // which debugtime moves.
                if let Some(d) = &self.shared.debug_clock {
                    up = d.seconds(up);
                }
                let info = ProcessInfo {
                    pid: std::process::id(),
                    uptime: up,
                    time: self.shared.started_unix + up,
                    version: VERSION,
                    max_connections: self.shared.config.server.max_connections,
                    threads: self.shared.shards,
                    hash_power_level: hash_power_level(
                        merged.general_value("hash_slots").unwrap_or(0),
                    ),
                    idle_timeout: self.shared.config.server.idle_timeout > 0,
                    log: self.shared.logger.counts(),
                    tls: self.shared.tls.as_ref().map(|c| stats::TlsInfo {
                        since_refresh: c.since_refresh(),
                        new_sessions: c.new_sessions(),
                    }),
                };
                stats::format_general(out, &info, merged);
            }
            Section::Slabs => stats::format_slabs(out, merged),
            Section::Items => stats::format_items(out, merged),
            Section::Conns => {
                out.extend_from_slice(&merged.text);
                Status::End.encode(out);
            }
            Section::Cluster => self.format_cluster(merged, out),
            Section::Shards => stats::format_shards(out, merged),
        }
    }

    fn format_settings(&self, out: &mut Vec<u8>) {
        let c = &self.shared.config;
        let mut stat = |name: &str, value: &dyn std::fmt::Display| {
            let _ = write!(out, "STAT {name} {value}\r\n");
        };
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        stat("maxbytes", &(c.memory.limit_mb << 20));
        stat("maxconns", &c.server.max_connections);
        stat(
            "tcpport",
            &self
                .shared
                .tcp_addrs
                .first()
                .map_or(c.server.port, |a| a.port()),
        );
        stat(
            "udpport",
            &self
                .shared
                .udp_addrs
                .first()
                .map_or(c.server.udp_port, |a| a.port()),
        );
        let inter: Vec<String> = c.server.listen.iter().map(ToString::to_string).collect();
        stat("inter", &inter.join(","));
        stat("verbosity", &self.shared.verbosity.load(Ordering::Relaxed));
        stat("oldest", &0);
        stat(
            "evictions",
            &if c.server.disable_evictions {
                "off"
            } else {
                "on"
            },
        );
        let socket = c.server.unix_socket.as_ref();
        stat(
            "domain_socket",
            &socket.map_or_else(|| "NULL".into(), |p| p.display().to_string()),
        );
        stat("umask", &format!("{:o}", c.server.unix_mask.0));
        stat("shutdown_command", &yes_no(c.server.enable_shutdown));
        stat("growth_factor", &format!("{:.2}", c.memory.growth_factor));
        stat("chunk_size", &48);
        stat("num_threads", &self.shared.shards);
        stat("num_threads_per_udp", &self.shared.shards);
        stat("stat_key_prefix", &":");
        stat("detail_enabled", &"no");
        stat("reqs_per_event", &c.network.reqs_per_event);
        stat("cas_enabled", &yes_no(!c.server.disable_cas));
        stat("tcp_backlog", &c.server.backlog);
        stat("binding_protocol", &c.wire_protocol().binding_name());
        stat("auth_enabled_sasl", &yes_no(c.server.sasl));
        stat(
            "auth_enabled_ascii",
            &c.server.auth_file.as_deref().unwrap_or("no"),
        );
        stat("item_size_max", &c.limits.max_item_size.0);
        stat("maxconns_fast", &"yes");
        stat("hashpower_init", &0);
        stat("slab_reassign", &"yes");
        stat("slab_automove", &1);
        stat("slab_chunk_max", &c.slab_page());
        stat("lru_crawler", &yes_no(c.memory.lru_crawler));
        stat("cas_on_demand", &yes_no(c.memory.cas_on_demand));
        stat("hash_algorithm", &"xxh3");
        stat("flush_enabled", &yes_no(!c.server.disable_flush_all));
        stat("idle_timeout", &c.server.idle_timeout);
        stat(
            "watcher_logbuf_size",
            &(u64::from(c.server.watcher_logbuf_kb) * 1024),
        );
        stat("worker_logbuf_size", &crate::logger::WORKER_BATCH_BYTES);
        stat("memory_file", &c.memory.file.as_deref().unwrap_or("(null)"));
        tls_settings(&c.tls, &mut stat);
        stat("corecache_shards", &self.shared.shards);
        stat(
            "corecache_cores",
            &c.shard_cores()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default()
                .replace(' ', ""),
        );
        stat("corecache_hugepages", &c.memory.hugepages.name());
        stat("corecache_arena_backing", &self.store.backing().name());
        stat("corecache_numa", &c.memory.numa.name());
        stat("corecache_numa_binding", &self.store.numa_binding());
        stat("corecache_eviction", &c.memory.eviction.name());
        stat("corecache_ring", &self.net.ring.mode().as_str());
        out.extend_from_slice(b"END\r\n");
    }
}

/// memcached's `hash_power_level` for our index: the log2 of its slots across the
/// shards, at least memcached's starting 16. Like memcached's it only grows, and a
/// warm restart brings the index back at the size it had.
fn hash_power_level(slots: u64) -> u32 {
    slots.max(1).ilog2().max(16)
}

/// The `ssl_*` lines of `stats settings`, memcached's names and order.
fn tls_settings(t: &crate::config::TlsConfig, stat: &mut dyn FnMut(&str, &dyn std::fmt::Display)) {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or_else(|| "NULL".to_string(), |p| p.display().to_string())
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    stat("ssl_enabled", &yes_no(t.enabled));
    stat("ssl_chain_cert", &path(&t.chain_cert));
    stat("ssl_key", &path(&t.key));
    stat("ssl_verify_mode", &t.verify_mode);
    // 1: PEM, the only format read.
    stat("ssl_keyformat", &1);
    stat("ssl_ciphers", &t.ciphers.as_deref().unwrap_or("NULL"));
    stat("ssl_ca_cert", &path(&t.ca_cert));
    stat("ssl_wbuf_size", &(u64::from(t.wbuf_size_kb) * 1024));
    stat("ssl_session_cache", &yes_no(t.session_cache));
    // Kernel offload is not built: every connection uses rustls.
    stat("ssl_kernel_tls", &"no");
    let min = crate::tls::MinVersion::from_memcached(&t.min_version.to_string())
        .map_or("tlsv1.2", |(v, _)| v.name());
    stat("ssl_min_version", &min);
}
