//! Labelled text data: loaders for the built-in corpora, seeded stratified splits, k-shot sampling.

mod dataset;
mod files;
mod loaders;
mod split;

pub use dataset::{Dataset, Example, GivenSplits, SplitFile};
pub use files::load_files;
pub use loaders::{load_mr, load_subj, load_uci, UciSource};
pub use split::{SelectionOrigin, SplitConfig, SplitManifest, Splits};
