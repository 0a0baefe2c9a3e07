//! What `#[cancellable]` requires of the fn, and what it learns from the signature: the
//! parameters that may hold the parent context (the compiler picks it by type, see
//! `__private::probe`), how to rebind them, and the return type to pin.

use proc_macro2::{Ident, Span};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Expr, FnArg, ItemFn, Pat, PatIdent, ReturnType, Type};

use super::args::{Args, Timeout};
use crate::error::{format_err, Errors};

/// A fn that passed the checks, ready to expand.
pub(crate) struct Checked {
    /// The fn; parameter patterns may be normalised (see [`Param`]).
    pub(crate) func: ItemFn,
    /// Where the parent comes from.
    pub(crate) parent: ParentChoice,
    /// The parameters with a plain name (or `_`), in order: the candidates for the parent,
    /// and what is rebound to the child.
    pub(crate) params: Vec<Param>,
    /// Every parameter but `self`, in declaration order, moved into a local of the body: so
    /// they drop in reverse declaration order after the body's own locals, as parameters do
    /// without the macro.
    pub(crate) moves: Vec<Move>,
    /// The return type with every `impl Trait` erased to `_`, for the fake-return guard.
    pub(crate) erased_ret: Type,
    /// Whether the return type holds an `impl Trait` (then it cannot be a context, and its
    /// erased form is not a type the compiler can check before inference).
    pub(crate) ret_has_impl: bool,
    /// Where the return type is written (the fn name for `()`): cancellation-value errors
    /// point here.
    pub(crate) ret_span: Span,
}

/// Where the parent context comes from.
pub(crate) enum ParentChoice {
    /// No `parent = …`: the one parameter whose *type* is a context, else the current context
    /// (decided by the compiler, see `__private::probe`); every parameter is rebound by type.
    ByType,
    /// `parent = x` with `x` a parameter: that parameter (its index in [`Checked::params`]),
    /// the only one rebound.
    Param(usize),
    /// `parent = <expr>` of anything else (`self.ctx`, `Context::current()`): nothing is
    /// rebound.
    Expr(Expr),
}

/// A parameter with a plain name.
pub(crate) struct Param {
    /// The name bound in the signature.
    pub(crate) binding: Ident,
    /// Where the parameter is written, for errors about it.
    pub(crate) span: Span,
    /// Whether its local, `let <mut> binding = …;` in the body at its turn among the
    /// [`Move`]s, is `mut` (the `mut` moves there from the signature).
    pub(crate) mutable: bool,
    /// Whether the local is the parameter rebound by type (a context becomes the child), not
    /// the parameter itself.
    pub(crate) by_type: bool,
    /// The parameter's `#[cfg]` and `#[cfg_attr]` attributes, repeated on every statement that
    /// names it: the macro cannot tell whether the parameter exists.
    pub(crate) gate: Vec<Attribute>,
    /// Its lint attributes (`#[allow(unused_variables)]`, also under `#[cfg_attr]`), moved to
    /// its local: the parameter itself is used (moved there).
    pub(crate) lints: Vec<Attribute>,
}

/// How one parameter becomes a local of the body.
pub(crate) enum Move {
    /// `params[i]`: rebound by type if `by_type`, else moved as it is.
    Param(usize),
    /// A destructured or `ref` parameter, renamed `hidden` in the signature: `let <pat> =
    /// hidden;`, with the parameter's attributes as in [`Param::gate`] and [`Param::lints`].
    Pattern {
        pat: Box<Pat>,
        hidden: Ident,
        gate: Vec<Attribute>,
        lints: Vec<Attribute>,
    },
}

