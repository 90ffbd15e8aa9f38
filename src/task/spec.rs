//! A task declaration: which data, which classes, which backbone and readout, how the prompt
//! starts. Written with [`crate::task!`] (every field a constant, so tasks can be `const`s) or
//! read from a YAML file ([`TaskSpec::from_yaml_file`]); both give the same value.

use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::assets::Assets;
use crate::data::{load_mr, load_subj, load_uci, Dataset, SplitConfig, UciSource};
use crate::error::{Error, Result};
use crate::prompt::PromptInit;
use crate::readout::ReadoutConfig;
use crate::tune::TuneConfig;

/// Text of a declaration: borrowed from the program in a `task!`, owned when read from YAML.
pub type Text = Cow<'static, str>;

/// Longest soft prompt a task may declare: half the encoder's default 64-token budget, so that
/// the input text keeps the other half.
pub const MAX_PROMPT_LEN: usize = 32;

/// A corpus tandem can load from its assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// Number of classes of the corpus.
    pub fn num_classes(self) -> usize {
        2
    }
}

/// Which split of a folder of `train` / `validation` / `test` files plays *selection*.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionSplit {
    /// The folder's `validation` file.
    #[default]
    Validation,
    /// A stratified part of the folder's `train` file (`split.selection_frac`).
    Train,
}

/// A data file (CSV, TSV or JSONL) or a folder of `train` / `validation` / `test` files of one
/// format, and where its texts and labels are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The file, or a folder holding `train.EXT`, `validation.EXT` (optional) and `test.EXT`.
    /// `task!` anchors a relative path at the crate root and a YAML task file at the working
    /// directory, both to an absolute path; one set at run time is read from the working
    /// directory.
    pub path: Text,
    /// Column (CSV/TSV header) or field (JSONL key) of the text.
    pub text: Text,
    /// Column or field of the second text of a sentence-pair task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<Text>,
    /// Column or field of the label (a string or an integer).
    pub label: Text,
    /// The raw label values in class order: raw value `labels[i]` is class `i`. Without it, a
    /// raw label names its class, or is the class index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Cow<'static, [Text]>>,
    /// For a folder: which split plays selection.
    #[serde(default)]
    pub selection: SelectionSplit,
}

/// Where a task's examples come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// A built-in corpus (fetched into the asset cache).
    Corpus(Corpus),
    /// Comma-separated values with a header row.
    Csv(FileSource),
    /// Tab-separated values with a header row.
    Tsv(FileSource),
    /// One JSON object per line.
    Jsonl(FileSource),
}

/// Format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

impl FileFormat {
    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Tsv => "tsv",
            FileFormat::Jsonl => "jsonl",
        }
    }
}

impl DataSource {
    /// The file source and its format, for data declared on files.
    pub fn file(&self) -> Option<(FileFormat, &FileSource)> {
        match self {
            DataSource::Corpus(_) => None,
            DataSource::Csv(f) => Some((FileFormat::Csv, f)),
            DataSource::Tsv(f) => Some((FileFormat::Tsv, f)),
            DataSource::Jsonl(f) => Some((FileFormat::Jsonl, f)),
        }
    }

    /// Whether the examples have a second text (sentence-pair tasks).
    pub fn has_pairs(&self) -> bool {
        self.file().is_some_and(|(_, f)| f.pair.is_some())
    }

    /// Loads the examples with `classes` as their class names.
    pub fn load(&self, assets: &Assets, classes: &[String]) -> Result<Dataset> {
        match self {
            DataSource::Corpus(c) => {
                let mut dataset = c.load(assets)?;
                if dataset.class_names.len() != classes.len() {
                    return Err(Error::config(
                        "classes",
                        format!(
                            "{} names given but {c:?} has {} classes",
                            classes.len(),
                            dataset.class_names.len()
                        ),
                    ));
                }
                dataset.class_names = classes.to_vec();
                Ok(dataset)
            }
            _ => {
                let (format, source) = self.file().expect("a file source");
                crate::data::load_files(format, source, classes)
            }
        }
    }
}

