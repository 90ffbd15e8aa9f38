//! Error type of the library: every variant names the input that was wrong and, where there is one,
//! the fix.

use std::path::PathBuf;

/// Result alias used across tandem.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tandem, with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An asset (model or data file) is missing, corrupt or could not be fetched.
    #[error("asset `{file}`: {reason}\n  fix: {fix}")]
    Asset {
        /// The file (path inside the asset cache) concerned.
        file: String,
        /// What went wrong.
        reason: String,
        /// What the user can do about it.
        fix: String,
    },
    /// A configuration value (CLI flag, YAML key, task field) is invalid.
    #[error("invalid {input}: {reason}")]
    Config {
        /// The input that was wrong, e.g. `--prompt-len` or `gradient.lr`.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A data file could not be parsed.
    #[error("data file {path}: {reason}")]
    Data {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Model weights are inconsistent with the declared architecture.
    #[error("model {path}: {reason}")]
    Model {
        /// The weights file concerned.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A requested backend is not compiled into this build.
    #[error("backend `{backend}` is not in this build: rebuild with `--features {feature}`")]
    BackendUnavailable {
        /// The backend that was requested.
        backend: String,
        /// The cargo feature that enables it.
        feature: String,
    },
    /// A backend is compiled in but could not start or crashed (no driver, no device).
    #[error("backend `{backend}` failed: {reason}")]
    BackendFailed {
        /// The backend.
        backend: String,
        /// What went wrong.
        reason: String,
    },
    /// A record/replay cassette could not serve or store a request.
    #[error("cassette {path}: {reason}")]
    Replay {
        /// The cassette file.
        path: PathBuf,
        /// What went wrong (a miss in read mode names the request).
        reason: String,
    },
    /// An LLM endpoint failed or answered something unusable.
    #[error("mentor endpoint {endpoint}: {reason}")]
    Mentor {
        /// The endpoint (base URL or `embedded`).
        endpoint: String,
        /// What went wrong, including what was tried.
        reason: String,
    },
    /// A budget (LLM calls, tokens, steps) is spent; the run stops cleanly.
    #[error("budget exhausted: {what} reached its limit of {limit}")]
    Budget {
        /// Which budget.
        what: String,
        /// Its limit.
        limit: u64,
    },
    /// Training diverged (non-finite loss or gradient).
    #[error("training diverged at step {step}: {reason}")]
    Diverged {
        /// The step at which it was detected.
        step: usize,
        /// What was non-finite.
        reason: String,
    },
    /// A run stopped on purpose after writing a checkpoint (fault-injection hook); resume it.
    #[error("run halted after checkpoint {checkpoints}; resume it with --resume")]
    Halted {
        /// Checkpoints written before the halt.
        checkpoints: usize,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (e.g. "writing").
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for a [`Error::Config`].
    pub fn config(input: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            input: input.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for an [`Error::Data`].
    pub fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`Error::Model`].
    pub fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
