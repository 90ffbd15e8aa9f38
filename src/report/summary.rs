//! The one-screen summary of a finished run.

use std::fmt::Write;
use std::path::Path;

use crate::engine::records::ProbeRecord;
use crate::engine::{RoundRecord, RunResult};

fn clip(text: &str, max: usize) -> String {
    let text = text.replace('\n', " ");
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// One line of a probe: each arm's origin and final score, the winner marked.
fn probe_line(p: &ProbeRecord) -> String {
    let arms: Vec<String> = p
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let score = a.rungs.last().map_or(0.0, |m| m.accuracy);
            let mark = if i == p.winner { "*" } else { "" };
            format!("{mark}{} {score:.3}", a.origin)
        })
        .collect();
    let margin = match p.within_margin {
        Some(i) => format!(" ({} within the margin)", p.arms[i].origin),
        None => String::new(),
    };
    format!(
        "probe ({} steps, {} evaluations): {}{margin}",
        p.gradient_steps,
        p.selection_evals,
        arms.join(" · ")
    )
}

/// A summary of one run that fits on a screen: budgets spent, selection and test accuracy,
/// what each round restarted from, the final prompt and the plots.
pub fn run_summary(dir: &Path, result: &RunResult, rounds: &[RoundRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "── {} · {} · seed {} ── {}",
        result.task,
        result.schedule,
        result.seed,
        dir.display()
    );
    let _ = writeln!(
        s,
        "  {} gradient steps · {} selection evaluations · {} LLM calls, {} tokens · {:.1} s",
        result.gradient_steps,
        result.selection_evals,
        result.llm_calls,
        result.llm_tokens,
        result.wall_seconds
    );
    let _ = writeln!(
        s,
        "  selection accuracy {:.4} (n={}) · test accuracy {:.4} (n={}), loss {:.4}",
        result.selection.accuracy,
        result.selection.count,
        result.test.accuracy,
        result.test.count,
        result.test.loss
    );
    for r in rounds {
        let best = r
            .scored
            .iter()
            .max_by(|a, b| a.selection.accuracy.total_cmp(&b.selection.accuracy));
        let candidates = r.scored.iter().filter(|x| x.kind == "candidate").count();
        let best = best
            .map(|b| {
                let text = if b.text.is_empty() {
                    String::new()
                } else {
                    format!(" \"{}\"", clip(&b.text, 28))
                };
                format!("best {} {:.3}{text}", b.kind, b.selection.accuracy)
            })
            .unwrap_or_else(|| "nothing scored".into());
        let _ = writeln!(
            s,
            "  round {} @ step {:>4}: {} scored ({} from the mentor), {best} → {}",
            r.round,
            r.step,
            r.scored.len(),
            candidates,
            clip(&r.restart_from, 24)
        );
        if let Some(p) = &r.probe {
            let _ = writeln!(s, "    {}", probe_line(p));
        }
    }
    let rollbacks: Vec<_> = rounds.iter().flat_map(|r| &r.rollbacks).collect();
    if let (Some(first), Some(last)) = (rollbacks.first(), rollbacks.last()) {
        let _ = writeln!(
            s,
            "  {} divergences rolled back (first at step {}: {}); learning rate ×{:.0e} after the last",
            rollbacks.len(),
            first.step,
            clip(&first.reason, 40),
            last.lr_scale
        );
    }
    let _ = writeln!(s, "  final prompt: \"{}\"", clip(&result.final_text, 70));
    let plots: Vec<String> = ["loss.png", "selection.png"]
        .iter()
        .filter(|p| dir.join(p).is_file())
        .map(|p| p.to_string())
        .collect();
    if !plots.is_empty() {
        let _ = writeln!(s, "  plots: {} (and .svg)", plots.join(", "));
    }
    s
}
