//! The shard's arena: one mapping reserved up front and faulted in as slab pages are
//! used: anonymous, or (warm restart, `-e`) a shared mapping of the shard's region of
//! the memory file, so that the items outlive the process.
//!
//! ```text
//!   hugepages = "on"   MAP_HUGETLB (2 MiB) ──fail──► error naming /proc/sys/vm/nr_hugepages
//!   hugepages = "try"  MAP_HUGETLB ──fail──► mmap, THP per 2 MiB region once carved ──no THP──► normal
//!   hugepages = "off"  mmap + MADV_NOHUGEPAGE
//! ```
//!
//! The mapping's length is the memory limit rounded down to the slab page size (and to
//! 2 MiB for hugetlb), so the arena can never hold more than its limit.

use std::io;
use std::path::Path;

use super::config::{HugePages, Numa, StoreConfig};
use super::error::StoreError;
use super::numa::{self, NumaBinding, Topology};

const HUGE_2M: usize = 2 << 20;

/// What memory backs the arena, for logs and `stats settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Reserved 2 MiB hugetlb pages.
    Hugetlb,
    /// Transparent huge pages requested with madvise (the kernel may still split them).
    Thp,
    /// Normal pages.
    Normal,
    /// A shared mapping of a region of the memory file (`-e`); the file's filesystem
    /// (tmpfs, hugetlbfs, DAX) decides the page size.
    File,
}

impl Backing {
    pub fn name(self) -> &'static str {
        match self {
            Backing::Hugetlb => "hugetlb",
            Backing::Thp => "thp",
            Backing::Normal => "normal",
            Backing::File => "file",
        }
    }
}

pub(crate) struct Arena {
    base: *mut u8,
    /// Bytes usable by slab pages.
    pub(crate) len: usize,
    /// Bytes actually mapped (len plus alignment slack).
    map_len: usize,
    pub(crate) backing: Backing,
    pub(crate) numa: NumaBinding,
    /// log2 of the bytes a chunk handle counts (`slab::handle_shift`).
    shift: u32,
}

impl Arena {
    pub(crate) fn new(cfg: &StoreConfig) -> Result<Arena, StoreError> {
        let page = cfg.slab_page_size;
        let root = Path::new(&cfg.sys_root);
        let (base, len, map_len, backing) = match cfg.hugepages {
            HugePages::On => {
                let len = round_down(cfg.memory_limit, page.max(HUGE_2M));
                match map_hugetlb(len) {
                    Ok(p) => (p, len, len, Backing::Hugetlb),
                    Err(e) => return Err(StoreError::HugePages(hugetlb_advice(root, len, &e))),
                }
            }
            HugePages::Try => {
                let huge_len = round_down(cfg.memory_limit, page.max(HUGE_2M));
                match map_hugetlb(huge_len) {
                    Ok(p) if huge_len > 0 => (p, huge_len, huge_len, Backing::Hugetlb),
                    _ => {
                        let len = round_down(cfg.memory_limit, page);
                        let (p, map_len) = map_normal(len)?;
                        // THP region by region: no huge page until a 2 MiB region
                        // is wholly carved (`HugeRegion`), so a class's partly carved
                        // newest page costs its carved bytes, not 2 MiB.
                        let backing = if thp_enabled(root) && advise(p, map_len, false) {
                            Backing::Thp
                        } else {
                            Backing::Normal
                        };
                        (p, len, map_len, backing)
                    }
                }
            }
            HugePages::Off => {
                let len = round_down(cfg.memory_limit, page);
                let (p, map_len) = map_normal(len)?;
                advise(p, map_len, false);
                (p, len, map_len, Backing::Normal)
            }
        };
        let mut arena = Arena {
            base,
            len,
            map_len,
            backing,
            numa: NumaBinding::Off,
            shift: crate::slab::handle_shift(len),
        };
        arena.bind_numa(cfg)?;
        Ok(arena)
    }

