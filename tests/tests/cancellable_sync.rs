//! `#[cancellable]` on sync fns, under threads.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use go_context::{cancellable, select_done, CancelHandle, Context, Error};

/// Generous bound for "returned promptly" on a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(10);

#[cancellable(timeout = "50ms")]
fn spin_until_deadline(counter: &AtomicU64) -> Result<u64, Error> {
    loop {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn deadline_fires_in_a_loop_that_never_checks() {
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    assert_eq!(spin_until_deadline(&counter), Err(Error::DeadlineExceeded));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(start.elapsed() < PROMPT);
    assert!(counter.load(Ordering::Relaxed) > 0);
}

#[cancellable]
fn work_until_cancelled(ctx: &Context, started: mpsc::Sender<()>) -> Result<u64, Error> {
    let _ = ctx;
    let mut rounds = 0;
    while rounds < u64::MAX {
        if rounds == 0 {
            started.send(()).unwrap();
        }
        rounds += 1;
        std::hint::spin_loop();
    }
    Ok(rounds)
}

#[test]
fn cancelling_the_parent_parameter_stops_the_loop() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || work_until_cancelled(&ctx, tx));
    rx.recv().unwrap();
    let start = Instant::now();
    cancel.cancel();
    assert_eq!(worker.join().unwrap(), Err(Error::Canceled));
    assert!(start.elapsed() < PROMPT);
}

#[cancellable]
fn inner_spin() -> Option<u64> {
    let mut n = 0u64;
    loop {
        n = n.wrapping_add(1);
    }
}

#[cancellable]
fn inner_deadline() -> Option<Instant> {
    Context::current().deadline()
}

#[cancellable(timeout = "1h")]
fn outer_reports_inner_deadline(ctx: &Context) -> Option<(Instant, Instant)> {
    Some((ctx.deadline()?, inner_deadline()?))
}

#[cancellable(timeout = "30ms")]
fn outer_runs_inner_spin() -> Option<u64> {
    let got = inner_spin();
    assert_eq!(got, None, "the inner fn stopped at the outer deadline");
    Some(1)
}

#[test]
fn nested_fns_inherit_the_deadline() {
    let (outer, inner) = outer_reports_inner_deadline(&Context::background()).unwrap();
    assert_eq!(outer, inner);
    assert!(outer > Instant::now() + Duration::from_secs(1800));
    // The inner fn returns None at the deadline; the outer fn's own check is never reached
    // because it has no loop, so it returns its value.
    assert_eq!(outer_runs_inner_spin(), Some(1));
}

#[test]
fn the_current_context_is_restored_after_the_call() {
    let before = format!("{:?}", Context::current());
    let _ = outer_reports_inner_deadline(&Context::background());
    assert_eq!(format!("{:?}", Context::current()), before);
    assert_eq!(before, "background");
}

#[cancellable(timeout = "1h")]
fn keep_the_child(ctx: Context, out: &mut Vec<Context>) -> Option<()> {
    assert!(
        ctx.deadline().is_some(),
        "the parameter is rebound to the child"
    );
    out.push(ctx);
    Some(())
}

#[cancellable]
fn reports_done(ctx: &Context) -> Option<bool> {
    Some(ctx.is_done())
}

#[cancellable]
fn rebinds_mut(mut ctx: Context) -> Option<bool> {
    let had_deadline = ctx.deadline().is_some();
    ctx = Context::background();
    Some(had_deadline || ctx.is_done())
}

#[test]
fn the_parameter_is_rebound_to_a_child_cancelled_on_return() {
    let mut kept = Vec::new();
    keep_the_child(Context::background(), &mut kept).unwrap();
    assert_eq!(kept[0].err(), Some(Error::Canceled));
    let (parent, cancel) = Context::background().with_cancel();
    assert_eq!(reports_done(&parent), Some(false));
    cancel.cancel();
    assert_eq!(
        reports_done(&parent),
        Some(true),
        "a child of a done parent is done"
    );
    assert_eq!(rebinds_mut(Context::background()), Some(false));
}

