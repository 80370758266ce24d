//! The huge-page collapse thread (issue 16). A THP arena starts on small pages, so
//! a size class's partly carved newest page is resident only as far as it is carved;
//! shards hand the 2 MiB regions that are wholly carved (`Store::take_carved`) to
//! this thread, which collapses them into huge pages (MADV_COLLAPSE). Off the shard
//! loops, because one collapse copies 2 MiB and takes about a millisecond, more when
//! memory is fragmented (docs/store.md).
//!
//! ```text
//!   shard crawl tick ── take_carved ──► mpsc ──► thp-collapse thread ── madvise ──► kernel
//! ```

use std::sync::mpsc;

use store::HugeRegion;

/// Starts the thread; it ends when every sender is gone.
pub fn spawn() -> std::io::Result<mpsc::Sender<HugeRegion>> {
    let (tx, rx) = mpsc::channel::<HugeRegion>();
    std::thread::Builder::new()
        .name("thp-collapse".to_string())
        .spawn(move || {
            let mut warned = false;
            for region in rx {
                if !region.collapse() && !warned {
                    warned = true;
                    tracing::info!(
                        "MADV_COLLAPSE refused (kernel before 6.1, or no free huge page now): \
                         carved arena regions stay advised for khugepaged to collapse later"
                    );
                }
            }
        })?;
    Ok(tx)
}
