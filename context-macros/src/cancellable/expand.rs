//! The rewrite. `EXPANSION.md` at the crate root shows its output for the main forms.
//!
//! Sync input:
//! ```text
//! #[cancellable(timeout = "2s")]
//! fn f(ctx: &Context) -> Result<T, E> { body }
//! ```
//! Sync output (`root` is `::go_context` or the `crate = "…"` path):
//! ```text
//! fn f(ctx: &Context) -> Result<T, E> {
//!     if false { let fake: Result<T, E> = loop {}; assert_cancel_return(&fake); return fake; }
//!     let __context_scope = root::__private::SyncScope::new(AsContext::as_context(&ctx), Some(2s));
//!     let __context_ctx = __context_scope.context();
//!     let ctx: &Context = __context_ctx;
//!     body, with `if let Some(e) = __context_ctx.err() { return cancelled(e); }` at loop heads
//! }
//! ```
//! Async output:
//! ```text
//! async fn f(ctx: &Context) -> Result<T, E> {
//!     let __context_scope = root::__private::AsyncScope::new(AsContext::as_context(&ctx), Some(2s));
//!     let __context_ctx = __context_scope.context();
//!     match root::__private::run(__context_ctx, async move {
//!         if false { /* fake return */ }
//!         let ctx: &Context = __context_ctx;
//!         body, with loop-head checks
//!     }).await {
//!         Ok(value) => value,
//!         Err(e) => cancelled(e),
//!     }
//! }
//! ```
//! Generated locals are `__context_*` with `Span::mixed_site()` hygiene, so user code can
//! neither see nor shadow them; user tokens keep their spans.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::{AttrStyle, Attribute};

use super::args::{Args, Timeout};
use super::check::{Checked, ParamKind};
use super::inject::inject_into_stmts;

/// `tokens` with every span (groups included) set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                tree = TokenTree::Group(new);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Lints the fake-return guard trips on purpose.
fn guard_allows() -> TokenStream {
    quote! {
        #[allow(
            unreachable_code,
            unused,
            clippy::diverging_sub_expression,
            clippy::let_unit_value,
            clippy::unreachable,
            clippy::let_with_type_underscore,
            clippy::empty_loop,
            clippy::needless_return
        )]
    }
}

/// The expansion of a checked fn.
pub(crate) fn expand(args: &Args, checked: Checked) -> TokenStream {
    let Checked {
        func,
        parent,
        erased_ret,
        ret_span,
    } = checked;
    let root = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::go_context),
    };
    let private = quote!(#root::__private);
    let mixed = Span::mixed_site();
    let scope = Ident::new("__context_scope", mixed);
    let ctx = Ident::new("__context_ctx", mixed);
    let err = Ident::new("__context_err", mixed);
    let fake = Ident::new("__context_fake", mixed);
    let value = Ident::new("__context_value", mixed);

    let timeout = match &args.timeout {
        None => quote!(::core::option::Option::None),
        Some(Timeout::Literal { duration, span }) => {
            let secs = duration.as_secs();
            let nanos = duration.subsec_nanos();
            quote_spanned! {*span=>
                ::core::option::Option::Some(#private::Duration::new(#secs, #nanos))
            }
        }
        Some(t @ Timeout::Expr(expr)) => quote_spanned! {t.span()=>
            ::core::option::Option::Some::<#private::Duration>(#expr)
        },
    };
    let parent_expr = match &parent {
        Some(parent) => {
            let binding = &parent.binding;
            quote!(#private::AsContext::as_context(&#binding))
        }
        None => quote!(&#private::Context::current()),
    };
    let rebind = parent.as_ref().and_then(|p| p.rebind.as_ref()).map(|r| {
        let name = &r.name;
        let mutability = r.mutable.then(|| quote!(mut));
        let (ty, init) = match &r.kind {
            ParamKind::Owned(ty) => (quote!(#ty), quote!(::core::clone::Clone::clone(#ctx))),
            ParamKind::Ref(elem) => (quote!(&#elem), quote!(#ctx)),
            ParamKind::RefMut(elem) => (
                quote!(&mut #elem),
                quote!(&mut ::core::clone::Clone::clone(#ctx)),
            ),
        };
        quote! {
            #[allow(unused_variables, unused_mut)]
            let #mutability #name: #ty = #init;
        }
    });

    // Cancellation values: located at the return type (resolved at the call site), so an
    // unsupported type is reported there, once: every site writes the same call with the same
    // spans, and rustc merges identical diagnostics.
    let at_ret = Span::call_site().located_at(ret_span);
    let private_at_ret = respan(private.clone(), at_ret);
    let cancelled = quote_spanned! {at_ret=> #private_at_ret::cancelled(#err) };
    let allows = guard_allows();
    // The fake return pins inference to the declared type (as tracing-attributes does); the
    // second block checks that the type has a cancellation value even without loops.
    let fake_return = quote! {
        #allows
        if false {
            let #fake: #erased_ret = loop {};
            return #fake;
        }
        #allows
        if false {
            let #err = #private::Error::Canceled;
            return #cancelled;
        }
    };
    let check = quote! {
        if let ::core::option::Option::Some(#err) = #private::Context::err(#ctx) {
            return #cancelled;
        }
    };

    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let (inner_attrs, outer_attrs): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    let mut stmts = block.stmts;
    inject_into_stmts(&mut stmts, &check);
    let brace = block.brace_token;

    let mut body = TokenStream::new();
    if sig.asyncness.is_none() {
        body.extend(quote! {
            #(#inner_attrs)*
            #fake_return
            let #scope = #private::SyncScope::new(#parent_expr, #timeout);
            let #ctx: &#private::Context = #scope.context();
            #rebind
            #(#stmts)*
        });
    } else {
        let result = quote_spanned! {at_ret=>
            match #private::run(#ctx, async move {
                #fake_return
                #rebind
                #(#stmts)*
            }).await {
                ::core::result::Result::Ok(#value) => #value,
                ::core::result::Result::Err(#err) => #cancelled,
            }
        };
        body.extend(quote! {
            #(#inner_attrs)*
            let #scope = #private::AsyncScope::new(#parent_expr, #timeout);
            let #ctx: &#private::Context = #scope.context();
            #result
        });
    }
    let mut out = quote!(#(#outer_attrs)* #vis #sig);
    brace.surround(&mut out, |tokens| tokens.extend(body));
    out
}
