//! `select_done!`: parse → check → expand, in one module (it is small).
//!
//! Grammar (branches are separated by `,`; a `{ … }` body needs no comma, as in `match`):
//! ```text
//! branch := [pat =] done [( ctx )] => body   // Go: case <-ctx.Done():
//!         | pat = future => body              // Go: case v := <-ch:   (async form only)
//!         | default => body                   // Go: default:
//! ```
//! With only `done` and `default` branches it is the sync form: an expression with no
//! `.await`. With one or more future branches it is the async form: an expression that
//! `.await`s, usable only in async code.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{token, Expr, Pat, Token};

use crate::error::Errors;

/// The forms, for error messages.
const FORMS: &str = "expected `done => …`, `err = done => …`, `done(ctx) => …`, \
                     `pattern = future => …` or `default => …`";

/// The entry point: expansion, or the errors (there is no item to recover here). `private` is
/// the path of go-context's `__private` module, as the front door found it.
pub(crate) fn select_done(input: TokenStream, private: &TokenStream) -> TokenStream {
    syn::parse2::<Select>(input)
        .and_then(|select| select.check())
        .map(|checked| checked.expand(private))
        .unwrap_or_else(syn::Error::into_compile_error)
}

struct Select {
    branches: Vec<Branch>,
}

struct Branch {
    kind: Kind,
    /// The branch head, for errors.
    span: Span,
    body: Expr,
}

enum Kind {
    Done { pat: Option<Pat>, ctx: Option<Expr> },
    Future { pat: Pat, future: Expr },
    Default,
}

impl Parse for Select {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut branches = Vec::new();
        while !input.is_empty() {
            branches.push(input.parse()?);
        }
        Ok(Select { branches })
    }
}

impl Parse for Branch {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let span = input.span();
        let unknown = || syn::Error::new(span, format!("unknown select_done! branch; {FORMS}"));
        let kind = if input.peek(Token![default]) && input.peek2(Token![=>]) {
            input.parse::<Token![default]>()?;
            Kind::Default
        } else if let Some(ctx) = parse_done(input)? {
            Kind::Done { pat: None, ctx }
        } else {
            if let Some(err) = go_style_done(input) {
                return Err(err);
            }
            // Or-patterns are irrefutable too (`Ok(v) | Err(v) = fut`), as in `let`.
            if let Some(err) = future_without_pattern(input) {
                return Err(err);
            }
            let pat = Pat::parse_multi_with_leading_vert(input).map_err(|_| unknown())?;
            if !input.peek(Token![=]) || input.peek(Token![=>]) {
                return Err(unknown());
            }
            input.parse::<Token![=]>()?;
            match parse_done(input)? {
                Some(ctx) => Kind::Done {
                    pat: Some(pat),
                    ctx,
                },
                None => Kind::Future {
                    pat,
                    future: input.parse()?,
                },
            }
        };
        let arrow = input.parse::<Token![=>]>().map_err(|err| {
            syn::Error::new(
                err.span(),
                format!("expected `=>` after the branch head; {FORMS}"),
            )
        })?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(syn::Error::new_spanned(
                arrow,
                "expected the branch's body after `=>`: an expression, or `{ … }` (`{}` to do \
                 nothing)",
            ));
        }
        let body = if input.peek(token::Brace) {
            let block: syn::ExprBlock = input.parse()?;
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
            Expr::Block(block)
        } else {
            let body: Expr = input.parse()?;
            if !input.is_empty() {
                input.parse::<Token![,]>().map_err(|err| {
                    syn::Error::new(
                        err.span(),
                        "expected `,` after this branch's body (or wrap it in `{ … }`)",
                    )
                })?;
            }
            body
        };
        Ok(Branch { kind, span, body })
    }
}

/// `ctx.done() => …`, as Go's `case <-ctx.Done():` reads: an error that shows the spelling.
fn go_style_done(input: ParseStream<'_>) -> Option<syn::Error> {
    let fork = input.fork();
    match fork.parse::<Expr>() {
        Ok(Expr::MethodCall(call))
            if call.method == "done" && call.args.is_empty() && fork.peek(Token![=>]) =>
        {
            let receiver = quote::ToTokens::to_token_stream(&call.receiver).to_string();
            Some(syn::Error::new_spanned(
                &call,
                format!(
                    "select_done! spells Go's `case <-ctx.Done():` as `done({receiver}) => …` \
                     (or `err = done({receiver}) => …` to bind the error)"
                ),
            ))
        }
        _ => None,
    }
}

