//! Built-in classification tasks: which corpus, which classes, how to describe them.

use crate::assets::Assets;
use crate::data::{load_mr, load_subj, load_uci, Dataset, UciSource};
use crate::error::{Error, Result};

/// A built-in task.
#[derive(Debug, Clone, Copy)]
pub struct TaskSpec {
    /// Name used on the command line.
    pub name: &'static str,
    /// One line describing the task (shown to the mentor in later stages).
    pub description: &'static str,
    /// A hand-written class prompt: "<prompt> <class name>" reads as a sentence.
    pub zero_shot_prompt: &'static str,
    loader: fn(&Assets) -> Result<Dataset>,
}

impl TaskSpec {
    /// Loads the task's dataset, fetching its assets on first use.
    pub fn load(&self, assets: &Assets) -> Result<Dataset> {
        (self.loader)(assets)
    }
}

/// Every built-in task.
pub const BUILTIN_TASKS: &[TaskSpec] = &[
    TaskSpec {
        name: "mr",
        description: "sentiment of movie-review snippets (Rotten Tomatoes): negative or positive",
        zero_shot_prompt: "this movie review is",
        loader: load_mr,
    },
    TaskSpec {
        name: "subj",
        description:
            "whether a movie text is a subjective review snippet or an objective plot summary",
        zero_shot_prompt: "this text is",
        loader: load_subj,
    },
    TaskSpec {
        name: "uci-imdb",
        description: "sentiment of IMDB review sentences: negative or positive",
        zero_shot_prompt: "this movie review is",
        loader: |a| load_uci(a, UciSource::Imdb),
    },
    TaskSpec {
        name: "uci-yelp",
        description: "sentiment of Yelp restaurant-review sentences: negative or positive",
        zero_shot_prompt: "this restaurant review is",
        loader: |a| load_uci(a, UciSource::Yelp),
    },
    TaskSpec {
        name: "uci-amazon",
        description: "sentiment of Amazon product-review sentences: negative or positive",
        zero_shot_prompt: "this product review is",
        loader: |a| load_uci(a, UciSource::Amazon),
    },
];

/// Looks up a built-in task by name; the error lists the known ones.
pub fn builtin_task(name: &str) -> Result<TaskSpec> {
    BUILTIN_TASKS
        .iter()
        .find(|t| t.name == name)
        .copied()
        .ok_or_else(|| {
            let known: Vec<_> = BUILTIN_TASKS.iter().map(|t| t.name).collect();
            Error::config(
                format!("task `{name}`"),
                format!("unknown; known tasks: {}", known.join(", ")),
            )
        })
}
