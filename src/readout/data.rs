//! Tokenized splits of a dataset, as the readouts consume them.

use serde::{Deserialize, Serialize};

use crate::backbone::BertTokenizer;
use crate::data::{Dataset, Splits};

/// Which split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitName {
    /// Training examples (k-shot sample or full).
    Train,
    /// Selection (validation) examples.
    Selection,
    /// Held-out test examples.
    Test,
}

/// One tokenized split.
#[derive(Debug, Clone, Default)]
pub struct EncodedSplit {
    /// Token ids per example (no special tokens).
    pub tokens: Vec<Vec<u32>>,
    /// Labels per example.
    pub labels: Vec<usize>,
}

impl EncodedSplit {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels of the given examples.
    pub fn labels_of(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| self.labels[i]).collect()
    }

    /// Token slices of the given examples.
    pub fn tokens_of(&self, idx: &[usize]) -> Vec<&[u32]> {
        idx.iter().map(|&i| self.tokens[i].as_slice()).collect()
    }
}

/// A dataset's splits, tokenized once.
#[derive(Debug, Clone)]
pub struct EncodedData {
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// Training split.
    pub train: EncodedSplit,
    /// Selection split.
    pub selection: EncodedSplit,
    /// Test split.
    pub test: EncodedSplit,
}

impl EncodedData {
    /// Tokenizes the examples of each split with the encoder's tokenizer; a sentence pair
    /// becomes `text [SEP] pair`.
    pub fn new(dataset: &Dataset, splits: &Splits, tokenizer: &BertTokenizer) -> Self {
        Self::with_tokenizer(
            dataset,
            splits,
            |text| tokenizer.encode(text),
            &[tokenizer.sep()],
        )
    }

    /// Tokenizes the examples of each split with `encode`; the two texts of a sentence pair are
    /// joined by the `separator` ids.
    pub fn with_tokenizer(
        dataset: &Dataset,
        splits: &Splits,
        encode: impl Fn(&str) -> Vec<u32>,
        separator: &[u32],
    ) -> Self {
        let example = |i: usize| {
            let e = &dataset.examples[i];
            let mut ids = encode(&e.text);
            if let Some(pair) = &e.pair {
                ids.extend_from_slice(separator);
                ids.extend(encode(pair));
            }
            ids
        };
        let enc = |idx: &[usize]| EncodedSplit {
            tokens: idx.iter().map(|&i| example(i)).collect(),
            labels: idx.iter().map(|&i| dataset.examples[i].label).collect(),
        };
        Self {
            class_names: dataset.class_names.clone(),
            train: enc(&splits.train),
            selection: enc(&splits.selection),
            test: enc(&splits.test),
        }
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// A split by name.
    pub fn split(&self, name: SplitName) -> &EncodedSplit {
        match name {
            SplitName::Train => &self.train,
            SplitName::Selection => &self.selection,
            SplitName::Test => &self.test,
        }
    }
}
