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
