//! Procedural macros for [`go-context`](https://docs.rs/go-context).
//!
//! Do not depend on this crate directly: use the re-exports in `go-context`, whose
//! `__private` module the generated code relies on.
//!
//! `EXPANSION.md` in this crate shows what each macro writes.
//!
//! ```
//! use go_context::{cancellable, Context, Error};
//!
//! // The body's `ctx` is a child of the parameter, cancelled when the call returns, and the
//! // loop checks it on every iteration.
//! #[cancellable]
//! fn count(ctx: &Context, limit: u64) -> Result<u64, Error> {
//!     let mut n = 0;
//!     while n < limit {
//!         n += 1;
//!     }
//!     Ok(n)
//! }
//!
//! let (ctx, cancel) = Context::background().with_cancel();
//! assert_eq!(count(&ctx, 3), Ok(3));
//! cancel.cancel();
//! assert_eq!(count(&ctx, 3), Err(Error::Canceled));
//! ```
#![forbid(unsafe_code)]

mod cancellable;
mod duration;
mod error;
mod go;
mod root;
mod select;

#[cfg(test)]
mod expansion_snapshot;

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
/// | `parent = <expr>` | the parent: a parameter's name (`parent = ctx`, when two are contexts), or any expression of type `Context`, `&Context`, `Arc<Context>` or `Option<Context>` (`parent = self.ctx`, `parent = Context::current()`) |
/// | `crate = "path"` | where go-context is; needed only through a re-exporting facade crate, since the name of a renamed dependency (`ctx = { package = "go-context", .. }`) is read from `Cargo.toml` |
///
/// # The parent and the child
///
/// The parent is the parameter whose **type** is go-context's `Context`, `&Context`,
/// `Arc<Context>`, `Option<Context>` or `Option<&Context>` (any name, any spelling: a
/// `type Ctx = Context` alias counts; `std::task::Context` or another crate's `Context` does
/// not), else [`Context::current()`] (also for `None`). The compiler decides, not the spelling
/// (see `EXPANSION.md`). Two context parameters are a compile error that asks for
/// `parent = …`; the receiver `self` is never taken by itself (write `parent = self.ctx`).
///
/// The body runs under a child of the parent (with the deadline, if any), which is also the
/// current context while the body runs, so a `#[cancellable]` fn called from the body inherits
/// the deadline without a parameter. Inside the body the parameter's name is rebound to the
/// child, in the same shape (`&'static Context` becomes a borrow of the child, `Arc<Context>`
/// a new `Arc` of it, `Some(ctx)` `Some(child)`):
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
/// Parameters keep their attributes: one under `#[cfg]` or `#[cfg_attr]` is looked at (and
/// rebound) exactly when it exists, and its lint attributes (`#[allow(unused_variables)]`)
/// apply to the local it becomes.
///
/// # Where it checks
///
/// At the head of every `loop`, `while` and `for` body of the fn, at every depth (labeled
/// loops, `break` with a value, `while let`, loops in `match` arms all keep working), and not
/// inside closures, `async` blocks, const blocks and generic arguments, nested fns or items,
/// or other macros' input. A loop whose own body (or `while` condition) holds a `select_done!`
/// gets no check: that select is its checkpoint, so its done branch runs. A select is recognised by its
/// `done =>` branch, so `use go_context::select_done as sel;` works too (a `select_done!`
/// produced by another macro's expansion is not seen). A sync body is not otherwise interrupted: `ctx.sleep(..)`, `ctx.wait()` or
/// your own `ctx.check()?` stop it between loop heads.
///
/// An `async fn`'s body is also raced against `done()`: on cancellation the body future is
/// dropped at its current `.await` and the fn returns at once. A body that holds a
/// `select_done!` is not raced (only made current): the select is its checkpoint, and racing
/// would drop the body before the done branch could run. Only a select of the body itself
/// counts: one inside an `async` block or a closure of the body is not seen (the block may be
/// spawned rather than awaited), and neither is one in another fn the body awaits, so such a
/// body is raced and is dropped on cancellation before that select's done branch can run:
/// write the select in the body itself. Rust futures do nothing before
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
/// - The child is cancelled when the call returns (Go's `defer cancel()`), so a context cannot
///   leave the call alive: a return type that is a context (`Context`, `(Context,
///   CancelHandle)`, either inside `Option` or `Result`) is a compile error, and so is a
///   `&mut Context` parent (what the body writes through it would reach the caller cancelled).
///   A rebound `ctx` moved into a value the fn returns (`Some(Req { ctx, id })`) is the child
///   and is cancelled on return; the compiler cannot look inside your types, so this one is
///   not refused. Build such values in a fn without `#[cancellable]`, or name the parent with
///   an expression other than a bare parameter name (`parent = Context::current()`), which
///   rebinds nothing: `ctx` is then the caller's.
/// - Only parameters with a plain name (`ctx: Context`, `_: &Context`) can be the parent;
///   a destructured one (`(ctx, id): (Context, u32)`) is not looked at. It is destructured
///   after `timeout = …` and `parent = …` run, so they cannot use the names it binds (a
///   compile error says so): take it whole (`p: (u64, u8)`) and write `p.0`.
/// - A sync body is checked only at loop heads: a long blocking call between them is not
///   interrupted (use `ctx.sleep`, `ctx.wait_timeout`, or check inside it).
/// - Not on `const fn`s or fns without a body; put it on trait methods' default bodies or on
///   their implementations.
/// - With other attribute macros such as `#[tokio::test]`, put `#[cancellable]` first (outermost), so it
///   sees the `async fn` before they rewrite it.
///
/// [`Context::current()`]: https://docs.rs/go-context/latest/go_context/struct.Context.html#method.current
#[proc_macro_attribute]
pub fn cancellable(args: TokenStream, item: TokenStream) -> TokenStream {
    cancellable::cancellable(args.into(), item.into()).into()
}

/// The expansion of `select_done!`; called by go-context's `select_done!` front door as
/// `__select_done!(($crate) …)`. Not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn __select_done(input: TokenStream) -> TokenStream {
    root::front_door(input.into(), "select_done", select::select_done).into()
}

/// The expansion of `go!`; called by go-context's `go!` front door as `__go!(($crate) …)`.
/// Not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn __go(input: TokenStream) -> TokenStream {
    root::front_door(input.into(), "go", go::expand).into()
}