#[derive(Debug, PartialEq)]
enum AppError {
    Context(Error),
    Parse,
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Context(err)
    }
}

#[cancellable]
fn sum_parsed(ctx: &Context, items: &[&str]) -> Result<u32, AppError> {
    let _ = ctx;
    let mut total = 0;
    for item in items {
        if item.is_empty() {
            return Ok(total);
        }
        total += item.parse::<u32>().map_err(|_| AppError::Parse)?;
    }
    Ok(total)
}

#[test]
fn question_mark_and_early_returns_work() {
    let bg = Context::background();
    assert_eq!(sum_parsed(&bg, &["1", "2", "3"]), Ok(6));
    assert_eq!(sum_parsed(&bg, &["1", "x", "3"]), Err(AppError::Parse));
    assert_eq!(sum_parsed(&bg, &["1", "", "3"]), Ok(1));
    let (done, cancel) = bg.with_cancel();
    cancel.cancel();
    assert_eq!(
        sum_parsed(&done, &["1"]),
        Err(AppError::Context(Error::Canceled))
    );
}

#[cancellable(timeout = "10ms")]
fn io_work() -> io::Result<()> {
    loop {
        std::hint::spin_loop();
    }
}

#[test]
fn io_result_alias_gets_a_timed_out_error() {
    let err = io_work().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "context deadline exceeded");
}

#[cancellable]
fn control_flow(ctx: &Context) -> Option<Vec<u32>> {
    let _ = ctx;
    let mut out = Vec::new();
    // labeled loops with break-with-value and continue
    let found = 'outer: loop {
        for i in 0.. {
            if i % 2 == 0 {
                continue;
            }
            if i > 5 {
                break 'outer i;
            }
        }
    };
    out.push(found);
    // while let
    let mut stack = vec![1, 2, 3];
    while let Some(top) = stack.pop() {
        out.push(top);
    }
    // loops inside match arms
    for n in [1u32, 2, 3] {
        match n {
            1 => {
                let mut k = 0;
                while k < 3 {
                    k += 1;
                }
                out.push(k);
            }
            other => {
                let mut k = other;
                out.push(loop {
                    k *= 10;
                    if k >= 20 {
                        break k;
                    }
                })
            }
        }
    }
    Some(out)
}

#[test]
fn labeled_loops_break_values_while_let_and_match_arms_keep_working() {
    assert_eq!(
        control_flow(&Context::background()),
        Some(vec![7, 3, 2, 1, 3, 20, 30])
    );
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(control_flow(&done), None, "the first loop head returns");
}

#[cancellable]
fn closures_and_macros_are_not_rewritten(ctx: &Context) -> Option<u32> {
    assert!(ctx.is_done());
    let in_closure = || {
        let mut n = 0;
        for i in 0..10 {
            n += i;
        }
        n
    };
    assert_eq!(
        {
            let mut n = 0;
            for i in 0..3 {
                n += i;
            }
            n
        },
        3
    );
    fn nested(limit: u32) -> u32 {
        let mut n = 0;
        while n < limit {
            n += 1;
        }
        n
    }
    let in_async_block = futures_executor::block_on(async {
        let mut n = 0;
        for i in 0..4 {
            n += i;
        }
        n
    });
    Some(in_closure() + nested(5) + in_async_block)
}

#[test]
fn closures_async_blocks_nested_fns_and_macro_input_get_no_checks() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(closures_and_macros_are_not_rewritten(&done), Some(56));
}

#[cancellable]
fn loop_with_select(ctx: &Context) -> Option<&'static str> {
    let _ = ctx;
    loop {
        select_done! {
            done => return Some("done branch ran"),
            default => {}
        }
    }
}

#[test]
fn a_loop_with_its_own_select_done_gets_no_injected_check() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(loop_with_select(&done), Some("done branch ran"));
}