/// Checks `func` against the rules of `#[cancellable]`, collecting every violation. `args` is
/// `None` when they failed to parse (their errors are reported already).
pub(crate) fn check(func: &ItemFn, args: Option<&Args>) -> syn::Result<Checked> {
    let mut errors = Errors::default();
    let mut func = func.clone();
    if let Some(constness) = &func.sig.constness {
        errors.push(format_err!(
            constness,
            "#[cancellable] cannot go on a `const fn`: contexts exist only at run time; remove \
             `const`, or remove #[cancellable]"
        ));
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if let Type::ImplTrait(_) = strip_parens(ty) {
            errors.push(format_err!(
                ty,
                "#[cancellable] cannot return a bare `impl Trait`: on cancellation it needs a \
                 value to return; return `Option<impl Trait>`, or `Result<impl Trait, E>` with \
                 `E: From<go_context::Error>`"
            ));
        }
    }
    let named = args.and_then(|a| a.parent.as_ref());
    let (params, moves, parent) = collect_params(&mut func, named);
    if let Some(args) = args {
        unbound_in_args(args, &moves, &mut errors);
    }
    errors.finish()?;
    let mut eraser = EraseImplTrait { erased: false };
    let (erased_ret, ret_span) = match &func.sig.output {
        ReturnType::Default => (syn::parse_quote!(()), func.sig.ident.span()),
        ReturnType::Type(_, ty) => {
            let mut erased = (**ty).clone();
            eraser.visit_type_mut(&mut erased);
            (erased, ty.span())
        }
    };
    Ok(Checked {
        func,
        parent,
        params,
        moves,
        erased_ret,
        ret_has_impl: eraser.erased,
        ret_span,
    })
}

/// The parameters with a plain name, how each parameter becomes a local, and the parent
/// choice. A plain parameter loses its `mut` (it moves to its local: the parameter itself is
/// only moved); a `_` parameter gets a hidden name so that it can be the parent; a
/// destructured one gets a hidden name, destructured in the body.
fn collect_params(
    func: &mut ItemFn,
    named: Option<&Expr>,
) -> (Vec<Param>, Vec<Move>, ParentChoice) {
    let named_ident = named.and_then(|expr| match expr {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            path.path.get_ident().cloned()
        }
        _ => None,
    });
    // Which parameter `parent = x` names, if any: only that one is rebound.
    let chosen = named_ident.as_ref().and_then(|ident| {
        func.sig.inputs.iter().position(|arg| {
            matches!(arg, FnArg::Typed(pat_ty)
                if matches!(&*pat_ty.pat, Pat::Ident(p) if p.ident == *ident && p.subpat.is_none()))
        })
    });
    let mut params = Vec::new();
    let mut moves = Vec::new();
    let mut chosen_index = None;
    for (i, arg) in func.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pat_ty) = arg else { continue };
        // A `#[cfg]`-gated parameter may not exist: every statement that names it carries the
        // same `#[cfg]` (and `#[cfg_attr]`, which may expand to one). Its lint attributes
        // move to its local, which is what goes unused.
        let (lints, rest): (Vec<Attribute>, Vec<Attribute>) = std::mem::take(&mut pat_ty.attrs)
            .into_iter()
            .partition(is_lint);
        pat_ty.attrs = rest;
        let gate: Vec<Attribute> = pat_ty
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            .cloned()
            .collect();
        let rebound = match (named, chosen) {
            (None, _) => true,
            (Some(_), Some(c)) => c == i,
            (Some(_), None) => false,
        };
        let span = pat_ty.pat.span();
        match &mut *pat_ty.pat {
            Pat::Ident(PatIdent {
                by_ref: None,
                mutability,
                ident,
                subpat: None,
                ..
            }) => {
                if chosen == Some(i) {
                    chosen_index = Some(params.len());
                }
                // The local takes the `mut`: the parameter itself is only moved.
                let mutable = mutability.take().is_some();
                moves.push(Move::Param(params.len()));
                params.push(Param {
                    binding: ident.clone(),
                    span,
                    mutable,
                    by_type: rebound,
                    gate,
                    lints,
                });
            }
            Pat::Wild(_) => {
                // One name per `_` (a signature may have several).
                let ident = Ident::new(
                    &format!("__context_parent_{i}"),
                    span.resolved_at(Span::mixed_site()),
                );
                *pat_ty.pat = Pat::Ident(PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: ident.clone(),
                    subpat: None,
                });
                moves.push(Move::Param(params.len()));
                params.push(Param {
                    binding: ident,
                    span,
                    mutable: false,
                    by_type: false,
                    gate,
                    lints,
                });
            }
            // Destructured or `ref` parameters hold no context the body could be given; they
            // are renamed, and destructured in the body, in their turn.
            _ => {
                let hidden = Ident::new(
                    &format!("__context_arg_{i}"),
                    span.resolved_at(Span::mixed_site()),
                );
                let pat = std::mem::replace(
                    &mut pat_ty.pat,
                    Box::new(Pat::Ident(PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: hidden.clone(),
                        subpat: None,
                    })),
                );
                moves.push(Move::Pattern {
                    pat,
                    hidden,
                    gate,
                    lints,
                });
            }
        }
    }
    let parent = match (named, chosen_index) {
        (None, _) => ParentChoice::ByType,
        (Some(_), Some(index)) => ParentChoice::Param(index),
        (Some(expr), None) => ParentChoice::Expr(expr.clone()),
    };
    (params, moves, parent)
}

