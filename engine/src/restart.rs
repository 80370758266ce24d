//! Warm restart (`-e PATH`, memcached's restartable memory file): item memory lives in
//! a shared mapping of PATH, one region per shard; a graceful stop writes `PATH.meta`
//! with each shard's saved state, and the next start rebuilds the shards from both.
//!
//! ```text
//!   PATH        | header (2 MiB slot: magic, shards, region size, generation, xxh3) |
//!               | shard 0's arena | shard 1's arena | ...   (regions 2 MiB aligned)
//!   PATH.meta   | magic | format | corecache version | shards | region size |
//!               | generation | stop time | per shard: length, state | xxh3 of all before |
//! ```
//!
//! Start-up: the meta is read and removed before anything is served (a crash later
//! never reuses it); when it is absent, unreadable, from another build or layout, or
//! names another generation of the file, the file is emptied and every shard starts
//! cold, with the reason in the log. A zero-length meta is refused at start-up, as
//! memcached 1.6.18 does (corecache never writes one: it writes `PATH.meta.tmp` and
//! renames it). Each shard then checks its own state against its settings and the
//! checksum of its arena (store/src/persist.rs) and may still start cold alone.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{ConfigError, VERSION};

const FILE_MAGIC: &[u8; 16] = b"corecache-mfile1";
const META_MAGIC: &[u8; 16] = b"corecache-meta-1";
/// Bumped on any change to the meta's framing.
const META_FORMAT: u32 = 1;
/// The header's slot in front of the regions: one 2 MiB page, so that regions stay
/// aligned for a hugetlbfs file.
pub const HEADER_SLOT: u64 = 2 << 20;
const FILE_HEADER_LEN: usize = 48;

/// The memory file of this run, and what the last run left for each shard.
pub struct MemoryFile {
    path: PathBuf,
    file: Arc<File>,
    shards: usize,
    region_len: usize,
    generation: u64,
}

/// What start-up found.
pub struct Plan {
    pub file: MemoryFile,
    /// Each shard's saved state, all `None` for a cold start.
    pub saved: Vec<Option<Vec<u8>>>,
    /// Why the start is cold, `None` when it is warm.
    pub cold: Option<String>,
}

/// One shard's share of the memory file.
pub struct Region {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
    pub saved: Option<Vec<u8>>,
}

fn meta_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".meta");
    PathBuf::from(p)
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!(
        "invalid setting memory.file: {what} {}: {e}",
        path.display()
    ))
}

/// Little-endian cursor over the meta's bytes; every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it is truncated".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}

/// What a meta file says, once its checksum holds.
struct Meta {
    version: String,
    shards: usize,
    region_len: usize,
    generation: u64,
    states: Vec<Vec<u8>>,
}

fn parse_meta(bytes: &[u8]) -> Result<Meta, String> {
    if bytes.len() < 24 || &bytes[..16] != META_MAGIC {
        return Err("it is not a corecache meta file".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        return Err("its checksum does not match (truncated or corrupt)".into());
    }
    let mut c = Cursor(&body[16..]);
    let format = c.u32()?;
    if format != META_FORMAT {
        return Err(format!(
            "it has format {format}, this build reads {META_FORMAT}"
        ));
    }
    let vlen = c.u32()? as usize;
    let version = String::from_utf8_lossy(c.take(vlen.min(256))?).into_owned();
    let shards = c.u32()? as usize;
    let region_len = c.u64()? as usize;
    let generation = c.u64()?;
    let _stopped_at = c.u64()?;
    let mut states = Vec::new();
    for _ in 0..shards.min(1024) {
        let n = c.u64()? as usize;
        states.push(c.take(n)?.to_vec());
    }
    if !c.0.is_empty() || states.len() != shards {
        return Err("its shard sections are corrupt".into());
    }
    Ok(Meta {
        version,
        shards,
        region_len,
        generation,
        states,
    })
}

fn file_header(shards: usize, region_len: usize, generation: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..16].copy_from_slice(FILE_MAGIC);
    h[16..20].copy_from_slice(&(shards as u32).to_le_bytes());
    h[20..24].copy_from_slice(&0u32.to_le_bytes());
    h[24..32].copy_from_slice(&(region_len as u64).to_le_bytes());
    h[32..40].copy_from_slice(&generation.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&h[..40]);
    h[40..48].copy_from_slice(&sum.to_le_bytes());
    h
}

