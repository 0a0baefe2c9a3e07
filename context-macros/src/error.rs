//! Spanned errors in one short line: `format_err!(tokens, "...")`.
//!
//! The first argument is anything `ToTokens` (the offending token, path, type or literal): the
//! error spans it from its first to its last token, so rustc underlines exactly what is wrong.

/// A `syn::Error` spanning `$tokens`, with a `format!`-style message.
macro_rules! format_err {
    ($tokens:expr, $($msg:tt)+) => {
        ::syn::Error::new_spanned(&$tokens, ::std::format!($($msg)+))
    };
}

pub(crate) use format_err;

/// Collects errors so that one build reports every mistake, as serde's `Ctxt` does.
#[derive(Default)]
pub(crate) struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records `err`.
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(err),
            None => self.first = Some(err),
        }
    }

    /// Records the error of `result`, if any, and gives back its value.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.push(err);
                None
            }
        }
    }

    /// `Err` with every recorded error combined, or `Ok(())`.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.first {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}
