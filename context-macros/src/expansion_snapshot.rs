//! `EXPANSION.md` is a snapshot: each `## ` section's first ```` ```rust ```` block is an
//! input (items with `#[cancellable]`, or one `select_done!`/`go!` call), its second the
//! expansion, and this test runs the macro on the first and compares the result with the
//! second, token by token (comments, spacing and trailing commas aside). The page
//! abbreviates `::go_context::__private` as `P` and every `#[allow(…)]` list as
//! `#[allow(..)]`; everything else is exactly what the macros write.
//!
//! `EXPANSION_PRINT=1 cargo test -p context-macros --lib expansion` prints each actual
//! expansion (run it through `rustfmt` to update the page).

use std::str::FromStr;

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};

const PAGE: &str = include_str!("../EXPANSION.md");

/// `(title, input, expected)` for each section with two rust blocks.
fn sections() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for section in PAGE.split("\n## ").skip(1) {
        let title = section.lines().next().unwrap_or_default().to_owned();
        let blocks: Vec<&str> = section
            .split("```rust\n")
            .skip(1)
            .filter_map(|rest| rest.split("\n```").next())
            .collect();
        if let [input, expected, ..] = blocks[..] {
            out.push((title, input.to_owned(), expected.to_owned()));
        }
    }
    out
}

/// The expansion of every `#[cancellable]` item in `input` (items), or of the bang macro
/// `input` is (`select_done! { … }`, `go!(…)`).
fn expand(title: &str, input: &str) -> TokenStream {
    let private = quote!(::go_context::__private);
    if let Ok(mac) = syn::parse_str::<syn::ExprMacro>(input) {
        let name = mac.mac.path.segments.last().map(|s| s.ident.to_string());
        return match name.as_deref() {
            Some("select_done") => crate::select::select_done(mac.mac.tokens, &private),
            Some("go") => crate::go::expand(mac.mac.tokens, &private),
            other => panic!("section `{title}`: no macro {other:?} to expand"),
        };
    }
    let file: syn::File = syn::parse_str(input).unwrap_or_else(|e| {
        panic!("section `{title}`: the input is neither items nor one macro call: {e}")
    });
    let mut out = TokenStream::new();
    for item in file.items {
        match item {
            syn::Item::Fn(func) => out.extend(expand_attr(func.attrs.clone(), func)),
            syn::Item::Impl(mut imp) => {
                let items = std::mem::take(&mut imp.items);
                let mut body = TokenStream::new();
                for item in items {
                    match item {
                        syn::ImplItem::Fn(f) => body.extend(expand_attr(
                            f.attrs.clone(),
                            syn::ItemFn {
                                attrs: f.attrs,
                                vis: f.vis,
                                sig: f.sig,
                                block: Box::new(f.block),
                            },
                        )),
                        other => other.to_tokens(&mut body),
                    }
                }
                let header = {
                    let syn::ItemImpl {
                        attrs,
                        impl_token,
                        generics,
                        self_ty,
                        ..
                    } = &imp;
                    quote!(#(#attrs)* #impl_token #generics #self_ty)
                };
                out.extend(header);
                out.extend([TokenTree::Group(Group::new(Delimiter::Brace, body))]);
            }
            other => other.to_tokens(&mut out),
        }
    }
    out
}

/// `func` through `#[cancellable(..)]` if it has the attribute.
fn expand_attr(attrs: Vec<syn::Attribute>, mut func: syn::ItemFn) -> TokenStream {
    let Some(pos) = attrs.iter().position(|a| a.path().is_ident("cancellable")) else {
        return func.to_token_stream();
    };
    let attr = func.attrs.remove(pos);
    let args = match attr.meta {
        syn::Meta::List(list) => list.tokens,
        _ => TokenStream::new(),
    };
    crate::cancellable::cancellable(args, func.to_token_stream())
}

/// The page's abbreviations applied to `tokens`: `::go_context::__private` is `P`, every
/// `#[allow(…)]` is `#[allow(..)]`.
fn abbreviate(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < trees.len() {
        let text = |j: usize| trees.get(j).map(|t| t.to_string());
        if text(i).as_deref() == Some(":")
            && text(i + 1).as_deref() == Some(":")
            && text(i + 2).as_deref() == Some("go_context")
            && text(i + 3).as_deref() == Some(":")
            && text(i + 4).as_deref() == Some(":")
            && text(i + 5).as_deref() == Some("__private")
        {
            out.push(TokenTree::Ident(Ident::new("P", Span::call_site())));
            i += 6;
            continue;
        }
        match &trees[i] {
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                let is_allow = g.delimiter() == Delimiter::Bracket
                    && inner.first().is_some_and(|t| t.to_string() == "allow");
                let stream = if is_allow {
                    let dots: TokenStream = [
                        TokenTree::Punct(Punct::new('.', Spacing::Joint)),
                        TokenTree::Punct(Punct::new('.', Spacing::Alone)),
                    ]
                    .into_iter()
                    .collect();
                    quote!(allow(#dots))
                } else {
                    abbreviate(g.stream())
                };
                out.push(TokenTree::Group(Group::new(g.delimiter(), stream)));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// Tokens as text, one space between leaves: spacing and comments do not count.
fn flat(tokens: TokenStream, out: &mut Vec<String>) {
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push(open.to_owned());
                flat(g.stream(), out);
                out.push(close.to_owned());
            }
            other => out.push(other.to_string()),
        }
    }
}

/// The leaves, without the commas `rustfmt` adds or removes (before a closing delimiter, after
/// a `}`).
fn flat_leaves(tokens: TokenStream) -> Vec<String> {
    let mut out = Vec::new();
    flat(tokens, &mut out);
    out.retain(|s| !s.is_empty());
    let mut kept: Vec<String> = Vec::with_capacity(out.len());
    for leaf in out {
        if matches!(leaf.as_str(), ")" | "}" | "]") && kept.last().is_some_and(|l| l == ",") {
            kept.pop();
        }
        if leaf == "," && kept.last().is_some_and(|l| l == "}") {
            continue;
        }
        kept.push(leaf);
    }
    kept
}

/// Where `a` and `b` first differ, with some context, or `None` if they do not.
fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    let at = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let from = at.saturating_sub(12);
    let show = |v: &[String]| v[from.min(v.len())..(at + 12).min(v.len())].join(" ");
    Some(format!(
        "  actual:   … {}\n  expected: … {}",
        show(a),
        show(b)
    ))
}

#[test]
fn expansion_md_shows_what_the_macros_write() {
    let sections = sections();
    assert!(sections.len() >= 5, "EXPANSION.md lost its sections");
    let mut stale = Vec::new();
    for (title, input, expected) in sections {
        let actual = abbreviate(expand(&title, &input));
        if std::env::var_os("EXPANSION_PRINT").is_some() {
            println!("## {title}\n{actual}\n");
        }
        let expected = TokenStream::from_str(&expected)
            .unwrap_or_else(|e| panic!("section `{title}`: the expansion block lexes: {e}"));
        let (actual, expected) = (flat_leaves(actual), flat_leaves(expected));
        if let Some(diff) = first_difference(&actual, &expected) {
            stale.push(format!("section `{title}`:\n{diff}"));
        }
    }
    assert!(
        stale.is_empty(),
        "EXPANSION.md is out of date:\n{}",
        stale.join("\n")
    );
}
