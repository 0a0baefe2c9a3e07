//! Paired rounds, written once for every bench that has them: `benches/paired.rs` (S1, S1p,
//! S2, S2p, S4, S7, S12) and context-tests' `s10_go.rs` (S10, which includes this file with
//! `#[path]`). Each round times one batch of `ours` and one of the peer, each about [`BATCH`]
//! long, the order flipped every round, so a burst of load longer than a round slows both
//! halves alike and cancels out of that round's ratio `ours / peer` (time per operation). The
//! figure is the **median over [`ROUNDS`] rounds**, printed with the 10th and 90th percentiles
//! of the per-round ratios; nothing is discarded but the [`WARM_UP`] leading rounds.
//!
//! Output: `RESULT paired <id> ratio=… p10=… p90=… ours_ns=… peer_ns=… rounds=…`, the line
//! `scripts/bench.sh` reads (`ours_ns`/`peer_ns`: the medians per operation of each side).

use std::time::Duration;

/// Measured rounds per row.
pub const ROUNDS: usize = 301;
/// Leading rounds run but not counted.
pub const WARM_UP: usize = 20;
/// The target length of one side's batch in a round.
pub const BATCH: Duration = Duration::from_millis(1);

/// One side of a row: runs `iters` operations and returns the wall time.
pub type Side<'a> = &'a dyn Fn(u64) -> Duration;

/// How many operations make a batch of about [`BATCH`] on `side` (at least 1).
pub fn calibrate(side: Side<'_>) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = side(iters);
        if took >= BATCH / 4 || iters >= 1 << 30 {
            let per = took.as_secs_f64() / iters as f64;
            return ((BATCH.as_secs_f64() / per.max(1e-12)) as u64).max(1);
        }
        iters *= 2;
    }
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What [`pair`] measured: the median per-round ratio, its 10th and 90th percentiles, and the
/// median time per operation of each side, in ns.
#[derive(Clone, Copy, Debug)]
pub struct Paired {
    pub ratio: f64,
    pub p10: f64,
    pub p90: f64,
    pub ours_ns: f64,
    pub peer_ns: f64,
}

/// Runs the paired rounds of one row and prints its `RESULT paired <id> …` line. Each side
/// runs batches of its own size (calibrated once to about [`BATCH`]).
pub fn pair(id: &str, ours: Side<'_>, peer: Side<'_>) -> Paired {
    let (n_ours, n_peer) = (calibrate(ours), calibrate(peer));
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut t_ours, mut t_peer) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..WARM_UP + ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = ours(n_ours);
            (a, peer(n_peer))
        } else {
            let b = peer(n_peer);
            (ours(n_ours), b)
        };
        if round < WARM_UP {
            continue;
        }
        let per_ours = a.as_secs_f64() * 1e9 / n_ours as f64;
        let per_peer = b.as_secs_f64() * 1e9 / n_peer as f64;
        ratios.push(per_ours / per_peer);
        t_ours.push(per_ours);
        t_peer.push(per_peer);
    }
    for v in [&mut ratios, &mut t_ours, &mut t_peer] {
        v.sort_by(f64::total_cmp);
    }
    let paired = Paired {
        ratio: percentile(&ratios, 0.5),
        p10: percentile(&ratios, 0.1),
        p90: percentile(&ratios, 0.9),
        ours_ns: percentile(&t_ours, 0.5),
        peer_ns: percentile(&t_peer, 0.5),
    };
    println!(
        "RESULT paired {id} ratio={:.4} p10={:.4} p90={:.4} ours_ns={:.4} peer_ns={:.4} rounds={ROUNDS}",
        paired.ratio, paired.p10, paired.p90, paired.ours_ns, paired.peer_ns,
    );
    paired
}
