//! Runnable examples: `cargo run -p context-examples --example tour`.
