//! Records from other shards: their requests for keys we own (executed here,
//! replies sent back in one batch per turn), and replies to what we
//! forwarded (placed in the waiting client's queue).

use proto::{Parse, Request};

use super::Core;
use super::exec::Exec;
use super::input::{Client, ORIGIN_CONN, ORIGIN_GATHER, ORIGIN_UDP};
use super::mesh::{self, Kind, Origin, Record};
use super::stats::Section;

impl Core {
    /// Handles every batch the other shards have left for us.
    pub(super) fn drain_mesh(&mut self) {
        for peer in 0..self.mesh.shards() {
            if peer == self.id {
                continue;
            }
            while let Some(batch) = self.mesh.receive(peer) {
                for record in mesh::records(&batch) {
                    self.on_record(peer, record);
                }
                self.mesh.recycle(peer, batch);
            }
        }
    }

    fn on_record(&mut self, peer: usize, r: Record<'_>) {
        match r.kind {
            Kind::Exec | Kind::Values => {
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                self.execute_for_peer(r.kind, r.payload, &mut out);
                self.mesh.push(peer, Kind::Reply, r.origin, &[&out]);
                self.scratch = out;
            }
            Kind::Stats => {
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                if let Some(section) = r.payload.first().copied().and_then(Section::from_code) {
                    self.snapshot(section, &mut out);
                }
                self.mesh.push(peer, Kind::StatsReply, r.origin, &[&out]);
                self.scratch = out;
            }
            Kind::Flush => {
                let delay = r.payload.try_into().map(i64::from_le_bytes).unwrap_or(0);
                self.store.flush_all(delay);
            }
            Kind::StatsReset => {
                self.stats.reset();
                self.store.reset_stats();
            }
            Kind::Reply => self.deliver(r.origin, r.payload),
            Kind::StatsReply => {
                if r.origin.kind == ORIGIN_GATHER {
                    self.gather_arrived(r.origin.slot, r.payload);
                }
            }
        }
    }

    /// Runs a request another shard forwarded; it was validated there with
    /// the same limits, so it parses whole here.
    fn execute_for_peer(&mut self, kind: Kind, payload: &[u8], out: &mut Vec<u8>) {
        let mut exec = Exec {
            store: &mut self.store,
            stats: &mut self.stats,
        };
        match proto::parse(payload, &self.limits) {
            Parse::Complete { request, .. } => match (kind, &request) {
                (Kind::Values, Request::Get(get)) => {
                    exec.values(get.kind, get.exptime, get.keys.clone(), out)
                }
                _ => {
                    exec.run(&request, out);
                }
            },
            Parse::Invalid(invalid) => {
                if invalid.reply {
                    invalid.error.encode(out);
                }
            }
            Parse::Incomplete { .. } => debug_assert!(false, "forwarded request is incomplete"),
        }
    }

    /// A reply for `origin` arrived from another shard.
    fn deliver(&mut self, origin: Origin, bytes: &[u8]) {
        let client = match origin.kind {
            ORIGIN_CONN => Client::Conn {
                slot: origin.slot,
                generation: origin.generation,
            },
            ORIGIN_UDP => Client::Udp {
                slot: origin.slot,
                generation: origin.generation,
            },
            _ => return,
        };
        self.deliver_to(client, origin.part, bytes);
    }

    /// Places reply `part` in `client`'s queue.
    pub(super) fn deliver_to(&mut self, client: Client, part: u32, bytes: &[u8]) {
        match client {
            Client::Conn { slot, generation } => {
                if let Some(conn) = self.conns.get_mut(slot, generation) {
                    conn.replies.resolve(part, bytes);
                    self.mark_dirty(slot);
                }
            }
            Client::Udp { slot, generation } => {
                if let Some(udp) = self.udp.as_mut() {
                    udp.resolve(slot, generation, part, bytes);
                }
            }
        }
    }
}
