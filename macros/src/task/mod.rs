//! `task!`: parse → check → expand. Data and model declarations have their own files
//! (`data.rs`, `backbone.rs`); every parser and check reports into one [`Ctxt`].

mod backbone;
mod data;

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;
use crate::fields::{Fields, Reader, Value};
use backbone::{BackboneDecl, ReadoutDecl};
use data::DataDecl;

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
    "split",
];
const SPLIT_FIELDS: &[&str] = &["selection", "test"];
const PROMPT_FIELDS: &[&str] = &["length", "init"];
const METRICS: &[&str] = &["accuracy", "macro_f1", "mcc"];
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
    data: DataDecl,
    classes: (Vec<(String, Span)>, Span),
    backbone: BackboneDecl,
    readout: (ReadoutDecl, Span),
    prompt_len: (usize, Span),
    init: Init,
    metric: String,
    shots: Option<(usize, Span)>,
    /// Most selection and test examples, when declared.
    split: [Option<(usize, Span)>; 2],
}

/// Reads the declaration, reporting every malformed or missing field into `cx`; `None` when
/// something was reported.
pub fn parse(cx: &Ctxt, tokens: TokenStream) -> Option<TaskDecl> {
    let block = Fields::parse_tokens(tokens)
        .map_err(|e| cx.syn_error(e))
        .ok()?;
    let r = Reader::new(cx, &block, "a task", FIELDS);
    let name = r.string("name", None);
    let description = r.string("description", None);
    let data = data::parse(cx, &r);
    let classes = r.strings("classes");
    let backbone = backbone::parse_backbone(cx, &r);
    let readout = backbone::parse_readout(cx, &r, backbone.as_ref());
    let metric = r.word("metric", METRICS, Some("accuracy"));
    let shots = match r.get("shots").map(|f| &f.value) {
        Some(Value::Word(w)) if w == "all" => Some(None),
        Some(Value::Word(w)) => {
            r.error(w.span(), "`shots` must be a whole number or `all`");
            None
        }
        _ => r.usize("shots", Some(16)).map(Some),
    };
    let (prompt_len, init) = match r.block("prompt") {
        Some(b) => prompt(cx, b),
        None => (Some((8, block.span)), Some(Init::RandomVocab)),
    };
    let split = match r.block("split") {
        Some(b) => split(cx, b)?,
        None => [None, None],
    };
    Some(TaskDecl {
        split,
        name: name?,
        description: description?,
        data: data?,
        classes: classes?,
        backbone: backbone?,
        readout: readout?,
        prompt_len: prompt_len?,
        init: init?,
        metric: metric?.0,
        shots: shots?,
    })
}

/// `split: { selection: 100, test: 200 }`, both optional.
fn split(cx: &Ctxt, b: &Fields) -> Option<[Option<(usize, Span)>; 2]> {
    let r = Reader::new(cx, b, "a split", SPLIT_FIELDS);
    let size = |name: &str| match r.get(name) {
        None => Some(None),
        Some(_) => r.usize(name, None).map(Some),
    };
    Some([size("selection")?, size("test")?])
}

