//! A long-lived `Group`'s finished member threads are reaped (issue 11, 1), measured by the
//! process's memory mappings. A test binary of its own: the count is process-wide, and the
//! threads of other tests running beside it in one process (`group.rs`'s, under load) once
//! pushed it past the bound.

#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use go_context::{Context, Group};

/// The process's number of memory mappings (the kernel's `vm.max_map_count` is what ran out).
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_long_lived_group_reaps_finished_member_threads() {
    // Regression (issue 11, 1): every finished member thread stayed unjoined until `wait`,
    // each holding its stack mappings (stack + guard page): 5,000 members made 10,000 more
    // mappings, and ~32,700 members ran out of the kernel's map count and aborted.
    const MEMBERS: usize = 5_000;
    let group: Group = Group::new(&Context::background());
    group.set_limit(8).unwrap();
    let before = map_count();
    let peak = Arc::new(AtomicUsize::new(0));
    for i in 0..MEMBERS {
        let peak = Arc::clone(&peak);
        group.spawn_blocking(move |_| {
            if i % 50 == 0 {
                peak.fetch_max(map_count(), Ordering::SeqCst);
            }
            Ok(())
        });
    }
    group.wait().unwrap();
    let grown = peak.load(Ordering::SeqCst).saturating_sub(before);
    // Bounded: about twice the limit's threads (2 mappings each) and their malloc arenas; this
    // binary runs no other test (177 seen idle; the regression made 10,000).
    println!("{grown} more mappings at the peak");
    assert!(
        grown < 1_000,
        "{grown} more mappings while {MEMBERS} members ran"
    );
}
