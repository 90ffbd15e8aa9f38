//! The comparison table of a sweep folder: per task and schedule, the mean ± standard deviation
//! over its seeds, as Markdown (for the terminal and the README) and CSV (`report.csv`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use super::paired::{paired_comparisons, PairedComparison};
use crate::engine::RunResult;
use crate::error::{Error, Result};

/// Mean and sample standard deviation (divided by n − 1; 0 for a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
}

impl MeanStd {
    /// Mean and standard deviation of `values` (NaN mean when there are none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            std: var.sqrt(),
        }
    }
}

/// The smallest difference between two accuracies near `p`, each measured on `n` examples,
/// that a two-sided 95% test tells from chance: `1.96·√(2p̃(1−p̃)/n)`, with Agresti–Coull's
/// `p̃ = (pn + 2)/(n + 4)` so that a split every prompt gets right still resolves nothing
/// finer than its size allows (infinite for `n = 0`).
pub fn resolvable_difference(p: f64, n: usize) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let n = n as f64;
    let p = (p * n + 2.0) / (n + 4.0);
    1.96 * (2.0 * p * (1.0 - p) / n).sqrt()
}

/// One row of a sweep report: the finished runs of one task and schedule, over their seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// Task.
    pub task: String,
    /// Schedule name.
    pub schedule: String,
    /// Runs (one per seed).
    pub seeds: usize,
    /// Test accuracy, %.
    pub test_accuracy: MeanStd,
    /// Test macro-F1, %.
    pub test_macro_f1: MeanStd,
    /// Test Matthews correlation coefficient (−1 to 1).
    pub test_mcc: MeanStd,
    /// Selection accuracy, %.
    pub selection_accuracy: MeanStd,
    /// Gradient steps of the first run (a schedule's budget, the same for every seed).
    pub gradient_steps: usize,
    /// Mean scorings of the selection split that could choose a prompt.
    pub selection_evals: f64,
    /// Mean scorings of a subsample of the selection split by probe screens.
    pub screen_evals: f64,
    /// Selection split size of the first run.
    pub selection_n: usize,
    /// Mean LLM calls.
    pub llm_calls: f64,
    /// Mean LLM tokens.
    pub llm_tokens: f64,
    /// Mean wall time, seconds.
    pub wall_seconds: f64,
}

impl SweepRow {
    fn of(runs: &[&RunResult]) -> Self {
        let mean = |f: fn(&RunResult) -> f64| {
            MeanStd::of(&runs.iter().copied().map(f).collect::<Vec<_>>())
        };
        Self {
            task: runs[0].task.clone(),
            schedule: runs[0].schedule.clone(),
            seeds: runs.len(),
            test_accuracy: mean(|r| 100.0 * r.test.accuracy),
            test_macro_f1: mean(|r| 100.0 * r.test.macro_f1),
            test_mcc: mean(|r| r.test.mcc),
            selection_accuracy: mean(|r| 100.0 * r.selection.accuracy),
            gradient_steps: runs[0].gradient_steps,
            selection_evals: mean(|r| r.selection_evals as f64).mean,
            screen_evals: mean(|r| r.screen_evals as f64).mean,
            selection_n: runs[0].selection.count,
            llm_calls: mean(|r| r.llm_calls as f64).mean,
            llm_tokens: mean(|r| r.llm_tokens as f64).mean,
            wall_seconds: mean(|r| r.wall_seconds).mean,
        }
    }
}

/// The comparison of a sweep folder's finished runs, one row per task and schedule (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepReport {
    rows: Vec<SweepRow>,
    /// The runs, for the paired comparisons.
    results: Vec<RunResult>,
}