/// The frozen backbone a task's prompt is tuned against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackboneSpec {
    /// all-MiniLM-L6-v2 sentence encoder (fetched into the asset cache).
    #[serde(rename = "minilm")]
    MiniLm,
    /// A BERT-family encoder folder with `config.json`, `model.safetensors`, `tokenizer.json`.
    #[serde(rename = "bert")]
    Bert(Text),
    /// The embedded SmolLM2-135M-Instruct decoder (fetched into the asset cache).
    #[serde(rename = "smollm2")]
    SmolLm2,
    /// A llama-architecture decoder in a GGUF file.
    #[serde(rename = "llama_gguf")]
    LlamaGguf(Text),
}

impl BackboneSpec {
    /// Whether the backbone is a decoder (scored by the verbalizer readout).
    pub fn is_decoder(&self) -> bool {
        matches!(self, BackboneSpec::SmolLm2 | BackboneSpec::LlamaGguf(_))
    }
}

/// How a task's soft prompt starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitSpec {
    /// The embeddings of a text's tokens, cycled or truncated to the prompt length.
    Text(Text),
    /// Embeddings of random regular vocabulary tokens.
    RandomVocab,
    /// Normal noise scaled like the word-embedding table.
    RandomNormal,
}

impl InitSpec {
    /// The run-time initialisation.
    pub fn to_init(&self) -> PromptInit {
        match self {
            InitSpec::Text(t) => PromptInit::Text(t.to_string()),
            InitSpec::RandomVocab => PromptInit::RandomVocab,
            InitSpec::RandomNormal => PromptInit::RandomNormal(None),
        }
    }
}

/// The metric that drives selection and best-checkpoint choice; reports carry all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of examples whose highest-scoring class is the label.
    #[default]
    Accuracy,
    /// Unweighted mean over classes of the per-class F1 score.
    MacroF1,
    /// Matthews correlation coefficient (multi-class form, Gorodkin 2004).
    Mcc,
}

impl Metric {
    /// The metric's value in `m`.
    pub fn of(self, m: &crate::readout::Metrics) -> f64 {
        match self {
            Metric::Accuracy => m.accuracy,
            Metric::MacroF1 => m.macro_f1,
            Metric::Mcc => m.mcc,
        }
    }

    /// Its name, as written in declarations.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::Mcc => "mcc",
        }
    }
}

/// A soft prompt's length and start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// Number of soft-prompt vectors L.
    #[serde(default = "default_len")]
    pub length: usize,
    /// How the prompt starts.
    #[serde(default = "default_init")]
    pub init: InitSpec,
}

fn default_len() -> usize {
    8
}
fn default_init() -> InitSpec {
    InitSpec::RandomVocab
}
fn default_shots() -> Option<usize> {
    Some(16)
}
fn default_readout_yaml() -> ReadoutConfig {
    ReadoutConfig::default()
}

/// A classification task, as declared with [`crate::task!`] or in a YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Name used on the command line and in run folders.
    pub name: Text,
    /// One line describing the task, shown to the mentor.
    pub description: Text,
    /// Where the examples come from.
    pub data: DataSource,
    /// Class names, in label order: what the readout scores and the mentor reads.
    pub classes: Cow<'static, [Text]>,
    /// The frozen backbone.
    #[serde(default = "default_backbone")]
    pub backbone: BackboneSpec,
    /// Readout and its settings.
    #[serde(default = "default_readout_yaml")]
    pub readout: ReadoutConfig,
    /// The soft prompt.
    #[serde(default = "default_prompt")]
    pub prompt: PromptSpec,
    /// Selection and report metric.
    #[serde(default)]
    pub metric: Metric,
    /// Training examples per class, or `None` (`all`) for the full training split.
    #[serde(
        default = "default_shots",
        serialize_with = "ser_shots",
        deserialize_with = "de_shots"
    )]
    pub shots: Option<usize>,
    /// Most selection and test examples scored (a costly backbone scores fewer).
    #[serde(default, skip_serializing_if = "SplitSizes::is_default")]
    pub split: SplitSizes,
}

/// Most selection and test examples a task scores; `None` keeps the defaults (500 and 2,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSizes {
    /// Most selection examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<usize>,
    /// Most test examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<usize>,
}

impl SplitSizes {
    /// Whether both sizes are the defaults.
    pub fn is_default(&self) -> bool {
        *self == SplitSizes::default()
    }
}

