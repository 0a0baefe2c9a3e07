// A global allocator that counts live heap bytes, for the tests that prove nothing is kept.
// Including this file installs it for that test binary: here with
// `#[path = "support/counting_alloc.rs"] mod counting_alloc;`, from the workspace's `tests/`
// crate through `tests/tests/support/counting_alloc.rs`, which `include!`s it (so it has no
// inner attributes or `//!` docs). Keep such a binary to a single `#[test]`, so no other test
// allocates while it measures. It lives in this crate so that `context-tower` tests from its
// package alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialised, no destructor: using it allocates nothing, so the allocator may.
    static ALLOCS_HERE: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so `System`'s
// guarantees carry over unchanged; the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // `try_with`: a thread being torn down may still allocate.
        let _ = ALLOCS_HERE.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded from our caller, who upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded from our caller: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes of this process, as seen by the allocator.
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// How many allocations this thread has made so far: unlike [`live`], blind to what other
/// threads (the timer's, a pool's) allocate or free meanwhile.
#[allow(dead_code)] // not every test binary that installs the allocator asks
pub fn allocations_on_this_thread() -> usize {
    ALLOCS_HERE.with(Cell::get)
}