    /// Maps `region_len` bytes of `file` at `offset` (MAP_SHARED) as the arena. The
    /// region must lie inside the file; `offset` must be page aligned.
    pub(crate) fn from_file(
        cfg: &StoreConfig,
        file: &std::fs::File,
        offset: u64,
        region_len: usize,
    ) -> Result<Arena, StoreError> {
        use std::os::fd::AsRawFd;
        let len = round_down(cfg.memory_limit, cfg.slab_page_size);
        if region_len < len {
            return Err(StoreError::Config {
                field: "memory_file",
                reason: format!("a region of {region_len} bytes cannot hold {len}"),
            });
        }
        // SAFETY: a fresh shared mapping of our own file; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                region_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(StoreError::Map {
                bytes: region_len,
                source: io::Error::last_os_error(),
            });
        }
        let p = p as *mut u8;
        if cfg.hugepages != HugePages::Off {
            // tmpfs honours this when its huge= option allows; elsewhere it is a no-op.
            advise(p, region_len, true);
        }
        let mut arena = Arena {
            base: p,
            len,
            map_len: region_len,
            backing: Backing::File,
            numa: NumaBinding::Off,
            shift: crate::slab::handle_shift(len),
        };
        arena.bind_numa(cfg)?;
        Ok(arena)
    }

    fn bind_numa(&mut self, cfg: &StoreConfig) -> Result<(), StoreError> {
        let root = Path::new(&cfg.sys_root);
        if cfg.numa == Numa::Local {
            let cpu = cfg.cpu.unwrap_or(0);
            let topo = Topology::read(root).map_err(|e| {
                StoreError::Numa(format!(
                    "cannot read the NUMA topology under {}: {e}; set numa = \"off\"",
                    root.join("sys/devices/system/node").display()
                ))
            })?;
            let node = topo.node_of_cpu(cpu).ok_or_else(|| {
                StoreError::Numa(format!("cpu {cpu} belongs to no NUMA node; check `cpu`"))
            })?;
            numa::bind(self.base, self.map_len, node).map_err(|e| {
                StoreError::Numa(format!(
                    "mbind to node {node} failed: {e}; set numa = \"off\""
                ))
            })?;
            self.numa = NumaBinding::Bound { node };
        }
        Ok(())
    }

    /// The bytes `[off, off + len)` of the arena.
    pub(crate) fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(off + len <= self.len);
        // SAFETY: the range lies inside the mapping (checked above); the shard owns it.
        unsafe { std::slice::from_raw_parts(self.base.add(off), len) }
    }

    /// Writes dirty pages of a file-backed arena to the file (a no-op on tmpfs, needed
    /// on a DAX or disk file before the meta names it valid).
    pub(crate) fn sync(&self) -> io::Result<()> {
        if self.backing != Backing::File {
            return Ok(());
        }
        // SAFETY: msync on our own mapping.
        if unsafe { libc::msync(self.base as *mut libc::c_void, self.map_len, libc::MS_SYNC) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Bytes of one huge-page region ([`HugeRegion`]'s unit).
    pub(crate) const HUGE_REGION: usize = HUGE_2M;

    /// The region `[off, off + len)` (2 MiB aligned) for [`HugeRegion::collapse`].
    pub(crate) fn huge_region(&self, off: usize, len: usize) -> Option<HugeRegion> {
        debug_assert!(self.backing == Backing::Thp && off.is_multiple_of(HUGE_2M));
        (off + len <= self.map_len).then(|| HugeRegion {
            addr: self.at(off) as usize,
            len,
        })
    }

    /// Pointer to byte `off` of the arena.
    #[inline]
    pub(crate) fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off < self.len);
        // SAFETY: off < len <= map_len, so the result stays inside the mapping.
        unsafe { self.base.add(off) }
    }

    /// log2 of the bytes a chunk handle counts.
    pub(crate) fn handle_shift(&self) -> u32 {
        self.shift
    }

    /// The chunk of handle `h` (at least 2).
    #[inline]
    pub(crate) fn item(&self, h: u32) -> *mut u8 {
        self.at(crate::slab::offset_of(h, self.shift))
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: base/map_len are exactly what mmap returned; nothing borrows the arena
        // once the Store (its only owner) is dropped.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.map_len);
        }
    }
}

