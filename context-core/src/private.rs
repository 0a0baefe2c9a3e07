//! Support for the code that `context-macros` generates. Not public API: names here may change
//! in any release. Generated code reaches it only as `::go_context::__private::…` (or through
//! the path given by `#[cancellable(crate = "…")]`).
//!
//! What each macro needs:
//! - `#[cancellable]` on a sync fn: the parent picked by type ([`probe`] and the tier traits),
//!   [`child`], [`SyncScope`] (the child entered as current), [`cancelled`] at each loop head
//!   and in the fake-return guard.
//! - `#[cancellable]` on an `async fn`: the same, with [`AsyncScope`] and [`run`].
//! - `select_done!`: [`AsContext`], `Context::err`, `Context::done` and `Poll`-level
//!   plumbing from `core`.

use std::future::IntoFuture;

#[doc(hidden)]
pub use crate::spawn::support::*;
pub use crate::{CancelHandle, Context, Error};
use crate::{EnterGuard, Run, Scope};

/// The hidden proc macros behind the `go!` and `select_done!` front doors (`crate::macros`).
#[cfg(feature = "macros")]
pub use context_macros::{__go, __select_done};

/// The current context's error, without the reference-count traffic of
/// `Context::current()`: the sync `select_done!` reads this once per loop iteration.
#[inline]
pub fn current_err() -> Option<Error> {
    crate::ambient::current_err()
}
pub use core::time::Duration;

/// Makes the child context of a `#[cancellable]` call: with a deadline `timeout` from now if
/// given, else a plain cancellable child. The handle cancels the child when the call ends.
///
/// `#[track_caller]`: the expansion calls it spanned at the user's fn name, so a deadline's
/// cause names the user's fn, not this file.
#[inline]
#[track_caller]
pub fn child(parent: &Context, timeout: Option<Duration>) -> (Context, CancelHandle) {
    match timeout {
        Some(timeout) => parent.with_timeout(timeout),
        None => parent.with_cancel(),
    }
}

/// The child context of a sync `#[cancellable]` fn made current on this thread, and its
/// cancel handle.
///
/// Fields drop in order: the enter guard first (the caller's current context comes back),
/// then the handle (the child is cancelled, so work it started is not orphaned). The
/// expansion declares it after the rebound parameters, so they drop after it, as parameters
/// drop after the body.
pub struct SyncScope {
    _enter: EnterGuard,
    _cancel: CancelHandle,
}

impl SyncScope {
    /// Makes `ctx` (made by [`child`]) current until dropped; cancels it then.
    #[inline]
    pub fn new(ctx: &Context, cancel: CancelHandle) -> SyncScope {
        SyncScope {
            _enter: ctx.enter(),
            _cancel: cancel,
        }
    }
}

impl core::fmt::Debug for SyncScope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyncScope").finish_non_exhaustive()
    }
}

/// The child context of an `async` `#[cancellable]` fn. `Send + Sync`: it is held across the
/// body's `.await`s. It is made current by [`run`], poll by poll.
pub struct AsyncScope {
    _cancel: CancelHandle,
    ctx: Context,
}

impl AsyncScope {
    /// Holds the child `(ctx, cancel)` made by [`child`] for the call.
    #[inline]
    pub fn new((ctx, cancel): (Context, CancelHandle)) -> AsyncScope {
        AsyncScope {
            _cancel: cancel,
            ctx,
        }
    }

    /// The child context.
    #[inline]
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl core::fmt::Debug for AsyncScope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("AsyncScope").field(&self.ctx).finish()
    }
}

/// Runs an async `#[cancellable]` body: current context = `ctx` during each poll, raced against
/// `ctx.done()` (done wins when both are ready; the body is dropped at its `.await`).
pub fn run<F: IntoFuture>(ctx: &Context, body: F) -> Scope<Run<F::IntoFuture>> {
    ctx.scope(ctx.run(body))
}

/// Runs an async `#[cancellable]` body that holds a `select_done!`: current context = `ctx`
/// during each poll, not raced (the select is the body's checkpoint, and its done branch must
/// run).
pub fn scoped<F: IntoFuture>(ctx: &Context, body: F) -> Scope<F::IntoFuture> {
    ctx.scope(body)
}

/// Anything `select_done!` takes as its context (`done(ctx)`): `Context`, `&Context`,
/// `&mut Context`, and an `Arc`, `Box` or `Rc` of one (`#[cancellable]` takes an
/// `Arc<Context>` parent too).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `go_context::Context`",
    label = "expected `Context` or `&Context` here",
    note = "`select_done!` takes `done(ctx)` with `ctx` a `Context`, a `&Context`, or an `Arc`, `Box` or `Rc` of one"
)]
pub trait AsContext {
    /// The context itself.
    fn as_context(&self) -> &Context;
}

