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
