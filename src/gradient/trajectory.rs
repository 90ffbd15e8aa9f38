//! Points of the gradient trajectory: what the mentor later reads.

use serde::{Deserialize, Serialize};

/// The prompt after a step, projected to tokens, with the batch loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Global step count (1-based: the point is taken after this many optimizer steps).
    pub step: usize,
    /// Mean training loss over the steps since the previous point.
    pub loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Nearest token of each prompt vector, decoded to text.
    pub text: String,
    /// Nearest token id of each prompt vector.
    pub token_ids: Vec<u32>,
    /// Distance of each vector to its nearest token.
    pub distances: Vec<f32>,
    /// Top-k token ids per vector (nearest first).
    pub top_k: Vec<Vec<u32>>,
    /// Accuracy of the continuous prompt on the selection split, when the stage measured it.
    pub selection_accuracy: Option<f64>,
}
