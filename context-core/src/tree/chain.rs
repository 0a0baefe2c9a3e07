//! A context's chain from the root, as its `Debug` prints it (Go's `String()`):
//! `background.with_cancel.with_deadline(in 1.2s).with_value(RequestId)`. It lives with the
//! node so that `Context`'s `Debug` and the trace event both print it without the tree
//! importing `Context`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::timer;

use super::node::{Body, Node};

/// The chain ending at a node; `Debug` prints it.
pub(crate) struct Chain<'a>(pub(crate) &'a Node);

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = Vec::new();
        let mut node = Some(self.0);
        while let Some(n) = node {
            chain.push(n);
            node = n.parent.as_deref();
        }
        let now = Instant::now();
        for (i, n) in chain.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match &n.body {
                Body::Background => f.write_str("background")?,
                Body::Todo => f.write_str("todo")?,
                Body::WithoutCancel => f.write_str("without_cancel")?,
                Body::Value(v) => write!(f, "with_value({})", short_type_name(v.name))?,
                Body::Cancel(c) => match c.own_deadline().map(timer::instant) {
                    None => f.write_str("with_cancel")?,
                    Some(at) => match at.checked_duration_since(now) {
                        Some(left) if left >= Duration::from_secs(1) => {
                            write!(f, "with_deadline(in {:.1}s)", left.as_secs_f64())?
                        }
                        Some(left) => write!(f, "with_deadline(in {}ms)", left.as_millis())?,
                        None => f.write_str("with_deadline(passed)")?,
                    },
                },
            }
        }
        Ok(())
    }
}

/// `alloc::vec::Vec<my_crate::RequestId>` → `Vec<RequestId>`: type names without paths.
fn short_type_name(name: &str) -> String {
    let is_path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while !rest.is_empty() {
        let end = rest.find(|c| !is_path_char(c)).unwrap_or(rest.len());
        let (path, tail) = rest.split_at(end);
        // Keep the last segment of a path run (`a::b::C` → `C`).
        out.push_str(path.rsplit("::").next().unwrap_or(path));
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("u32"), "u32");
        assert_eq!(short_type_name("my_crate::RequestId"), "RequestId");
        assert_eq!(
            short_type_name("alloc::vec::Vec<my_crate::a::RequestId>"),
            "Vec<RequestId>"
        );
        assert_eq!(
            short_type_name("(a::B, core::option::Option<&str>)"),
            "(B, Option<&str>)"
        );
    }
}