impl AsContext for Context {
    #[inline]
    fn as_context(&self) -> &Context {
        self
    }
}

impl<T: AsContext + ?Sized> AsContext for &T {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for &mut T {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for std::sync::Arc<T> {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for Box<T> {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for std::rc::Rc<T> {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

// ===== The parent of a `#[cancellable]` fn, picked by type =====
//
// The macro cannot see types, so it asks the compiler. For each parameter `x` with a plain
// name it writes `(&&&probe(&x)).__context_parent(&x)`; method lookup tries the receiver with
// three, then two, then one reference (autoderef specialisation), so the first tier whose impl
// applies wins:
//
// | tier | impl on        | applies when the type is                    | gives              |
// |------|----------------|---------------------------------------------|--------------------|
// | 1    | `&&Probe<T>`   | `T: IsContext` (our `Context`, `&Context`,  | `Found` (a parent) |
// |      |                | `Arc<Context>`, `Option<Context>`, `Option<&Context>`) |         |
// | 2    | `&Probe<T>`    | `&mut Context`                              | a compile error    |
// | 3    | `Probe<T>`     | anything else (generic `T` too)             | `NotFound`         |
//
// The results are folded with `Either`, which has no impl for two `Found`s: two context
// parameters are a compile error that asks for `parent = …`. The same tiers rebind each
// parameter: a context to the child (same shape: `&'a Context` becomes `&'child Context`),
// anything else to itself.

/// The type of a parameter, for tier dispatch; holds nothing.
pub struct Probe<T>(core::marker::PhantomData<fn() -> T>);

impl<T> core::fmt::Debug for Probe<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Probe")
    }
}

/// The [`Probe`] of `value`'s type.
#[inline(always)]
pub fn probe<T>(_: &T) -> Probe<T> {
    Probe(core::marker::PhantomData)
}

mod sealed {
    pub trait Sealed {}
}

/// The parameter types `#[cancellable]` takes as the parent, and how each is rebound to the
/// child inside the body.
pub trait IsContext: sealed::Sealed {
    /// The type of the rebound parameter: the same shape, borrowing the child.
    type Rebound<'c>;
    /// The parent it holds (`None` for `Option::None`: then the current context is).
    fn parent(&self) -> Option<&Context>;
    /// The value the body sees under the parameter's name.
    fn rebind(self, child: &Context) -> Self::Rebound<'_>;
}

impl sealed::Sealed for Context {}
impl IsContext for Context {
    type Rebound<'c> = Context;
    #[inline]
    fn parent(&self) -> Option<&Context> {
        Some(self)
    }
    #[inline]
    fn rebind(self, child: &Context) -> Context {
        child.clone()
    }
}

impl sealed::Sealed for &Context {}
impl IsContext for &Context {
    type Rebound<'c> = &'c Context;
    #[inline]
    fn parent(&self) -> Option<&Context> {
        Some(self)
    }
    #[inline]
    fn rebind(self, child: &Context) -> &Context {
        child
    }
}

impl sealed::Sealed for std::sync::Arc<Context> {}
impl IsContext for std::sync::Arc<Context> {
    type Rebound<'c> = std::sync::Arc<Context>;
    #[inline]
    fn parent(&self) -> Option<&Context> {
        Some(self)
    }
    #[inline]
    fn rebind(self, child: &Context) -> std::sync::Arc<Context> {
        std::sync::Arc::new(child.clone())
    }
}

impl sealed::Sealed for Option<Context> {}
impl IsContext for Option<Context> {
    type Rebound<'c> = Option<Context>;
    #[inline]
    fn parent(&self) -> Option<&Context> {
        self.as_ref()
    }
    #[inline]
    fn rebind(self, child: &Context) -> Option<Context> {
        self.map(|_| child.clone())
    }
}

impl sealed::Sealed for Option<&Context> {}
impl IsContext for Option<&Context> {
    type Rebound<'c> = Option<&'c Context>;
    #[inline]
    fn parent(&self) -> Option<&Context> {
        *self
    }
    #[inline]
    fn rebind(self, child: &Context) -> Option<&Context> {
        self.map(|_| child)
    }
}

/// A parameter that is a context: the parent it holds.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a>(Option<&'a Context>);

/// A parameter that is not a context.
#[derive(Debug, Clone, Copy)]
pub struct NotFound;

/// Tier 1: a context parameter.
pub trait ContextParam<T: IsContext> {
    /// The parent `value` holds.
    fn __context_parent<'a>(&self, value: &'a T) -> Found<'a>;
    /// `value`, rebound to `child`.
    fn __context_rebind<'c>(&self, value: T, child: &'c Context) -> T::Rebound<'c>;
}

impl<T: IsContext> ContextParam<T> for &&Probe<T> {
    #[inline(always)]
    fn __context_parent<'a>(&self, value: &'a T) -> Found<'a> {
        Found(value.parent())
    }
    #[inline(always)]
    fn __context_rebind<'c>(&self, value: T, child: &'c Context) -> T::Rebound<'c> {
        value.rebind(child)
    }
}

