//! Soft prompts (trainable vectors in the word-embedding space) and their projection to tokens.

mod projection;
mod soft_prompt;

pub use projection::{Metric, Projection, Projector};
pub use soft_prompt::{fit_to_len, PromptInit, SoftPrompt};
