//! NUMA topology from sysfs and binding of the arena with mbind(2).
//!
//! The reader takes a root path so tests can feed it a fake layout: it reads
//! `<root>/sys/devices/system/node/node<N>/cpulist` for every node directory.

use std::io;
use std::path::Path;

/// Which node each CPU belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// (node id, cpus of that node), sorted by node id.
    pub nodes: Vec<(usize, Vec<usize>)>,
}

impl Topology {
    /// Reads the node directories under `root` (normally `/`).
    pub fn read(root: &Path) -> io::Result<Topology> {
        let dir = root.join("sys/devices/system/node");
        let mut nodes = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix("node")) else {
                continue;
            };
            let Ok(id) = id.parse::<usize>() else {
                continue;
            };
            let list = std::fs::read_to_string(entry.path().join("cpulist"))?;
            let cpus = parse_cpulist(list.trim()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad cpulist {list:?}"))
            })?;
            nodes.push((id, cpus));
        }
        if nodes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no node directories under {}", dir.display()),
            ));
        }
        nodes.sort();
        Ok(Topology { nodes })
    }

    /// The node holding `cpu`.
    pub fn node_of_cpu(&self, cpu: usize) -> Option<usize> {
        self.nodes
            .iter()
            .find(|(_, cpus)| cpus.contains(&cpu))
            .map(|(id, _)| *id)
    }
}

/// Parses the kernel's cpulist format: "0-3,8,10-11". Empty means no CPUs.
pub fn parse_cpulist(s: &str) -> Option<Vec<usize>> {
    cpus::parse_list(s).ok()
}

/// What NUMA placement the arena got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumaBinding {
    /// `numa = "off"`.
    Off,
    /// Bound to this node with MPOL_BIND.
    Bound { node: usize },
}

impl std::fmt::Display for NumaBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumaBinding::Off => f.write_str("off"),
            NumaBinding::Bound { node } => write!(f, "node{node}"),
        }
    }
}

const MPOL_BIND: libc::c_long = 2;

/// Binds `[addr, addr + len)` to `node` (MPOL_BIND) before any page is touched.
pub(crate) fn bind(addr: *mut u8, len: usize, node: usize) -> io::Result<()> {
    const WORD: usize = 64;
    if node >= 1024 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "node id above 1023",
        ));
    }
    let mut mask = [0u64; 1024 / WORD];
    mask[node / WORD] |= 1 << (node % WORD);
    // SAFETY: mbind only reads `mask` (maxnode bits, 1024 here, all inside the array) and
    // changes the policy of a mapping this store owns; it touches no Rust-visible memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr as libc::c_ulong,
            len as libc::c_ulong,
            MPOL_BIND,
            mask.as_ptr(),
            1024 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