/// Why `&mut Context` is refused as the parent (tier 2).
#[diagnostic::on_unimplemented(
    message = "`#[cancellable]` cannot take the parent context as `&mut Context`",
    label = "the parent context is passed as `&mut Context` here",
    note = "the body runs under a child context that is cancelled when the fn returns, so a context written through this reference would reach the caller already cancelled, and writes to the child could not reach it at all",
    note = "take `ctx: &Context` (or `ctx: Context`) and return what you derive; or, if this parameter is not the parent, name the parent: `#[cancellable(parent = other)]`"
)]
pub trait NotMutContext {}

/// Tier 2: `&mut Context`, refused.
pub trait MutContextParam<T> {
    /// A compile error: `V` is `&mut Context`, which does not implement [`NotMutContext`].
    fn __context_parent<'a, V: NotMutContext>(&self, value: &'a V) -> Found<'a>;
    /// `value`, unchanged (the parent error is the one reported).
    fn __context_rebind(&self, value: T, child: &Context) -> T;
}

impl MutContextParam<&mut Context> for &Probe<&mut Context> {
    #[inline(always)]
    fn __context_parent<'a, V: NotMutContext>(&self, _: &'a V) -> Found<'a> {
        Found(None)
    }
    #[inline(always)]
    fn __context_rebind<'m>(&self, value: &'m mut Context, _: &Context) -> &'m mut Context {
        value
    }
}

/// Tier 3: any other parameter.
pub trait OtherParam<T> {
    /// Not a context.
    fn __context_parent(&self, value: &T) -> NotFound;
    /// `value`, unchanged.
    fn __context_rebind(&self, value: T, child: &Context) -> T;
}

impl<T> OtherParam<T> for Probe<T> {
    #[inline(always)]
    fn __context_parent(&self, _: &T) -> NotFound {
        NotFound
    }
    #[inline(always)]
    fn __context_rebind(&self, value: T, _: &Context) -> T {
        value
    }
}

/// Two parameters' results, folded: at most one may be a context. Implemented for the pairs
/// `(NotFound | Found, NotFound | Found)` except two `Found`s.
#[diagnostic::on_unimplemented(
    message = "`#[cancellable]` found two context parameters and cannot tell which one is the parent",
    label = "a second parameter that is a `Context`",
    note = "name the parent: `#[cancellable(parent = ctx)]` (any expression of type `Context` or `&Context` works, e.g. `parent = self.ctx`)"
)]
pub trait Either {
    /// The context among the two, if any.
    type Output;
    /// The context among the pair, if any.
    fn either(self) -> Self::Output;
}

#[diagnostic::do_not_recommend]
impl Either for (NotFound, NotFound) {
    type Output = NotFound;
    #[inline(always)]
    fn either(self) -> NotFound {
        NotFound
    }
}

#[diagnostic::do_not_recommend]
impl<'a> Either for (NotFound, Found<'a>) {
    type Output = Found<'a>;
    #[inline(always)]
    fn either(self) -> Found<'a> {
        self.1
    }
}

#[diagnostic::do_not_recommend]
impl<'a> Either for (Found<'a>, NotFound) {
    type Output = Found<'a>;
    #[inline(always)]
    fn either(self) -> Found<'a> {
        self.0
    }
}

/// The parent as found: borrowed from a parameter, or the current context.
#[derive(Debug)]
pub enum ParentRef<'a> {
    /// A parameter's context.
    Borrowed(&'a Context),
    /// `Context::current()`.
    Current(Context),
}

impl ParentRef<'_> {
    /// The parent context.
    #[inline]
    pub fn get(&self) -> &Context {
        match self {
            ParentRef::Borrowed(ctx) => ctx,
            ParentRef::Current(ctx) => ctx,
        }
    }
}

/// What the parameters' fold ends in: the parent.
pub trait Resolve<'a> {
    /// The parent: the context found, else the current context.
    fn resolve(self) -> ParentRef<'a>;
}

impl<'a> Resolve<'a> for Found<'a> {
    #[inline]
    fn resolve(self) -> ParentRef<'a> {
        match self.0 {
            Some(ctx) => ParentRef::Borrowed(ctx),
            None => ParentRef::Current(Context::current()),
        }
    }
}

impl Resolve<'static> for NotFound {
    #[inline]
    fn resolve(self) -> ParentRef<'static> {
        ParentRef::Current(Context::current())
    }
}