// A `while` whose condition is a select_done!: that select is the loop's checkpoint, run
// before each iteration, so the body gets no check of its own that would return before the
// condition sees the cancellation (here it comes between the two).
#[cancellable]
fn select_in_while_condition(ctx: &Context, cancel: &CancelHandle) -> Option<u32> {
    let _ = ctx;
    let mut rounds = 0;
    while select_done! {
        done => false,
        default => {
            cancel.cancel();
            true
        }
    } {
        rounds += 1;
    }
    Some(rounds)
}

#[test]
fn a_select_done_in_a_while_condition_is_the_loops_checkpoint() {
    let (parent, cancel) = Context::background().with_cancel();
    assert_eq!(select_in_while_condition(&parent, &cancel), Some(1));
}

struct Worker {
    limit: Duration,
    rounds: u64,
}

impl Worker {
    #[cancellable(timeout = self.limit)]
    fn spin(&self) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            n += 1;
            if n == u64::MAX {
                return Ok(n + self.rounds);
            }
        }
    }

    #[cancellable]
    fn count(&mut self, ctx: &Context, upto: u64) -> Result<u64, Error> {
        let _ = ctx;
        for _ in 0..upto {
            self.rounds += 1;
        }
        Ok(self.rounds)
    }

    #[cancellable]
    fn into_rounds(self) -> Option<u64> {
        Some(self.rounds)
    }
}

#[test]
fn methods_with_self_ref_mut_and_value() {
    let mut worker = Worker {
        limit: Duration::from_millis(20),
        rounds: 0,
    };
    assert_eq!(worker.spin(), Err(Error::DeadlineExceeded));
    assert_eq!(worker.count(&Context::background(), 4), Ok(4));
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(worker.count(&done, 4), Err(Error::Canceled));
    assert_eq!(worker.into_rounds(), Some(4));
}

#[cancellable]
fn generic_sum<'a, T, I>(ctx: &'a Context, items: I) -> Option<u64>
where
    T: Into<u64> + Copy + 'a,
    I: IntoIterator<Item = &'a T>,
{
    let _ = ctx;
    let mut total = 0;
    for item in items {
        total += (*item).into();
    }
    Some(total)
}

#[cancellable]
fn evens(limit: u8) -> Option<impl Iterator<Item = u8>> {
    let mut v = Vec::new();
    for i in 0..limit {
        v.push(i * 2);
    }
    Some(v.into_iter())
}

#[test]
fn generics_where_clauses_and_impl_trait_inside_option() {
    assert_eq!(generic_sum(&Context::background(), &[1u8, 2, 3]), Some(6));
    assert_eq!(
        evens(3).map(|it| it.collect::<Vec<_>>()),
        Some(vec![0, 2, 4])
    );
}

trait Job {
    fn size(&self) -> u32;

    #[cancellable]
    fn run(&self, ctx: &Context) -> Result<u32, Error> {
        let _ = ctx;
        let mut done = 0;
        while done < self.size() {
            done += 1;
        }
        Ok(done)
    }
}

struct Three;

impl Job for Three {
    fn size(&self) -> u32 {
        3
    }
}

#[test]
fn trait_default_methods() {
    assert_eq!(Three.run(&Context::background()), Ok(3));
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(Three.run(&done), Err(Error::Canceled));
}

#[cancellable]
fn unit_loop(ctx: &Context, rounds: &AtomicU64) {
    let _ = ctx;
    loop {
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn unit_fns_return_on_cancellation() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let rounds = AtomicU64::new(0);
    unit_loop(&done, &rounds);
    assert_eq!(rounds.load(Ordering::Relaxed), 0);
}

#[cancellable]
fn wildcard_parent(_: &Context) -> Option<bool> {
    Some(Context::current().is_done())
}

#[cancellable(parent = b)]
fn two_contexts(a: &Context, b: &Context) -> Option<(bool, bool)> {
    Some((a.is_done(), b.is_done()))
}

#[test]
fn unnamed_and_chosen_parents() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(wildcard_parent(&done), Some(true));
    assert_eq!(wildcard_parent(&Context::background()), Some(false));
    // `b` is the parent and is rebound; `a` is left as passed.
    assert_eq!(
        two_contexts(&Context::background(), &done),
        Some((false, true))
    );
    assert_eq!(
        two_contexts(&done, &Context::background()),
        Some((true, false))
    );
}

