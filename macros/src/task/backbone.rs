//! `backbone:` and `readout:` of a task. A model path must exist when the task is compiled: a
//! BERT folder with its three files, a GGUF file that starts with the GGUF magic.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Lit;

use crate::ctxt::Ctxt;
use crate::fields::{Reader, Value};

const BACKBONES: &[&str] = &[
    "minilm",
    "bert(\"dir\")",
    "smollm2",
    "llama_gguf(\"file.gguf\")",
];
const READOUTS: &[&str] = &["class_prompt", "input_head", "verbalizer"];
const CLASS_PROMPT_FIELDS: &[&str] = &["scale"];
const VERBALIZER_FIELDS: &[&str] = &["cue", "position"];
const POSITIONS: &[&str] = &["prefix", "suffix"];
/// Files a BERT-family folder must hold.
const BERT_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];
/// The verbalizer's default cue (`tandem::readout::DEFAULT_CUE`).
const DEFAULT_CUE: &str = "\nAnswer:";

pub enum BackboneDecl {
    MiniLm,
    SmolLm2,
    /// The folder or file as written, and resolved against the crate root.
    Bert((String, Span), Option<PathBuf>),
    LlamaGguf((String, Span), Option<PathBuf>),
}

impl BackboneDecl {
    pub fn is_decoder(&self) -> bool {
        matches!(self, BackboneDecl::SmolLm2 | BackboneDecl::LlamaGguf(..))
    }
}

pub enum ReadoutDecl {
    ClassPrompt {
        scale: (f64, Span),
    },
    InputHead,
    Verbalizer {
        cue: (String, Span),
        /// The prompt comes after the input.
        suffix: bool,
    },
}

/// Reads `backbone:` (default `minilm`), reporting into `cx`.
pub fn parse_backbone(cx: &Ctxt, r: &Reader) -> Option<BackboneDecl> {
    let expected = format!("`backbone` must be one of: {}", BACKBONES.join(", "));
    let path = |word: &syn::Ident, arg: &Option<Lit>, fields: &crate::fields::Fields| {
        if let Some(f) = fields.fields.first() {
            cx.error(f.name.span(), format!("`{word}(…)` takes only a path"));
        }
        match arg {
            Some(Lit::Str(s)) => Some((s.value(), s.span())),
            _ => {
                cx.error(
                    word.span(),
                    format!("`{word}(…)` takes the model's path as a string"),
                );
                None
            }
        }
    };
    match r.get("backbone").map(|f| &f.value) {
        None => Some(BackboneDecl::MiniLm),
        Some(Value::Word(w)) if w == "minilm" => Some(BackboneDecl::MiniLm),
        Some(Value::Word(w)) if w == "smollm2" => Some(BackboneDecl::SmolLm2),
        Some(Value::Call(w, arg, fields)) if w == "bert" => {
            Some(BackboneDecl::Bert(path(w, arg, fields)?, None))
        }
        Some(Value::Call(w, arg, fields)) if w == "llama_gguf" => {
            Some(BackboneDecl::LlamaGguf(path(w, arg, fields)?, None))
        }
        Some(v) => {
            cx.error(v.span(), expected);
            None
        }
    }
}

/// Reads `readout:`; without one, a decoder is read out by `verbalizer`, an encoder by
/// `class_prompt`.
pub fn parse_readout(
    cx: &Ctxt,
    r: &Reader,
    backbone: Option<&BackboneDecl>,
) -> Option<(ReadoutDecl, Span)> {
    let (word, span, settings) = r.variant("readout", READOUTS, Some(""))?;
    let word = match word.as_str() {
        "" if backbone.is_some_and(BackboneDecl::is_decoder) => "verbalizer".to_string(),
        "" => "class_prompt".to_string(),
        _ => word,
    };
    let decl = match (word.as_str(), settings) {
        ("class_prompt", settings) => {
            let scale = match settings {
                Some(b) => Reader::new(cx, b, "the class-prompt readout", CLASS_PROMPT_FIELDS)
                    .float_at("scale", 20.0),
                None => (20.0, span),
            };
            ReadoutDecl::ClassPrompt { scale }
        }
        ("verbalizer", Some(b)) => {
            let r = Reader::new(cx, b, "the verbalizer readout", VERBALIZER_FIELDS);
            let position = r.word("position", POSITIONS, Some("prefix"));
            ReadoutDecl::Verbalizer {
                cue: r.string("cue", Some(DEFAULT_CUE))?,
                suffix: position?.0 == "suffix",
            }
        }
        ("verbalizer", None) => ReadoutDecl::Verbalizer {
            cue: (DEFAULT_CUE.to_string(), span),
            suffix: false,
        },
        (_, Some(b)) => {
            cx.error(b.span, format!("the `{word}` readout takes no settings"));
            return None;
        }
        (_, None) => ReadoutDecl::InputHead,
    };
    Some((decl, span))
}