/// What `parent = <expr>` must be.
#[diagnostic::on_unimplemented(
    message = "`parent = …` of `#[cancellable]` must be a `go_context::Context`",
    label = "not a `Context`, `&Context`, `Arc<Context>` or `Option<Context>`",
    note = "name the parent context: `parent = ctx`, `parent = self.ctx`, `parent = Context::current()`"
)]
pub trait NamedParent<'a> {
    /// The named parent (the current context for `Option::None`).
    fn named(self) -> ParentRef<'a>;
}

impl<'a> NamedParent<'a> for Found<'a> {
    #[inline]
    fn named(self) -> ParentRef<'a> {
        self.resolve()
    }
}

/// The parent named by `parent = <expr>`; a compile error if it is not a context.
#[inline]
pub fn named_parent<'a, F: NamedParent<'a>>(found: F) -> ParentRef<'a> {
    found.named()
}

// ===== A returned context, refused =====
//
// The body's `ctx` is the child, cancelled when the fn returns: a context the fn hands back
// would reach the caller already cancelled. The fake-return guard (never run) writes
// `(&&probe(&fake)).__context_return_check()`: tier A (`&Probe<T>`, `T: CarriesContext`) is a
// compile error that says so, tier B (`Probe<T>`, anything else) is nothing.

/// Return types that hand a context back: `Context`, `Arc<Context>` (a parent form, so the
/// rebound parameter can be one), `(Context, CancelHandle)`, and those inside `Option` or
/// `Result`.
pub trait CarriesContext {}
impl CarriesContext for Context {}
impl CarriesContext for std::sync::Arc<Context> {}
impl CarriesContext for (Context, CancelHandle) {}
impl<T: CarriesContext> CarriesContext for Option<T> {}
impl<T: CarriesContext, E> CarriesContext for Result<T, E> {}

/// Why a `#[cancellable]` fn may not return a context (tier A).
#[diagnostic::on_unimplemented(
    message = "a `#[cancellable]` fn cannot return a `Context`",
    label = "this fn returns a context",
    note = "the body runs under a child context that is cancelled when the fn returns, so a context returned from it (the rebound parameter, or anything derived from it) would reach the caller already cancelled",
    note = "remove #[cancellable] from this fn (derive the context in it and return it), or return the value the caller needs instead of the context"
)]
pub trait NotReturnedContext {}

/// Tier A: the return type carries a context: a compile error.
pub trait ReturnsContext {
    /// A compile error: `V` does not implement [`NotReturnedContext`].
    fn __context_return_check<V: NotReturnedContext>(&self, _: &V) {}
}
impl<T: CarriesContext> ReturnsContext for &Probe<T> {}

/// Tier B: any other return type.
pub trait ReturnsOther {
    /// Nothing to check.
    fn __context_return_check<V>(&self, _: &V) {}
}
impl<T> ReturnsOther for Probe<T> {}

/// What a `#[cancellable]` fn returns when its context is done: decided by trait, not by the
/// spelling of the return type, so aliases such as `io::Result<T>` work.
#[diagnostic::on_unimplemented(
    message = "`#[cancellable]` cannot return `{Self}` when the context is done",
    label = "no value of this type means \"cancelled\"",
    note = "return `Result<T, E>` where `E: From<go_context::Error>` (e.g. `io::Result<T>`, `Result<T, go_context::Error>`), `Option<T>`, or `()`"
)]
pub trait CancelReturn {
    /// The value returned on cancellation with `err`.
    fn cancelled(err: Error) -> Self;
}

impl<T, E: From<Error>> CancelReturn for Result<T, E> {
    #[inline]
    fn cancelled(err: Error) -> Self {
        Err(E::from(err))
    }
}

impl<T> CancelReturn for Option<T> {
    #[inline]
    fn cancelled(_: Error) -> Self {
        None
    }
}

impl CancelReturn for () {
    #[inline]
    fn cancelled(_: Error) -> Self {}
}

/// The value to return on cancellation; the return type is inferred from the `return`.
#[cold]
#[inline(never)]
pub fn cancelled<R: CancelReturn>(err: Error) -> R {
    R::cancelled(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_returns() {
        assert_eq!(cancelled::<Option<u8>>(Error::Canceled), None);
        assert_eq!(
            cancelled::<Result<u8, Error>>(Error::DeadlineExceeded),
            Err(Error::DeadlineExceeded)
        );
        let io: std::io::Result<()> = cancelled(Error::DeadlineExceeded);
        assert_eq!(io.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn sync_scope_enters_and_cancels() {
        let (parent, _cancel) = Context::background().with_cancel();
        let child = {
            let (child, cancel) = super::child(&parent, None);
            let _scope = SyncScope::new(&child, cancel);
            assert_eq!(
                format!("{:?}", Context::current()),
                "background.with_cancel.with_cancel"
            );
            child
        };
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(parent.err(), None);
        assert_eq!(format!("{:?}", Context::current()), "background");
    }
}
