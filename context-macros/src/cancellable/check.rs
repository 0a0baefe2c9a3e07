//! What `#[cancellable]` requires of the fn, and what it learns from the signature: the parent
//! context parameter (and how to rebind it), and the return type to pin.

use proc_macro2::{Ident, Span};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, ItemFn, Pat, PatIdent, ReturnType, Type, TypeReference};

use super::args::Args;
use crate::error::{format_err, Errors};

/// A fn that passed the checks, ready to expand.
pub(crate) struct Checked {
    /// The fn; the parent parameter's pattern may be normalised (see [`Parent`]).
    pub(crate) func: ItemFn,
    /// The parent context parameter, or `None` for `Context::current()`.
    pub(crate) parent: Option<Parent>,
    /// The return type with every `impl Trait` erased to `_`, for the fake-return guard.
    pub(crate) erased_ret: Type,
    /// Where the return type is written (the fn name for `()`): cancellation-value errors
    /// point here.
    pub(crate) ret_span: Span,
}

/// The parameter the child context derives from.
pub(crate) struct Parent {
    /// The name bound to the parameter in the signature.
    pub(crate) binding: Ident,
    /// How to rebind that name to the child; `None` when the user cannot name it (`_`) or the
    /// type is not spelled `Context`/`&Context` (`parent = …` on another type).
    pub(crate) rebind: Option<Rebind>,
}

/// `let <mut> name: <type as written> = <child>;`
pub(crate) struct Rebind {
    pub(crate) name: Ident,
    pub(crate) mutable: bool,
    pub(crate) kind: ParamKind,
}

/// How the parameter's type is spelled.
#[derive(Clone)]
pub(crate) enum ParamKind {
    /// `Context` (any path ending in `Context`, without generics).
    Owned(Type),
    /// `&Context` / `&'a Context`: the referent, as written.
    Ref(Type),
    /// `&mut Context`: the referent, as written.
    RefMut(Type),
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
    let parent = errors.take(find_parent(&mut func, args));
    errors.finish()?;
    let (erased_ret, ret_span) = match &func.sig.output {
        ReturnType::Default => (syn::parse_quote!(()), func.sig.ident.span()),
        ReturnType::Type(_, ty) => {
            let mut erased = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut erased);
            (erased, ty.span())
        }
    };
    Ok(Checked {
        func,
        parent: parent.flatten(),
        erased_ret,
        ret_span,
    })
}

/// The parent: the parameter named by `parent = …`, else the one parameter typed
/// `Context`/`&Context`; two such parameters are an error.
fn find_parent(func: &mut ItemFn, args: Option<&Args>) -> syn::Result<Option<Parent>> {
    let named = args.and_then(|a| a.parent.as_ref());
    let mut found: Option<(usize, ParamKind)> = None;
    let mut chosen: Option<usize> = None;
    for (i, arg) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pat_ty) = arg else { continue };
        if let Some(named) = named {
            if matches!(&*pat_ty.pat, Pat::Ident(p) if p.ident == *named) {
                chosen = Some(i);
            }
            continue;
        }
        let Some(kind) = param_kind(&pat_ty.ty) else {
            continue;
        };
        if let Some((first, _)) = &found {
            let first_name = param_name(&func.sig.inputs[*first]);
            return Err(format_err!(
                pat_ty,
                "#[cancellable] found two `Context` parameters ({first_name} and {}) and cannot \
                 tell which one is the parent; name it: `#[cancellable(parent = {})]`",
                param_name(arg),
                first_name.trim_matches('`')
            ));
        }
        found = Some((i, kind));
    }
    let (index, kind) = match (named, chosen, found) {
        (Some(named), None, _) => {
            return Err(format_err!(
                named,
                "`parent = {named}` names no parameter of this fn; name the parameter that holds \
                 the parent `Context`"
            ))
        }
        (Some(_), Some(i), _) => {
            let FnArg::Typed(pat_ty) = &func.sig.inputs[i] else {
                return Ok(None);
            };
            (i, param_kind(&pat_ty.ty))
        }
        (None, _, Some((i, kind))) => (i, Some(kind)),
        (None, _, None) => return Ok(None),
    };
    let FnArg::Typed(pat_ty) = &mut func.sig.inputs[index] else {
        return Ok(None);
    };
    match &mut *pat_ty.pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            mutability,
            ident,
            subpat: None,
            ..
        }) => {
            // `mut` moves to the rebinding: the parameter itself is only read.
            let mutable = mutability.take().is_some();
            Ok(Some(Parent {
                binding: ident.clone(),
                rebind: kind.map(|kind| Rebind {
                    name: ident.clone(),
                    mutable,
                    kind,
                }),
            }))
        }
        Pat::Wild(wild) => {
            let binding = Ident::new("__context_parent", Span::mixed_site());
            let span = wild.span();
            *pat_ty.pat = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: Ident::new("__context_parent", span.resolved_at(Span::mixed_site())),
                subpat: None,
            });
            Ok(Some(Parent {
                binding,
                rebind: None,
            }))
        }
        other => Err(format_err!(
            other,
            "#[cancellable] rebinds the context parameter inside the body, so it needs a plain \
             name: write `ctx: {}`",
            quote::ToTokens::to_token_stream(&pat_ty.ty)
        )),
    }
}

/// `Context`, `&Context`, `&mut Context` (any path ending in `Context`, no generics).
fn param_kind(ty: &Type) -> Option<ParamKind> {
    match strip_parens(ty) {
        Type::Reference(TypeReference {
            mutability, elem, ..
        }) if is_context_path(elem) => Some(match mutability {
            Some(_) => ParamKind::RefMut((**elem).clone()),
            None => ParamKind::Ref((**elem).clone()),
        }),
        other if is_context_path(other) => Some(ParamKind::Owned(other.clone())),
        _ => None,
    }
}

fn is_context_path(ty: &Type) -> bool {
    match strip_parens(ty) {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|seg| seg.ident == "Context" && seg.arguments.is_none()),
        _ => false,
    }
}

fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip_parens(&inner.elem),
        Type::Group(inner) => strip_parens(&inner.elem),
        other => other,
    }
}

/// `` `ctx` `` for messages.
fn param_name(arg: &FnArg) -> String {
    match arg {
        FnArg::Typed(pat_ty) => format!(
            "`{}`",
            quote::ToTokens::to_token_stream(&pat_ty.pat)
                .to_string()
                .replace(' ', "")
        ),
        FnArg::Receiver(_) => "`self`".to_owned(),
    }
}

/// Replaces every `impl Trait` in a type with `_`, so the type can annotate a `let`.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(imp) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](imp.impl_token.span),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}
