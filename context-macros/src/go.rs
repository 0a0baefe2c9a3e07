//! `go!`: parse, check, expand.
//!
//! ```text
//! go!( [in <parent>,] <work> )     a new child of <parent> (default: Context::current())
//! go!( <group> => <work> )         a member of a go_context::Group
//!
//! <work> := [move] [async] |<pat>[: Context]| <expr>   the child context handed over
//!         | <callee>(<args>)  | <receiver>.<method>(<args>)
//!                                 Go's `go f(x)`: callee, receiver and args evaluated here
//!         | async { .. } | { .. } | <macro>!(..)       run entirely in the spawned work
//!         | <any other expression>                      evaluated here; must be a future
//! ```
//!
//! No two forms overlap: an expression never starts with the keyword `in`, never contains a
//! top-level `=>`, and a closure is never itself the work (it would not run), so a closure
//! always means "hand me the child context".

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprClosure, Pat, Token, Type};

/// Where the work goes.
enum Target {
    /// A child of `Context::current()`.
    Current,
    /// `in <expr>,`: a child of this context.
    Parent(Expr),
    /// `<expr> =>`: a member of this group.
    Group(Expr),
}

struct GoInput {
    target: Target,
    work: Expr,
}

const FORMS: &str = "write `go!(f(args))`, `go!(in parent_ctx, f(args))`, \
                     `go!(|ctx| f(ctx, args))` or `go!(group => f(args))`";

impl Parse for GoInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                format!("`go!` needs the work to spawn: {FORMS}"),
            ));
        }
        let target = if input.peek(Token![in]) {
            let in_token: Token![in] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new(
                    in_token.span,
                    "`in` needs the parent context: write `go!(in parent_ctx, f(args))`",
                ));
            }
            let parent: Expr = input.parse()?;
            if !input.peek(Token![,]) {
                return Err(input.error(
                    "expected `,` after the parent context: write `go!(in parent_ctx, f(args))`",
                ));
            }
            let comma: Token![,] = input.parse()?;
            if input.is_empty() {
                return Err(syn::Error::new_spanned(
                    quote!(#in_token #parent #comma),
                    "`go!(in parent, …)` needs the work to spawn after the `,`: write \
                     `go!(in parent_ctx, f(args))`",
                ));
            }
            Target::Parent(parent)
        } else {
            let first: Expr = input.parse()?;
            if input.peek(Token![=>]) {
                let arrow: Token![=>] = input.parse()?;
                if let Expr::Closure(c) = &first {
                    return Err(syn::Error::new(
                        c.span(),
                        "the group goes before `=>` and the work after it: write `go!(group => |ctx| f(ctx))`",
                    ));
                }
                if input.is_empty() {
                    return Err(syn::Error::new_spanned(
                        arrow,
                        "`=>` needs the work to spawn into the group: write `go!(group => f(args))`",
                    ));
                }
                Target::Group(first)
            } else {
                finish(input)?;
                return Ok(GoInput {
                    target: Target::Current,
                    work: first,
                });
            }
        };
        if input.is_empty() {
            return Err(input.error(format!(
                "`go!` needs the work to spawn after the target: {FORMS}"
            )));
        }
        if input.peek(Token![in]) {
            return Err(input.error(
                "`in` comes first, and a group already has its context: write `go!(in ctx, f())` or `go!(group => f())`",
            ));
        }
        let work: Expr = input.parse()?;
        if matches!(target, Target::Parent(_)) && input.peek(Token![=>]) {
            return Err(input.error(
                "a group carries its own context, so it takes no `in`: write `go!(group => f(args))`",
            ));
        }
        finish(input)?;
        Ok(GoInput { target, work })
    }
}

/// Accepts an optional trailing comma, then nothing.
fn finish(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            return Ok(());
        }
        return Err(input.error(
            "`go!` spawns one piece of work: use one `go!` per call, or spawn a block: `go!(async move { a().await; b().await })`",
        ));
    }
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error(format!("unexpected tokens after the work: {FORMS}")))
    }
}