mod reexport {
    pub use go_context::*;
}

#[cancellable(crate = "crate::reexport", timeout = "5ms")]
fn through_renamed_crate() -> Result<(), Error> {
    loop {
        std::hint::spin_loop();
    }
}

#[test]
fn crate_path_is_used_for_generated_paths() {
    assert_eq!(through_renamed_crate(), Err(Error::DeadlineExceeded));
}

#[cancellable(timeout = "1h")]
fn panics(ctx: &Context) -> Option<()> {
    let _ = ctx;
    panic!("boom");
}

#[test]
fn panics_propagate_and_the_current_context_is_restored() {
    let result = std::panic::catch_unwind(|| panics(&Context::background()));
    assert!(result.is_err());
    assert_eq!(format!("{:?}", Context::current()), "background");
}

#[cancellable(timeout = "1.5h")]
fn fractional_timeout(ctx: &Context) -> Option<Duration> {
    Some(ctx.deadline()?.saturating_duration_since(Instant::now()))
}

#[test]
fn literal_timeouts_use_go_syntax() {
    let left = fractional_timeout(&Context::background()).unwrap();
    assert!(left <= Duration::from_secs(5400));
    assert!(left > Duration::from_secs(5400) - PROMPT);
}

// ===== issue 12: the parent is decided by type, not by spelling =====

