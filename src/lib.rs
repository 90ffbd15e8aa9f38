//! # tandem
//!
//! LLM-catalysed prompt tuning: gradient descent tunes a soft prompt of a frozen pretrained model,
//! an LLM mentor reads the trajectory (prompts projected to tokens, with their losses) and proposes
//! new prompts in words, and the two alternate (Guo et al., "LLM as a Complementary Optimizer to
//! Gradient Descent", arXiv 2405.19732).
//!
//! The library is generic over burn backends; the CLI picks one at the edge
//! ([`backend::dispatch`]).
//!
//! Layers, bottom up: [`assets`] (pinned models and data) → [`data`] (corpora, splits) →
//! [`backbone`] (frozen encoder) → [`prompt`] (soft prompt, projection) → [`readout`] (class
//! scores) → [`gradient`] (the gradient stage) → [`tune`] (a whole run) → [`run`] (records).

#![warn(missing_docs)]

pub mod assets;
pub mod backbone;
pub mod backend;
pub mod bench;
pub mod data;
pub mod decoder;
pub mod engine;
pub mod error;
pub mod gradient;
pub mod kernels;
pub mod mentor;
pub mod prompt;
pub mod readout;
pub mod report;
pub mod run;
pub mod serve;
pub mod task;
pub mod tune;

pub use error::{Error, Result};
pub use tandem_macros::{schedule, task, template};

// The DSL's expansions name `::tandem`; this lets the crate use its own macros.
extern crate self as tandem;
