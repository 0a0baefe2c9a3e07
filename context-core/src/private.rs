//! Support for the code that `context-macros` generates. Not public API: names here may change
//! in any release. Generated code reaches it only as `::context_core::__private::…` (or through
//! the path given by `#[cancellable(crate = "…")]`).

pub use crate::{CancelHandle, Context, Error};
pub use core::time::Duration;
