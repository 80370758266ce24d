//! Hugepage fallback chain and NUMA topology/binding.

use std::path::Path;

use super::super::{
    Backing, HugePages, Numa, NumaBinding, StoreError, StoreOutcome, Topology, parse_cpulist,
};
use super::*;

/// Tests that map huge pages or change the reservation run one at a time.
static HUGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn huge_lock() -> std::sync::MutexGuard<'static, ()> {
    HUGE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn cpulist_parsing() {
    assert_eq!(
        parse_cpulist("0-3,8,10-11"),
        Some(vec![0, 1, 2, 3, 8, 10, 11])
    );
    assert_eq!(parse_cpulist(""), Some(vec![]));
    assert_eq!(parse_cpulist("3-1"), None);
    assert_eq!(parse_cpulist("x"), None);
}

fn fake_two_nodes() -> tempdir::TempDir {
    let dir = tempdir::TempDir::new();
    for (node, cpus) in [(0, "0-1"), (1, "2-3")] {
        let d = dir
            .path()
            .join(format!("sys/devices/system/node/node{node}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cpulist"), format!("{cpus}\n")).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("sys/devices/system/node/power")).unwrap();
    dir
}

#[test]
fn topology_reader_on_a_fake_two_node_layout() {
    let dir = fake_two_nodes();
    let t = Topology::read(dir.path()).unwrap();
    assert_eq!(t.nodes, vec![(0, vec![0, 1]), (1, vec![2, 3])]);
    assert_eq!(t.node_of_cpu(3), Some(1));
    assert_eq!(t.node_of_cpu(0), Some(0));
    assert_eq!(t.node_of_cpu(9), None);
    assert!(Topology::read(Path::new("/nonexistent")).is_err());
}

#[test]
fn numa_local_binds_to_the_cpus_node() {
    let dir = fake_two_nodes();
    let mut cfg = config(4 << 20, Policy::Clock);
    cfg.numa = Numa::Local;
    cfg.sys_root = dir.path().display().to_string();
    cfg.cpu = Some(1);
    let mut s = Store::new(cfg.clone()).expect("node 0 exists on every Linux host");
    assert_eq!(s.numa_binding(), NumaBinding::Bound { node: 0 });
    s.set(hk(b"k"), b"v", 0, 0);
    assert!(s.get(hk(b"k")).is_some());
    // cpu 3 is on fake node 1: real when the host has two nodes, an error otherwise.
    cfg.cpu = Some(3);
    match Store::new(cfg.clone()) {
        Ok(s) => assert_eq!(s.numa_binding(), NumaBinding::Bound { node: 1 }),
        Err(StoreError::Numa(msg)) => assert!(msg.contains("node 1"), "{msg}"),
        Err(e) => panic!("{e}"),
    }
    cfg.cpu = Some(9);
    assert!(matches!(Store::new(cfg.clone()), Err(StoreError::Numa(_))));
    cfg.cpu = None;
    assert!(matches!(
        Store::new(cfg),
        Err(StoreError::Config { field: "numa", .. })
    ));
}

#[test]
fn config_errors_name_the_setting() {
    let mut cfg = config(1 << 20, Policy::Clock);
    let e = Store::new(cfg.clone()).err().unwrap().to_string();
    assert!(e.contains("memory_limit"), "{e}");
    cfg.memory_limit = 8 << 20;
    cfg.growth_factor = 1.001;
    assert!(
        Store::new(cfg.clone())
            .err()
            .unwrap()
            .to_string()
            .contains("growth_factor")
    );
    cfg.growth_factor = 1.08;
    cfg.max_item_size = 2 << 20;
    assert!(
        Store::new(cfg)
            .err()
            .unwrap()
            .to_string()
            .contains("max_item_size")
    );
}

#[test]
fn hugepages_off_and_try() {
    let _g = huge_lock();
    let s = store(4 << 20, Policy::Clock);
    assert_eq!(s.backing(), Backing::Normal);
    let mut cfg = config(4 << 20, Policy::Clock);
    cfg.hugepages = HugePages::Try;
    let mut s = Store::new(cfg).expect("try never fails for lack of huge pages");
    println!("hugepages = \"try\" got {}", s.backing().name());
    s.set(hk(b"k"), b"v", 0, 0);
    assert_eq!(s.get(hk(b"k")).unwrap().value, b"v");
}

/// The "try" chain past hugetlb, against a fake sysfs: THP when the kernel honours
/// madvise, normal pages when THP is off.
#[test]
fn hugepages_try_falls_back_to_thp_then_normal() {
    let _g = huge_lock();
    let free = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if free >= 2 {
        println!("skipping: {free} hugetlb pages are free, so \"try\" would take them");
        return;
    }
    for (mode, want) in [
        ("always [madvise] never", Backing::Thp),
        ("always madvise [never]", Backing::Normal),
    ] {
        let dir = tempdir::TempDir::new();
        let d = dir.path().join("sys/kernel/mm/transparent_hugepage");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("enabled"), format!("{mode}\n")).unwrap();
        let mut cfg = config(4 << 20, Policy::Clock);
        cfg.hugepages = HugePages::Try;
        cfg.sys_root = dir.path().display().to_string();
        let s = Store::new(cfg).unwrap();
        assert_eq!(s.backing(), want, "{mode}");
    }
}

