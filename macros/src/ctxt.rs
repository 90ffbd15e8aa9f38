//! One error context per macro invocation, as serde_derive's `Ctxt`: every parser and check
//! reports into it and goes on, so the user sees every error of a declaration at once.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;

/// Collects the errors of one declaration.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports an error at `span` and lets the caller go on.
    pub fn error(&self, span: Span, msg: impl Display) {
        self.errors.borrow_mut().push(syn::Error::new(span, msg));
    }

    /// Reports an error syn already built (a parse error).
    pub fn syn_error(&self, e: syn::Error) {
        self.errors.borrow_mut().push(e);
    }

    /// `Ok` when nothing was reported, else every error combined, in the order reported.
    pub fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut all) => {
                for e in errors {
                    all.combine(e);
                }
                Err(all)
            }
        }
    }
}
