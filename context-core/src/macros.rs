//! The `macro_rules!` front doors of `go!` and `select_done!`.
//!
//! Each passes `$crate` (go-context's path, whatever the user's `Cargo.toml` calls it, as
//! futures' `select!` does) to a hidden proc macro in `context-macros`, which writes every
//! generated path through it. So a renamed dependency (`ctx = { package = "go-context", .. }`)
//! or a renamed import (`use go_context::select_done as sel;`) needs no `crate = "…"`.
//! `#[cancellable]` is an attribute, which `macro_rules!` cannot front: it reads the name from
//! the user's `Cargo.toml` instead.

/// Go's `select` with a `case <-ctx.Done():`: run the done branch if the context is done,
/// else another branch.
///
/// ```
/// use go_context::{select_done, Context};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let mut rounds = 0;
/// loop {
///     select_done! {
///         done(&ctx) => break,
///         default => {
///             rounds += 1;
///             if rounds == 3 {
///                 cancel.cancel();
///             }
///         }
///     }
/// }
/// assert_eq!(rounds, 3);
/// ```
///
/// # Syntax
///
/// | branch | Go | meaning |
/// |---|---|---|
/// | `done => body` | `case <-ctx.Done():` | the current context ([`Context::current()`]) is done |
/// | `done(ctx) => body` | `case <-ctx.Done():` | `ctx` (a `Context`, `&Context`, or an `Arc`, `Box` or `Rc` of one) is done |
/// | `err = done => body`, `err = done(ctx) => body` | `case <-ctx.Done(): err := ctx.Err()` | the same, binding the `go_context::Error` |
/// | `pattern = future => body` | `case v := <-ch:` | `future` completed with a value matching the (irrefutable) `pattern` |
/// | `default => body` | `default:` | nothing else is ready |
///
/// Branches are separated by `,`; a `{ … }` body needs none, as in `match`. Exactly one done
/// branch is required.
///
/// **Sync form**: a done branch and a `default` branch. It is an expression (one atomic load,
/// no `.await`), so it works in threads and in async code alike: the loop body of Go's
/// `for { select { case <-ctx.Done(): return; default: work() } }`.
///
/// **Async form**: a done branch and one or more future branches, with an optional `default`.
/// It `.await`s, so it belongs in async code. Each time it is polled, it polls the done future
/// first, then each future in written order; the first ready one wins, so the done branch wins
/// whenever the context is done. With `default`, every future is polled once before `default`
/// runs (as Go's select looks at every case). The futures that lose are dropped before the
/// winning body runs. The operands (each future and the done branch's context) are evaluated
/// once, on entry, in written order, as Go evaluates a select's cases.
///
/// ```
/// use go_context::{select_done, Context, Error};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
/// let outcome = select_done! {
///     err = done(&ctx) => Err(err),
///     n = async { tokio::time::sleep(Duration::from_secs(3600)).await; 7 } => Ok(n),
/// };
/// assert_eq!(outcome, Err(Error::DeadlineExceeded));
///
/// let ready = select_done! {
///     done(&Context::background()) => 0,
///     n = async { 7 } => n,
///     default => -1,
/// };
/// assert_eq!(ready, 7);
/// # }
/// ```
///
/// # Differences from Go
///
/// - Go picks at random among ready cases; `select_done!` is deterministic: done first, then
///   the futures in written order (like `tokio::select!` with `biased;`).
/// - A future branch's pattern must be irrefutable (as in `let`, so an or-pattern such as
///   `Ok(v) | Err(v) = fut` is fine); match inside the body for more.
/// - `done` and `done(…)` in a branch head always mean the done branch; to select on your own
///   future called `done`, wrap it: `v = (done) => …`.
/// - A select with only a done branch is `ctx.wait()` (threads) or `ctx.done().await`; the
///   macro asks you to write that instead.
/// - It works under any name of the dependency (`ctx = { package = "go-context", .. }`) and
///   under any name you import it as (`use go_context::select_done as sel;`): the macro reaches
///   go-context through `$crate`, and `#[cancellable]` recognises a select by its `done =>`
///   branch, not by its name.
///
/// [`Context::current()`]: crate::Context::current
#[macro_export]
macro_rules! select_done {
    ($($input:tt)*) => {
        $crate::__private::__select_done! { ($crate) $($input)* }
    };
}

