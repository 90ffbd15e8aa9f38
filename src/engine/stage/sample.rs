//! Which of a round's projected prompts are scored and shown to the mentor.

use crate::gradient::TrajectoryPoint;
use crate::prompt::PromptInit;

/// Up to `n` projected texts spread evenly over a round's trajectory, duplicates removed; a
/// round without gradient steps offers the initial text prompt instead.
pub fn sample(points: &[TrajectoryPoint], n: usize, init: &PromptInit) -> Vec<String> {
    if points.is_empty() {
        return match init {
            PromptInit::Text(t) => vec![t.clone()],
            _ => Vec::new(),
        };
    }
    let mut texts: Vec<String> = Vec::new();
    for i in 0..n.min(points.len()) {
        let t = &points[i * (points.len() - 1) / (n - 1).max(1)].text;
        if !texts.contains(t) {
            texts.push(t.clone());
        }
    }
    texts
}
