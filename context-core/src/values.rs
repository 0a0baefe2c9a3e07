//! Request-scoped values: a value node holds one value keyed by its type, and lookup walks up
//! the chain to the nearest node holding that type (Go's `WithValue` / `Value`).

use std::any::{Any, TypeId};

use crate::sync::Arc;
use crate::tree::{Body, Node, ValueNode};

pub(crate) fn new_value_node<T: Any + Send + Sync>(parent: &Arc<Node>, value: T) -> Node {
    let boxed: Box<ValueNode<dyn Any + Send + Sync>> = Box::new(ValueNode {
        scope: parent.signal().cloned(),
        key: TypeId::of::<T>(),
        name: std::any::type_name::<T>(),
        value,
    });
    Node {
        parent: Some(Arc::clone(parent)),
        body: Body::Value(boxed),
    }
}

/// The nearest value of type `T` from `node` up to the root.
pub(crate) fn lookup<T: Any>(mut node: &Node) -> Option<&T> {
    let key = TypeId::of::<T>();
    loop {
        if let Body::Value(v) = &node.body {
            if v.key == key {
                return (&v.value as &dyn Any).downcast_ref::<T>();
            }
        }
        node = node.parent.as_deref()?;
    }
}

/// `alloc::vec::Vec<my_crate::RequestId>` → `Vec<RequestId>`: type names without paths.
pub(crate) fn short_type_name(name: &str) -> String {
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

#[cfg(test)]
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