/// The header slot, mapped (writes to a hugetlbfs file must go through a mapping).
fn map_header(file: &File) -> std::io::Result<memmap2::MmapMut> {
    // SAFETY: the file is ours and at least HEADER_SLOT long; nothing else maps the slot.
    unsafe {
        memmap2::MmapOptions::new()
            .len(HEADER_SLOT as usize)
            .map_mut(file)
    }
}

/// A fresh generation: a memory file is only ever paired with the meta of its own run.
fn new_generation() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    xxhash_rust::xxh3::xxh3_64(
        &[t.to_le_bytes(), (std::process::id() as u64).to_le_bytes()].concat(),
    )
}

/// Whether `path`'s filesystem keeps pages in memory (tmpfs, hugetlbfs, ramfs).
fn in_memory_fs(path: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    const TMPFS: i64 = 0x0102_1994;
    const HUGETLBFS: i64 = 0x9584_58f6;
    const RAMFS: i64 = 0x8584_58f6;
    Some(matches!(st.f_type as i64, TMPFS | HUGETLBFS | RAMFS))
}

/// Whether a tmpfs mount with these super options gives its files' shared
/// mappings transparent huge pages (the arena asks with MADV_HUGEPAGE, which
/// `huge=advise` honours), given the system's `shmem_enabled` setting.
fn tmpfs_huge(super_options: &str, shmem_enabled: &str) -> bool {
    let mount = super_options
        .split(',')
        .find_map(|o| o.strip_prefix("huge="))
        .unwrap_or("never");
    let system = shmem_enabled
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("never");
    system == "force" || (system != "deny" && matches!(mount, "always" | "within_size" | "advise"))
}

/// The fs type and super options of the mount holding `dir` (the longest
/// mount point that is a prefix of it) in a `/proc/self/mountinfo` text.
fn mount_of<'a>(mountinfo: &'a str, dir: &Path) -> Option<(&'a str, &'a str)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            let mut after = after.split(' ');
            let (fstype, _source, options) = (after.next()?, after.next()?, after.next()?);
            dir.starts_with(point)
                .then_some((point.len(), fstype, options))
        })
        .max_by_key(|m| m.0)
        .map(|(_, fstype, options)| (fstype, options))
}

/// Warns when the memory file's tmpfs keeps it in 4 KiB pages: the arena then
/// costs TLB misses the anonymous one (transparent huge pages) does not
/// (12% of depth-16 throughput measured, docs/benchmarks.md).
fn warn_if_small_pages(path: &Path) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (Ok(dir), Ok(mountinfo)) = (
        dir.canonicalize(),
        std::fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return;
    };
    let shmem = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();
    if let Some(("tmpfs", options)) = mount_of(&mountinfo, &dir)
        && !tmpfs_huge(options, &shmem)
    {
        tracing::warn!(
            file = %path.display(),
            "the memory file's tmpfs uses 4 KiB pages (no huge= mount option): expect lower \
             throughput than without -e; mount it with huge=always or huge=within_size (tuning/README.md)"
        );
    }
}

