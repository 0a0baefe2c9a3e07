//! The loop-head checks: `check` goes first in the body of every `loop`, `while` and `for` of
//! the fn, at every depth, and nowhere else.
//!
//! Input:
//! ```text
//! 'outer: for item in items {
//!     while let Some(x) = queue.pop() { work(x) }
//!     let f = || loop { spin() };
//! }
//! ```
//! Output:
//! ```text
//! 'outer: for item in items {
//!     <check>
//!     while let Some(x) = queue.pop() { <check> work(x) }
//!     let f = || loop { spin() };          // closures are left alone
//! }
//! ```
//!
//! The visitor does not enter closures, `async` blocks, `const` blocks, nested items, types,
//! generic arguments (`f::<{ .. }>()`), array-repeat lengths (all const or not run by this
//! call) or macro calls (their input is not Rust syntax yet). A loop whose own body (or `while`
//! condition) holds a `select_done!` (outside nested loops, closures and items) gets no check:
//! that select is its checkpoint, and its done branch must run.
//!
//! A select is recognised by its grammar, not its name: a macro call whose input has a
//! `done =>`, `done(..) =>` or `pat = done… =>` branch head at its top level, so
//! `use go_context::select_done as sel;` and `sel! { done => .., default => .. }` count too.

use proc_macro2::TokenStream;
use proc_macro2::{Delimiter, Spacing, TokenTree};
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, GenericArgument, Item, Macro, Stmt, Type};

/// Injects `check` into the statements of a fn body.
pub(crate) fn inject_into_stmts(stmts: &mut [Stmt], check: &TokenStream) {
    let mut injector = Injector { check };
    for stmt in stmts {
        injector.visit_stmt_mut(stmt);
    }
}

struct Injector<'a> {
    check: &'a TokenStream,
}

impl Injector<'_> {
    fn add_check(&self, body: &mut Block) {
        if has_select_done(&mut body.stmts) {
            return;
        }
        body.stmts
            .insert(0, Stmt::Expr(Expr::Verbatim(self.check.clone()), None));
    }
}

impl VisitMut for Injector<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            // Not run by this call, or not ours to rewrite.
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Macro(_) => {}
            // The length is a const expression.
            Expr::Repeat(repeat) => self.visit_expr_mut(&mut repeat.expr),
            Expr::Loop(l) => {
                visit_mut::visit_expr_loop_mut(self, l);
                self.add_check(&mut l.body);
            }
            Expr::While(w) => {
                visit_mut::visit_expr_while_mut(self, w);
                // A select in the condition runs before every iteration, as one in the body
                // would: it is the loop's checkpoint.
                if !expr_has_select_done(&mut w.cond) {
                    self.add_check(&mut w.body);
                }
            }
            Expr::ForLoop(f) => {
                visit_mut::visit_expr_for_loop_mut(self, f);
                self.add_check(&mut f.body);
            }
            other => visit_mut::visit_expr_mut(self, other),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_type_mut(&mut self, _: &mut Type) {}

    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}

    fn visit_macro_mut(&mut self, _: &mut Macro) {}
}

/// Whether `stmts` call `select_done!`, looking through blocks, `if`, `match` and the like but
/// not into nested loops, closures, `async` blocks or items.
fn has_select_done(stmts: &mut [Stmt]) -> bool {
    find_select(stmts, false)
}

/// Whether a fn body calls `select_done!` anywhere it runs as part of this call (loops
/// included; closures, `async` blocks and items not).
pub(crate) fn body_has_select_done(stmts: &mut [Stmt]) -> bool {
    find_select(stmts, true)
}

/// Whether `expr` (a `while` condition) calls `select_done!`, as [`has_select_done`] looks.
fn expr_has_select_done(expr: &mut Expr) -> bool {
    let mut finder = FindSelect {
        found: false,
        into_loops: false,
    };
    finder.visit_expr_mut(expr);
    finder.found
}

fn find_select(stmts: &mut [Stmt], into_loops: bool) -> bool {
    let mut finder = FindSelect {
        found: false,
        into_loops,
    };
    for stmt in stmts {
        finder.visit_stmt_mut(stmt);
    }
    finder.found
}

struct FindSelect {
    found: bool,
    /// Look inside nested loops too.
    into_loops: bool,
}

/// Reads only; `VisitMut` because syn is built without its `visit` feature.
impl VisitMut for FindSelect {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) => {}
            Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) if !self.into_loops => {}
            other => visit_mut::visit_expr_mut(self, other),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_type_mut(&mut self, _: &mut Type) {}

    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        let named = mac
            .path
            .segments
            .last()
            .is_some_and(|seg| seg.ident == "select_done");
        if named || has_done_branch(mac.tokens.clone()) {
            self.found = true;
        }
    }
}

/// Whether `tokens` (a macro's input) hold a select_done! done-branch head at their top level:
/// `done =>` or `done(..) =>`, at the start, after a `,`, after a `{ .. }` body, or after the
/// `=` of `pat = done`.
fn has_done_branch(tokens: proc_macro2::TokenStream) -> bool {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let is_arrow = |i: usize| {
        matches!(
            (trees.get(i), trees.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == '=' && a.spacing() == Spacing::Joint && b.as_char() == '>'
        )
    };
    let starts_branch = |i: usize| match i.checked_sub(1).map(|j| &trees[j]) {
        None => true,
        Some(TokenTree::Punct(p)) => {
            p.as_char() == ','
                || (p.as_char() == '='
                    && p.spacing() == Spacing::Alone
                    && !matches!(i.checked_sub(2).map(|j| &trees[j]),
                        Some(TokenTree::Punct(q)) if q.spacing() == Spacing::Joint))
        }
        Some(TokenTree::Group(g)) => g.delimiter() == Delimiter::Brace,
        Some(_) => false,
    };
    (0..trees.len()).any(|i| {
        let TokenTree::Ident(ident) = &trees[i] else {
            return false;
        };
        if ident != "done" || !starts_branch(i) {
            return false;
        }
        match trees.get(i + 1) {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => is_arrow(i + 2),
            _ => is_arrow(i + 1),
        }
    })
}