/// Checks the model files, and that the readout fits the backbone and the data.
pub fn check(cx: &Ctxt, backbone: &mut BackboneDecl, readout: &(ReadoutDecl, Span), pairs: bool) {
    match backbone {
        BackboneDecl::Bert((dir, span), resolved) => {
            *resolved = super::data::find(cx, dir, *span);
            if let Some(folder) = resolved.as_ref() {
                if !folder.is_dir() {
                    cx.error(
                        *span,
                        format!(
                            "`{dir}` is not a folder; `bert(…)` takes a folder with {}",
                            BERT_FILES.join(", ")
                        ),
                    );
                } else {
                    let missing: Vec<&str> = BERT_FILES
                        .iter()
                        .copied()
                        .filter(|f| !folder.join(f).is_file())
                        .collect();
                    if !missing.is_empty() {
                        cx.error(
                            *span,
                            format!("the model folder `{dir}` has no {}", missing.join(", ")),
                        );
                    }
                }
            }
        }
        BackboneDecl::LlamaGguf((file, span), resolved) => {
            *resolved = super::data::find(cx, file, *span);
            if let Some(path) = resolved.as_ref() {
                let mut magic = [0u8; 4];
                let read = std::fs::File::open(path)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
                match read {
                    Ok(()) if &magic == b"GGUF" => {}
                    Ok(()) => cx.error(
                        *span,
                        format!("`{file}` is not a GGUF file (it does not start with `GGUF`)"),
                    ),
                    Err(e) => cx.error(*span, format!("`{file}` cannot be read: {e}")),
                }
            }
        }
        BackboneDecl::MiniLm | BackboneDecl::SmolLm2 => {}
    }
    let (decl, span) = readout;
    match decl {
        ReadoutDecl::ClassPrompt { scale: (scale, s) } => {
            if !(scale.is_finite() && *scale > 0.0) {
                cx.error(
                    *s,
                    format!("`scale` must be a positive number, not {scale}"),
                );
            }
            if pairs {
                cx.error(*span, "the class-prompt readout compares single-text sentence embeddings and cannot take sentence pairs (`pair:`); use `input_head` or a decoder with `verbalizer`");
            }
        }
        ReadoutDecl::Verbalizer { cue: (cue, s), .. } if cue.trim().is_empty() => {
            cx.error(
                *s,
                "the verbalizer's `cue` must not be empty: it is what the class word follows",
            );
        }
        _ => {}
    }
    match (backbone.is_decoder(), decl) {
        (true, ReadoutDecl::Verbalizer { .. }) | (false, ReadoutDecl::ClassPrompt { .. } | ReadoutDecl::InputHead) => {}
        (true, _) => cx.error(*span, "a decoder backbone is read out by `verbalizer` (its next-token logits of the class words)"),
        (false, _) => cx.error(*span, "the `verbalizer` readout needs a decoder backbone (`smollm2` or `llama_gguf(\"…\")`)"),
    }
}

/// The `tandem::task::BackboneSpec` value.
pub fn expand_backbone(b: &BackboneDecl) -> TokenStream {
    let path = |(p, _): &(String, Span), resolved: &Option<PathBuf>| {
        resolved
            .as_ref()
            .map_or_else(|| p.clone(), |r| r.display().to_string())
    };
    match b {
        BackboneDecl::MiniLm => quote!(::tandem::task::BackboneSpec::MiniLm),
        BackboneDecl::SmolLm2 => quote!(::tandem::task::BackboneSpec::SmolLm2),
        BackboneDecl::Bert(p, r) => {
            let p = path(p, r);
            quote!(::tandem::task::BackboneSpec::Bert(::std::borrow::Cow::Borrowed(#p)))
        }
        BackboneDecl::LlamaGguf(p, r) => {
            let p = path(p, r);
            quote!(::tandem::task::BackboneSpec::LlamaGguf(::std::borrow::Cow::Borrowed(#p)))
        }
    }
}

/// The `tandem::readout::ReadoutConfig` value.
pub fn expand_readout(r: &ReadoutDecl) -> TokenStream {
    match r {
        ReadoutDecl::ClassPrompt { scale: (scale, _) } => {
            let scale = *scale as f32;
            quote!(::tandem::readout::ReadoutConfig::ClassPrompt { scale: #scale })
        }
        ReadoutDecl::InputHead => quote!(::tandem::readout::ReadoutConfig::InputHead),
        ReadoutDecl::Verbalizer {
            cue: (cue, _),
            suffix,
        } => {
            let position = if *suffix {
                quote!(::tandem::readout::PromptPosition::Suffix)
            } else {
                quote!(::tandem::readout::PromptPosition::Prefix)
            };
            quote!(::tandem::readout::ReadoutConfig::Verbalizer {
                cue: ::std::borrow::Cow::Borrowed(#cue),
                position: #position,
            })
        }
    }
}