fn default_backbone() -> BackboneSpec {
    BackboneSpec::MiniLm
}
fn default_prompt() -> PromptSpec {
    PromptSpec {
        length: default_len(),
        init: default_init(),
    }
}

fn ser_shots<S: Serializer>(shots: &Option<usize>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match shots {
        Some(k) => s.serialize_u64(*k as u64),
        None => s.serialize_str("all"),
    }
}

fn de_shots<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shots {
        Count(usize),
        Word(String),
    }
    match Shots::deserialize(d)? {
        Shots::Count(k) => Ok(Some(k)),
        Shots::Word(w) if w == "all" => Ok(None),
        Shots::Word(w) => Err(serde::de::Error::custom(format!(
            "`shots` must be a whole number or `all`, not `{w}`"
        ))),
    }
}

impl TaskSpec {
    /// Class names as owned strings.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.to_string()).collect()
    }

    /// Loads the dataset with the declared class names.
    pub fn load(&self, assets: &Assets) -> Result<Dataset> {
        self.data.load(assets, &self.class_names())
    }

    /// The init text, when the prompt starts from one (the task's zero-shot prompt).
    pub fn init_text(&self) -> Option<&str> {
        match &self.prompt.init {
            InitSpec::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Reads a task from a YAML file with the fields of [`crate::task!`]; errors name the file
    /// and the key.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let input = format!("task file {}", path.display());
        let spec: TaskSpec =
            serde_yaml::from_str(&text).map_err(|e| Error::config(&input, e.to_string()))?;
        spec.validate().map_err(|e| match e {
            Error::Config { input: key, reason } => {
                Error::config(format!("{input}: {key}"), reason)
            }
            other => other,
        })?;
        let cwd = std::env::current_dir().map_err(|e| Error::io("reading", Path::new("."), e))?;
        Ok(spec.anchored_at(&cwd))
    }

    /// The task with relative data and model paths made absolute from `base` (`.` components
    /// dropped), as `task!` does from the crate root.
    pub fn anchored_at(mut self, base: &Path) -> Self {
        let anchor = |p: &mut Text| {
            let path = Path::new(p.as_ref());
            if path.is_relative() {
                let abs: std::path::PathBuf = base.join(path).components().collect();
                *p = Cow::Owned(abs.display().to_string());
            }
        };
        match &mut self.data {
            DataSource::Csv(f) | DataSource::Tsv(f) | DataSource::Jsonl(f) => anchor(&mut f.path),
            DataSource::Corpus(_) => {}
        }
        match &mut self.backbone {
            BackboneSpec::Bert(p) | BackboneSpec::LlamaGguf(p) => anchor(p),
            BackboneSpec::MiniLm | BackboneSpec::SmolLm2 => {}
        }
        self
    }

    /// The checks `task!` makes at compile time, for tasks read at run time; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::config(
                "name",
                format!("`{name}` must be non-empty lowercase letters, digits and `-` (it names run folders)"),
            ));
        }
        if self.description.trim().is_empty() {
            return Err(Error::config(
                "description",
                "is shown to the mentor and must not be empty",
            ));
        }
        validate_classes(&self.classes, &self.data)?;
        validate_readout(&self.readout, &self.backbone, &self.data)?;
        let len = self.prompt.length;
        if len == 0 || len > MAX_PROMPT_LEN {
            return Err(Error::config(
                "prompt.length",
                format!("a prompt has 1 to {MAX_PROMPT_LEN} vectors, not {len}"),
            ));
        }
        if let InitSpec::Text(t) = &self.prompt.init {
            if t.trim().is_empty() {
                return Err(Error::config(
                    "prompt.init",
                    "an init text needs at least one word; use `random_vocab` for a random start",
                ));
            }
        }
        if self.shots == Some(0) {
            return Err(Error::config(
                "shots",
                "must be at least 1 (or `all` for the full training split)",
            ));
        }
        for (key, size) in [
            ("split.selection", self.split.selection),
            ("split.test", self.split.test),
        ] {
            if size == Some(0) {
                return Err(Error::config(key, "must be at least 1 example"));
            }
        }
        if let Some((_, f)) = self.data.file() {
            for (key, v) in [
                ("data.path", &f.path),
                ("data.text", &f.text),
                ("data.label", &f.label),
            ] {
                if v.trim().is_empty() {
                    return Err(Error::config(key, "must not be empty"));
                }
            }
        }
        Ok(())
    }

    /// A tuning configuration with this task's declared defaults; every knob stays overridable.
    pub fn tune_config(&self) -> TuneConfig {
        let defaults = TuneConfig::default();
        TuneConfig {
            task: self.name.to_string(),
            description: self.description.to_string(),
            data: self.data.clone(),
            classes: self.class_names(),
            backbone: self.backbone.clone(),
            metric: self.metric,
            readout: self.readout.clone(),
            prompt_len: self.prompt.length,
            init: self.prompt.init.to_init(),
            split: SplitConfig {
                shots: self.shots,
                max_selection: self.split.selection.unwrap_or(defaults.split.max_selection),
                max_test: self.split.test.unwrap_or(defaults.split.max_test),
                ..defaults.split.clone()
            },
            ..defaults
        }
    }
}

