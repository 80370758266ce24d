//! `stats cluster`: this node's view of the cluster (members, ring points
//! per member) and every peer link, summed over the shards.

use std::io::Write;

use crate::shard::Core;
use crate::shard::stats::schema::LINKS;
use crate::shard::stats::{Merged, put_row};

impl Core {
    /// This shard's rows of `stats cluster`: one per peer link.
    pub(in crate::shard) fn cluster_snapshot(&self, out: &mut Vec<u8>) {
        for (node, row) in self.links.report() {
            put_row(out, node as u32, LINKS.iter().map(|e| e.read(&row)));
        }
    }

    /// The `stats cluster` reply from every shard's merged rows.
    pub(in crate::shard) fn format_cluster(&self, merged: &Merged, out: &mut Vec<u8>) {
        let mut stat = |name: &str, value: &dyn std::fmt::Display| {
            let _ = write!(out, "STAT {name} {value}\r\n");
        };
        let Some(plan) = &self.shared.cluster else {
            stat("cluster_enabled", &0);
            out.extend_from_slice(b"END\r\n");
            return;
        };
        // The latest published view (not this shard's, which may be one
        // turn old), for the members' states and the list (which grows when
        // a member joins).
        let view = self.shared.membership.as_ref().map(|p| p.load());
        let ring = view.as_ref().map_or(&plan.ring, |v| &v.ring);
        let members = view
            .as_ref()
            .map_or(&plan.peers.members, |v| &v.roster.members);
        let addrs = view
            .as_ref()
            .map_or(&self.shared.cluster_addrs, |v| &v.roster.addrs);
        stat("cluster_enabled", &1);
        stat("cluster_node", &plan.peers.this().name);
        stat("cluster_ring", &plan.ring.kind().name());
        stat("cluster_forwarding", &u8::from(plan.forward));
        stat(
            "cluster_membership",
            &if plan.gossip.is_some() {
                "gossip"
            } else {
                "static"
            },
        );
        stat("cluster_epoch", &view.as_ref().map_or(1, |v| v.epoch));
        stat("cluster_replicas", &plan.replicas);
        stat("cluster_resync_rate", &plan.resync_rate);
        stat("cluster_warmup_secs", &plan.warmup_secs);
        stat("cluster_warming", &u8::from(self.warming()));
        stat("cluster_members", &members.len());
        stat("cluster_peers", &cluster::list_of(members));
        stat(
            "cluster_live_members",
            &view.as_ref().map_or(members.len(), |v| {
                v.members.iter().filter(|m| m.live).count()
            }),
        );
        for (i, m) in members.iter().enumerate() {
            let address = addrs
                .get(i)
                .map_or_else(|| format!("{}:{}", m.host, m.port), ToString::to_string);
            stat(&format!("member:{}:address", m.name), &address);
            stat(&format!("member:{}:weight", m.name), &m.weight);
            stat(&format!("member:{}:points", m.name), &ring.points_of(i));
            if let Some(v) = view.as_ref().and_then(|v| v.members.get(i)) {
                let state = if plan.gossip.is_some() {
                    v.state.name()
                } else {
                    "static"
                };
                stat(&format!("member:{}:state", m.name), &state);
                stat(&format!("member:{}:live", m.name), &u8::from(v.live));
                stat(&format!("member:{}:incarnation", m.name), &v.incarnation);
                stat(&format!("member:{}:generation", m.name), &v.generation);
            }
            stat(
                &format!("member:{}:this", m.name),
                &u8::from(i == plan.peers.this_node),
            );
        }
        for (node, row) in merged.classes(LINKS) {
            let Some(m) = members.get(node as usize) else {
                continue;
            };
            for (e, v) in row {
                stat(&format!("link:{}:{}", m.name, e.name), &v);
            }
        }
        out.extend_from_slice(b"END\r\n");
    }
}