/// Strips parentheses and invisible groups (from `macro_rules!` fragments) around `e`.
fn peel(mut e: Expr) -> Expr {
    loop {
        e = match e {
            Expr::Paren(p) => *p.expr,
            Expr::Group(g) => *g.expr,
            other => return other,
        }
    }
}

/// The expansion of `go!(<input>)`; `private` is the path to `go_context::__private`.
pub(crate) fn expand(input: TokenStream, private: &TokenStream) -> TokenStream {
    match syn::parse2::<GoInput>(input).and_then(|input| generate(input, private)) {
        Ok(tokens) => tokens,
        Err(e) => e.into_compile_error(),
    }
}

fn generate(input: GoInput, private: &TokenStream) -> syn::Result<TokenStream> {
    let work = peel(input.work);
    let span = work.span();
    let site = Span::mixed_site();
    let work_var = format_ident!("__go_work", span = site);
    let found = format_ident!("__go_found", span = site);
    let parent_var = format_ident!("__go_parent", span = site);
    // Only a child of the current context looks for a parent among the arguments; `in p` and
    // a group name theirs.
    let probe = matches!(input.target, Target::Current);
    // The parent or group, evaluated first, as written: before the arguments, which may move
    // what it is read from (`go!(in req.ctx, handle(req))`). The parent is cloned (one
    // reference count), so nothing stays borrowed.
    let target_var = format_ident!("__go_target", span = site);
    let target = match &input.target {
        Target::Current => TokenStream::new(),
        Target::Parent(parent) => quote_spanned! {span=>
            let #target_var: #private::Context =
                ::core::clone::Clone::clone(#private::go_parent(&(#parent)));
        },
        Target::Group(group) => quote_spanned! {span=> let #target_var = &(#group); },
    };

    // Input:  go!(f(a, b))
    // Output: let __go_arg0 = a; let __go_arg1 = b;
    //         (never run: pins the arguments' types to f's parameters)
    //         let __go_found = <the first argument of type Context, if any>;
    //         let __go_work = move |__go_ctx: Context| {
    //             <that argument replaced by __go_ctx>; f(__go_arg0, __go_arg1)
    //         };
    let mut has_args = false;
    let (prelude, closure) = match work {
        Expr::Closure(c) => (TokenStream::new(), explicit(c, private)?),
        Expr::Call(call) => {
            let mut prelude = TokenStream::new();
            let func = match peel((*call.func).clone()) {
                Expr::Path(p) => quote!(#p),
                other => {
                    let f = format_ident!("__go_fn", span = site);
                    prelude.extend(quote_spanned!(other.span()=> let #f = #other;));
                    quote!(#f)
                }
            };
            let args = temporaries(call.args.iter(), &mut prelude);
            has_args = !args.is_empty();
            let hole = format_ident!("__go_hole_fn", span = site);
            let pinned_call = quote!(#hole(#(#args),*));
            prelude.extend(pin_types(private, quote!(#func), &hole, &args, pinned_call));
            if probe {
                prelude.extend(find_parent(private, &found, &parent_var, &args));
            }
            let body = swap_and_call(private, &args, quote!(#func(#(#args),*)));
            (prelude, closure_over(private, span, has_args, body))
        }
        Expr::MethodCall(call) => {
            let mut prelude = TokenStream::new();
            let recv = format_ident!("__go_recv", span = site);
            let receiver = &call.receiver;
            prelude.extend(quote_spanned!(receiver.span()=> let #recv = #receiver;));
            let args = temporaries(call.args.iter(), &mut prelude);
            has_args = !args.is_empty();
            let method = &call.method;
            let turbofish = &call.turbofish;
            let hole = format_ident!("__go_hole_recv", span = site);
            let pinned_call = quote!(#hole.#method #turbofish (#(#args),*));
            prelude.extend(pin_types(private, quote!(#recv), &hole, &args, pinned_call));
            if probe {
                prelude.extend(find_parent(private, &found, &parent_var, &args));
            }
            let body = swap_and_call(
                private,
                &args,
                quote!(#recv.#method #turbofish (#(#args),*)),
            );
            (prelude, closure_over(private, span, has_args, body))
        }
        Expr::Await(a) => {
            return Err(syn::Error::new_spanned(
                &a,
                "`.await` would wait for the future here, on the caller; spawn the future itself: drop the `.await` (`go!(f(args))`)",
            ));
        }
        deferred @ (Expr::Block(_) | Expr::Macro(_) | Expr::Unsafe(_)) => {
            let closure = quote_spanned! {span=> move |_: #private::Context| #deferred };
            (TokenStream::new(), closure)
        }
        // An `async` block is a future value like any other: made here (which runs nothing),
        // so a borrow in an `async` block without `move` gets rustc's own hint on the user's
        // block ("use the `move` keyword").
        value => {
            let v = format_ident!("__go_value", span = site);
            let prelude = quote_spanned! {span=> let #v = #private::go_value(#value); };
            let closure = quote_spanned! {span=> move |_: #private::Context| #v };
            (prelude, closure)
        }
    };

    let parent = if has_args {
        quote!(&#parent_var)
    } else {
        quote!(&#private::Context::current())
    };
    let spawn = match &input.target {
        Target::Current => quote_spanned! {span=>
            .spawn(#parent, #work_var)
        },
        Target::Parent(_) => quote_spanned! {span=>
            .spawn(&#target_var, #work_var)
        },
        Target::Group(group) => {
            // Located at the group expression: one that is not a `Group` ("expected
            // `&Group<_>`, found `&u8`") is reported there, not over the whole macro.
            let group_var =
                proc_macro2::Ident::new(&target_var.to_string(), site.located_at(group.span()));
            quote_spanned! {span=>
                .spawn_in(#private::go_group(#group_var), #work_var)
            }
        }
    };
    Ok(quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #private::{GoArgContext as _, GoArgOther as _, GoBlockingKind as _, GoFutureKind as _};
            #target
            #prelude
            let #work_var = #closure;
            (&&#private::go_marker(&#work_var)).__go_kind() #spawn
        }
    })
}

/// Never-run code that gives each argument temporary the type of the parameter it is passed
/// to, so that [`find_parent`] sees concrete types (an argument such as `x.into()` has none
/// until then). Holes of inferred type stand in for the callee and the arguments, so nothing
/// is moved.
fn pin_types(
    private: &TokenStream,
    callee: TokenStream,
    callee_hole: &proc_macro2::Ident,
    args: &[proc_macro2::Ident],
    call: TokenStream,
) -> TokenStream {
    if args.is_empty() {
        return TokenStream::new();
    }
    let hole = format_ident!("__go_hole", span = Span::mixed_site());
    quote! {
        #[allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]
        if false {
            let #callee_hole = loop {};
            #private::go_same(&#callee_hole, &#callee);
            #(
                let #args = {
                    let #hole = loop {};
                    #private::go_same(&#hole, &#args);
                    #hole
                };
            )*
            let _ = #call;
        }
    }
}

/// `let __go_parent = ...;`: the first argument whose type is `Context` (cloned, so the
/// arguments can move into the work), else the current context.
fn find_parent(
    private: &TokenStream,
    found: &proc_macro2::Ident,
    parent: &proc_macro2::Ident,
    args: &[proc_macro2::Ident],
) -> TokenStream {
    if args.is_empty() {
        return TokenStream::new();
    }
    quote! {
        let #found: ::core::option::Option<&#private::Context> = ::core::option::Option::None;
        #(let #found = (&&#private::go_arg(&#args)).__go_parent(&#args, #found);)*
        let #parent = #private::go_parent_or_current(#found);
    }
}

/// In the work: the first `Context` argument replaced by the child, then the call.
fn swap_and_call(
    private: &TokenStream,
    args: &[proc_macro2::Ident],
    call: TokenStream,
) -> TokenStream {
    if args.is_empty() {
        return call;
    }
    let child = format_ident!("__go_child", span = Span::mixed_site());
    quote! {
        let mut #child: ::core::option::Option<#private::Context> =
            ::core::option::Option::Some(__go_ctx);
        #(let #args = (&&#private::go_arg(&#args)).__go_swap(#args, &mut #child);)*
        #call
    }
}

/// The work's closure: it takes the child context (`__go_ctx`) when arguments may need it.
fn closure_over(
    private: &TokenStream,
    span: Span,
    has_args: bool,
    body: TokenStream,
) -> TokenStream {
    if has_args {
        let ctx = format_ident!("__go_ctx", span = Span::mixed_site());
        let body = body.into_iter().map(|t| respan_ctx(t, &ctx));
        let body: TokenStream = body.collect();
        quote_spanned! {span=> move |#ctx: #private::Context| { #body } }
    } else {
        quote_spanned! {span=> move |_: #private::Context| #body }
    }
}

/// Gives the `__go_ctx` written in [`swap_and_call`] the mixed-site span of the parameter.
fn respan_ctx(t: proc_macro2::TokenTree, ctx: &proc_macro2::Ident) -> proc_macro2::TokenTree {
    match t {
        proc_macro2::TokenTree::Ident(i) if i == "__go_ctx" => ctx.clone().into(),
        proc_macro2::TokenTree::Group(g) => {
            let inner: TokenStream = g.stream().into_iter().map(|t| respan_ctx(t, ctx)).collect();
            let mut out = proc_macro2::Group::new(g.delimiter(), inner);
            out.set_span(g.span());
            out.into()
        }
        other => other,
    }
}

/// `let __go_argN = <arg>;` for each argument, evaluated on the caller in order.
fn temporaries<'a>(
    args: impl Iterator<Item = &'a Expr>,
    prelude: &mut TokenStream,
) -> Vec<proc_macro2::Ident> {
    args.enumerate()
        .map(|(i, arg)| {
            let name = format_ident!("__go_arg{}", i, span = Span::mixed_site());
            prelude.extend(quote_spanned!(arg.span()=> let #name = #arg;));
            name
        })
        .collect()
}

// Input:  go!(|ctx| f(ctx, x))          go!(async |ctx| f(ctx).await)
// Output: move |ctx: Context| f(ctx, x)   move |ctx: Context| async move { f(ctx).await }
fn explicit(c: ExprClosure, private: &TokenStream) -> syn::Result<TokenStream> {
    let span = c.span();
    if c.inputs.is_empty() {
        return Err(syn::Error::new(
            c.or1_token.span,
            "`go!` runs the work itself, so a closure must take the child context: write `go!(|ctx| f(ctx))`, or `go!(f())` without a closure",
        ));
    }
    if c.inputs.len() > 1 {
        return Err(syn::Error::new_spanned(
            &c.inputs,
            "the closure given to `go!` takes one parameter, the child context: write `go!(|ctx| f(ctx))`",
        ));
    }
    if let Some(kw) = &c.constness {
        return Err(syn::Error::new_spanned(
            kw,
            "a `const` closure cannot be spawned: write `go!(|ctx| f(ctx))`",
        ));
    }
    if let Some(kw) = &c.movability {
        return Err(syn::Error::new_spanned(
            kw,
            "a `static` closure cannot be spawned: write `go!(|ctx| f(ctx))`",
        ));
    }
    let param = match &c.inputs[0] {
        Pat::Type(t) => {
            if let Type::Reference(r) = &*t.ty {
                return Err(syn::Error::new_spanned(
                    r,
                    "the child context is handed over by value: write `|ctx| ...` or `|ctx: Context| ...`",
                ));
            }
            quote!(#t)
        }
        pat => quote!(#pat: #private::Context),
    };
    let ret = &c.output;
    let body = &c.body;
    let attrs = &c.attrs;
    Ok(if c.asyncness.is_some() {
        if !matches!(ret, syn::ReturnType::Default) {
            return Err(syn::Error::new_spanned(
                ret,
                "give the return type inside instead: `go!(|ctx| async move { ... })`",
            ));
        }
        // A block body becomes the async block itself: no extra braces around the user's
        // (which `unused_braces` would flag on user tokens).
        match &**body {
            Expr::Block(b) if b.attrs.is_empty() && b.label.is_none() => {
                quote_spanned!(span=> #(#attrs)* move |#param| async move #body)
            }
            _ => quote_spanned!(span=> #(#attrs)* move |#param| async move { #body }),
        }
    } else {
        quote_spanned!(span=> #(#attrs)* move |#param| #ret #body)
    })
}
