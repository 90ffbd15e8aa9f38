//! Edit operators (EvoPrompt-style): instead of one open instruction, each call asks the mentor
//! for one small edit of the best prompts so far — paraphrase one, mutate one, or cross two
//! over. A round's calls cycle through the operators and walk down the ranking, so that calls
//! differ in what they ask and of which prompts.

use serde::{Deserialize, Serialize};

use super::ScoredPrompt;

/// One edit the mentor is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EditOp {
    /// The same meaning in other words.
    Paraphrase,
    /// A few words changed.
    Mutate,
    /// Two prompts combined into one.
    Crossover,
}

impl EditOp {
    /// The operators in the order a round's calls cycle through them.
    pub const CYCLE: [EditOp; 3] = [EditOp::Paraphrase, EditOp::Mutate, EditOp::Crossover];

    /// How many prompts the operator edits.
    pub fn parents(self) -> usize {
        match self {
            EditOp::Crossover => 2,
            _ => 1,
        }
    }

    /// The instruction the edit template shows (its `instruction` variable).
    pub fn instruction(self) -> &'static str {
        match self {
            EditOp::Paraphrase => {
                "Paraphrase the prompt above: keep what it asks, say it in other words."
            }
            EditOp::Mutate => {
                "Change one or two words of the prompt above so that it scores higher."
            }
            EditOp::Crossover => {
                "Combine the two prompts above into one prompt that keeps the best of each."
            }
        }
    }
}

/// What call `call` of a round edits: operator `CYCLE[call % 3]` applied to the prompts from
/// rank `call / 3` on (rank 0 is the best), taken from `ranked` (best first). `None` when there
/// are fewer ranked prompts than the operator needs; a crossover of a one-prompt pool falls
/// back to a mutation.
pub fn plan(call: usize, ranked: &[ScoredPrompt]) -> Option<(EditOp, Vec<ScoredPrompt>)> {
    let mut op = EditOp::CYCLE[call % EditOp::CYCLE.len()];
    if op.parents() > ranked.len() {
        op = EditOp::Mutate;
    }
    let rank = (call / EditOp::CYCLE.len()).min(ranked.len().checked_sub(op.parents())?);
    Some((op, ranked[rank..rank + op.parents()].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(n: usize) -> Vec<ScoredPrompt> {
        (0..n)
            .map(|i| ScoredPrompt {
                text: format!("rank {i}"),
                loss: 0.1 * i as f64,
                accuracy: 0.9 - 0.01 * i as f64,
            })
            .collect()
    }

    fn texts(p: &[ScoredPrompt]) -> Vec<&str> {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn calls_cycle_the_operators_and_walk_down_the_ranking() {
        let pool = ranked(5);
        let got: Vec<(EditOp, String)> = (0..7)
            .map(|call| {
                let (op, parents) = plan(call, &pool).unwrap();
                (op, texts(&parents).join(" + "))
            })
            .collect();
        use EditOp::*;
        assert_eq!(
            got,
            [
                (Paraphrase, "rank 0"),
                (Mutate, "rank 0"),
                (Crossover, "rank 0 + rank 1"),
                (Paraphrase, "rank 1"),
                (Mutate, "rank 1"),
                (Crossover, "rank 1 + rank 2"),
                (Paraphrase, "rank 2"),
            ]
            .map(|(op, t)| (op, t.to_string()))
        );
    }

    #[test]
    fn small_pools_stay_in_range_and_an_empty_one_gives_nothing() {
        assert_eq!(plan(0, &[]), None);
        let one = ranked(1);
        for call in 0..9 {
            let (op, parents) = plan(call, &one).unwrap();
            assert_ne!(op, EditOp::Crossover, "call {call}");
            assert_eq!(texts(&parents), ["rank 0"]);
        }
        let two = ranked(2);
        for call in 0..9 {
            let (op, parents) = plan(call, &two).unwrap();
            assert_eq!(parents.len(), op.parents());
        }
        assert_eq!(texts(&plan(5, &two).unwrap().1), ["rank 0", "rank 1"]);
    }
}
