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
    /// sha256 of the source file(s) the examples were read from.
    pub source_sha256: String,
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
