//! `task!`: parse → validate → expand.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::fields::{Errors, Fields, Reader, Value};

const FIELDS: &[&str] = &[
    "name",
    "description",
    "data",
    "classes",
    "backbone",
    "readout",
    "prompt",
    "metric",
    "shots",
];
const PROMPT_FIELDS: &[&str] = &["length", "init"];
const CLASS_PROMPT_FIELDS: &[&str] = &["scale"];
/// The corpora tandem can load, with their number of classes.
const CORPORA: &[(&str, usize)] = &[
    ("rotten_tomatoes", 2),
    ("subj", 2),
    ("uci_imdb", 2),
    ("uci_yelp", 2),
    ("uci_amazon", 2),
];
const BACKBONES: &[&str] = &["minilm"];
const READOUTS: &[&str] = &["class_prompt", "input_head"];
const METRICS: &[&str] = &["accuracy"];
const INITS: &[&str] = &["random_vocab", "random_normal"];
/// Longest soft prompt a task may declare: half the encoder's default 64-token budget, so that
/// the input text keeps the other half.
const MAX_PROMPT_LEN: usize = 32;

enum Init {
    Text(String, Span),
    RandomVocab,
    RandomNormal,
}

pub struct TaskDecl {
    name: (String, Span),
    description: (String, Span),
    data: (String, Span),
    classes: (Vec<(String, Span)>, Span),
    readout: (String, Option<(f64, Span)>, Span),
    prompt_len: (usize, Span),
    init: Init,
    shots: Option<(usize, Span)>,
}

/// Reads the declaration; every malformed or missing field is reported at once.
pub fn parse(tokens: TokenStream) -> syn::Result<TaskDecl> {
    let block = Fields::parse_tokens(tokens)?;
    let mut errors = None;
    let mut r = Reader::new(&block, "a task", FIELDS);
    let name = r.string("name", None);
    let description = r.string("description", None);
    let data = r.word("data", &names(CORPORA), None);
    let classes = r.strings("classes");
    r.word("backbone", BACKBONES, Some("minilm"));
    r.word("metric", METRICS, Some("accuracy"));
    let readout =
        r.variant("readout", READOUTS, Some("class_prompt"))
            .map(|(word, span, settings)| {
                let scale = match (word.as_str(), settings) {
                    ("class_prompt", Some(b)) => {
                        let mut s = Reader::new(b, "the class-prompt readout", CLASS_PROMPT_FIELDS);
                        let scale = s.float_at("scale", 20.0);
                        s.finish(&mut errors);
                        Some(scale)
                    }
                    ("class_prompt", None) => Some((20.0, span)),
                    (_, Some(b)) => {
                        r.error(b.span, format!("the `{word}` readout takes no settings"));
                        None
                    }
                    (_, None) => None,
                };
                (word, scale, span)
            });
    let shots = match r.get("shots").map(|f| &f.value) {
        Some(Value::Word(w)) if w == "all" => Some(None),
        Some(Value::Word(w)) => {
            r.error(w.span(), "`shots` must be a whole number or `all`");
            None
        }
        _ => r.usize("shots", Some(16)).map(Some),
    };
    let prompt = r.block("prompt");
    let (mut prompt_len, mut init) = (Some((8, block.span)), Some(Init::RandomVocab));
    if let Some(b) = prompt {
        let mut p = Reader::new(b, "a prompt", PROMPT_FIELDS);
        prompt_len = p.usize("length", Some(8));
        init = match p.get("init").map(|f| &f.value) {
            None => Some(Init::RandomVocab),
            Some(Value::Lit(syn::Lit::Str(s))) => Some(Init::Text(s.value(), s.span())),
            Some(Value::Word(w)) if w == "random_vocab" => Some(Init::RandomVocab),
            Some(Value::Word(w)) if w == "random_normal" => Some(Init::RandomNormal),
            Some(v) => {
                p.error(
                    v.span(),
                    format!(
                        "`init` must be a text \"…\" or one of: {}",
                        INITS.join(", ")
                    ),
                );
                None
            }
        };
        p.finish(&mut errors);
    }
    r.finish(&mut errors);
    if let Some(e) = errors {
        return Err(e);
    }
    match (
        name,
        description,
        data,
        classes,
        readout,
        prompt_len,
        init,
        shots,
    ) {
        (
            Some(name),
            Some(description),
            Some(data),
            Some(classes),
            Some(readout),
            Some(prompt_len),
            Some(init),
            Some(shots),
        ) => Ok(TaskDecl {
            name,
            description,
            data,
            classes,
            readout,
            prompt_len,
            init,
            shots,
        }),
        _ => Err(syn::Error::new(block.span, "malformed task")),
    }
}

