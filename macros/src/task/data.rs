//! `data:` of a task: a built-in corpus, or the user's CSV / TSV / JSONL file or folder of
//! `train` / `validation` / `test` files. The path must exist when the task is compiled, and a
//! file's header (CSV/TSV) or first object (JSONL) must have the columns the task names.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Lit;

use crate::ctxt::Ctxt;
use crate::fields::{Reader, Value};

/// The corpora tandem can load, with their number of classes.
pub const CORPORA: &[(&str, usize)] = &[
    ("rotten_tomatoes", 2),
    ("subj", 2),
    ("uci_imdb", 2),
    ("uci_yelp", 2),
    ("uci_amazon", 2),
];
const FORMATS: &[&str] = &["csv", "tsv", "jsonl"];
const FILE_FIELDS: &[&str] = &["text", "pair", "label", "labels", "selection"];
const SELECTIONS: &[&str] = &["validation", "train"];

pub enum DataDecl {
    Corpus(String),
    File(Box<FileDecl>),
}

pub struct FileDecl {
    format: String,
    /// As written, and resolved against the crate root.
    path: (String, Span),
    resolved: Option<PathBuf>,
    text: (String, Span),
    pair: Option<(String, Span)>,
    label: (String, Span),
    labels: Option<(Vec<(String, Span)>, Span)>,
    selection: Option<(String, Span)>,
}

impl DataDecl {
    /// Whether the examples have a second text.
    pub fn has_pairs(&self) -> bool {
        matches!(self, DataDecl::File(f) if f.pair.is_some())
    }
}

/// Reads `data:`, reporting into `cx`.
pub fn parse(cx: &Ctxt, r: &Reader) -> Option<DataDecl> {
    let corpora: Vec<&str> = CORPORA.iter().map(|(n, _)| *n).collect();
    let expected = || {
        format!(
            "`data` must be a corpus ({}) or a file: csv(\"path\", text: \"…\", label: \"…\"), tsv(…) or jsonl(…)",
            corpora.join(", ")
        )
    };
    match r.get("data").map(|f| &f.value) {
        None => {
            cx.error(r.span(), "missing field `data` of a task");
            None
        }
        Some(Value::Word(w)) if corpora.contains(&w.to_string().as_str()) => {
            Some(DataDecl::Corpus(w.to_string()))
        }
        Some(Value::Call(format, arg, fields))
            if FORMATS.contains(&format.to_string().as_str()) =>
        {
            let path = match arg {
                Some(Lit::Str(s)) => Some((s.value(), s.span())),
                _ => {
                    cx.error(format.span(), format!("`{format}(…)` takes the file's path first, as a string: {format}(\"data/train.{format}\", text: \"…\", label: \"…\")"));
                    None
                }
            };
            let f = Reader::new(cx, fields, "a data file", FILE_FIELDS);
            let (text, label) = (f.string("text", None), f.string("label", None));
            let pair = f.get("pair").and_then(|_| f.string("pair", None));
            let labels = labels(cx, &f);
            let selection = f
                .get("selection")
                .and_then(|_| f.word("selection", SELECTIONS, None));
            Some(DataDecl::File(Box::new(FileDecl {
                format: format.to_string(),
                resolved: None,
                path: path?,
                text: text?,
                pair,
                label: label?,
                labels,
                selection,
            })))
        }
        Some(v) => {
            cx.error(v.span(), expected());
            None
        }
    }
}

/// `labels: ["pos", "neg"]` or `labels: [1, 0]`: the raw label values in class order.
fn labels(cx: &Ctxt, f: &Reader) -> Option<(Vec<(String, Span)>, Span)> {
    match f.get("labels").map(|f| &f.value) {
        None => None,
        Some(Value::List(items, span)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Lit::Str(s) => out.push((s.value(), s.span())),
                    Lit::Int(i) => out.push((i.base10_digits().to_string(), i.span())),
                    other => cx.error(other.span(), "a raw label is a string or a whole number"),
                }
            }
            Some((out, *span))
        }
        Some(v) => {
            cx.error(
                v.span(),
                "`labels` must be a list of raw label values `[\"…\", …]`, in class order",
            );
            None
        }
    }
}

/// Checks the file or folder and its columns; `classes` is the number of declared classes.
pub fn check(cx: &Ctxt, data: &mut DataDecl, classes: usize, classes_span: Span) {
    let f = match data {
        DataDecl::Corpus(name) => {
            let k = CORPORA
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, k)| *k);
            if classes != k {
                cx.error(
                    classes_span,
                    format!("`{name}` has {k} classes; {classes} class names given"),
                );
            }
            return;
        }
        DataDecl::File(f) => f,
    };
    for (what, (value, span)) in [("text", &f.text), ("label", &f.label)] {
        if value.trim().is_empty() {
            cx.error(*span, format!("the {what} column must be named"));
        }
    }
    if let Some((pair, span)) = &f.pair {
        if pair.trim().is_empty() {
            cx.error(*span, "the pair column must be named");
        } else if *pair == f.text.0 {
            cx.error(
                *span,
                format!(
                    "the pair column is the text column `{pair}`; name the second text's column"
                ),
            );
        }
    }
    if let Some((labels, span)) = &f.labels {
        if labels.len() != classes {
            cx.error(
                *span,
                format!("{} raw labels given for {classes} classes", labels.len()),
            );
        }
        super::check_distinct(cx, labels, "a raw label must not be empty", |l| {
            format!("raw label `{l}` is given twice")
        });
    }
    f.resolved = check_path(cx, f);
}

