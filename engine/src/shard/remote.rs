//! Records from other shards: their requests for keys we own (executed here,
//! replies sent back in one batch per turn), and replies to what we
//! forwarded (placed in the waiting client's queue).

use proto::binary::BinParse;
use proto::{Parse, Request};

use super::Core;
use super::binary;
use super::client::{Client, ORIGIN_GATHER};
use super::exec::exec;
use super::mesh::{self, Kind, Record};
use super::replicate::HeldFor;
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
                // The client's descriptor is the other shard's: log lines say -1.
                self.log_cfd = -1;
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                match self.execute_for_peer(r.kind, r.payload, &mut out) {
                    Some(id) => self.hold_for(
                        id,
                        HeldFor::Shard {
                            shard: peer,
                            origin: r.origin,
                        },
                    ),
                    None => self.mesh.push(peer, Kind::Reply, r.origin, &[&out]),
                }
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
                // Applied here: the client's reply may leave once every shard
                // has said so (an empty part of it).
                if Client::of_origin(r.origin).is_some() {
                    self.mesh.push(peer, Kind::Reply, r.origin, &[]);
                }
            }
            Kind::Clock => {
                self.update_clock();
                if Client::of_origin(r.origin).is_some() {
                    self.mesh.push(peer, Kind::Reply, r.origin, &[]);
                }
            }
            Kind::StatsReset => {
                self.stats.reset();
                self.store.reset_stats();
            }
            Kind::Reply => {
                if let Some(client) = Client::of_origin(r.origin) {
                    self.deliver_to(client, r.origin.part, r.payload);
                }
            }
            Kind::StatsReply => {
                if r.origin.kind == ORIGIN_GATHER {
                    self.gather_arrived(r.origin.slot, r.origin.generation, r.payload);
                }
            }
        }
    }

    /// Runs a request another shard forwarded, with the hashes of its keys
    /// the sender computed (see [`Kind`]); it was validated there with the
    /// same limits, so it parses whole here.
    /// Returns the key of the held reply when it waits for replicas.
    fn execute_for_peer(&mut self, kind: Kind, payload: &[u8], out: &mut Vec<u8>) -> Option<u64> {
        let mut exec = exec!(self);
        let (hashes, request_bytes) = mesh::split_hashes(kind, payload);
        if binary::is_binary(request_bytes) {
            match proto::binary::parse(request_bytes, &self.limits) {
                BinParse::Complete { request, .. } => {
                    let hash = hashes
                        .get(..8)
                        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
                    exec.run_binary(&request, hash, out);
                }
                BinParse::Invalid(invalid) => {
                    if let Some(reply) = invalid.reply {
                        reply.encode(out);
                    }
                }
                BinParse::Incomplete { .. } => {
                    debug_assert!(false, "forwarded binary request is incomplete")
                }
            }
            return None;
        }
        let hash_at = |i: usize| {
            hashes
                .get(i * 8..i * 8 + 8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        match proto::parse(request_bytes, &self.limits) {
            Parse::Complete { request, .. } => match (kind, &request) {
                (Kind::Values, Request::Get(get)) => {
                    let keys = get.keys.clone().enumerate().map(|(i, k)| (k, hash_at(i)));
                    if let Some(id) = self.fill_values(get.kind, get.exptime, keys.clone()) {
                        return Some(id);
                    }
                    exec!(self).values(get.kind, get.exptime, keys, out);
                }
                _ => {
                    return self
                        .run_replicated(&request, hash_at(0), request_bytes, out)
                        .1;
                }
            },
            Parse::Invalid(invalid) => {
                if invalid.reply {
                    invalid.error.encode(out);
                }
            }
            Parse::Incomplete { .. } => debug_assert!(false, "forwarded request is incomplete"),
        }
        None
    }
}
