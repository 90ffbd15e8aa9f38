//! A task declaration: which corpus, which classes, which backbone and readout, how the prompt
//! starts. Written with [`crate::task!`]; every field is a constant, so tasks can be `const`s.

use crate::assets::Assets;
use crate::data::{load_mr, load_subj, load_uci, Dataset, SplitConfig, UciSource};
use crate::error::{Error, Result};
use crate::prompt::PromptInit;
use crate::readout::ReadoutConfig;
use crate::tune::TuneConfig;

/// A corpus tandem can load from its assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// Rotten Tomatoes movie-review snippets (negative, positive).
    RottenTomatoes,
    /// Subjective review snippets vs objective plot summaries.
    Subj,
    /// UCI sentiment-labelled sentences from IMDB.
    UciImdb,
    /// UCI sentiment-labelled sentences from Yelp.
    UciYelp,
    /// UCI sentiment-labelled sentences from Amazon.
    UciAmazon,
}

impl Corpus {
    /// Loads the corpus, fetching its assets on first use.
    pub fn load(self, assets: &Assets) -> Result<Dataset> {
        match self {
            Corpus::RottenTomatoes => load_mr(assets),
            Corpus::Subj => load_subj(assets),
            Corpus::UciImdb => load_uci(assets, UciSource::Imdb),
            Corpus::UciYelp => load_uci(assets, UciSource::Yelp),
            Corpus::UciAmazon => load_uci(assets, UciSource::Amazon),
        }
    }
}

/// The frozen backbone a task's prompt is tuned against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackboneKind {
    /// all-MiniLM-L6-v2 sentence encoder.
    MiniLm,
}

/// How a task's soft prompt starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitSpec {
    /// The embeddings of a text's tokens, cycled or truncated to the prompt length.
    Text(&'static str),
    /// Embeddings of random regular vocabulary tokens.
    RandomVocab,
    /// Normal noise scaled like the word-embedding table.
    RandomNormal,
}

impl InitSpec {
    /// The run-time initialisation.
    pub fn to_init(self) -> PromptInit {
        match self {
            InitSpec::Text(t) => PromptInit::Text(t.to_string()),
            InitSpec::RandomVocab => PromptInit::RandomVocab,
            InitSpec::RandomNormal => PromptInit::RandomNormal(None),
        }
    }
}

/// The metric that selection and reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of examples whose highest-scoring class is the label.
    Accuracy,
}

/// A classification task, as declared with [`crate::task!`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskSpec {
    /// Name used on the command line and in run folders.
    pub name: &'static str,
    /// One line describing the task, shown to the mentor.
    pub description: &'static str,
    /// The corpus.
    pub data: Corpus,
    /// Class names, in label order; they replace the corpus' own names.
    pub classes: &'static [&'static str],
    /// The frozen backbone.
    pub backbone: BackboneKind,
    /// Readout and its settings.
    pub readout: ReadoutConfig,
    /// Number of soft-prompt vectors L.
    pub prompt_len: usize,
    /// How the prompt starts.
    pub init: InitSpec,
    /// Selection and report metric.
    pub metric: Metric,
    /// Training examples per class, or `None` for the full training split.
    pub shots: Option<usize>,
}

impl TaskSpec {
    /// Loads the dataset with the declared class names; the corpus must have as many classes.
    pub fn load(&self, assets: &Assets) -> Result<Dataset> {
        let mut dataset = self.data.load(assets)?;
        if dataset.class_names.len() != self.classes.len() {
            return Err(Error::config(
                format!("task `{}` classes", self.name),
                format!(
                    "{} names given but {:?} has {} classes",
                    self.classes.len(),
                    self.data,
                    dataset.class_names.len()
                ),
            ));
        }
        dataset.class_names = self.classes.iter().map(|c| c.to_string()).collect();
        Ok(dataset)
    }

    /// The init text, when the prompt starts from one (the task's zero-shot prompt).
    pub fn init_text(&self) -> Option<&'static str> {
        match self.init {
            InitSpec::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A tuning configuration with this task's declared defaults; every knob stays overridable.
    pub fn tune_config(&self) -> TuneConfig {
        let defaults = TuneConfig::default();
        TuneConfig {
            task: self.name.to_string(),
            readout: self.readout,
            prompt_len: self.prompt_len,
            init: self.init.to_init(),
            split: SplitConfig {
                shots: self.shots,
                ..defaults.split.clone()
            },
            ..defaults
        }
    }
}