/// Go's `go` statement: spawns work under a new child context and returns a
/// [`GoHandle`](crate::GoHandle) to
/// cancel or join it.
///
/// ```
/// use go_context::{go, Context};
///
/// fn sum(xs: Vec<u64>) -> u64 {
///     xs.iter().sum()
/// }
///
/// let xs = vec![1, 2, 3];
/// let handle = go!(sum(xs)); // like Go's `go sum(xs)`; `xs` is moved into the work
/// assert_eq!(handle.join().unwrap(), 6);
/// ```
///
/// # Forms
///
/// | form | runs under | for |
/// |---|---|---|
/// | `go!(f(args))`, `go!(obj.m(args))` | a new child of `Context::current()`, made current; if an argument's type is `Context`, the first such is the parent instead, and the work gets the child in its place | code that uses the ambient context (`#[cancellable]` fns), or takes its context as an argument (`go!(worker(ctx.clone(), n))`) |
/// | `go!(in parent, f(args))` | a new child of `parent` (`Context` or `&Context`) | a context other than the current one |
/// | `go!(\|ctx\| f(ctx, args))` | the child, also handed over as `ctx: Context` | fns that take a `Context` parameter |
/// | `go!(group => f(args))` | the group's context, as a member of a `Group` | fan-out with first-error cancellation |
///
/// The forms combine: `go!(in parent, |ctx| f(ctx))`, `go!(group => |ctx| f(ctx))`. They
/// cannot be confused: an expression never starts with `in` or holds a bare `=>`, and a
/// closure is never the work itself (it would not run), so `|ctx|` always means "hand me the
/// child context".
///
/// # What runs where
///
/// Like Go's `go f(x)`, the callee, the receiver and the arguments of a call are evaluated on
/// the caller, then moved into the spawned work, where the call runs. The parent of
/// `in parent,` and the group of `group =>` are evaluated before them, as written (so
/// `go!(in req.ctx, handle(req))` works: the parent is cloned before `req` moves). Whether
/// the call is blocking or async is decided by its **type**, not its spelling:
///
/// - if it returns a future (anything `IntoFuture`), the future runs as a task on the
///   caller's tokio runtime (feature `tokio`), with the child current across its `.await`s.
///   Outside a runtime this panics with a message saying what to do
///   (`GoHandle::try_spawn` returns a `Result` instead);
/// - otherwise the call runs on a new OS thread, with the child current on it. This holds
///   inside a runtime too (the thread enters the runtime, so futures it spawns land there).
///
/// `async { .. }` blocks, `{ .. }` blocks and macro calls run whole in the spawned work.
/// Any other expression (a variable, a field) is evaluated on the caller and must be a
/// future.
///
#[cfg_attr(feature = "tokio", doc = "```")]
#[cfg_attr(not(feature = "tokio"), doc = "```ignore")]
/// use go_context::{go, Context, Error};
/// use std::time::Duration;
///
/// async fn fetch(id: u32) -> u32 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
///     id * 10
/// }
/// fn crunch(ctx: Context) -> Result<(), Error> {
///     loop {
///         ctx.sleep(Duration::from_millis(1))?;
///     }
/// }
///
/// # #[tokio::main]
/// # async fn main() {
/// let (parent, cancel) = Context::background().with_cancel();
/// let task = go!(fetch(4)); // a future: a tokio task
/// let thread = go!(in parent, |ctx| crunch(ctx)); // blocking: an OS thread
/// assert_eq!(task.await.unwrap(), 40);
/// cancel.cancel(); // reaches the child `ctx` of the thread
/// assert_eq!(thread.await.unwrap(), Err(Error::Canceled));
/// # }
/// ```
///
/// # Joining, cancelling, detaching
///
/// The handle's `cancel()` cancels the child (cooperatively: the work sees it through its
/// context). `handle.join()` blocks, `handle.await` waits asynchronously; both give the value
/// or a `JoinError` whose `into_panic()` hands back the panic payload. Dropping the handle
/// detaches the work, as Go's `go` does: it runs on until its context is done.
///
/// ```
/// use go_context::{go, Context, Error, Group};
///
/// let group: Group<Error> = Group::new(&Context::background());
/// for i in 0..3 {
///     go!(group => |ctx| {
///         if i == 1 {
///             return Err(Error::DeadlineExceeded); // cancels the other members
///         }
///         ctx.wait();
///         Ok(())
///     });
/// }
/// assert_eq!(group.wait(), Err(Error::DeadlineExceeded));
/// ```
///
/// # Limits
///
/// - The work's type must be known where `go!` is written: work that only diverges (a bare
///   `panic!()`, a `loop` with no `break`) has no type yet and is taken for a future. Give it
///   one: call a fn with a return type, or write `go!(|ctx| -> () { ... })`.
/// - Members of a group return `Result<T, E>`: `T` comes back through the member's
///   `GoHandle`, `E` is the group's error type (see `Group`).
/// - It works under any name of the dependency: the macro reaches go-context through `$crate`.
#[macro_export]
macro_rules! go {
    ($($input:tt)*) => {
        $crate::__private::__go! { ($crate) $($input)* }
    };
}