/// At least two distinct, non-empty class names, as many as a built-in corpus has.
pub(crate) fn validate_classes<S: AsRef<str>>(classes: &[S], data: &DataSource) -> Result<()> {
    if classes.len() < 2 {
        return Err(Error::config(
            "classes",
            format!("a task needs at least 2 classes, {} given", classes.len()),
        ));
    }
    for (i, c) in classes.iter().enumerate() {
        let c = c.as_ref();
        if c.trim().is_empty() {
            return Err(Error::config("classes", "a class name must not be empty"));
        }
        if classes[..i].iter().any(|d| d.as_ref() == c) {
            return Err(Error::config("classes", format!("`{c}` is named twice")));
        }
    }
    if let DataSource::Corpus(corpus) = data {
        if classes.len() != corpus.num_classes() {
            return Err(Error::config(
                "classes",
                format!(
                    "{} names given but {corpus:?} has {} classes",
                    classes.len(),
                    corpus.num_classes()
                ),
            ));
        }
    }
    if let Some((_, f)) = data.file() {
        check_labels(f, classes.len())?;
    }
    Ok(())
}

/// A file's declared raw labels, when given, name every class once.
pub(crate) fn check_labels(source: &FileSource, classes: usize) -> Result<()> {
    match &source.labels {
        Some(labels) if labels.len() != classes => Err(Error::config(
            "data.labels",
            format!("{} raw labels given for {classes} classes", labels.len()),
        )),
        _ => Ok(()),
    }
}

/// The readout fits the backbone (the verbalizer needs a decoder, the others an encoder) and
/// the data (the class-prompt readout compares single-text sentence embeddings: no pairs).
pub(crate) fn validate_readout(
    readout: &ReadoutConfig,
    backbone: &BackboneSpec,
    data: &DataSource,
) -> Result<()> {
    match readout {
        ReadoutConfig::ClassPrompt { scale } => {
            if !(scale.is_finite() && *scale > 0.0) {
                return Err(Error::config(
                    "readout.class-prompt.scale",
                    "must be positive",
                ));
            }
            if data.has_pairs() {
                return Err(Error::config(
                    "readout",
                    "the class-prompt readout compares single-text sentence embeddings and cannot take sentence pairs; use `input_head` or `verbalizer`",
                ));
            }
        }
        ReadoutConfig::InputHead => {}
        ReadoutConfig::Verbalizer { cue, .. } => {
            if cue.trim().is_empty() {
                return Err(Error::config("readout.verbalizer.cue", "must not be empty"));
            }
        }
    }
    match (backbone.is_decoder(), readout) {
        (true, ReadoutConfig::Verbalizer { .. }) | (false, ReadoutConfig::ClassPrompt { .. })
        | (false, ReadoutConfig::InputHead) => Ok(()),
        (true, _) => Err(Error::config(
            "readout",
            "a decoder backbone is read out by `verbalizer` (its next-token logits of the class words)",
        )),
        (false, _) => Err(Error::config(
            "readout",
            "the `verbalizer` readout needs a decoder backbone (`smollm2` or `llama_gguf`)",
        )),
    }
}