/// `prompt: { length: 8, init: "…" | random_vocab | random_normal }`.
fn prompt(cx: &Ctxt, b: &Fields) -> (Option<(usize, Span)>, Option<Init>) {
    let p = Reader::new(cx, b, "a prompt", PROMPT_FIELDS);
    let len = p.usize("length", Some(8));
    let init = match p.get("init").map(|f| &f.value) {
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
    (len, init)
}

/// Checks that the task can be loaded and trained; each error points at the field responsible.
pub fn check(cx: &Ctxt, t: &mut TaskDecl) {
    let (name, span) = &t.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        cx.error(*span, format!("task name `{name}` must be non-empty lowercase letters, digits and `-` (it names run folders)"));
    }
    if t.description.0.trim().is_empty() {
        cx.error(
            t.description.1,
            "the description is shown to the mentor and must not be empty",
        );
    }
    let (classes, list_span) = &t.classes;
    if classes.len() < 2 {
        cx.error(
            *list_span,
            format!("a task needs at least 2 classes, {} given", classes.len()),
        );
    }
    check_distinct(cx, classes, "a class name must not be empty", |c| {
        format!("class `{c}` is named twice")
    });
    data::check(cx, &mut t.data, classes.len(), *list_span);
    backbone::check(cx, &mut t.backbone, &t.readout, t.data.has_pairs());
    let (len, span) = t.prompt_len;
    if len == 0 || len > MAX_PROMPT_LEN {
        cx.error(span, format!("a prompt has 1 to {MAX_PROMPT_LEN} vectors (the text needs the rest of the encoder's 64 tokens), not {len}"));
    }
    if let Init::Text(text, span) = &t.init {
        if text.trim().is_empty() {
            cx.error(
                *span,
                "an `init` text needs at least one word; use `random_vocab` for a random start",
            );
        }
    }
    if let Some((0, span)) = t.shots {
        cx.error(
            span,
            "`shots` must be at least 1 (or `all` for the full training split)",
        );
    }
    for (name, size) in SPLIT_FIELDS.iter().zip(&t.split) {
        if let Some((0, span)) = size {
            cx.error(*span, format!("`{name}` must be at least 1 example"));
        }
    }
}

/// Reports each empty name (`empty`) and each repeat of an earlier one (`twice`) at its span.
fn check_distinct(
    cx: &Ctxt,
    names: &[(String, Span)],
    empty: &str,
    twice: impl Fn(&str) -> String,
) {
    for (i, (name, span)) in names.iter().enumerate() {
        if name.trim().is_empty() {
            cx.error(*span, empty);
        } else if names[..i].iter().any(|(earlier, _)| earlier == name) {
            cx.error(*span, twice(name));
        }
    }
}

/// The `tandem::task::TaskSpec` value; a constant expression.
pub fn expand(t: &TaskDecl) -> TokenStream {
    let (name, description) = (&t.name.0, &t.description.0);
    let data = data::expand(&t.data);
    let classes = t.classes.0.iter().map(|(c, _)| c);
    let backbone = backbone::expand_backbone(&t.backbone);
    let readout = backbone::expand_readout(&t.readout.0);
    let init = match &t.init {
        Init::Text(text, _) => {
            quote!(::tandem::task::InitSpec::Text(::std::borrow::Cow::Borrowed(#text)))
        }
        Init::RandomVocab => quote!(::tandem::task::InitSpec::RandomVocab),
        Init::RandomNormal => quote!(::tandem::task::InitSpec::RandomNormal),
    };
    let metric = match t.metric.as_str() {
        "macro_f1" => quote!(MacroF1),
        "mcc" => quote!(Mcc),
        _ => quote!(Accuracy),
    };
    let len = t.prompt_len.0;
    let shots = match t.shots {
        Some((k, _)) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    };
    let [selection, test] = t.split.map(|size| match size {
        Some((k, _)) => quote!(::core::option::Option::Some(#k)),
        None => quote!(::core::option::Option::None),
    });
    quote!({
        const TASK: ::tandem::task::TaskSpec = ::tandem::task::TaskSpec {
            name: ::std::borrow::Cow::Borrowed(#name),
            description: ::std::borrow::Cow::Borrowed(#description),
            data: #data,
            classes: ::std::borrow::Cow::Borrowed(&[#(::std::borrow::Cow::Borrowed(#classes)),*]),
            backbone: #backbone,
            readout: #readout,
            prompt: ::tandem::task::PromptSpec { length: #len, init: #init },
            metric: ::tandem::task::Metric::#metric,
            shots: #shots,
            split: ::tandem::task::SplitSizes { selection: #selection, test: #test },
        };
        TASK
    })
}