/// `timeout = …` and `parent = …` run before the destructured parameters are bound: an error
/// on each use of a name that only such a parameter binds (rustc would say "cannot find value").
fn unbound_in_args(args: &Args, moves: &[Move], errors: &mut Errors) {
    struct Bound(Vec<Ident>);
    impl VisitMut for Bound {
        fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
            self.0.push(pat.ident.clone());
            syn::visit_mut::visit_pat_ident_mut(self, pat);
        }
    }
    struct Uses<'a>(&'a [Ident], Vec<Ident>);
    impl VisitMut for Uses<'_> {
        fn visit_expr_path_mut(&mut self, path: &mut syn::ExprPath) {
            if let Some(ident) = path.path.get_ident().filter(|_| path.qself.is_none()) {
                if self.0.contains(ident) {
                    self.1.push(ident.clone());
                }
            }
        }
    }
    let mut bound = Bound(Vec::new());
    for m in moves {
        if let Move::Pattern { pat, .. } = m {
            bound.visit_pat_mut(&mut (**pat).clone());
        }
    }
    if bound.0.is_empty() {
        return;
    }
    let timeout = match &args.timeout {
        Some(Timeout::Expr(expr)) => Some(("timeout", &**expr)),
        _ => None,
    };
    let parent = args.parent.as_ref().map(|expr| ("parent", expr));
    for (key, expr) in timeout.into_iter().chain(parent) {
        let mut uses = Uses(&bound.0, Vec::new());
        uses.visit_expr_mut(&mut expr.clone());
        for ident in uses.1 {
            errors.push(format_err!(
                ident,
                "`{key} = …` cannot use `{ident}`: it is bound by a destructured parameter, \
                 which is destructured after `{key}` is evaluated; take that parameter whole \
                 (`p: (u64, u8)`) and write `p.0`"
            ));
        }
    }
}

/// Whether `attr` only sets lints: `#[allow(..)]`, `#[expect(..)]`, `#[warn(..)]`,
/// `#[deny(..)]`, `#[forbid(..)]`, or a `#[cfg_attr(pred, ..)]` of nothing else.
fn is_lint(attr: &Attribute) -> bool {
    let lint = |path: &syn::Path| {
        ["allow", "expect", "warn", "deny", "forbid"]
            .iter()
            .any(|name| path.is_ident(name))
    };
    if lint(attr.path()) {
        return true;
    }
    attr.path().is_ident("cfg_attr")
        && attr
            .parse_args_with(|input: syn::parse::ParseStream<'_>| {
                input.parse::<syn::Meta>()?;
                input.parse::<syn::Token![,]>()?;
                let inner =
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated(
                        input,
                    )?;
                Ok(!inner.is_empty() && inner.iter().all(|meta| lint(meta.path())))
            })
            .unwrap_or(false)
}

fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip_parens(&inner.elem),
        Type::Group(inner) => strip_parens(&inner.elem),
        other => other,
    }
}

/// Replaces every `impl Trait` in a type with `_`, so the type can annotate a `let`.
struct EraseImplTrait {
    /// Whether it replaced any.
    erased: bool,
}

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(imp) = ty {
            self.erased = true;
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](imp.impl_token.span),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}