impl Plan {
    /// Opens (or creates) the memory file for `shards` regions of `region_len` bytes and
    /// decides whether this start is warm. Errors only for what must stop the start:
    /// a file that cannot be opened or sized, or a zero-length meta.
    pub fn prepare(path: &Path, shards: usize, region_len: usize) -> Result<Plan, ConfigError> {
        let region_len = region_len.next_multiple_of(HEADER_SLOT as usize);
        let total = HEADER_SLOT + (shards * region_len) as u64;
        if in_memory_fs(path) == Some(false) {
            tracing::warn!(
                file = %path.display(),
                "the memory file is on a disk filesystem: every item write may reach the \
                 disk; put it on tmpfs or hugetlbfs (docs/tuning.md)"
            );
        } else {
            warn_if_small_pages(path);
        }
        let meta_path = meta_path(path);
        let meta = match std::fs::read(&meta_path) {
            Ok(b) if b.is_empty() => {
                return Err(err(
                    &meta_path,
                    "the restart metadata",
                    "is empty (corecache never writes an empty one); remove it to start \
                     with an empty cache",
                ));
            }
            Ok(b) => {
                // Read once: a crash from here on must not reuse it.
                std::fs::remove_file(&meta_path)
                    .map_err(|e| err(&meta_path, "cannot remove", e))?;
                parse_meta(&b)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
                "there is no restart metadata (the last run did not stop gracefully \
                     with -e, or this is the first)"
                    .into(),
            ),
            Err(e) => Err(format!("it cannot be read ({e})")),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| err(path, "cannot open", e))?;
        let warm = meta.and_then(|m| {
            if m.version != VERSION {
                return Err(format!(
                    "it was written by corecache {}, this is {VERSION}",
                    m.version
                ));
            }
            if m.shards != shards {
                return Err(format!(
                    "it holds {} shards and this start has {shards} (restart with the \
                     same -t / --cores to keep the cache)",
                    m.shards
                ));
            }
            if m.region_len != region_len {
                return Err("its memory layout differs (-m changed)".into());
            }
            let len = file.metadata().map_or(0, |md| md.len());
            if len != total {
                return Err(format!("the memory file is {len} bytes, not {total}"));
            }
            let header =
                map_header(&file).map_err(|e| format!("cannot map the memory file ({e})"))?;
            if header[..FILE_HEADER_LEN] != file_header(shards, region_len, m.generation) {
                return Err("the memory file's header does not match it".into());
            }
            Ok(m)
        });
        let (generation, saved, cold) = match warm {
            Ok(m) => (m.generation, m.states.into_iter().map(Some).collect(), None),
            Err(why) => {
                // Whatever the file held is not trusted: give its pages back and
                // start from zeroes.
                file.set_len(0).map_err(|e| err(path, "cannot empty", e))?;
                file.set_len(total)
                    .map_err(|e| err(path, "cannot size", e))?;
                let generation = new_generation();
                let mut header = map_header(&file).map_err(|e| err(path, "cannot map", e))?;
                header[..FILE_HEADER_LEN]
                    .copy_from_slice(&file_header(shards, region_len, generation));
                header.flush().map_err(|e| err(path, "cannot write", e))?;
                (
                    generation,
                    vec![None; shards],
                    Some(format!("restart metadata {}: {why}", meta_path.display())),
                )
            }
        };
        Ok(Plan {
            file: MemoryFile {
                path: path.to_path_buf(),
                file: Arc::new(file),
                shards,
                region_len,
                generation,
            },
            saved,
            cold,
        })
    }

    /// Each shard's region, in shard order.
    pub fn regions(&mut self) -> Vec<Region> {
        let f = &self.file;
        self.saved
            .iter_mut()
            .enumerate()
            .map(|(i, s)| Region {
                file: f.file.clone(),
                offset: HEADER_SLOT + (i * f.region_len) as u64,
                len: f.region_len,
                saved: s.take(),
            })
            .collect()
    }
}

