//! An in-memory labelled text dataset.

use serde::{Deserialize, Serialize};

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The text.
    pub text: String,
    /// The second text of a sentence-pair task (hypothesis, paraphrase, passage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// Index into [`Dataset::class_names`].
    pub label: usize,
}

impl Example {
    /// A single-text example.
    pub fn new(text: impl Into<String>, label: usize) -> Self {
        Self {
            text: text.into(),
            pair: None,
            label,
        }
    }
}

/// A labelled corpus in a canonical order (the order of its source file), so that split indices
/// recorded in a manifest identify examples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short name, e.g. `mr`.
    pub name: String,
    /// Class names in label order, e.g. `["negative", "positive"]`.
    pub class_names: Vec<String>,
    /// The examples.
    pub examples: Vec<Example>,
    /// sha256 of the source file the examples were read from; for a folder of split files, the
    /// sha256 of the concatenated (hex) sha256s of the files read, in the order train,
    /// validation, test.
    pub source_sha256: String,
    /// The splits a folder of `train` / `validation` / `test` files gives; `None` for a single
    /// file or a built-in corpus, which [`crate::data::Splits::new`] splits itself.
    pub given: Option<GivenSplits>,
}

/// The splits a folder of split files gives, as indices into [`Dataset::examples`] (which hold
/// the train file's rows, then the validation file's, then the test file's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenSplits {
    /// The train file's examples: the pool k-shot samples draw from.
    pub train: Vec<usize>,
    /// The validation file's examples, which play selection; `None` when selection is a
    /// stratified part of `train` (the validation file, if any, is then not read).
    pub validation: Option<Vec<usize>>,
    /// The test file's examples.
    pub test: Vec<usize>,
    /// The files read, in the order train, validation, test.
    pub files: Vec<SplitFile>,
}

/// One split file of a folder, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitFile {
    /// Which split it gives: `train`, `validation` or `test`.
    pub split: String,
    /// Its path, as declared (folder joined with the file name).
    pub path: String,
    /// sha256 of its contents.
    pub sha256: String,
    /// Number of examples read from it.
    pub examples: usize,
}

impl Dataset {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of examples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for e in &self.examples {
            counts[e.label] += 1;
        }
        counts
    }

    /// Indices of the examples of each class, in canonical order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by_class = vec![Vec::new(); self.num_classes()];
        for (i, e) in self.examples.iter().enumerate() {
            by_class[e.label].push(i);
        }
        by_class
    }
}
