//! What `go!` expands to (re-exported through `__private`). Not public API.
//!
//! - The *kind* of the work (task or thread) is picked from the type its call returns, by
//!   autoref specialisation: `(&&go_marker(&work)).__go_kind()` finds [`GoFutureKind`] when
//!   the type is a future, else [`GoBlockingKind`] one auto-deref later.
//! - The *parent* of `go!(f(a, b))` is the first argument whose type is [`Context`] (found the
//!   same way, with [`go_arg`]); that argument is replaced by the child in the work, so
//!   `handle.cancel()` reaches it. Without one, the parent is `Context::current()`.

use std::fmt::Display;
use std::future::IntoFuture;
use std::marker::PhantomData;

use super::group::Group;
use super::handle::GoHandle;
use crate::Context;

/// Marks the type `R` that the work returns, to pick a spawner by type.
#[derive(Debug)]
pub struct GoMarker<R>(PhantomData<fn() -> R>);

/// The marker for the return type of `work`; nothing is called.
#[inline(always)]
pub fn go_marker<F, R>(_work: &F) -> GoMarker<R>
where
    F: FnOnce(Context) -> R,
{
    GoMarker(PhantomData)
}

/// Chosen when the work returns a future.
pub trait GoFutureKind {
    /// The spawner for futures.
    #[inline(always)]
    fn __go_kind(&self) -> GoFuture {
        GoFuture
    }
}
impl<R: IntoFuture> GoFutureKind for &GoMarker<R> {}

/// Chosen otherwise.
pub trait GoBlockingKind {
    /// The spawner for blocking calls.
    #[inline(always)]
    fn __go_kind(&self) -> GoBlocking {
        GoBlocking
    }
}
impl<R> GoBlockingKind for GoMarker<R> {}

/// Spawns futures as tokio tasks.
#[derive(Debug)]
pub struct GoFuture;
/// Spawns blocking calls on OS threads.
#[derive(Debug)]
pub struct GoBlocking;

/// A compile-time gate: spawning a future needs the `tokio` feature.
#[diagnostic::on_unimplemented(
    message = "`go!` on a future needs the `tokio` feature of `go-context`",
    label = "this work is a future, and futures are spawned as tokio tasks",
    note = "enable it: `go-context = {{ version = \"...\", features = [\"tokio\"] }}`"
)]
pub trait TokioEnabled {}
#[cfg(feature = "tokio")]
impl<T: ?Sized> TokioEnabled for T {}

/// What `go!` runs on a thread: a type known not to be a future. A type parameter (`R` in a
/// generic fn) might be one, and would then be handed back unpolled, so it is refused: `go!`
/// cannot see through it. (The test is `Unpin`: every concrete value type is, `async` futures
/// are not; a pinned non-future value takes the explicit form too.)
#[diagnostic::on_unimplemented(
    message = "`go!` cannot tell whether `{Self}` is a future, so it would not know whether to run it as a task or on a thread",
    label = "the work's type is not known here (a type parameter?), or it is `!Unpin`",
    note = "say which: `GoHandle::spawn_blocking(&Context::current(), move |_ctx| f())` runs it on a thread, `GoHandle::spawn(&Context::current(), move |_ctx| f())` polls the future it returns as a task; or bound the type: `R: Unpin`"
)]
pub trait GoBlockingWork {}
impl<T: Unpin> GoBlockingWork for T {}

impl GoFuture {
    /// Spawns as a task under a child of `parent`.
    #[track_caller]
    #[inline]
    pub fn spawn<F, Fut>(self, parent: &Context, work: F) -> GoHandle<Fut::Output>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture + TokioEnabled,
        Fut::IntoFuture: Send + 'static,
        Fut::Output: Send + 'static,
    {
        #[cfg(feature = "tokio")]
        {
            GoHandle::spawn(parent, work)
        }
        #[cfg(not(feature = "tokio"))]
        {
            let _ = (parent, work);
            unreachable!("`TokioEnabled` has no impl without the `tokio` feature")
        }
    }

