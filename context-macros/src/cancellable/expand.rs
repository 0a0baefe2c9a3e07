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
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Pat};

use super::args::{Args, Timeout};
use super::check::{Checked, Move, ParentChoice};
use super::inject::{body_has_select_done, inject_into_stmts};

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

/// Whether `ident` occurs in `tokens`, at any depth.
fn mentioned(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentioned(&g.stream(), ident),
        _ => false,
    })
}

/// Whether `pat` binds anything by `ref mut`.
fn has_ref_mut(pat: &Pat) -> bool {
    struct Find(bool);
    impl syn::visit_mut::VisitMut for Find {
        fn visit_pat_ident_mut(&mut self, pat: &mut syn::PatIdent) {
            self.0 |= pat.by_ref.is_some() && pat.mutability.is_some();
            syn::visit_mut::visit_pat_ident_mut(self, pat);
        }
    }
    let mut find = Find(false);
    syn::visit_mut::VisitMut::visit_pat_mut(&mut find, &mut pat.clone());
    find.0
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
        params,
        moves,
        erased_ret,
        ret_has_impl,
        ret_span,
    } = checked;
    let root = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => crate::root::found_root(),
    };
    let private = quote!(#root::__private);
    let mixed = Span::mixed_site();
    let scope = Ident::new("__context_scope", mixed);
    let ctx = Ident::new("__context_ctx", mixed);
    let child = Ident::new("__context_child", mixed);
    let cancel = Ident::new("__context_cancel", mixed);
    let err = Ident::new("__context_err", mixed);
    let fake = Ident::new("__context_fake", mixed);
    let value = Ident::new("__context_value", mixed);
    let output = Ident::new("__context_output", mixed);
    let found = Ident::new("__context_found", mixed);
    let tiers = quote! {
        #[allow(unused_imports)]
        use #private::{ContextParam as _, MutContextParam as _, OtherParam as _};
    };

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

    // The parent, as a `ParentRef`: by type among the parameters, or as named.
    let probe_at = |binding: &Ident, span: Span| {
        let at = Span::call_site().located_at(span);
        let private_at = respan(private.clone(), at);
        quote_spanned! {at=> (&&&#private_at::probe(&#binding)).__context_parent(&#binding) }
    };
    let parent_var = Ident::new("__context_parent_ref", mixed);
    let parent_ref = match &parent {
        ParentChoice::ByType => {
            // One statement per parameter, so that a `#[cfg]`-gated one is probed only if it
            // exists.
            let mut fold = quote!(let #found = #private::NotFound;);
            for param in &params {
                let at = Span::call_site().located_at(param.span);
                let private_at = respan(private.clone(), at);
                let probe = probe_at(&param.binding, param.span);
                let gate = &param.gate;
                fold.extend(quote_spanned! {at=>
                    #(#gate)*
                    let #found = #private_at::Either::either((#found, #probe));
                });
            }
            quote!(#fold let #parent_var = #private::Resolve::resolve(#found);)
        }
        ParentChoice::Param(index) => {
            let param = &params[*index];
            let probe = probe_at(&param.binding, param.span);
            quote!(let #parent_var = #private::named_parent(#probe);)
        }
        ParentChoice::Expr(expr) => {
            let at = Span::call_site().located_at(expr.span());
            let private_at = respan(private.clone(), at);
            quote_spanned! {at=>
                let #found = &(#expr);
                let #parent_var =
                    #private_at::named_parent((&&&#private_at::probe(#found)).__context_parent(#found));
            }
        }
    };
    // The child is made spanned at the fn's name: `child` is `#[track_caller]`, so a deadline's
    // cause names the user's fn.
    let at_name = Span::call_site().located_at(func.sig.ident.span());
    let private_at_name = respan(private.clone(), at_name);
    let make_child = {
        let call = quote_spanned! {at_name=>
            #private_at_name::child(#private::ParentRef::get(&#parent_var), #timeout)
        };
        quote! {{
            #tiers
            #parent_ref
            #call
        }}
    };
    let args_tokens = {
        let mut tokens = TokenStream::new();
        if let Some(Timeout::Expr(expr)) = &args.timeout {
            expr.to_tokens(&mut tokens);
        }
        if let ParentChoice::Expr(expr) = &parent {
            expr.to_tokens(&mut tokens);
        }
        tokens
    };
    // Every parameter becomes a local, in declaration order, so they drop in reverse order
    // after the body's locals, as parameters do.
    let rebinds: Vec<TokenStream> = moves
        .iter()
        .map(|m| {
            let param = match m {
                Move::Param(index) => &params[*index],
                Move::Pattern {
                    pat,
                    hidden,
                    gate,
                    lints,
                } => {
                    // Moved into a local first: `let _ = x;` and `let ref y = x;` would not
                    // move `x`, which would then drop after every local. A `ref mut` binding
                    // borrows that local mutably, so it is `mut` then (as a parameter's place
                    // is).
                    let mutability = has_ref_mut(pat).then(|| quote!(mut));
                    return match &**pat {
                        Pat::Wild(_) => quote! { #(#gate)* let #hidden = #hidden; },
                        pat => quote! {
                            #(#gate)* let #mutability #hidden = #hidden;
                            #(#gate)* #(#lints)* let #pat = #hidden;
                        },
                    };
                }
            };
            let (gate, lints) = (&param.gate, &param.lints);
            let name = &param.binding;
            let mutability = param.mutable.then(|| quote!(mut));
            let at = Span::call_site().located_at(param.span);
            let private_at = respan(private.clone(), at);
            // A parameter used by `timeout = …` or `parent = …` is used even if the body does
            // not use it; otherwise an unused one warns as it would without the macro.
            let allow = mentioned(&args_tokens, name).then(|| quote!(#[allow(unused_variables)]));
            if param.by_type {
                quote_spanned! {at=>
                    #allow
                    #(#gate)* #(#lints)*
                    let #mutability #name = {
                        #tiers
                        (&&&#private_at::probe(&#name)).__context_rebind(#name, #ctx)
                    };
                }
            } else {
                quote_spanned! {at=>
                    #allow
                    #(#gate)* #(#lints)*
                    let #mutability #name = #name;
                }
            }
        })
        .collect();

    // Cancellation values: located at the return type (resolved at the call site), so an
    // unsupported type is reported there, once: every site writes the same call with the same
    // spans, and rustc merges identical diagnostics.
    let at_ret = Span::call_site().located_at(ret_span);
    let private_at_ret = respan(private.clone(), at_ret);
    let cancelled = quote_spanned! {at_ret=> #private_at_ret::cancelled(#err) };
    let allows = guard_allows();
    let check_return = (!ret_has_impl).then(|| {
        let private_at_ret = respan(private.clone(), at_ret);
        quote_spanned! {at_ret=> (&&#private_at_ret::probe(&#fake)).__context_return_check(&#fake); }
    });
    // The fake return pins inference to the declared type (as tracing-attributes does); the
    // second block checks that the type has a cancellation value even without loops.
    let fake_return = quote! {
        #allows
        if false {
            let #fake: #erased_ret = loop {};
            {
                #[allow(unused_imports)]
                use #private::{ReturnsContext as _, ReturnsOther as _};
                #check_return
            }
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
    let has_select = body_has_select_done(&mut stmts);
    inject_into_stmts(&mut stmts, &check);
    let brace = block.brace_token;
    // The body as a block of its own whose value is bound before the rebound parameters go:
    // the temporaries of its last expression (`m.lock().unwrap()`) drop at the end of that
    // `let`, as they drop before the parameters without the macro (a block's own locals drop
    // before its tail's temporaries). Typed as the return type, so that the expected type
    // still reaches the body's last expression (coercions such as `Some(Box::new(e))` to
    // `Option<Box<dyn Error>>`).
    let user_body = quote! {
        #[allow(clippy::let_and_return, clippy::let_unit_value, clippy::let_with_type_underscore)]
        let #output: #erased_ret = { #(#stmts)* };
        #[allow(unreachable_code)]
        #output
    };

    let mut body = TokenStream::new();
    if sig.asyncness.is_none() {
        // The rebound parameters are declared before the scope, so they drop after it (as
        // parameters drop after the body): the child is cancelled and the caller's current
        // context is back before their `Drop`s run.
        body.extend(quote! {
            #(#inner_attrs)*
            #fake_return
            let (#child, #cancel) = #make_child;
            let #ctx: &#private::Context = &#child;
            #(#rebinds)*
            let #scope = #private::SyncScope::new(#ctx, #cancel);
            #user_body
        });
    } else {
        let inner = quote! {
            async move {
                #fake_return
                #(#rebinds)*
                #user_body
            }
        };
        // A body that holds a `select_done!` is not raced against `done()`: that select is its
        // checkpoint, and racing would drop the body before its done branch runs.
        let result = if has_select {
            quote_spanned! {at_ret=> #private::scoped(#ctx, #inner).await }
        } else {
            quote_spanned! {at_ret=>
                match #private::run(#ctx, #inner).await {
                    ::core::result::Result::Ok(#value) => #value,
                    ::core::result::Result::Err(#err) => #cancelled,
                }
            }
        };
        // Bound to a local, not left as the fn's tail: the awaited future (a temporary) then
        // drops at the end of this `let`, before the scope, in every edition (as a tail it
        // dropped after the scope in 2021 and before it in 2024, so `tail_expr_drop_order`
        // fired on every async fn of a crate migrating to 2024).
        let returned = Ident::new("__context_returned", mixed);
        body.extend(quote! {
            #(#inner_attrs)*
            let #scope = #private::AsyncScope::new(#make_child);
            let #ctx: &#private::Context = #scope.context();
            #[allow(clippy::let_and_return, clippy::let_unit_value, clippy::let_with_type_underscore)]
            let #returned: #erased_ret = #result;
            #[allow(unreachable_code)]
            #returned
        });
    }
    let mut out = quote!(#(#outer_attrs)* #vis #sig);
    brace.surround(&mut out, |tokens| tokens.extend(body));
    out
}
