//! The README's fan-out at scale: one `Group` with `set_limit(8)` and 100,000 blocking
//! members, then `wait()`. Prints the process's virtual size, resident size and number of
//! memory mappings before, at the peak (sampled by every 1,000th member) and after, so the
//! claim "a long-lived group runs in bounded memory" is measured, not asserted
//! (RELIABILITY.md has the figures). Linux only (it reads `/proc/self`).
//!
//! Run: `cargo run --release -p context-examples --example fanout_memory [members]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use go_context::{Context, Group};

/// `(VmSize KiB, VmRSS KiB, mappings)`.
fn sample() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count() as u64)
        .unwrap_or(0);
    (field("VmSize:"), field("VmRSS:"), maps)
}

fn show(label: &str, (vm, rss, maps): (u64, u64, u64)) {
    println!(
        "{label:<7} virtual {:>8.1} MiB   resident {:>7.1} MiB   mappings {maps:>6}",
        vm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
}

fn main() {
    let members: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let before = sample();
    let peak = [
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    ];
    let start = Instant::now();
    let group: Group = Group::new(&Context::background());
    group.set_limit(8).expect("set before any member");
    for i in 0..members {
        let peak = peak.clone();
        group.spawn_blocking(move |_ctx| {
            if i % 1_000 == 0 {
                let (vm, rss, maps) = sample();
                peak[0].fetch_max(vm, Ordering::Relaxed);
                peak[1].fetch_max(rss, Ordering::Relaxed);
                peak[2].fetch_max(maps, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    group.wait().expect("no member fails");
    let elapsed = start.elapsed();
    let after = sample();
    println!("{members} members, limit 8, in {elapsed:.2?}");
    show("before", before);
    let load = |i: usize| peak[i].load(Ordering::Relaxed);
    show("peak", (load(0), load(1), load(2)));
    show("after", after);
}
