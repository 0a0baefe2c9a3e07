//! A request's deadline and cancellation across services, for HTTP and gRPC: tower layers
//! that carry a [`go_context::Context`] over the wire, as grpc-go does, and further.
//!
//! - Server: [`ContextLayer`] runs each request under a child of a shutdown context with the
//!   caller's deadline (`grpc-timeout`, `connect-timeout-ms`, policy in [`DeadlinePolicy`]),
//!   current in the handler and in the request's extensions.
//! - Client: [`PropagateLayer`] sends the remaining time of the call's context and ends the
//!   call when that context is done.
//! - [`wire`]: the header forms, pure and panic-free.
//!
//! TODO: crate docs.
#![warn(missing_docs)]

mod body;
mod cause;
pub mod client;
mod error;
mod ext;
mod policy;
mod protocol;
pub mod server;
pub mod wire;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "tonic")]
pub mod tonic;

pub use body::ContextBody;
pub use cause::{RemoteDeadline, RequestDropped};
pub use client::{PropagateLayer, PropagateService};
pub use error::ContextDone;
pub use ext::RequestContextExt;
pub use policy::DeadlinePolicy;
pub use server::{ContextLayer, ContextService};
