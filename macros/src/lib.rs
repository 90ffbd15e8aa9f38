//! Procedural macros of tandem's experiment DSL. Each macro is a thin entry:
//! parse → validate → expand; every error is collected with the span of the user's tokens and
//! emitted as `compile_error!`, never a panic.

mod fields;
mod schedule;
mod task;
mod template;

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
    match schedule::parse(input.into())
        .and_then(|s| schedule::validate(&s).map(|()| s))
        .and_then(|s| schedule::expand(&s))
    {
        Ok(tokens) => tokens.into(),
        Err(e) => errors(e),
    }
}

/// Declares a classification task; expands to a constant `tandem::task::TaskSpec`.
///
/// ```ignore
/// const MR: tandem::task::TaskSpec = tandem::task! {
///     name: "mr",
///     description: "sentiment of movie-review snippets: negative or positive",
///     data: rotten_tomatoes,
///     classes: ["negative", "positive"],
///     backbone: minilm,
///     readout: class_prompt { scale: 20.0 },
///     prompt: { length: 8, init: "this movie review is" },
///     metric: accuracy,
///     shots: 16,
/// };
/// ```
///
/// Checked at compile time: unknown, repeated or missing fields, value types, the corpus name,
/// as many distinct class names as the corpus has classes, a positive readout scale, a prompt
/// length of 1 to 32, a non-empty init text and at least one shot (`all` for the full split).
#[proc_macro]
pub fn task(input: TokenStream) -> TokenStream {
    match task::parse(input.into()).and_then(|t| task::validate(&t).map(|()| t)) {
        Ok(t) => task::expand(&t).into(),
        Err(e) => errors(e),
    }
}

/// Binds a handlebars file to a typed context; expands to a constant
/// `tandem::mentor::TypedTemplate<Context>`.
///
/// ```ignore
/// const TERSE: tandem::mentor::TypedTemplate<tandem::mentor::MetaPromptContext> = tandem::template! {
///     name: "terse",
///     file: "templates/terse.hbs",
///     context: tandem::mentor::MetaPromptContext,
/// };
/// ```
///
/// Checked at compile time: the file exists (relative to the crate root) and parses, every
/// helper it calls is known, and every variable it references — inside `#each`/`#with`
/// blocks too — is a field of the context type (`context` defaults to `MetaPromptContext`).
/// A missing variable is a type error at the `file` literal naming the field and the type.
#[proc_macro]
pub fn template(input: TokenStream) -> TokenStream {
    match template::parse(input.into()).and_then(|t| template::expand(&t)) {
        Ok(tokens) => tokens.into(),
        Err(e) => errors(e),
    }
}

/// Every collected error as `compile_error!`, in a block that is an expression of any type, so
/// that the user sees only these errors.
fn errors(e: syn::Error) -> TokenStream {
    let errors = e.to_compile_error();
    quote::quote!({ #errors ::core::unreachable!() }).into()
}
