//! Classification tasks: declarations ([`TaskSpec`], written with [`crate::task!`]), the
//! built-ins from `tasks/`, and lookup by name.

mod registry;
mod spec;

pub(crate) use spec::{check_labels, validate_classes, validate_readout};

pub use registry::{all_tasks, lookup, register, resolve};
pub use spec::{
    BackboneSpec, Corpus, DataSource, FileFormat, FileSource, InitSpec, Metric, PromptSpec,
    SelectionSplit, SplitSizes, TaskSpec, Text, MAX_PROMPT_LEN,
};

/// The built-in tasks, declared in the DSL under `tasks/`.
pub const BUILTIN_TASKS: &[TaskSpec] = &[
    include!("../../tasks/mr.rs"),
    include!("../../tasks/mr_decoder.rs"),
    include!("../../tasks/subj.rs"),
    include!("../../tasks/uci_imdb.rs"),
    include!("../../tasks/uci_yelp.rs"),
    include!("../../tasks/uci_amazon.rs"),
];
