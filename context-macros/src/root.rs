//! Where `go-context` is, as the user's crate names it: the root every generated path goes
//! through (`<root>::__private::…`).
//!
//! - `go!` and `select_done!` are `macro_rules!` front doors in go-context that call the hidden
//!   proc macros with `($crate)` first (as futures' `select!` does): [`split_passed_root`]
//!   takes it off. `$crate` is right whatever the dependency is called, even through a
//!   re-export.
//! - `#[cancellable]` is an attribute, which no `macro_rules!` can front, so [`found_root`]
//!   reads the name from the user's `Cargo.toml` (`ctx = { package = "go-context", .. }` gives
//!   `::ctx`), falling back to `::go_context` when the manifest says nothing (a facade crate
//!   re-exporting go-context, a build without Cargo). `crate = "path"` overrides both.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::quote;

/// The published package whose name the user's manifest may change.
const PACKAGE: &str = "go-context";

/// `::<name>` as the calling crate's `Cargo.toml` names go-context.
pub(crate) fn found_root() -> TokenStream {
    use proc_macro_crate::FoundCrate;
    match proc_macro_crate::crate_name(PACKAGE) {
        Ok(FoundCrate::Name(name)) => {
            let ident = proc_macro2::Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        // Itself: go-context's own tests, doctests and examples, where it is `go_context`.
        Ok(FoundCrate::Itself) | Err(_) => quote!(::go_context),
    }
}

/// Splits `($crate) rest…` (what a front door passes) into the root and the user's input.
/// `None` when the first token is not a parenthesised group: the hidden macro was called by
/// hand.
pub(crate) fn split_passed_root(input: TokenStream) -> Option<(TokenStream, TokenStream)> {
    let mut iter = input.into_iter();
    match iter.next() {
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis => {
            Some((group.stream(), iter.collect()))
        }
        _ => None,
    }
}

/// The entry of a hidden front-door macro: `expand(user input, <root>::__private)`.
pub(crate) fn front_door(
    input: TokenStream,
    name: &str,
    expand: impl FnOnce(TokenStream, &TokenStream) -> TokenStream,
) -> TokenStream {
    match split_passed_root(input) {
        Some((root, rest)) => {
            let private = quote!(#root::__private);
            expand(rest, &private)
        }
        None => syn::Error::new(
            Span::call_site(),
            format!("this macro is go-context's internal; write `{name}!(…)` from go-context"),
        )
        .into_compile_error(),
    }
}
