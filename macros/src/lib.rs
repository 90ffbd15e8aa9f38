//! Procedural macros of tandem's experiment DSL. Each macro is a thin entry:
//! parse → validate → expand; every error is collected with the span of the user's tokens and
//! emitted as `compile_error!`, never a panic.

mod fields;
mod schedule;

use proc_macro::TokenStream;

/// Declares a schedule; expands to a `tandem::engine::Schedule` value.
///
/// ```ignore
/// let s = tandem::schedule! {
///     name: "catalyst",
///     rounds: 4,
///     steps_per_round: 20,
///     final_steps: 20,
///     restart: best,
///     mentor: { template: "catalyst", candidates: 3, history: 8, sample: 4, word_limit: 12 },
/// };
/// ```
///
/// Checked at compile time: unknown, repeated or missing fields, value types, zero rounds or
/// candidates, no gradient step at all, more trajectory samples per round than the round
/// records (`record_every`, default 5), and templates that are neither built in nor a `.hbs` file
/// that exists.
#[proc_macro]
pub fn schedule(input: TokenStream) -> TokenStream {
    match schedule::parse(input.into()).and_then(|s| schedule::validate(&s).map(|()| s)) {
        Ok(s) => schedule::expand(&s).into(),
        Err(e) => errors(e),
    }
}

/// Every collected error as `compile_error!`, in a block that is an expression of any type, so
/// that the user sees only these errors.
fn errors(e: syn::Error) -> TokenStream {
    let errors = e.to_compile_error();
    quote::quote!({ #errors ::core::unreachable!() }).into()
}