/// The resolved path, when it exists; a folder must hold `train` and `test` files (and
/// `validation` for `selection: validation`), a file the named columns.
fn check_path(cx: &Ctxt, f: &FileDecl) -> Option<PathBuf> {
    let (path, span) = (&f.path.0, f.path.1);
    if path.trim().is_empty() {
        cx.error(span, "the data path must not be empty");
        return None;
    }
    let resolved = find(cx, path, span)?;
    let ext = &f.format;
    let header_of = if resolved.is_dir() {
        let wants_validation = f.selection.as_ref().is_none_or(|(s, _)| s == "validation");
        let mut needed = vec!["train", "test"];
        if wants_validation {
            needed.push("validation");
        }
        let missing: Vec<String> = needed
            .iter()
            .map(|s| format!("{s}.{ext}"))
            .filter(|name| !resolved.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            let hint = if missing.iter().any(|m| m.starts_with("validation")) {
                " (`selection: train` holds out part of train instead of a validation file)"
            } else {
                ""
            };
            cx.error(
                span,
                format!("the folder `{path}` has no {}{hint}", missing.join(", ")),
            );
            return Some(resolved);
        }
        resolved.join(format!("train.{ext}"))
    } else {
        if let Some((_, s)) = &f.selection {
            cx.error(*s, format!("`selection` chooses among a folder's split files; `{path}` is one file (its selection split is a stratified part)"));
        }
        resolved.clone()
    };
    match columns(&header_of, ext) {
        Ok(columns) => {
            let named = [Some(&f.text), f.pair.as_ref(), Some(&f.label)];
            for (column, span) in named.into_iter().flatten() {
                if !column.trim().is_empty() && !columns.contains(column) {
                    let (what, place) = if ext == "jsonl" {
                        ("field", "the first object")
                    } else {
                        ("column", "the header")
                    };
                    cx.error(
                        *span,
                        format!(
                            "{what} `{column}` is not in {place} of {} (it has: {})",
                            header_of.display(),
                            columns.join(", ")
                        ),
                    );
                }
            }
        }
        Err(e) => cx.error(span, format!("{}: {e}", header_of.display())),
    }
    Some(resolved)
}

/// The column names of a CSV/TSV header or the keys of a JSONL file's first object.
fn columns(file: &Path, ext: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read(file).map_err(|e| e.to_string())?;
    if ext == "jsonl" {
        let first = text
            .split(|b| *b == b'\n')
            .find(|line| !line.iter().all(u8::is_ascii_whitespace))
            .ok_or("the file has no line")?;
        let value: serde_json::Value =
            serde_json::from_slice(first).map_err(|e| format!("line 1 is not JSON: {e}"))?;
        match value {
            serde_json::Value::Object(map) => Ok(map.keys().cloned().collect()),
            other => Err(format!("line 1 is not a JSON object but {other}")),
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(if ext == "tsv" { b'\t' } else { b',' })
            .from_reader(text.as_slice());
        let header = reader
            .headers()
            .map_err(|e| format!("the header does not parse: {e}"))?;
        Ok(header.iter().map(|c| c.trim().to_string()).collect())
    }
}

/// `path` resolved against the crate root (relative paths), when it exists; else an error at
/// `span`.
pub fn find(cx: &Ctxt, path: &str, span: Span) -> Option<PathBuf> {
    let found = crate::template::crate_roots()
        .iter()
        .map(|root| normalize(&root.join(path)))
        .find(|p| p.exists());
    if found.is_none() {
        cx.error(
            span,
            format!("`{path}` does not exist (a relative path is taken from the crate root, the folder of its Cargo.toml)"),
        );
    }
    found
}

/// `a/./b` as `a/b`: the path components, as the run-time loader resolves them.
pub fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

/// The `tandem::task::DataSource` value.
pub fn expand(data: &DataDecl) -> TokenStream {
    let cow = |s: &str| quote!(::std::borrow::Cow::Borrowed(#s));
    match data {
        DataDecl::Corpus(name) => {
            let variant = match name.as_str() {
                "rotten_tomatoes" => quote!(RottenTomatoes),
                "subj" => quote!(Subj),
                "uci_imdb" => quote!(UciImdb),
                "uci_yelp" => quote!(UciYelp),
                _ => quote!(UciAmazon),
            };
            quote!(::tandem::task::DataSource::Corpus(::tandem::task::Corpus::#variant))
        }
        DataDecl::File(f) => {
            let path = f
                .resolved
                .as_ref()
                .map_or_else(|| f.path.0.clone(), |p| p.display().to_string());
            let (path, text, label) = (cow(&path), cow(&f.text.0), cow(&f.label.0));
            let pair = match &f.pair {
                Some((p, _)) => {
                    let p = cow(p);
                    quote!(::core::option::Option::Some(#p))
                }
                None => quote!(::core::option::Option::None),
            };
            let labels = match &f.labels {
                Some((labels, _)) => {
                    let labels = labels.iter().map(|(l, _)| cow(l));
                    quote!(::core::option::Option::Some(::std::borrow::Cow::Borrowed(&[#(#labels),*])))
                }
                None => quote!(::core::option::Option::None),
            };
            let selection = match f.selection.as_ref().map(|(s, _)| s.as_str()) {
                Some("train") => quote!(Train),
                _ => quote!(Validation),
            };
            let variant = match f.format.as_str() {
                "csv" => quote!(Csv),
                "tsv" => quote!(Tsv),
                _ => quote!(Jsonl),
            };
            quote!(::tandem::task::DataSource::#variant(::tandem::task::FileSource {
                path: #path,
                text: #text,
                pair: #pair,
                label: #label,
                labels: #labels,
                selection: ::tandem::task::SelectionSplit::#selection,
            }))
        }
    }
}
