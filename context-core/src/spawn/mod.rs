//! The spawning wing: Go's `go` statement and `errgroup`, as one design.
//!
//! ```text
//! errors     JoinError, SpawnError, MemberFailed, LimitError; panic payloads
//! runtime    the shared glue: thread body, OS-refusal policy, task body, may-block check
//! signal     the one waiting primitive for "finished": a lazily made private cancel node
//! slot       where threads and group members leave their outcome, and how a joiner waits
//! handle     GoHandle (+ GoJoin): spawn, spawn_blocking, join, .await, cancel; a task spawned
//!            at once joins through tokio's own JoinHandle (its output), with no slot
//! admission  a group's state machine: limit, queue, first failure, idle (loom-modelled)
//! group      Group (+ GroupWait): admission + failure policy over the same spawning
//! support    what `go!` expands to
//! ```
//!
//! Work is spawned in one of two ways (tokio's names): `GoHandle::spawn` (and `Group::spawn`)
//! run a future as a task on the caller's tokio runtime (feature `tokio`),
//! with the child context current through [`Context::scope`](crate::Context::scope);
//! [`GoHandle::spawn_blocking`] (and [`Group::spawn_blocking`]) run a call on a new OS thread,
//! with the child current through [`Context::enter`](crate::Context::enter). `go!` picks by
//! the type of the work. An OS thread is never taken from a pool whose size or shutdown you do
//! not control; when the caller is inside a tokio runtime, the thread enters that runtime, so
//! futures its blocking code spawns land on the same runtime.

mod admission;
mod errors;
mod group;
mod handle;
mod runtime;
mod signal;
mod slot;
pub(crate) mod support;

pub use errors::{JoinError, LimitError, MemberFailed, SpawnError};
pub use group::{Group, GroupWait};
pub use handle::{GoHandle, GoJoin};
