//! `#[cancellable]`: parse → check → expand.
//!
//! - [`args`]: the attribute's arguments (`timeout`, `parent`, `crate`).
//! - [`check`]: what the fn must look like; finds the parent context parameter and the return
//!   type to pin.
//! - [`inject`]: the loop-head checks, stopping at closures, `async` blocks, nested items and
//!   macro calls.
//! - [`expand`]: the sync and async rewrites.
//!
//! Any error gives back the original item unchanged, followed by the errors (recovery), so
//! that follow-on errors (such as "cannot find function") do not pile up.

mod args;
mod check;
mod expand;
mod inject;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Block, Expr, Item, ItemFn, Signature, Stmt, TraitItemFn, Visibility};

use crate::error::{format_err, Errors};

/// The entry point: expansion, or the original item plus every error.
pub(crate) fn cancellable(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_cancellable(args, item.clone()) {
        Ok(expanded) => expanded,
        Err(err) => {
            let mut out = item;
            out.extend(err.into_compile_error());
            out
        }
    }
}

fn try_cancellable(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = errors.take(args::Args::parse(args));
    let func = parse_fn(item);
    let func = errors.take(func);
    let checked = match &func {
        Some(func) => errors.take(check::check(func, args.as_ref())),
        None => None,
    };
    errors.finish()?;
    match (args, checked) {
        (Some(args), Some(checked)) => Ok(expand::expand(&args, checked)),
        // `finish` returned `Ok`, so every step succeeded.
        _ => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "internal error in #[cancellable]: no result and no error",
        )),
    }
}

/// The annotated item as a fn with a body; a clear error for anything else.
fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    let fn_err = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => return Ok(func),
        Err(err) => err,
    };
    // Speculative path: the signature parses but the body does not. Expand around the body as
    // opaque tokens (no loop checks), so that rustc reports the user's real syntax error.
    if let Ok(func) = syn::parse2::<MaybeItemFn>(item.clone()) {
        return Ok(func.into_item_fn());
    }
    if let Ok(method) = syn::parse2::<TraitItemFn>(item.clone()) {
        if method.default.is_none() {
            return Err(format_err!(
                method.semi_token,
                "#[cancellable] needs a fn body: put it on the method's implementation, or give \
                 the trait method a default body"
            ));
        }
    }
    match syn::parse2::<Item>(item) {
        Ok(Item::Fn(_)) | Err(_) => Err(fn_err),
        Ok(other) => {
            let (what, at) = describe(&other);
            Err(syn::Error::new(
                at,
                format!(
                    "#[cancellable] applies to fns and methods, not to {what}; put it on the fn \
                     whose body should run under a child context"
                ),
            ))
        }
    }
}

/// "a struct", and the span of its keyword, for the non-fn error.
fn describe(item: &Item) -> (&'static str, proc_macro2::Span) {
    match item {
        Item::Struct(i) => ("a struct", i.struct_token.span),
        Item::Enum(i) => ("an enum", i.enum_token.span),
        Item::Union(i) => ("a union", i.union_token.span),
        Item::Impl(i) => (
            "an impl block (put it on each method instead)",
            i.impl_token.span,
        ),
        Item::Trait(i) => (
            "a trait (put it on each default method instead)",
            i.trait_token.span,
        ),
        Item::Mod(i) => ("a module", i.mod_token.span),
        Item::Const(i) => ("a const", i.const_token.span),
        Item::Static(i) => ("a static", i.static_token.span),
        Item::Type(i) => ("a type alias", i.type_token.span),
        Item::Use(i) => ("a use declaration", i.use_token.span),
        other => ("this item", other.to_token_stream().span()),
    }
}

/// A fn whose body is kept as raw tokens (tracing-attributes' `MaybeItemFn`).
struct MaybeItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    brace: syn::token::Brace,
    body: TokenStream,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = syn::braced!(content in input);
        let body = content.parse()?;
        Ok(MaybeItemFn {
            attrs,
            vis,
            sig,
            brace,
            body,
        })
    }
}

impl MaybeItemFn {
    /// An `ItemFn` whose body is one opaque statement.
    fn into_item_fn(self) -> ItemFn {
        ItemFn {
            attrs: self.attrs,
            vis: self.vis,
            sig: self.sig,
            block: Box::new(Block {
                brace_token: self.brace,
                stmts: vec![Stmt::Expr(Expr::Verbatim(self.body), None)],
            }),
        }
    }
}