    /// Spawns as a task member of `group`.
    #[track_caller]
    #[inline]
    pub fn spawn_in<F, Fut, T, E>(self, group: &Group<E>, work: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<T, E>> + TokioEnabled,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
        E: Display + Send + 'static,
    {
        #[cfg(feature = "tokio")]
        {
            group.spawn(work)
        }
        #[cfg(not(feature = "tokio"))]
        {
            let _ = (group, work);
            unreachable!("`TokioEnabled` has no impl without the `tokio` feature")
        }
    }
}

impl GoBlocking {
    /// Spawns on a thread under a child of `parent`.
    #[track_caller]
    #[inline]
    pub fn spawn<F, T>(self, parent: &Context, work: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> T + Send + 'static,
        T: GoBlockingWork + Send + 'static,
    {
        GoHandle::spawn_blocking(parent, work)
    }

    /// Spawns as a thread member of `group`.
    #[track_caller]
    #[inline]
    pub fn spawn_in<F, T, E>(self, group: &Group<E>, work: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> Result<T, E> + Send + 'static,
        Result<T, E>: GoBlockingWork,
        T: Send + 'static,
        E: Display + Send + 'static,
    {
        group.spawn_blocking(work)
    }
}

/// Anything `go!(in ctx, ...)` takes as the parent: `Context`, `&Context`, ...
#[diagnostic::on_unimplemented(
    message = "`go!(in {Self}, ...)` needs a `go_context::Context` as the parent",
    label = "expected a `Context` or `&Context` here",
    note = "write `go!(in ctx, work())` with `ctx: Context` or `&Context`; to spawn into a group write `go!(group => work())`"
)]
pub trait GoParent {
    /// The parent context.
    fn go_parent(&self) -> &Context;
}
impl GoParent for Context {
    #[inline(always)]
    fn go_parent(&self) -> &Context {
        self
    }
}
impl<T: GoParent + ?Sized> GoParent for &T {
    #[inline(always)]
    fn go_parent(&self) -> &Context {
        (**self).go_parent()
    }
}
impl<T: GoParent + ?Sized> GoParent for &mut T {
    #[inline(always)]
    fn go_parent(&self) -> &Context {
        (**self).go_parent()
    }
}

/// The parent of `go!(in p, ...)`.
#[inline(always)]
pub fn go_parent<P: GoParent + ?Sized>(p: &P) -> &Context {
    p.go_parent()
}

/// The group of `go!(g => ...)`, by reference.
#[inline(always)]
pub fn go_group<E>(g: &Group<E>) -> &Group<E> {
    g
}

/// `go!(value)` with a value that is not a call: it must be a future.
#[diagnostic::on_unimplemented(
    message = "`go!` got the value `{Self}`, which is not a future",
    label = "this is not a call, so it would not run anything",
    note = "write the call: `go!(f(args))` or `go!(obj.method(args))`; a value is spawned only if it is a future"
)]
pub trait GoValue {}
impl<T: IntoFuture> GoValue for T {}

/// Checks at compile time that a non-call `go!` operand is a future.
#[inline(always)]
pub fn go_value<T: GoValue>(value: T) -> T {
    value
}

/// The parent of `go!(f(args))`: the first `Context` argument if there is one, else the
/// current context.
#[inline(always)]
pub fn go_parent_or_current(found: Option<&Context>) -> Context {
    match found {
        Some(parent) => parent.clone(),
        None => Context::current(),
    }
}

/// Unifies the types of two places, in never-run code that pins the types of a call's
/// arguments before [`go_arg`] looks at them.
#[inline(always)]
pub fn go_same<T>(_: &T, _: &T) {}

/// Marks the type of a call argument, to find the [`Context`] among them by type.
#[derive(Debug)]
pub struct GoArg<T>(PhantomData<fn() -> T>);

/// The marker for the type of `arg`; nothing is read.
#[inline(always)]
pub fn go_arg<T>(_arg: &T) -> GoArg<T> {
    GoArg(PhantomData)
}

/// Chosen for an argument of type [`Context`].
pub trait GoArgContext {
    /// `found`, else this argument: the first `Context` argument is the parent.
    #[inline(always)]
    fn __go_parent<'a>(&self, arg: &'a Context, found: Option<&'a Context>) -> Option<&'a Context> {
        found.or(Some(arg))
    }

    /// The child in place of the first `Context` argument (which is dropped); else `arg`.
    #[inline(always)]
    fn __go_swap(&self, arg: Context, child: &mut Option<Context>) -> Context {
        match child.take() {
            Some(child) => {
                drop(arg);
                child
            }
            None => arg,
        }
    }
}
impl GoArgContext for &GoArg<Context> {}

/// Chosen for any other argument: passed unchanged.
pub trait GoArgOther<T> {
    /// `found`, unchanged.
    #[inline(always)]
    fn __go_parent<'a>(&self, _arg: &'a T, found: Option<&'a Context>) -> Option<&'a Context> {
        found
    }

    /// `arg`, unchanged.
    #[inline(always)]
    fn __go_swap(&self, arg: T, _child: &mut Option<Context>) -> T {
        arg
    }
}
impl<T> GoArgOther<T> for GoArg<T> {}