fn names(list: &[(&'static str, usize)]) -> Vec<&'static str> {
    list.iter().map(|(n, _)| *n).collect()
}

/// Checks that the task can be loaded and trained; each error points at the field responsible.
pub fn validate(t: &TaskDecl) -> syn::Result<()> {
    let mut errors = Errors::default();
    let mut err = |span: Span, msg: String| errors.push(span, msg);
    let (name, span) = &t.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        err(
            *span,
            format!("task name `{name}` must be non-empty lowercase letters, digits and `-` (it names run folders)"),
        );
    }
    if t.description.0.trim().is_empty() {
        err(
            t.description.1,
            "the description is shown to the mentor and must not be empty".into(),
        );
    }
    let corpus_classes = CORPORA
        .iter()
        .find(|(n, _)| *n == t.data.0)
        .map(|(_, k)| *k)
        .unwrap_or(0);
    let (classes, list_span) = &t.classes;
    if classes.len() != corpus_classes {
        err(
            *list_span,
            format!(
                "`{}` has {corpus_classes} classes; {} class names given",
                t.data.0,
                classes.len()
            ),
        );
    }
    for (i, (c, span)) in classes.iter().enumerate() {
        if c.trim().is_empty() {
            err(*span, "a class name must not be empty".into());
        } else if classes[..i].iter().any(|(d, _)| d == c) {
            err(*span, format!("class `{c}` is named twice"));
        }
    }
    if let (_, Some((scale, span)), _) = &t.readout {
        if !(scale.is_finite() && *scale > 0.0) {
            err(
                *span,
                format!("`scale` must be a positive number, not {scale}"),
            );
        }
    }
    let (len, span) = t.prompt_len;
    if len == 0 || len > MAX_PROMPT_LEN {
        err(
            span,
            format!("a prompt has 1 to {MAX_PROMPT_LEN} vectors (the text needs the rest of the encoder's 64 tokens), not {len}"),
        );
    }
    if let Init::Text(text, span) = &t.init {
        if text.trim().is_empty() {
            err(
                *span,
                "an `init` text needs at least one word; use `random_vocab` for a random start"
                    .into(),
            );
        }
    }
    if let Some((0, span)) = t.shots {
        err(
            span,
            "`shots` must be at least 1 (or `all` for the full training split)".into(),
        );
    }
    errors.finish()
}

/// The `tandem::task::TaskSpec` value; a constant expression.
pub fn expand(t: &TaskDecl) -> TokenStream {
    let (name, description) = (&t.name.0, &t.description.0);
    let data = match t.data.0.as_str() {
        "rotten_tomatoes" => quote!(RottenTomatoes),
        "subj" => quote!(Subj),
        "uci_imdb" => quote!(UciImdb),
        "uci_yelp" => quote!(UciYelp),
        _ => quote!(UciAmazon),
    };
    let classes = t.classes.0.iter().map(|(c, _)| c);
    let readout = match &t.readout {
        (_, Some((scale, _)), _) => {
            let scale = *scale as f32;
            quote!(::tandem::readout::ReadoutConfig::ClassPrompt { scale: #scale })
        }
        _ => quote!(::tandem::readout::ReadoutConfig::InputHead),
    };
    let init = match &t.init {
        Init::Text(text, _) => {
            quote!(::tandem::task::InitSpec::Text(::std::borrow::Cow::Borrowed(#text)))
        }
        Init::RandomVocab => quote!(::tandem::task::InitSpec::RandomVocab),
        Init::RandomNormal => quote!(::tandem::task::InitSpec::RandomNormal),
    };
    let len = t.prompt_len.0;
    let shots = match t.shots {
        Some((k, _)) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    };
    quote!({
        const TASK: ::tandem::task::TaskSpec = ::tandem::task::TaskSpec {
            name: ::std::borrow::Cow::Borrowed(#name),
            description: ::std::borrow::Cow::Borrowed(#description),
            data: ::tandem::task::DataSource::Corpus(::tandem::task::Corpus::#data),
            classes: ::std::borrow::Cow::Borrowed(&[#(::std::borrow::Cow::Borrowed(#classes)),*]),
            backbone: ::tandem::task::BackboneSpec::MiniLm,
            readout: #readout,
            prompt: ::tandem::task::PromptSpec { length: #len, init: #init },
            metric: ::tandem::task::Metric::Accuracy,
            shots: #shots,
        };
        TASK
    })
}
