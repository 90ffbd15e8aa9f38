//! Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling
//! from a seeded generator, so the same seed gives the same text.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded next-token sampler.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// Greedy when `temperature <= 0`; otherwise softmax at `temperature`, restricted to the
    /// smallest set of most likely tokens whose mass reaches `top_p` (clamped to (0, 1]).
    pub fn new(temperature: f32, top_p: f32, seed: u64) -> Self {
        Self {
            temperature,
            top_p: if top_p.is_finite() {
                top_p.clamp(f32::MIN_POSITIVE, 1.0)
            } else {
                1.0
            },
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A greedy sampler.
    pub fn greedy() -> Self {
        Self::new(0.0, 1.0, 0)
    }

    /// Whether this sampler always takes the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0
    }

    /// The next token id. NaN logits are never chosen unless every logit is NaN.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() {
            return argmax(logits);
        }
        let max = logits
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.temperature as f64;
        let mut probs: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.is_nan())
            .map(|(i, &x)| (i as u32, ((x - max) as f64 * inv_t).exp()))
            .filter(|&(_, p)| p > 0.0)
            .collect();
        // Most likely first; ties by id so the order is deterministic.
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let mut kept = 0.0;
        let mut n = 0;
        for &(_, p) in &probs {
            kept += p;
            n += 1;
            if kept / total >= self.top_p as f64 {
                break;
            }
        }
        probs.truncate(n.max(1));
        let mut r = self.rng.random::<f64>() * kept;
        for &(id, p) in &probs {
            if r < p {
                return id;
            }
            r -= p;
        }
        probs.last().map(|p| p.0).unwrap_or(0)
    }
}

/// Index of the largest logit; the first on ties; NaN loses to everything.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -3.0]), 1);
        assert_eq!(Sampler::greedy().sample(&[0.1, 0.0, 5.0]), 2);
    }

    #[test]
    fn same_seed_same_tokens_and_top_p_cuts_the_tail() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let draw = |seed| {
            let mut s = Sampler::new(1.0, 0.9, seed);
            (0..40).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // A tiny top-p keeps only the most likely token.
        let mut s = Sampler::new(1.0, 1e-6, 3);
        let best = argmax(&logits);
        assert!((0..20).all(|_| s.sample(&logits) == best));
        // Sampled ids stay among the tokens inside the nucleus.
        let mut sorted: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut s = Sampler::new(1.0, 0.5, 1);
        let probs: Vec<f64> = {
            let m = sorted[0].1;
            let e: Vec<f64> = sorted.iter().map(|x| ((x.1 - m) as f64).exp()).collect();
            let t: f64 = e.iter().sum();
            e.iter().map(|x| x / t).collect()
        };
        let mut cum = 0.0;
        let nucleus: Vec<u32> = sorted
            .iter()
            .zip(&probs)
            .take_while(|(_, &p)| {
                let inside = cum < 0.5;
                cum += p;
                inside
            })
            .map(|(x, _)| x.0 as u32)
            .collect();
        assert!((0..200).all(|_| nucleus.contains(&s.sample(&logits))));
    }
}