impl SweepReport {
    /// Reads `dir/*/results.json` (the finished runs; a folder without one is skipped). A
    /// `results.json` that is not a run result is an error naming it.
    pub fn load(dir: &Path) -> Result<Self> {
        let entries =
            fs::read_dir(dir).map_err(|e| Error::io("reading the sweep folder", dir, e))?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("results.json"))
            .collect();
        paths.sort();
        let mut results = Vec::new();
        for path in paths {
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let result: RunResult = serde_json::from_str(&text)
                .map_err(|e| Error::data(&path, format!("not a run result: {e}")))?;
            results.push(result);
        }
        Ok(Self::from_results(results))
    }

    /// Groups run results by task and schedule.
    pub fn from_results(results: impl IntoIterator<Item = RunResult>) -> Self {
        let results: Vec<RunResult> = results.into_iter().collect();
        let mut groups: BTreeMap<(&str, &str), Vec<&RunResult>> = BTreeMap::new();
        for r in &results {
            groups.entry((&r.task, &r.schedule)).or_default().push(r);
        }
        let rows = groups.values().map(|runs| SweepRow::of(runs)).collect();
        Self { rows, results }
    }

    /// Each schedule against `baseline`, paired by task and seed.
    pub fn paired(&self, baseline: &str) -> Vec<PairedComparison> {
        paired_comparisons(&self.results, baseline)
    }

    /// The rows, sorted by task, then schedule.
    pub fn rows(&self) -> &[SweepRow] {
        &self.rows
    }

    /// Whether no finished run was found.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The Markdown table: accuracies in % (test as mean ± std), means of the budgets spent.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| task | schedule | seeds | test accuracy, % | test macro-F1, % | test MCC | selection accuracy, % | gradient steps | selection evals | LLM calls | LLM tokens | wall s |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.3} ± {:.3} | {:.2} | {} | {:.1}{} | {:.1} | {:.0} | {:.1} |",
                r.task,
                r.schedule,
                r.seeds,
                r.test_accuracy.mean,
                r.test_accuracy.std,
                r.test_macro_f1.mean,
                r.test_macro_f1.std,
                r.test_mcc.mean,
                r.test_mcc.std,
                r.selection_accuracy.mean,
                r.gradient_steps,
                r.selection_evals,
                if r.screen_evals > 0.0 {
                    format!(" + {:.0} screened", r.screen_evals)
                } else {
                    String::new()
                },
                r.llm_calls,
                r.llm_tokens,
                r.wall_seconds
            );
        }
        s
    }

    /// Per task: the selection split's size and the smallest difference between two prompts'
    /// accuracies it tells from chance at 95% ([`resolvable_difference`]; p the task's mean selection
    /// accuracy over all its runs).
    pub fn resolution_markdown(&self) -> String {
        let mut s = String::from(
            "| task | selection examples | mean selection accuracy, % | smallest resolvable difference, pp |\n\
             |---|---|---|---|\n",
        );
        let mut tasks: BTreeMap<&str, Vec<&SweepRow>> = BTreeMap::new();
        for r in &self.rows {
            tasks.entry(&r.task).or_default().push(r);
        }
        for (task, rows) in tasks {
            let n = rows[0].selection_n;
            let runs: usize = rows.iter().map(|r| r.seeds).sum();
            let p = rows
                .iter()
                .map(|r| r.selection_accuracy.mean * r.seeds as f64)
                .sum::<f64>()
                / (100.0 * runs as f64);
            let _ = writeln!(
                s,
                "| {task} | {n} | {:.1} | {:.1} |",
                100.0 * p,
                100.0 * resolvable_difference(p, n)
            );
        }
        s
    }

    /// The same table as CSV (`report.csv`), with more digits and the test accuracy's std in
    /// a column of its own.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "task,schedule,seeds,test_acc_mean,test_acc_std,test_macro_f1_mean,test_macro_f1_std,test_mcc_mean,test_mcc_std,selection_acc_mean,gradient_steps,selection_evals_mean,llm_calls_mean,llm_tokens_mean,wall_s_mean,screen_evals_mean\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{},{:.2},{:.2},{:.1},{:.2},{:.2}",
                r.task,
                r.schedule,
                r.seeds,
                r.test_accuracy.mean,
                r.test_accuracy.std,
                r.test_macro_f1.mean,
                r.test_macro_f1.std,
                r.test_mcc.mean,
                r.test_mcc.std,
                r.selection_accuracy.mean,
                r.gradient_steps,
                r.selection_evals,
                r.llm_calls,
                r.llm_tokens,
                r.wall_seconds,
                r.screen_evals
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readout::Metrics;
    use crate::run::RunDir;

    fn result(task: &str, schedule: &str, seed: u64, test: f64, calls: u64) -> RunResult {
        let metrics = |accuracy: f64| Metrics {
            loss: 0.5,
            accuracy,
            macro_f1: accuracy - 0.05,
            mcc: 2.0 * accuracy - 1.0,
            count: 100,
        };
        RunResult {
            task: task.into(),
            schedule: schedule.into(),
            seed,
            gradient_steps: 100,
            selection_evals: 20 + calls as usize,
            screen_evals: 4 * calls as usize,
            llm_calls: calls,
            llm_tokens: 10 * calls,
            metric: crate::task::Metric::Accuracy,
            selection: metrics(test - 0.1),
            test: metrics(test),
            final_text: "a fine movie".into(),
            wall_seconds: 2.0 + seed as f64,
        }
    }

    /// A sweep folder: two seeds of `mr`/`catalyst`, one of `mr`/`gradient-only`, an unfinished
    /// run and a stray file.
    fn sweep_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for r in [
            result("mr", "catalyst", 0, 0.80, 4),
            result("mr", "catalyst", 1, 0.90, 6),
            result("mr", "gradient-only", 0, 0.75, 0),
        ] {
            let name = format!("{}-{}-s{}", r.task, r.schedule, r.seed);
            let run = RunDir::create(dir.path().join(name)).unwrap();
            run.write_json("results.json", &r).unwrap();
        }
        RunDir::create(dir.path().join("mr-catalyst-s2")).unwrap();
        fs::write(dir.path().join("report.csv"), "old").unwrap();
        dir
    }

    /// Three values, so that dividing by n − 1 = 2 differs from multiplying by it.
    #[test]
    fn mean_and_sample_std_of_three() {
        let m = MeanStd::of(&[1.0, 2.0, 6.0]);
        assert_eq!(m.mean, 3.0);
        // Squared deviations 4 + 1 + 9 = 14, over n − 1 = 2.
        assert!((m.std - 7f64.sqrt()).abs() < 1e-12, "{m:?}");
        assert!(MeanStd::of(&[]).mean.is_nan());
        assert_eq!(
            MeanStd::of(&[4.0]),
            MeanStd {
                mean: 4.0,
                std: 0.0
            }
        );
    }

    #[test]
    fn rows_hold_the_mean_and_sample_std_over_seeds() {
        let dir = sweep_folder();
        let report = SweepReport::load(dir.path()).unwrap();
        assert!(!report.is_empty());
        let rows = report.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let (c, g) = (&rows[0], &rows[1]);
        assert_eq!(
            (c.task.as_str(), c.schedule.as_str(), c.seeds),
            ("mr", "catalyst", 2)
        );
        assert!((c.test_accuracy.mean - 85.0).abs() < 1e-9, "{c:?}");
        // Sample std (n − 1) of 80 and 90, not the population std (5).
        assert!((c.test_accuracy.std - 50f64.sqrt()).abs() < 1e-9, "{c:?}");
        assert!((c.selection_accuracy.mean - 75.0).abs() < 1e-9, "{c:?}");
        assert_eq!(
            (c.llm_calls, c.llm_tokens, c.wall_seconds),
            (5.0, 50.0, 2.5)
        );
        assert_eq!((g.schedule.as_str(), g.seeds), ("gradient-only", 1));
        assert_eq!(g.test_accuracy.std, 0.0);
    }

    #[test]
    fn markdown_and_csv_have_one_row_per_task_and_schedule() {
        let report = SweepReport::load(sweep_folder().path()).unwrap();
        let markdown = report.markdown();
        let md: Vec<&str> = markdown.lines().collect();
        assert_eq!(md.len(), 4, "{md:?}");
        assert!(md[0].starts_with("| task | schedule | seeds | test accuracy, % |"));
        assert_eq!(
            md[2],
            "| mr | catalyst | 2 | 85.00 ± 7.07 | 80.00 ± 7.07 | 0.700 ± 0.141 | 75.00 | 100 | 25.0 + 20 screened | 5.0 | 50 | 2.5 |"
        );
        assert_eq!(
            md[3],
            "| mr | gradient-only | 1 | 75.00 ± 0.00 | 70.00 ± 0.00 | 0.500 ± 0.000 | 65.00 | 100 | 20.0 | 0.0 | 0 | 2.0 |"
        );
        let csv = report.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("task,schedule,seeds,test_acc_mean,test_acc_std,"));
        assert_eq!(
            lines[1],
            "mr,catalyst,2,85.0000,7.0711,80.0000,7.0711,0.7000,0.1414,75.0000,100,25.00,5.00,50.0,2.50,20.00"
        );
    }

    #[test]
    fn the_resolvable_difference_follows_the_split_size() {
        // p = 0.7: p̃ = 14.6/22 at n = 18 gives 0.3087; p̃ = 72/104 at n = 100 gives 0.1279.
        assert!((resolvable_difference(0.7, 18) - 0.30869).abs() < 1e-4);
        assert!((resolvable_difference(0.7, 100) - 0.12793).abs() < 1e-4);
        // Every prompt right on 8 examples resolves nothing finer than about 36 points.
        assert!((resolvable_difference(1.0, 8) - 0.3652).abs() < 1e-3);
        assert!(resolvable_difference(0.5, 0).is_infinite());
        // The sweep folder: mr's runs have 100 selection examples and a mean selection
        // accuracy of (70 + 80 + 65) / 3 = 71.67 %.
        let report = SweepReport::load(sweep_folder().path()).unwrap();
        let table = report.resolution_markdown();
        let want = 100.0 * resolvable_difference(0.716_666_666_7, 100);
        assert!(
            table.contains(&format!("| mr | 100 | 71.7 | {want:.1} |")),
            "{table}"
        );
    }

    #[test]
    fn an_empty_folder_gives_an_empty_report_and_a_broken_result_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SweepReport::load(dir.path()).unwrap().is_empty());
        let run = RunDir::create(dir.path().join("r")).unwrap();
        run.write_bytes("results.json", b"{").unwrap();
        let err = SweepReport::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("results.json") && err.contains("not a run result"),
            "{err}"
        );
        let err = SweepReport::load(&dir.path().join("none")).unwrap_err();
        assert!(
            err.to_string().contains("reading the sweep folder"),
            "{err}"
        );
    }

    #[test]
    fn schedules_are_paired_with_the_baseline_by_task_and_seed() {
        // catalyst beats gradient-only by 2, 4, 0, 6 points on seeds 0-3; seed 4 has no
        // baseline run and `subj` no baseline at all.
        let mut runs = Vec::new();
        for (seed, base, diff) in [
            (0, 0.70, 0.02),
            (1, 0.72, 0.04),
            (2, 0.75, 0.0),
            (3, 0.71, 0.06),
        ] {
            runs.push(result("mr", "gradient-only", seed, base, 0));
            runs.push(result("mr", "catalyst", seed, base + diff, 4));
        }
        runs.push(result("mr", "catalyst", 4, 0.99, 4));
        runs.push(result("subj", "catalyst", 0, 0.9, 4));
        let report = SweepReport::from_results(runs);
        let paired = report.paired("gradient-only");
        assert_eq!(paired.len(), 1, "{paired:?}");
        let p = &paired[0];
        assert_eq!(
            (p.task.as_str(), p.schedule.as_str(), p.pairs),
            ("mr", "catalyst", 4)
        );
        assert!((p.mean_diff - 3.0).abs() < 1e-9, "{}", p.mean_diff);
        assert_eq!((p.wins, p.ties, p.losses), (3, 1, 0));
        // Resampling [2, 4, 0, 6]: of the 4^4 equally likely means, 1.95 % lie below 1 and
        // 1.95 % above 5, so the percentile interval is exactly [1, 5].
        assert!(
            (p.ci95.0 - 1.0).abs() < 1e-9 && (p.ci95.1 - 5.0).abs() < 1e-9,
            "{:?}",
            p.ci95
        );
        // Sign flips of [2, 4, 0, 6]: only the two with all of 2, 4, 6 on one side reach 12
        // (the 0 flips freely): 4 of 16.
        assert!((p.p_value - 4.0 / 16.0).abs() < 1e-12, "{}", p.p_value);
        let table = super::super::paired_markdown(&paired);
        assert!(
            table.contains("| mr | catalyst | gradient-only | 4 | +3.00 pp accuracy |"),
            "{table}"
        );
        assert!(report.paired("no-such-schedule").is_empty());
        // The plot: a row per comparison, labelled, with its mean and p.
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("paired.svg");
        super::super::paired_svg(&svg, &paired).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("mr / catalyst − gradient-only (4 seeds)")
                && text.contains("+3.00, p = 0.250"),
            "{text}"
        );
        let png = super::super::svg_to_png(&svg).unwrap();
        assert!(std::fs::metadata(png).unwrap().len() > 1000);
    }
}