/// `fetch() => …`, a future with no pattern: an error that shows `_ = fetch() => …`. Only a
/// call, a method call, an async block or an `.await` is taken; a bare name (`foo => …`)
/// stays "unknown branch". A branch with a pattern (`v = fut`) parses as an assignment here,
/// so it is never taken.
fn future_without_pattern(input: ParseStream<'_>) -> Option<syn::Error> {
    let fork = input.fork();
    let expr = fork.parse::<Expr>().ok()?;
    if !fork.peek(Token![=>]) {
        return None;
    }
    let future = quote::ToTokens::to_token_stream(&expr).to_string();
    match expr {
        Expr::Call(_) | Expr::MethodCall(_) | Expr::Async(_) | Expr::Await(_) => {
            Some(syn::Error::new_spanned(
                &expr,
                format!(
                    "a future branch binds what the future gives to a pattern: write \
                     `v = {future} => …`, or `_ = {future} => …` to ignore it"
                ),
            ))
        }
        _ => None,
    }
}

/// `done` or `done(ctx)` followed by `=>`: `Some(ctx)`; anything else: `None`, consuming
/// nothing.
fn parse_done(input: ParseStream<'_>) -> syn::Result<Option<Option<Expr>>> {
    let fork = input.fork();
    match fork.parse::<Ident>() {
        Ok(ident) if ident == "done" => {}
        _ => return Ok(None),
    }
    let ctx = if fork.peek(token::Paren) {
        let content;
        let paren = syn::parenthesized!(content in fork);
        if !fork.peek(Token![=>]) {
            return Ok(None);
        }
        if content.is_empty() {
            return Err(syn::Error::new(
                paren.span.join(),
                "`done()` names no context: write `done => …` for the current context, or \
                 `done(ctx) => …`",
            ));
        }
        let ctx = content.parse::<Expr>()?;
        if !content.is_empty() {
            return Err(content.error(
                "`done(…)` takes one context: write `done(ctx) => …` (a select_done! has one \
                 done branch)",
            ));
        }
        Some(ctx)
    } else {
        None
    };
    if !fork.peek(Token![=>]) {
        return Ok(None);
    }
    use syn::parse::discouraged::Speculative;
    input.advance_to(&fork);
    Ok(Some(ctx))
}

/// A select with exactly one done branch, at most one default, and something else.
struct Checked {
    done_pat: Option<Pat>,
    done_ctx: Option<Expr>,
    done_body: Expr,
    futures: Vec<(Pat, Expr, Expr)>,
    /// How many future branches are written before the done branch: the operands are
    /// evaluated in written order, as Go's select evaluates its cases.
    done_at: usize,
    default: Option<Expr>,
}

impl Select {
    fn check(self) -> syn::Result<Checked> {
        if self.branches.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "select_done! needs branches: a `done => …` branch plus a `default => …` branch \
                 (sync) or `pattern = future => …` branches (async), e.g. \
                 `select_done! { done => return, default => work() }`",
            ));
        }
        let mut errors = Errors::default();
        let mut done = None;
        let mut default = None;
        let mut futures = Vec::new();
        for branch in self.branches {
            match branch.kind {
                Kind::Done { pat, ctx } => {
                    if done.is_some() {
                        errors.push(syn::Error::new(
                            branch.span,
                            "select_done! takes one `done` branch; merge the two bodies",
                        ));
                    }
                    done = Some((pat, ctx, branch.body, futures.len()));
                }
                Kind::Default => {
                    if default.is_some() {
                        errors.push(syn::Error::new(
                            branch.span,
                            "select_done! takes one `default` branch; merge the two bodies",
                        ));
                    }
                    default = Some(branch.body);
                }
                Kind::Future { pat, future } => futures.push((pat, future, branch.body)),
            }
        }
        let Some((done_pat, done_ctx, done_body, done_at)) = done else {
            errors.push(syn::Error::new(
                Span::call_site(),
                "select_done! needs a `done => …` branch (Go's `case <-ctx.Done():`); add one, \
                 e.g. `done => return,` or `err = done(ctx) => return Err(err.into()),`",
            ));
            return Err(errors.finish().err().unwrap_or_else(|| {
                syn::Error::new(Span::call_site(), "select_done! needs a `done` branch")
            }));
        };
        if default.is_none() && futures.is_empty() {
            errors.push(syn::Error::new(
                done_body.span(),
                "a select_done! with only a `done` branch just waits: write `ctx.wait()` on a \
                 thread or `ctx.done().await` in async code, or add a `default => …` branch",
            ));
        }
        errors.finish()?;
        Ok(Checked {
            done_pat,
            done_ctx,
            done_body,
            futures,
            done_at,
            default,
        })
    }
}

