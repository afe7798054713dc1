//! Per-thread shards: how listeners aggregate per worker without contention.
//!
//! Each thread that records gets a fixed shard index on first use; listeners keep one
//! uncontended mutex per shard and merge the shards when read.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Number of shards a sharded listener keeps.
pub(crate) const SHARDS: usize = 64;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's shard, in `0..SHARDS`; stable for the thread's life.
#[inline]
pub(crate) fn shard_index() -> usize {
    SHARD_INDEX.with(|slot| {
        let mut index = slot.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            slot.set(index);
        }
        index
    })
}

/// Aligns a shard on its own cache line, so that neighbours do not false-share.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);