fn round_down(x: usize, unit: usize) -> usize {
    x / unit * unit
}

fn map_hugetlb(len: usize) -> io::Result<*mut u8> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "limit below 2 MiB",
        ));
    }
    const MAP_HUGE_2MB: libc::c_int = 21 << libc::MAP_HUGE_SHIFT;
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | MAP_HUGE_2MB,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p as *mut u8)
    }
}

/// Maps `len` bytes aligned to 2 MiB (so THP can back whole pages); returns the aligned
/// base and the mapped length. The slack before the aligned base is unmapped again.
/// A wholly carved 2 MiB region of a THP arena, handed out by
/// [`Store::take_carved`](crate::Store::take_carved) to be given to huge pages.
/// Collapsing copies the region (about 0.8 ms, and up to several when memory is
/// fragmented: docs/store.md), so the server does it on a side thread rather than on
/// the shard's loop; the contents never change, so it is safe while the shard keeps
/// reading and writing the region, as khugepaged's own collapses are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HugeRegion {
    addr: usize,
    len: usize,
}

impl HugeRegion {
    /// Lets transparent huge pages back the region and collapses its small pages
    /// into huge ones now (MADV_COLLAPSE, Linux 6.1). Returns whether the collapse
    /// happened; if not (older kernel, no free huge page, or the mapping is gone),
    /// the advice stays and khugepaged may collapse the region later.
    pub fn collapse(self) -> bool {
        const MADV_COLLAPSE: libc::c_int = 25;
        let p = self.addr as *mut libc::c_void;
        // SAFETY: advice only: neither call changes the contents of any mapping, and
        // on a range that is no longer mapped both fail with ENOMEM.
        unsafe {
            libc::madvise(p, self.len, libc::MADV_HUGEPAGE);
            libc::madvise(p, self.len, MADV_COLLAPSE) == 0
        }
    }
}

fn map_normal(len: usize) -> Result<(*mut u8, usize), StoreError> {
    let want = len + HUGE_2M;
    // SAFETY: a fresh anonymous, lazily faulted mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            want,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(StoreError::Map {
            bytes: want,
            source: io::Error::last_os_error(),
        });
    }
    let addr = p as usize;
    let aligned = addr.next_multiple_of(HUGE_2M);
    let head = aligned - addr;
    if head > 0 {
        // SAFETY: [p, p + head) is the unaligned prefix of our own fresh mapping.
        unsafe { libc::munmap(p, head) };
    }
    Ok((aligned as *mut u8, want - head))
}

fn advise(p: *mut u8, len: usize, huge: bool) -> bool {
    let advice = if huge {
        libc::MADV_HUGEPAGE
    } else {
        libc::MADV_NOHUGEPAGE
    };
    // SAFETY: madvise on our own mapping only changes paging hints.
    unsafe { libc::madvise(p as *mut libc::c_void, len, advice) == 0 }
}

/// Whether transparent huge pages honour madvise (mode "always" or "madvise").
fn thp_enabled(root: &Path) -> bool {
    std::fs::read_to_string(root.join("sys/kernel/mm/transparent_hugepage/enabled"))
        .map(|s| s.contains("[always]") || s.contains("[madvise]"))
        .unwrap_or(false)
}

fn read_num(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The error text for a failed MAP_HUGETLB: how many pages the host reserves, how many
/// this shard needs, and how to reserve them.
pub(crate) fn hugetlb_advice(root: &Path, len: usize, err: &io::Error) -> String {
    let need = len.div_ceil(HUGE_2M);
    let nr = read_num(&root.join("proc/sys/vm/nr_hugepages"));
    let free = read_num(&root.join("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"));
    let fmt = |v: Option<u64>| v.map_or("an unknown number of".to_string(), |v| v.to_string());
    format!(
        "MAP_HUGETLB of {len} bytes failed ({err}): /proc/sys/vm/nr_hugepages reserves {} \
         pages ({} free) and this shard needs {need} 2 MiB pages; reserve more with \
         `sysctl vm.nr_hugepages=<total for all shards>` or set hugepages = \"try\"",
        fmt(nr),
        fmt(free)
    )
}
