//! Does the mentor help, by how much, with what confidence: each schedule of a sweep against a
//! baseline schedule (`gradient-only` by default), paired by task and seed (the same k-shot
//! sample, initial prompt and test split). Reports the mean paired difference of the task's
//! test metric, a percentile bootstrap 95% interval over the pairs and the two-sided p-value of
//! a sign-flip permutation test (exact up to 16 pairs), with wins, ties and losses.

use std::collections::BTreeMap;
use std::fmt::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engine::RunResult;
use crate::task::Metric;

/// Bootstrap resamples of the pairs.
const RESAMPLES: usize = 10_000;
/// Up to this many pairs every sign assignment is enumerated; above, this many are drawn.
const EXACT_PAIRS: usize = 16;
const DRAWN_FLIPS: usize = 100_000;

/// One schedule against the baseline on one task.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedComparison {
    /// Task.
    pub task: String,
    /// The schedule compared.
    pub schedule: String,
    /// The baseline schedule.
    pub baseline: String,
    /// The task's metric, in which the differences are (accuracy and macro-F1 in percentage
    /// points, MCC as is).
    pub metric: Metric,
    /// Seeds run by both.
    pub pairs: usize,
    /// Mean of schedule − baseline over the pairs.
    pub mean_diff: f64,
    /// Percentile bootstrap 95% interval of the mean difference.
    pub ci95: (f64, f64),
    /// Two-sided sign-flip permutation p-value of the mean difference.
    pub p_value: f64,
    /// Pairs where the schedule was better, equal, worse.
    pub wins: usize,
    /// See `wins`.
    pub ties: usize,
    /// See `wins`.
    pub losses: usize,
}

/// One schedule's runs on one task: seed → (test score, metric).
type Scores = BTreeMap<u64, (f64, Metric)>;

/// The test score of a run in its task's metric (percent for accuracy and macro-F1).
fn score(r: &RunResult) -> f64 {
    match r.metric {
        Metric::Accuracy => 100.0 * r.test.accuracy,
        Metric::MacroF1 => 100.0 * r.test.macro_f1,
        Metric::Mcc => r.test.mcc,
    }
}

/// Every schedule other than `baseline` against it, per task (sorted by task and schedule);
/// tasks without the baseline, and schedules sharing no seed with it, are left out.
pub fn paired_comparisons(results: &[RunResult], baseline: &str) -> Vec<PairedComparison> {
    let mut by: BTreeMap<&str, BTreeMap<&str, Scores>> = BTreeMap::new();
    for r in results {
        by.entry(&r.task)
            .or_default()
            .entry(&r.schedule)
            .or_default()
            .insert(r.seed, (score(r), r.metric));
    }
    let mut out = Vec::new();
    for (task, schedules) in &by {
        let Some(base) = schedules.get(baseline) else {
            continue;
        };
        for (schedule, runs) in schedules.iter().filter(|(s, _)| **s != baseline) {
            let diffs: Vec<f64> = runs
                .iter()
                .filter_map(|(seed, (x, _))| base.get(seed).map(|(b, _)| x - b))
                .collect();
            let Some((_, metric)) = runs.values().next() else {
                continue;
            };
            if diffs.is_empty() {
                continue;
            }
            out.push(PairedComparison {
                task: task.to_string(),
                schedule: schedule.to_string(),
                baseline: baseline.to_string(),
                metric: *metric,
                pairs: diffs.len(),
                mean_diff: mean(&diffs),
                ci95: bootstrap_ci95(&diffs),
                p_value: sign_flip_p(&diffs),
                wins: diffs.iter().filter(|d| **d > 0.0).count(),
                ties: diffs.iter().filter(|d| **d == 0.0).count(),
                losses: diffs.iter().filter(|d| **d < 0.0).count(),
            });
        }
    }
    out
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The 2.5th and 97.5th percentiles of the mean over `RESAMPLES` resamples of `diffs` with
/// replacement (a fixed generator: the same sweep gives the same interval).
pub fn bootstrap_ci95(diffs: &[f64]) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = diffs.len();
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| diffs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    // q ≤ 1, so the index is at most RESAMPLES − 1.
    let at = |q: f64| means[(q * (RESAMPLES - 1) as f64).round() as usize];
    (at(0.025), at(0.975))
}