impl MemoryFile {
    /// Writes `PATH.meta` from every shard's saved state (in shard order): to a
    /// temporary file, synced, then renamed over the meta, so a meta is whole or absent.
    pub fn save(&self, states: &[Vec<u8>]) -> std::io::Result<usize> {
        assert_eq!(states.len(), self.shards);
        let mut b = Vec::new();
        b.extend_from_slice(META_MAGIC);
        b.extend_from_slice(&META_FORMAT.to_le_bytes());
        b.extend_from_slice(&(VERSION.len() as u32).to_le_bytes());
        b.extend_from_slice(VERSION.as_bytes());
        b.extend_from_slice(&(self.shards as u32).to_le_bytes());
        b.extend_from_slice(&(self.region_len as u64).to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        b.extend_from_slice(&now.to_le_bytes());
        for s in states {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s);
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        self.file.sync_all()?;
        let meta = meta_path(&self.path);
        let mut tmp = meta.clone().into_os_string();
        tmp.push(".tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&b)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &meta)?;
        if let Some(dir) = meta.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(b.len())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tmpfs_gives_huge_pages_only_when_its_mount_or_the_system_says_so() {
        use super::tmpfs_huge;
        let never = "always within_size advise [never] deny force";
        assert!(!tmpfs_huge("rw,size=24683792k", never));
        assert!(tmpfs_huge("rw,size=1g,huge=always", never));
        assert!(tmpfs_huge("rw,huge=within_size", never));
        assert!(tmpfs_huge("rw,huge=advise", never));
        assert!(!tmpfs_huge("rw,huge=never", never));
        assert!(tmpfs_huge(
            "rw",
            "always within_size advise never deny [force]"
        ));
        assert!(!tmpfs_huge(
            "rw,huge=always",
            "always within_size advise never [deny] force"
        ));
    }

    #[test]
    fn the_mount_of_a_path_is_the_longest_mount_point_above_it() {
        use super::mount_of;
        use std::path::Path;
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 0:26 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=100k
31 30 0:27 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,size=24683792k
40 22 0:40 / /mnt/cchuge rw,relatime shared:9 - tmpfs tmpfs rw,size=4g,huge=always
";
        assert_eq!(
            mount_of(info, Path::new("/dev/shm")),
            Some(("tmpfs", "rw,size=24683792k"))
        );
        assert_eq!(
            mount_of(info, Path::new("/mnt/cchuge/x")),
            Some(("tmpfs", "rw,size=4g,huge=always"))
        );
        assert_eq!(
            mount_of(info, Path::new("/var/lib")),
            Some(("ext4", "rw,errors=remount-ro"))
        );
        // A mount point that is a string prefix but not a path prefix.
        assert_eq!(
            mount_of(info, Path::new("/devices")).map(|m| m.0),
            Some("ext4")
        );
    }

    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap()
    }

    #[test]
    fn a_saved_meta_makes_the_next_start_warm_once() {
        let d = dir();
        let path = d.path().join("mem");
        let mut plan = Plan::prepare(&path, 2, 3 << 20).unwrap();
        assert!(
            plan.cold
                .as_deref()
                .unwrap()
                .contains("no restart metadata")
        );
        assert_eq!(plan.regions()[1].offset, HEADER_SLOT + (4 << 20));
        plan.file
            .save(&[b"zero".to_vec(), b"one".to_vec()])
            .unwrap();
        let mut plan = Plan::prepare(&path, 2, 3 << 20).unwrap();
        assert_eq!(plan.cold, None);
        let r = plan.regions();
        assert_eq!(r[0].saved.as_deref(), Some(&b"zero"[..]));
        assert_eq!(r[1].saved.as_deref(), Some(&b"one"[..]));
        // The meta was consumed: a crash now restarts cold.
        assert!(!meta_path(&path).exists());
        let plan = Plan::prepare(&path, 2, 3 << 20).unwrap();
        assert!(plan.cold.is_some());
    }

    #[test]
    fn every_mismatch_or_corruption_starts_cold_with_its_reason() {
        let d = dir();
        let path = d.path().join("mem");
        let save = |shards: usize, region: usize| {
            let plan = Plan::prepare(&path, shards, region).unwrap();
            plan.file.save(&vec![vec![7u8; 100]; shards]).unwrap();
        };
        let cold = |shards: usize, region: usize| {
            Plan::prepare(&path, shards, region).unwrap().cold.unwrap()
        };
        save(2, 2 << 20);
        assert!(cold(3, 2 << 20).contains("holds 2 shards"), "shard count");
        save(2, 2 << 20);
        assert!(cold(2, 4 << 20).contains("layout"), "region size");
        save(2, 2 << 20);
        let m = meta_path(&path);
        let mut b = std::fs::read(&m).unwrap();
        b[30] ^= 1;
        std::fs::write(&m, &b).unwrap();
        assert!(cold(2, 2 << 20).contains("checksum"));
        save(2, 2 << 20);
        let b = std::fs::read(&m).unwrap();
        std::fs::write(&m, &b[..b.len() - 20]).unwrap();
        assert!(cold(2, 2 << 20).contains("checksum"), "truncated meta");
        save(2, 2 << 20);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        assert!(cold(2, 2 << 20).contains("bytes, not"), "truncated file");
        save(2, 2 << 20);
        {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut h = map_header(&f).unwrap();
            h[33] ^= 0x40;
        }
        assert!(cold(2, 2 << 20).contains("header"), "flipped file header");
        std::fs::write(&m, b"").unwrap();
        assert!(
            Plan::prepare(&path, 2, 2 << 20).is_err(),
            "an empty meta stops the start"
        );
    }
}