/// As root: reserve no pages and expect "on" to fail naming nr_hugepages, then reserve
/// a few, expect "on" to map them, and restore the old reservation.
#[test]
fn hugepages_on_fails_clearly_or_maps_reserved_pages() {
    let _g = huge_lock();
    let path = "/proc/sys/vm/nr_hugepages";
    let old = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    // SAFETY: geteuid has no preconditions and touches no memory.
    let writable = unsafe { libc::geteuid() } == 0 && std::fs::write(path, "0\n").is_ok();
    if !writable {
        println!("skipping the hugetlb reservation part: not root or {path} read-only");
    }
    let mut cfg = config(4 << 20, Policy::Clock);
    cfg.hugepages = HugePages::On;
    let free_now =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
    if free_now < 2 {
        let e = Store::new(cfg.clone())
            .err()
            .expect("no pages reserved")
            .to_string();
        assert!(
            e.contains("/proc/sys/vm/nr_hugepages") && e.contains("hugepages"),
            "{e}"
        );
    }
    if writable {
        let base = old.unwrap_or(0);
        std::fs::write(path, format!("{}\n", base + 4)).unwrap();
        let got = Store::new(cfg.clone());
        let result = got.map(|mut s| {
            s.set(hk(b"k"), b"huge", 0, 0);
            (s.backing(), s.get(hk(b"k")).map(|v| v.value.to_vec()))
        });
        std::fs::write(path, format!("{base}\n")).unwrap();
        match result {
            Ok((backing, v)) => {
                assert_eq!(backing, Backing::Hugetlb);
                assert_eq!(v.as_deref(), Some(&b"huge"[..]));
            }
            // The kernel may fail to find contiguous memory for new pages.
            Err(e) => println!("could not get reserved huge pages: {e}"),
        }
    }
}

/// With THP, a 2 MiB region is handed out for huge pages only once every slab page
/// in it is carved to its end, and once: a class's newest, partly carved page stays on
/// small pages, resident only as far as it is carved (issue 16).
#[test]
fn thp_regions_are_handed_out_once_wholly_carved() {
    let _g = huge_lock();
    let dir = tempdir::TempDir::new();
    let thp = dir.path().join("sys/kernel/mm/transparent_hugepage");
    std::fs::create_dir_all(&thp).unwrap();
    std::fs::write(thp.join("enabled"), "always [madvise] never\n").unwrap();
    let mut cfg = config(16 << 20, Policy::Clock);
    cfg.hugepages = HugePages::Try;
    cfg.sys_root = dir.path().display().to_string();
    let mut s = Store::new(cfg).expect("store");
    match s.backing() {
        Backing::Thp => {}
        // Reserved huge pages (MAP_HUGETLB), or a kernel without THP: nothing to hand out.
        b => return println!("backing {b:?}: no THP regions to test"),
    }
    let set = |s: &mut Store, i: u32| {
        let out = s.set(hk(format!("key:{i:06}").as_bytes()), &[7; 100], 0, 0);
        assert!(matches!(out, StoreOutcome::Stored { .. }), "{out:?}");
    };
    set(&mut s, 0);
    let per_region = (2 << 20) / (1 << 20) * s.slab_stats()[0].chunks_per_page;
    for i in 1..per_region - 1 {
        set(&mut s, i);
        assert_eq!(
            s.take_carved(),
            None,
            "handed out at item {i}, before the region was carved"
        );
    }
    assert_eq!(s.stats().arena_huge_bytes, 0);
    set(&mut s, per_region - 1);
    let region = s.take_carved().expect("the first region is wholly carved");
    assert_eq!(s.take_carved(), None, "a region is handed out once");
    assert_eq!(s.stats().arena_huge_bytes, 2 << 20);
    // Collapsing keeps every byte (whether the kernel collapses now or later).
    region.collapse();
    for i in per_region..per_region + 10 {
        set(&mut s, i);
    }
    assert_eq!(s.take_carved(), None);
    for i in 0..per_region + 10 {
        let v = s.get(hk(format!("key:{i:06}").as_bytes())).expect("kept");
        assert_eq!(v.value, &[7; 100][..]);
    }
}

/// A tiny temp dir helper (no extra dependency).
mod tempdir {
    pub struct TempDir(std::path::PathBuf);
    impl TempDir {
        pub fn new() -> TempDir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("corecache-store-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