/// The share of sign assignments of `diffs` whose mean is at least as far from zero as the
/// observed one (every assignment up to `EXACT_PAIRS` pairs, `DRAWN_FLIPS` drawn ones above).
pub fn sign_flip_p(diffs: &[f64]) -> f64 {
    let observed = diffs.iter().sum::<f64>().abs();
    // Sums equal up to rounding count as equal.
    let tol = 1e-9 * diffs.iter().map(|d| d.abs()).sum::<f64>().max(1e-12);
    let extreme = |signs: &mut dyn FnMut(usize) -> bool| {
        let s: f64 = diffs
            .iter()
            .enumerate()
            .map(|(i, d)| if signs(i) { -d } else { *d })
            .sum();
        s.abs() >= observed - tol
    };
    if diffs.len() <= EXACT_PAIRS {
        let all = 1u32 << diffs.len();
        let hits = (0..all)
            .filter(|mask| extreme(&mut |i| (*mask >> i) & 1 == 1))
            .count();
        hits as f64 / all as f64
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let hits = (0..DRAWN_FLIPS)
            .filter(|_| extreme(&mut |_| rng.random::<bool>()))
            .count();
        // The observed assignment counts once, so p is never 0.
        (hits + 1) as f64 / (DRAWN_FLIPS + 1) as f64
    }
}

