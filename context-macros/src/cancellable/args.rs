//! The arguments of `#[cancellable(...)]`: one setter per key (tokio-macros style), each
//! rejecting a repeat and keeping the span of what it parsed. Every mistake is collected, so
//! one build reports all of them.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::duration;
use crate::error::{format_err, Errors};

/// The keys, spelled once.
const TIMEOUT: &str = "timeout";
const PARENT: &str = "parent";
const CRATE: &str = "crate";

/// Every accepted form, for error messages.
const VALID: &str = "expected one of: `timeout = \"2s\"`, `timeout = <expr of type Duration>`, \
                     `parent = <expr of type Context>`, `crate = \"path::to::go_context\"`";

/// `timeout = …`: a literal parsed now, or an expression evaluated at call time.
pub(crate) enum Timeout {
    /// `timeout = "2s"`, parsed at expansion time; `span` is the literal's.
    Literal { duration: Duration, span: Span },
    /// `timeout = <expr>`: a `Duration` computed when the fn is called (it may use the params).
    Expr(Box<Expr>),
}

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) timeout: Option<Timeout>,
    /// `parent = <expr>`: the parent context (a parameter's name, `self.ctx`, any expression).
    pub(crate) parent: Option<Expr>,
    /// `crate = "path"`: the root every generated path goes through.
    pub(crate) krate: Option<syn::Path>,
}

impl Args {
    /// Parses the attribute's tokens; `Err` combines every mistake found.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(tokens)
            .map_err(|err| syn::Error::new(err.span(), format!("{err}; {VALID}")))?;
        let mut args = Args::default();
        let mut errors = Errors::default();
        for meta in metas {
            let result = match meta
                .path()
                .get_ident()
                .map(|key| key.to_string())
                .as_deref()
            {
                Some(TIMEOUT) => args.set_timeout(&meta),
                Some(PARENT) => args.set_parent(&meta),
                Some(CRATE) => args.set_crate(&meta),
                _ => Err(format_err!(
                    meta.path(),
                    "unknown argument `{}` for #[cancellable]; {VALID}",
                    quote::ToTokens::to_token_stream(meta.path())
                        .to_string()
                        .replace(' ', "")
                )),
            };
            errors.take(result);
        }
        errors.finish()?;
        Ok(args)
    }

    fn set_timeout(&mut self, meta: &Meta) -> syn::Result<()> {
        if self.timeout.is_some() {
            return Err(format_err!(
                meta.path(),
                "`timeout` is set more than once; keep a single `timeout = …`; {VALID}"
            ));
        }
        let value = name_value(
            meta,
            "timeout = \"2s\"` or `timeout = <expr of type Duration>",
        )?;
        self.timeout = Some(match value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Timeout::Literal {
                duration: parse_duration(lit)?,
                span: lit.span(),
            },
            Expr::Lit(ExprLit {
                lit: lit @ Lit::Int(int),
                ..
            }) => return Err(unquoted_number(lit, int.base10_digits(), int.suffix())),
            Expr::Lit(ExprLit {
                lit: lit @ Lit::Float(float),
                ..
            }) => return Err(unquoted_number(lit, float.base10_digits(), float.suffix())),
            other => Timeout::Expr(Box::new(other.clone())),
        });
        Ok(())
    }

    fn set_parent(&mut self, meta: &Meta) -> syn::Result<()> {
        if self.parent.is_some() {
            return Err(format_err!(
                meta.path(),
                "`parent` is set more than once; keep a single `parent = …`; {VALID}"
            ));
        }
        let value = name_value(meta, "parent = ctx` or `parent = self.ctx")?;
        self.parent = Some(value.clone());
        Ok(())
    }

    fn set_crate(&mut self, meta: &Meta) -> syn::Result<()> {
        if self.krate.is_some() {
            return Err(format_err!(
                meta.path(),
                "`crate` is set more than once; keep a single `crate = \"…\"`; {VALID}"
            ));
        }
        let value = name_value(meta, "crate = \"path::to::go_context\"")?;
        let path = match value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => lit.parse::<syn::Path>().map_err(|_| {
                format_err!(
                    lit,
                    "`crate` must name the path of go-context, e.g. `crate = \"my_context\"` or `crate = \"::deps::go_context\"`"
                )
            })?,
            Expr::Path(path) if path.qself.is_none() => path.path.clone(),
            other => {
                return Err(format_err!(
                    other,
                    "`crate` must name the path of go-context as a string, e.g. `crate = \"my_context\"`"
                ))
            }
        };
        self.krate = Some(path);
        Ok(())
    }
}

/// The value of `key = value`; for `key` or `key(...)` an error showing `form`.
fn name_value<'a>(meta: &'a Meta, form: &str) -> syn::Result<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Ok(&nv.value),
        Meta::Path(path) => Err(format_err!(
            path,
            "this argument needs a value: write `{form}`"
        )),
        Meta::List(list) => Err(format_err!(
            list,
            "use `=`, not parentheses: write `{form}`"
        )),
    }
}

/// The error for `timeout = <number>`. Rust lexes `500ms`, `1.5h` and `2h45m` as numbers
/// with a suffix (`ms`, `h`, `h45m`): those are durations written without quotes, and the fix
/// keeps their unit. A bare number (`2`, or a Rust type suffix: `2u64`) gets seconds.
fn unquoted_number(lit: &Lit, digits: &str, suffix: &str) -> syn::Error {
    const RUST_SUFFIXES: &[&str] = &[
        "", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64",
    ];
    if RUST_SUFFIXES.contains(&suffix) {
        return format_err!(
            lit,
            "a bare number has no unit: write `timeout = \"{digits}s\"`; {}",
            duration::ACCEPTED
        );
    }
    let written = format!("{digits}{suffix}");
    match duration::parse(&written) {
        Ok(_) => format_err!(
            lit,
            "a duration is written as a string: write `timeout = \"{written}\"`"
        ),
        Err(err) => format_err!(
            lit,
            "a duration is written as a string, and `{written}` is not one: {err}; {}",
            duration::ACCEPTED
        ),
    }
}

/// `"2s"` → 2 s, with the error spanned on the literal.
fn parse_duration(lit: &LitStr) -> syn::Result<Duration> {
    duration::parse(&lit.value()).map_err(|err| {
        format_err!(
            lit,
            "failed to parse `timeout` as a duration: {err}; {}",
            duration::ACCEPTED
        )
    })
}

impl Timeout {
    /// Where the timeout was written.
    pub(crate) fn span(&self) -> Span {
        match self {
            Timeout::Literal { span, .. } => *span,
            Timeout::Expr(expr) => expr.span(),
        }
    }
}
