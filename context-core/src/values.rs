//! Request-scoped values: a value node holds one value keyed by its type, and lookup walks up
//! the chain to the nearest node holding that type (Go's `WithValue` / `Value`).

use std::any::{Any, TypeId};

use crate::sync::Arc;
use crate::tree::{Body, Node};

/// The body of a value node. `T` is the value's type, erased to `dyn Any` once boxed.
pub(crate) struct ValueNode<T: ?Sized> {
    /// The nearest cancellable ancestor, whose state this node reports.
    pub(crate) scope: Option<Arc<Node>>,
    key: TypeId,
    pub(crate) name: &'static str,
    value: T,
}

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
    let mut out = String::with_capacity(name.len());
    let mut segment_start = 0;
    for (i, c) in name.char_indices() {
        match c {
            ':' => {}
            _ if c.is_alphanumeric() || c == '_' => {
                if i > 0 && name[..i].ends_with("::") {
                    // Drop the path written so far for this segment.
                    out.truncate(segment_start);
                }
            }
            _ => {}
        }
        if c == ':' {
            continue;
        }
        if !(c.is_alphanumeric() || c == '_') {
            out.push(c);
            segment_start = out.len();
        } else {
            out.push(c);
        }
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