/// The comparisons as a Markdown table.
pub fn paired_markdown(rows: &[PairedComparison]) -> String {
    let mut s = String::from(
        "| task | schedule | vs | seeds paired | Δ test metric (mean) | 95% CI (bootstrap) | p (sign-flip) | wins / ties / losses |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let unit = match r.metric {
            Metric::Mcc => "MCC",
            Metric::Accuracy => "pp accuracy",
            Metric::MacroF1 => "pp macro-F1",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:+.2} {unit} | [{:+.2}, {:+.2}] | {:.3} | {} / {} / {} |",
            r.task,
            r.schedule,
            r.baseline,
            r.pairs,
            r.mean_diff,
            r.ci95.0,
            r.ci95.1,
            r.p_value,
            r.wins,
            r.ties,
            r.losses
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readout::Metrics;

    fn run(schedule: &str, seed: u64, metric: Metric, value: f64) -> RunResult {
        let m = Metrics {
            loss: 0.5,
            accuracy: value,
            macro_f1: value - 0.1,
            mcc: value - 0.5,
            count: 100,
        };
        RunResult {
            task: "t".into(),
            schedule: schedule.into(),
            seed,
            gradient_steps: 100,
            selection_evals: 22,
            screen_evals: 0,
            llm_calls: 0,
            llm_tokens: 0,
            metric,
            selection: m,
            test: m,
            final_text: String::new(),
            wall_seconds: 1.0,
        }
    }

    /// Differences are in the task's metric: percentage points of accuracy or macro-F1, MCC
    /// as it is.
    #[test]
    fn differences_are_in_the_tasks_metric_and_units() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
        for (metric, want) in [
            (Metric::Accuracy, 2.0),
            (Metric::MacroF1, 2.0),
            (Metric::Mcc, 0.02),
        ] {
            let results = [
                run("base", 0, metric, 0.70),
                run("new", 0, metric, 0.72),
                run("base", 1, metric, 0.60),
                run("new", 1, metric, 0.62),
            ];
            let [c] = paired_comparisons(&results, "base").try_into().unwrap();
            close(c.mean_diff, want);
            assert_eq!((c.pairs, c.wins, c.metric), (2, 2, metric));
        }
        let r = run("x", 0, Metric::MacroF1, 0.7);
        close(score(&r), 60.0);
        close(score(&run("x", 0, Metric::Mcc, 0.7)), 0.2);
        close(score(&run("x", 0, Metric::Accuracy, 0.7)), 70.0);
    }

    #[test]
    fn sign_flip_p_is_exact_on_small_samples() {
        // All five positive: only the observed assignment and its mirror are as extreme.
        assert_eq!(sign_flip_p(&[1.0, 2.0, 3.0, 4.0, 5.0]), 2.0 / 32.0);
        // Symmetric differences: the mean is 0, every assignment is as extreme.
        assert_eq!(sign_flip_p(&[1.0, -1.0]), 1.0);
        // [3, -1]: the sums ±3±1 are ±4 and ±2, all at least as far from 0 as the observed 2.
        assert_eq!(sign_flip_p(&[3.0, -1.0]), 1.0);
        assert_eq!(sign_flip_p(&[3.0, 1.0]), 0.5);
        // The scale of the differences does not matter: tiny ones give the same p.
        assert_eq!(sign_flip_p(&[1e-10, 2e-10, 3e-10]), 2.0 / 8.0);
        assert_eq!(sign_flip_p(&[1e10, 2e10, 3e10]), 2.0 / 8.0);
        // Drawn flips above 16 pairs: 20 equal positive differences, p = 2 / 2^20 ≈ 2e-6, so
        // at most a couple of the 100 000 draws hit (plus the observed assignment).
        let p = sign_flip_p(&[1.0; 20]);
        assert!(p > 0.0 && p <= 3.0 / 100_001.0, "{p}");
        // (hits + 1) / (draws + 1): a whole number of 100,001ths.
        let ths = p * 100_001.0;
        assert!((ths - ths.round()).abs() < 1e-6, "{ths}");
    }

    /// Drawn flips where p is far from 0: 18 differences of ±1 whose sum is S, against
    /// P(|Σ ±1| ≥ |S|) worked exactly from the binomial (the draws' standard error is ~0.0013).
    #[test]
    fn drawn_sign_flips_match_the_exact_binomial_p() {
        let diffs = |pos: usize| -> Vec<f64> {
            (0..18).map(|i| if i < pos { 1.0 } else { -1.0 }).collect()
        };
        // |S| = 2: 1 − C(18, 9) / 2^18.
        let p = sign_flip_p(&diffs(10));
        assert!((p - (1.0 - 48_620.0 / 262_144.0)).abs() < 0.006, "{p}");
        // |S| = 6: 2 · Σ_{k ≥ 12} C(18, k) / 2^18.
        let p = sign_flip_p(&diffs(12));
        assert!((p - 62_360.0 / 262_144.0).abs() < 0.006, "{p}");
    }

    /// For many pairs the percentile interval is the normal one, mean ± 1.96 · sd / √n (for
    /// 0, 1, …, 99: 49.5 ± 1.96 · 28.866 / 10); for two pairs its ends are exact atoms of the
    /// resampled means (0, ½, 1 with chances ¼, ½, ¼).
    #[test]
    fn bootstrap_interval_is_the_percentile_interval_of_the_mean() {
        let many: Vec<f64> = (0..100).map(f64::from).collect();
        let (lo, hi) = bootstrap_ci95(&many);
        let half = 1.96 * (9_999.0f64 / 12.0).sqrt() / 10.0;
        assert!(
            (lo - (49.5 - half)).abs() < 0.35 && (hi - (49.5 + half)).abs() < 0.35,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_ci95(&[0.0, 1.0]), (0.0, 1.0));
        // The ends are the 250th and 9,750th of the 10,000 sorted resampled means (0-based
        // 250 and 9,749: round(q · 9,999)), drawn here from the same generator.
        let diffs = [0.3, -1.2, 2.5, 0.7, 1.9, -0.4, 3.1, 0.05];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut means: Vec<f64> = (0..10_000)
            .map(|_| (0..8).map(|_| diffs[rng.random_range(0..8)]).sum::<f64>() / 8.0)
            .collect();
        means.sort_by(f64::total_cmp);
        assert_eq!(bootstrap_ci95(&diffs), (means[250], means[9_749]));
        assert!(
            means[9_749] < means[9_751],
            "the test needs distinct neighbours"
        );
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_shrinks_with_spread() {
        let wide = [-4.0, 1.0, 2.0, 6.0, 10.0];
        let (lo, hi) = bootstrap_ci95(&wide);
        assert!(lo < mean(&wide) && mean(&wide) < hi, "{lo} {hi}");
        assert!(lo >= -4.0 && hi <= 10.0);
        let narrow = [2.9, 3.0, 3.1, 3.0, 3.0];
        let (nlo, nhi) = bootstrap_ci95(&narrow);
        assert!(nhi - nlo < (hi - lo) / 10.0, "{nlo} {nhi}");
        assert_eq!(bootstrap_ci95(&[2.0, 2.0]), (2.0, 2.0));
    }
}
