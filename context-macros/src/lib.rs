//! Procedural macros for [`go-context`](https://docs.rs/go-context).
//!
//! Do not depend on this crate directly: use the re-exports in `go-context`, whose
//! `__private` module the generated code relies on.
//!
//! `EXPANSION.md` in this crate shows what each macro writes.
#![forbid(unsafe_code)]

mod cancellable;
mod duration;
mod error;
mod go;
mod select;

use proc_macro::TokenStream;

/// Runs the fn body under a child context that stops it at every loop head, at its `.await`s,
/// and at its deadline: Go's `ctx, cancel := context.WithTimeout(ctx, d); defer cancel()` plus
/// the `if ctx.Err() != nil { return }` checks, written for you.
///
/// ```
/// use go_context::{cancellable, Context, Error};
///
/// #[cancellable(timeout = "50ms")]
/// fn spin() -> Result<u64, Error> {
///     let mut n = 0u64;
///     loop {
///         // a check goes here: `if done { return Err(err.into()) }`
///         n = n.wrapping_add(1);
///     }
/// }
///
/// assert_eq!(spin(), Err(Error::DeadlineExceeded));
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | (none) | a child of the parent, cancelled when the call returns |
/// | `timeout = "2s"` | also a deadline, in Go's `time.ParseDuration` syntax (`300ms`, `1.5h`, `2h45m`, `10us`, `1µs`, `1ns`), checked at compile time: no sign, at most about 2,562,047 h |
/// | `timeout = <expr>` | a deadline from a `Duration` expression evaluated at each call; it may use the fn's parameters (`timeout = self.limit`) |
/// | `parent = ctx` | which parameter is the parent, when two have type `Context` |
/// | `crate = "path"` | where `go_context` is, if it is renamed or re-exported |
///
/// # The parent and the child
///
/// The parent is the parameter whose type is spelled `Context`, `&Context` or `&mut Context`
/// (any name), else [`Context::current()`]. The body runs under a child of it (with the
/// deadline, if any), which is also the current context while the body runs, so a
/// `#[cancellable]` fn called from the body inherits the deadline without a parameter. Inside
/// the body the parameter's name is rebound to the child, with the type as written:
///
/// ```
/// use go_context::{cancellable, Context, Error};
/// use std::time::Duration;
///
/// #[cancellable(timeout = "20ms")]
/// fn wait_long(ctx: &Context) -> Result<(), Error> {
///     ctx.sleep(Duration::from_secs(3600)) // the child: wakes at the 20 ms deadline
/// }
///
/// #[cancellable]
/// fn inner() -> Option<u32> {
///     // no parameter: inherits the caller's deadline through `Context::current()`
///     assert!(Context::current().deadline().is_some());
///     Some(1)
/// }
///
/// #[cancellable(timeout = "1h")]
/// fn outer() -> Option<u32> {
///     inner()
/// }
///
/// assert_eq!(wait_long(&Context::background()), Err(Error::DeadlineExceeded));
/// assert_eq!(outer(), Some(1));
/// ```
///
/// # Where it checks
///
/// At the head of every `loop`, `while` and `for` body of the fn, at every depth (labeled
/// loops, `break` with a value, `while let`, loops in `match` arms all keep working), and not
/// inside closures, `async` blocks, nested fns or items, or other macros' input. A loop whose
/// own body holds a `select_done!` gets no check: that select is its checkpoint, so its done
/// branch runs. A sync body is not otherwise interrupted: `ctx.sleep(..)`, `ctx.wait()` or
/// your own `ctx.check()?` stop it between loop heads.
///
/// An `async fn`'s body is also raced against `done()`: on cancellation the body future is
/// dropped at its current `.await` and the fn returns at once. Rust futures do nothing before
/// their first poll, so the child context (and the deadline's clock) starts at the first
/// poll, not when the fn is called.
///
/// ```
/// use go_context::{cancellable, Error};
/// use std::time::Duration;
///
/// #[cancellable(timeout = "10ms")]
/// async fn slow() -> Result<(), Error> {
///     tokio::time::sleep(Duration::from_secs(3600)).await; // dropped here at 10 ms
///     unreachable!()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(slow().await, Err(Error::DeadlineExceeded));
/// # }
/// ```
///
/// # What it returns on cancellation
///
/// | return type | on cancellation |
/// |---|---|
/// | `Result<T, E>` with `E: From<go_context::Error>` (also aliases: `io::Result<T>`, `anyhow::Result<T>`) | `Err(err.into())` (`io::Error` has kind `TimedOut` for a deadline) |
/// | `Option<T>` | `None` |
/// | `()` | `()` |
///
/// `impl Trait` works inside these (`Option<impl Iterator<Item = u8>>`); a bare
/// `-> impl Trait`, or any other type, is a compile error on the return type.
///
/// # Equivalent code
///
/// `#[cancellable(timeout = "2s")] fn sum(ctx: &Context, items: &[u32]) -> Result<u32, Error>`
/// with a `for item in items { … }` loop is, in effect (`EXPANSION.md` has the exact code):
///
/// ```
/// # use go_context::{Context, Error};
/// # use std::time::Duration;
/// fn sum(parent: &Context, items: &[u32]) -> Result<u32, Error> {
///     let (ctx, _cancel) = parent.with_timeout(Duration::from_secs(2)); // cancelled on return
///     let _current = ctx.enter(); // the current context for nested calls
///     let ctx = &ctx; // the parameter's name, rebound to the child
///     let mut total = 0;
///     for item in items {
///         if let Some(err) = ctx.err() {
///             return Err(err.into());
///         }
///         total += item;
///     }
///     Ok(total)
/// }
/// assert_eq!(sum(&Context::background(), &[1, 2]), Ok(3));
/// ```
///
/// # Limits
///
/// - A value borrowed from the rebound `ctx` (such as `ctx.value::<T>()`) cannot be returned
///   from the fn: the child lives inside the call.
/// - A sync body is checked only at loop heads: a long blocking call between them is not
///   interrupted (use `ctx.sleep`, `ctx.wait_timeout`, or check inside it).
/// - Not on `const fn`s or fns without a body; put it on trait methods' default bodies or on
///   their implementations.
/// - With other attribute macros such as `#[tokio::test]`, put `#[cancellable]` first (outermost), so it
///   sees the `async fn` before they rewrite it.
///
/// [`Context::current()`]: https://docs.rs/context-core/latest/go_context/struct.Context.html#method.current
#[proc_macro_attribute]
pub fn cancellable(args: TokenStream, item: TokenStream) -> TokenStream {
    cancellable::cancellable(args.into(), item.into()).into()
}

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
/// | `done(ctx) => body` | `case <-ctx.Done():` | `ctx` (a `Context` or `&Context`) is done |
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
/// winning body runs.
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
/// - A future branch's pattern must be irrefutable; match inside the body for more.
/// - `done` and `done(…)` in a branch head always mean the done branch; to select on your own
///   future called `done`, wrap it: `v = (done) => …`.
/// - A select with only a done branch is `ctx.wait()` (threads) or `ctx.done().await`; the
///   macro asks you to write that instead.
/// - Generated code names `::go_context`; the crate must be reachable under that name.
///
/// [`Context::current()`]: https://docs.rs/context-core/latest/go_context/struct.Context.html#method.current
#[proc_macro]
pub fn select_done(input: TokenStream) -> TokenStream {
    select::select_done(input.into()).into()
}

/// Go's `go` statement: spawns work under a new child context and returns a
/// [`GoHandle`](https://docs.rs/context-core/latest/go_context/struct.GoHandle.html) to
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
/// | `go!(f(args))`, `go!(obj.m(args))` | a new child of `Context::current()`, made current | code that uses the ambient context (`#[cancellable]` fns) |
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
/// the caller, then moved into the spawned work, where the call runs. Whether the call is
/// blocking or async is decided by its **type**, not its spelling:
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
/// ```
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
/// - Members of a group return `Result<(), E>`; see `Group` for `E`.
/// - Generated code names `::go_context`; the crate must be reachable under that name.
#[proc_macro]
pub fn go(input: TokenStream) -> TokenStream {
    go::expand(input.into(), &quote::quote!(::go_context::__private)).into()
}
