//! Procedural macros of tandem's experiment DSL. Each macro is a thin entry:
//! parse → check → expand; every parser and check reports into one error context ([`ctxt::Ctxt`])
//! with the span of the user's tokens, emitted as `compile_error!`, never a panic.

mod ctxt;
mod fields;
mod schedule;
mod task;
mod template;

use proc_macro::TokenStream;

use ctxt::Ctxt;

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
    let cx = Ctxt::new();
    let decl = schedule::parse(&cx, input.into());
    if let Some(s) = &decl {
        schedule::validate(&cx, s);
    }
    match (cx.check(), decl) {
        (Ok(()), Some(s)) => schedule::expand(&s).map_or_else(errors, Into::into),
        (result, _) => errors(result.err().unwrap_or_else(malformed)),
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
///
/// const NLI: tandem::task::TaskSpec = tandem::task! {
///     name: "nli",
///     description: "whether the hypothesis follows from the premise",
///     data: csv("data/nli", text: "premise", pair: "hypothesis", label: "label",
///               labels: [0, 1], selection: validation),
///     classes: ["entailment", "not entailment"],
///     backbone: llama_gguf("models/SmolLM2-360M-Instruct-Q8_0.gguf"),
///     readout: verbalizer { cue: "\nAnswer:" },
///     metric: macro_f1,
/// };
/// ```
///
/// `data:` is a built-in corpus (`rotten_tomatoes`, `subj`, `uci_imdb`, `uci_yelp`,
/// `uci_amazon`) or `csv(…)`, `tsv(…)`, `jsonl(…)` of a file or of a folder of `train`,
/// `validation` and `test` files (`selection: validation | train` says which plays selection);
/// `labels:` lists the raw label values in class order. `backbone:` is `minilm` (default),
/// `bert("dir")`, `smollm2` or `llama_gguf("file.gguf")`; a decoder is read out by `verbalizer`
/// (the default for decoders), an encoder by `class_prompt` (default) or `input_head`. `metric:`
/// is `accuracy`, `macro_f1` or `mcc`. Relative paths are taken from the crate root and expand
/// to absolute ones.
///
/// Checked at compile time: unknown, repeated or missing fields, value types, the corpus name
/// and its number of classes, at least two distinct class names, that data and model paths
/// exist (a folder's split files, a BERT folder's `config.json`, `model.safetensors` and
/// `tokenizer.json`, a GGUF file's magic), that the columns named are in the file's header or
/// first JSON object, the raw labels (one per class, distinct), a readout that fits the
/// backbone and takes pairs where the data has them, a positive readout scale, a prompt length
/// of 1 to 32, a non-empty init text and at least one shot (`all` for the full split).
#[proc_macro]
pub fn task(input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let mut decl = task::parse(&cx, input.into());
    if let Some(t) = &mut decl {
        task::check(&cx, t);
    }
    match (cx.check(), decl) {
        (Ok(()), Some(t)) => task::expand(&t).into(),
        (result, _) => errors(result.err().unwrap_or_else(malformed)),
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
    let cx = Ctxt::new();
    let decl = template::parse(&cx, input.into());
    match (cx.check(), decl) {
        (Ok(()), Some(t)) => template::expand(&t).map_or_else(errors, Into::into),
        (result, _) => errors(result.err().unwrap_or_else(malformed)),
    }
}

/// A parser gave up without saying why: never expected, but an error rather than a panic.
fn malformed() -> syn::Error {
    syn::Error::new(proc_macro2::Span::call_site(), "malformed declaration")
}

/// Every collected error as `compile_error!`, in a block that is an expression of any type, so
/// that the user sees only these errors.
fn errors(e: syn::Error) -> TokenStream {
    let errors = e.to_compile_error();
    quote::quote!({ #errors ::core::unreachable!() }).into()
}