/// Spins until its context is done: reports whether the parent's cancellation reached it.
fn spin_until_done() -> bool {
    let ctx = Context::current();
    let start = Instant::now();
    while !ctx.is_done() {
        if start.elapsed() > PROMPT {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

type Ctx = Context;

#[cancellable]
fn alias_param(ctx: Ctx) -> Option<bool> {
    assert!(ctx.is_done(), "the alias is rebound to the child");
    Some(spin_until_done())
}

#[cancellable]
fn optional_param(ctx: Option<Context>) -> Option<bool> {
    let rebound = ctx.map(|c| c.is_done());
    Some(rebound.unwrap_or(true) && spin_until_done())
}

#[cancellable]
fn optional_ref_param(ctx: Option<&Context>) -> Option<bool> {
    let rebound = ctx.map(|c| c.is_done());
    Some(rebound.unwrap_or(true) && spin_until_done())
}

#[cancellable]
fn arc_param(ctx: std::sync::Arc<Context>) -> Option<bool> {
    assert!(ctx.is_done(), "the Arc is rebound to the child");
    Some(spin_until_done())
}

#[cancellable]
fn static_param(ctx: &'static Context) -> Option<bool> {
    assert!(ctx.is_done());
    Some(spin_until_done())
}

#[test]
fn issue_12_3_a_done_caller_context_reaches_the_body_whatever_its_spelling() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(alias_param(done.clone()), Some(true));
    assert_eq!(optional_param(Some(done.clone())), Some(true));
    assert_eq!(optional_ref_param(Some(&done)), Some(true));
    assert_eq!(arc_param(std::sync::Arc::new(done.clone())), Some(true));
    static DONE: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
    let done_static = DONE.get_or_init(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        ctx
    });
    assert_eq!(static_param(done_static), Some(true));
}

#[cancellable(timeout = "1h")]
fn cfg_attr_param(
    #[cfg_attr(test, allow(unused_variables))] ctx: &Context,
    rounds: u32,
) -> Option<bool> {
    for _ in 0..rounds {}
    Some(ctx.deadline().is_some())
}

#[cancellable(timeout = "1h")]
fn cfg_on_param(
    #[cfg(test)] ctx: &Context,
    #[cfg(not(test))] gone: &Context,
    rounds: u32,
) -> Option<bool> {
    for _ in 0..rounds {}
    Some(ctx.deadline().is_some())
}

#[test]
fn a_context_parameter_with_cfg_or_cfg_attr_is_still_the_parent_and_rebound() {
    let (ctx, cancel) = Context::background().with_cancel();
    // `ctx` is the child: it has the deadline.
    assert_eq!(cfg_attr_param(&ctx, 1), Some(true));
    assert_eq!(cfg_on_param(&ctx, 1), Some(true));
    // The parameter is the parent: its cancellation stops the loop.
    cancel.cancel();
    assert_eq!(cfg_attr_param(&ctx, 1), None);
    assert_eq!(cfg_on_param(&ctx, 1), None);
}

#[cancellable(timeout = "10ms")]
fn optional_none_param(ctx: Option<Context>) -> Result<u64, Error> {
    assert!(ctx.is_none(), "None stays None");
    let mut n = 0u64;
    loop {
        n = n.wrapping_add(1);
    }
}

#[test]
fn issue_12_3_option_none_falls_back_to_the_current_context_with_the_deadline() {
    let start = Instant::now();
    assert_eq!(optional_none_param(None), Err(Error::DeadlineExceeded));
    assert!(start.elapsed() < PROMPT);
}

mod template {
    /// A template engine's context: nothing to do with ours.
    #[derive(Default)]
    pub struct Context {
        pub name: &'static str,
    }
}

#[cancellable]
fn other_context_type(page: template::Context, cx: &mut std::task::Context<'_>) -> Option<bool> {
    let _ = cx;
    assert_eq!(page.name, "index");
    // Neither is ours: the parent is the current context.
    Some(Context::current().is_done())
}

#[test]
fn issue_12_3_other_types_named_context_are_left_alone() {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let _guard = done.enter();
    let page = template::Context { name: "index" };
    assert_eq!(other_context_type(page, &mut cx), Some(true));
}

struct Request {
    ctx: Context,
    id: u32,
}

impl Request {
    #[cancellable(parent = self.ctx)]
    fn handle(&self) -> Option<u32> {
        assert!(spin_until_done());
        Some(self.id)
    }

    #[cancellable(parent = Context::current(), timeout = "10ms")]
    fn handle_current(&self, ctx: &Context) -> Result<u32, Error> {
        assert!(!ctx.is_done(), "not the parent: not rebound");
        loop {
            std::hint::spin_loop();
        }
    }
}

#[cancellable(parent = first, timeout = "1h")]
fn two_contexts_named_first(first: &Context, second: &Context) -> Option<(bool, bool)> {
    Some((first.deadline().is_some(), second.deadline().is_some()))
}

#[test]
fn issue_12_3_parent_names_any_expression() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let req = Request { ctx: done, id: 7 };
    assert_eq!(req.handle(), Some(7));
    let live = Request {
        ctx: Context::background(),
        id: 8,
    };
    assert_eq!(
        live.handle_current(&Context::background()),
        Err(Error::DeadlineExceeded)
    );
    let bg = Context::background();
    assert_eq!(
        two_contexts_named_first(&bg, &bg),
        Some((true, false)),
        "the named parent is rebound, the other parameter is not"
    );
}

// ===== issue 12: valid code that failed to compile =====

const fn width<const N: usize>() -> usize {
    N
}

#[cancellable]
fn const_generic_block_with_a_loop() -> Option<usize> {
    Some(width::<
        {
            let mut i = 0;
            while i < 4 {
                i += 1;
            }
            i
        },
    >())
}

#[test]
fn issue_12_const_generic_block_with_a_loop_compiles() {
    assert_eq!(const_generic_block_with_a_loop(), Some(4));
}

// ===== issue 12 item 5: a renamed select_done! is seen =====

use go_context::select_done as sel;

#[cancellable]
fn loop_with_renamed_select(ctx: &Context) -> Option<&'static str> {
    let _ = ctx;
    loop {
        sel! {
            done => return Some("done branch ran"),
            default => {}
        }
    }
}

