// Edition 2021: a temporary in the tail expression that borrows an owned parameter is fine
// without the macro (parameters outlive the body's tail temporaries). Found by an audit:
// the expansion made the parameters locals of the body's block, which drop first. Also: the
// body's last expression still gets the return type as its expected type (coercions,
// inference), and a diverging body warns of nothing.
#![deny(warnings)]
use go_context::cancellable;
use std::cell::RefCell;
use std::sync::Mutex;

fn plain(m: Mutex<u8>) -> Option<u8> {
    Some(*m.lock().unwrap())
}

#[cancellable]
fn guarded(m: Mutex<u8>) -> Option<u8> {
    Some(*m.lock().unwrap())
}

#[cancellable]
fn cell(c: RefCell<Vec<u8>>) -> Option<usize> {
    Some(c.borrow().len())
}

async fn plain_async(m: Mutex<u8>) -> Option<u8> {
    Some(*m.lock().unwrap())
}

#[cancellable]
async fn guarded_async(m: Mutex<u8>) -> Option<u8> {
    Some(*m.lock().unwrap())
}

#[cancellable]
fn coerced(x: u8) -> Option<Box<dyn std::fmt::Debug>> {
    Some(Box::new(x))
}

#[cancellable]
fn inferred(n: u8) -> Option<Vec<u8>> {
    Some((0..n).collect())
}

#[cancellable]
fn diverging(x: u8) -> Option<u8> {
    panic!("never {x}")
}

fn main() {
    let _ = diverging;
    assert_eq!(format!("{:?}", coerced(5)), "Some(5)");
    assert_eq!(inferred(3), Some(vec![0, 1, 2]));
    let _ = plain_async(Mutex::new(3));
    let _ = guarded_async(Mutex::new(4));
    assert_eq!(plain(Mutex::new(1)), Some(1));
    assert_eq!(guarded(Mutex::new(2)), Some(2));
    assert_eq!(cell(RefCell::new(vec![1])), Some(1));
}