impl Checked {
    fn expand(self, private: &TokenStream) -> TokenStream {
        let mixed = Span::mixed_site();
        let err = Ident::new("__context_err", mixed);
        let done_arm = bind_then(self.done_pat.as_ref(), &err, &self.done_body);
        // With no pattern the error is not bound at all (an unused binding would warn).
        let done_bind = match &self.done_pat {
            Some(_) => quote!(#err),
            None => quote!(_),
        };
        let ctx_ref = match &self.done_ctx {
            Some(ctx) => quote_spanned! {ctx.span()=> #private::AsContext::as_context(&(#ctx)) },
            None => quote!(&#private::Context::current()),
        };
        if self.futures.is_empty() {
            // Sync form: one atomic load (no clone of the current context), then one branch.
            let default = self.default.as_ref().map(|body| quote!(#body));
            let err_now = match &self.done_ctx {
                Some(_) => quote!(#private::Context::err(#ctx_ref)),
                None => quote!(#private::current_err()),
            };
            return quote! {
                match #err_now {
                    ::core::option::Option::Some(#done_bind) => #done_arm,
                    ::core::option::Option::None => #default,
                }
            };
        }
        // Async form: done first, then every future in written order, then default.
        let out = Ident::new("__ContextSelect", mixed);
        let done = Ident::new("__context_done", mixed);
        let cx = Ident::new("__context_cx", mixed);
        let value = Ident::new("__context_value", mixed);
        let n = self.futures.len();
        // Each operand's pinned local and the ends of the operand: the calls made on it span
        // the operand exactly (first token to last, the user's own spans), so an operand that
        // is not a future is one error there, not once more over the whole macro.
        let pins: Vec<(Ident, Span, Span)> = self
            .futures
            .iter()
            .enumerate()
            .map(|(i, (_, fut, _))| {
                let (first, last) = ends(fut);
                let var = Ident::new(&format!("__context_future{i}"), first);
                (var, first, last)
            })
            .collect();
        let variants: Vec<Ident> = (0..n)
            .map(|i| {
                let mut v = format_ident!("Branch{}", i);
                v.set_span(mixed);
                v
            })
            .collect();
        let params: Vec<Ident> = (0..n)
            .map(|i| Ident::new(&format!("__T{i}"), mixed))
            .collect();
        // The operands in written order: the futures before the done branch, its context,
        // then the rest.
        let pinned: Vec<TokenStream> = self
            .futures
            .iter()
            .zip(&pins)
            .map(|((_, fut, _), (var, first, last))| {
                let path = quote_spanned! {*first=> ::core::future::IntoFuture:: };
                let call = quote_spanned! {*last=> into_future(#fut) };
                quote! {
                    let mut #var = ::core::pin::pin!(#path #call);
                }
            })
            .collect();
        // `Pin::as_mut(&mut pinned)`, spanned as the `into_future` call above.
        let polled: Vec<TokenStream> = pins
            .iter()
            .map(|(var, first, last)| {
                let path = quote_spanned! {*first=> ::core::pin::Pin:: };
                let call = quote_spanned! {*last=> as_mut(&mut #var) };
                quote! { #path #call }
            })
            .collect();
        let (before, after) = pinned.split_at(self.done_at);
        let arms = self
            .futures
            .iter()
            .zip(&variants)
            .map(|((pat, _, body), v)| {
                let arm = bind_then(Some(pat), &value, body);
                quote! { #out::#v(#value) => #arm, }
            });
        let (default_variant, default_poll, default_arm) = match &self.default {
            Some(body) => (
                quote!(Default,),
                quote!(::core::task::Poll::Ready(#out::Default)),
                quote!(#out::Default => #body,),
            ),
            None => (quote!(), quote!(::core::task::Poll::Pending), quote!()),
        };
        // The `.await` at the first future branch's operand, which is what makes this select
        // async: in a sync fn rustc's "`await` is only allowed inside `async` functions and
        // blocks" points there (and at the fn, "this is not `async`"), not at the whole macro.
        let await_ = {
            let (first, _) = ends(&self.futures[0].1);
            quote_spanned! {first=> .await }
        };
        let d = Ident::new("__D", mixed);
        let chosen = Ident::new("__context_chosen", mixed);
        // The futures are dropped before the chosen body runs, so it may use what they borrowed.
        quote! {{
            #[allow(clippy::large_enum_variant)]
            enum #out<#d, #(#params),*> { Done(#d), #(#variants(#params),)* #default_variant }
            let #chosen = {
                #(#before)*
                // `Done` is `!Unpin` (its waiter entry lives inside it): pinned on the stack.
                let mut #done = ::core::pin::pin!(#private::Context::done(#ctx_ref));
                #(#after)*
                ::core::future::poll_fn(|#cx| {
                if let ::core::task::Poll::Ready(#err) =
                    ::core::future::Future::poll(::core::pin::Pin::as_mut(&mut #done), #cx)
                {
                    return ::core::task::Poll::Ready(#out::Done(#err));
                }
                #(
                    if let ::core::task::Poll::Ready(#value) =
                        ::core::future::Future::poll(#polled, #cx)
                    {
                        return ::core::task::Poll::Ready(#out::#variants(#value));
                    }
                )*
                #default_poll
                })
                #await_
            };
            match #chosen {
                #out::Done(#done_bind) => #done_arm,
                #(#arms)*
                #default_arm
            }
        }}
    }
}

/// The spans of the first and the last token of `expr`.
fn ends(expr: &Expr) -> (Span, Span) {
    let mut tokens = quote::ToTokens::to_token_stream(expr).into_iter();
    let first = tokens.next().map_or_else(|| expr.span(), |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    (first, last)
}

/// The arm body that binds `value` to the user's `pat` (if any) and runs `body`.
///
/// A `{ … }` body is spliced into the block that holds the `let`, not nested in it: a block
/// whose only content is the user's block would make `unused_braces` fire on the user's braces.
/// The `let` (not a match arm) keeps rustc's "refutable pattern in local binding" error for a
/// refutable pattern.
fn bind_then(pat: Option<&Pat>, value: &Ident, body: &Expr) -> TokenStream {
    let Some(pat) = pat else {
        return quote!(#body);
    };
    // The value is located at the pattern's end, so that rustc's `let … else` hint for a refutable pattern
    // lands after the pattern, not inside it or in go-context's front door.
    let end = quote::ToTokens::to_token_stream(pat)
        .into_iter()
        .last()
        .map_or_else(|| pat.span(), |tree| tree.span());
    let value = Ident::new(&value.to_string(), Span::mixed_site().located_at(end));
    // Only the value is located there: the `let` stays generated code, which lints skip.
    // A `let` takes a top-level or-pattern only in parentheses.
    let bind = match pat {
        Pat::Or(_) => quote! { let (#pat) = #value; },
        _ => quote! { let #pat = #value; },
    };
    match body {
        Expr::Block(block) if block.attrs.is_empty() && block.label.is_none() => {
            let stmts = &block.block.stmts;
            let mut out = quote! { #bind #(#stmts)* };
            let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, out);
            group.set_span(block.block.brace_token.span.join());
            out = TokenStream::from(proc_macro2::TokenTree::Group(group));
            out
        }
        other => quote! {{ #bind #other }},
    }
}