#[cancellable]
fn loop_with_renamed_select_binding(ctx: &Context) -> Result<&'static str, Error> {
    let _ = ctx;
    loop {
        let _ = sel! {
            err = done => return Ok(if err == Error::Canceled { "bound" } else { "?" }),
            default => 0,
        };
    }
}

#[test]
fn issue_12_5_a_renamed_select_done_is_the_loops_checkpoint() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(loop_with_renamed_select(&done), Some("done branch ran"));
    assert_eq!(loop_with_renamed_select_binding(&done), Ok("bound"));
}

// ===== issue 12 item 7: the deadline's cause names the user's fn =====

#[cancellable(timeout = "1ms")]
fn times_out() -> Result<(), Error> {
    Context::current().wait();
    let cause = Context::current().cause().expect("done");
    let location = cause.location();
    assert!(
        location.file().ends_with("cancellable_sync.rs"),
        "the cause names the user's file, not the library's: {location}"
    );
    assert_eq!(location.line(), line!() - 9, "the line of `fn times_out`");
    Err(cause.err())
}

#[test]
fn issue_12_7_the_timeout_cause_names_the_fn() {
    assert_eq!(times_out(), Err(Error::DeadlineExceeded));
}

// ===== parameters drop as they do without the macro =====

std::thread_local!(static DROPS: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) });

struct Noisy(&'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push(self.0));
    }
}

fn drops() -> Vec<&'static str> {
    DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

#[allow(clippy::toplevel_ref_arg)]
fn plain_order(a: Noisy, _: Noisy, (b, _c): (Noisy, u8), ref d: Noisy) -> Option<()> {
    let _local = Noisy("local");
    let _ = (&a, &b, d);
    Some(())
}

#[cancellable]
fn macro_order(a: Noisy, _: Noisy, (b, _c): (Noisy, u8), ref d: Noisy) -> Option<()> {
    let _local = Noisy("local");
    let _ = (&a, &b, d);
    Some(())
}

#[cancellable(parent = ctx)]
fn named_order(a: Noisy, ctx: &Context, _: Noisy, (b, _c): (Noisy, u8)) -> Option<()> {
    let _ = (&a, &b, ctx);
    Some(())
}

/// Regression test (found by an audit): the parameters the macro rebound became locals and
/// dropped before the others (`_`, destructured ones), not in reverse declaration order.
#[test]
fn parameters_drop_in_reverse_declaration_order_as_without_the_macro() {
    plain_order(Noisy("a"), Noisy("_"), (Noisy("b"), 0), Noisy("d"));
    let plain = drops();
    assert_eq!(plain, ["local", "d", "b", "_", "a"]);
    macro_order(Noisy("a"), Noisy("_"), (Noisy("b"), 0), Noisy("d"));
    assert_eq!(drops(), plain);
    named_order(
        Noisy("a"),
        &Context::background(),
        Noisy("_"),
        (Noisy("b"), 0),
    );
    assert_eq!(drops(), ["b", "_", "a"]);
}

#[cancellable]
fn ref_mut_param(ref mut s: String, (ref mut v, n): (Vec<u32>, u32)) -> Option<(usize, usize)> {
    s.push('!');
    v.push(n);
    Some((s.len(), v.len()))
}

#[cancellable]
async fn ref_mut_param_async(ref mut s: String) -> Option<usize> {
    s.push('!');
    Some(s.len())
}

/// Regression test (found by an audit): a `ref mut` parameter, or one inside a destructured
/// parameter, borrowed the macro's immutable local mutably ("cannot borrow as mutable", with
/// rustc's hint to write `mut ref mut s`); without the macro it is valid.
#[test]
fn ref_mut_parameters_compile_as_without_the_macro() {
    assert_eq!(ref_mut_param("a".into(), (vec![], 1)), Some((2, 1)));
    assert_eq!(
        futures_executor::block_on(ref_mut_param_async("ab".into())),
        Some(3)
    );
}
