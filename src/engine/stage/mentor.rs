//! The mentor stage: the best prompts so far rendered into the meta-prompt, the mentor asked
//! (once, or `calls` times with their own seeds; under the edit protocol each call asks for
//! one edit of the best prompts), every reply parsed into candidates and pooled, later copies
//! of earlier candidates dropped as duplicates; every exchange is recorded in the round.

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use crate::engine::components::{Components, RunIo};
use crate::engine::records::{MentorExchange, RoundRecord};
use crate::engine::schedule::MentorStage;
use crate::engine::state::RunState;
use crate::error::{Error, Result};
use crate::mentor::{ask, Answer, DropReason, Dropped, ParserConfig, Question, ScoredPrompt};

/// Asks the mentor for candidates; returns the texts the parser kept, over all calls.
pub fn mentor<B: AutodiffBackend>(
    state: &mut RunState<B>,
    c: &Components<'_, B>,
    io: &mut RunIo<'_>,
    stage: &MentorStage,
    record: &mut RoundRecord,
) -> Result<Vec<String>> {
    let round = state.position.round;
    let (Some(template), Some(m)) = (&c.template, io.mentor.as_deref_mut()) else {
        return Err(Error::config(
            format!("schedule `{}`", c.config.schedule.name),
            "has mentor stages but no mentor was given",
        ));
    };
    let shown = shown(state, stage, c.config.task.seed, round);
    let words = c.mentor_words;
    show(&io.progress, c, round, "mentor");
    let before = m.usage();
    let mut kept: Vec<String> = Vec::new();
    for call in 0..stage.calls {
        let description = &c.config.task.description;
        let Some(context) =
            stage
                .protocol
                .context(description, &shown, stage.candidates, words, call)
        else {
            break;
        };
        io.progress.set_message(format!(
            "call {}/{}: {} candidates so far",
            call + 1,
            stage.calls,
            kept.len()
        ));
        let question = Question {
            protocol: stage.protocol,
            template,
            context,
            sampling: stage.call_sampling(c.config.task.seed, round, call),
            parser: ParserConfig {
                max_candidates: stage.candidates,
                shown: shown.iter().map(|p| p.text.clone()).collect(),
                ..ParserConfig::default()
            },
            mask: stage.line_mask_of(words),
        };
        let answer = ask(m, io.cassette.as_deref_mut(), question)?;
        push(record, pool(&mut kept, answer), words);
    }
    state.spend(before, m.usage());
    show(&io.progress, c, round, "scoring");
    io.progress
        .set_message(format!("{} candidates", kept.len()));
    Ok(kept)
}

/// The best `history` prompts of the pool, worst → best, their scores shuffled under that
/// control.
fn shown<B: AutodiffBackend>(
    state: &RunState<B>,
    stage: &MentorStage,
    seed: u64,
    round: usize,
) -> Vec<ScoredPrompt> {
    let mut shown = state.pool.clone();
    shown.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    shown.truncate(stage.history);
    if stage.shuffle_scores {
        shuffle_scores(&mut shown, seed, round);
    }
    shown
}

/// Adds the answer's candidates to `kept`, a copy of one kept from an earlier call dropped as
/// a duplicate; returns the answer as it then stands.
fn pool(kept: &mut Vec<String>, mut answer: Answer) -> Answer {
    let parsed = &mut answer.parsed;
    let (new, seen): (Vec<String>, Vec<String>) = std::mem::take(&mut parsed.candidates)
        .into_iter()
        .partition(|t| !kept.iter().any(|k| k.eq_ignore_ascii_case(t)));
    for text in seen {
        parsed.dropped.push(Dropped {
            line_no: 0,
            text,
            reason: DropReason::Duplicate,
        });
    }
    kept.extend(new.iter().cloned());
    parsed.candidates = new;
    answer
}

/// Records one exchange: the round's first in `mentor` (with its meta-prompt and reply), the
/// others in `further`.
fn push(record: &mut RoundRecord, answer: Answer, words: usize) {
    let exchange = MentorExchange {
        request: answer.request,
        response: answer.response,
        source: answer.source,
        candidates: answer.parsed.candidates,
        dropped: answer.parsed.dropped,
        word_limit: Some(words),
    };
    if record.mentor.is_none() {
        record.meta_prompt = Some(answer.meta_prompt);
        record.reply = Some(exchange.response.text.clone());
        record.mentor = Some(exchange);
    } else {
        record.further.push(exchange);
    }
}

/// The control that tests whether the mentor reads the scores: the same texts, their scores
/// permuted among them (seeded by the run's seed and the round); the meta-prompt sorts by the
/// permuted scores.
fn shuffle_scores(shown: &mut [ScoredPrompt], seed: u64, round: usize) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x0053_6875_6666_6c65);
    rng.set_stream(round as u64);
    let mut scores: Vec<(f64, f64)> = shown.iter().map(|p| (p.loss, p.accuracy)).collect();
    scores.shuffle(&mut rng);
    for (p, (loss, accuracy)) in shown.iter_mut().zip(scores) {
        p.loss = loss;
        p.accuracy = accuracy;
    }
}

/// Names the stage on the progress bar.
pub(crate) fn show<B: AutodiffBackend>(
    progress: &ProgressBar,
    c: &Components<'_, B>,
    round: usize,
    stage: &str,
) {
    progress.set_prefix(format!(
        "round {round}/{}: {stage}",
        c.config.schedule.rounds
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Vec<ScoredPrompt> {
        (0..6)
            .map(|i| ScoredPrompt {
                text: format!("prompt {i}"),
                loss: 1.0 - i as f64 / 10.0,
                accuracy: 0.5 + i as f64 / 20.0,
            })
            .collect()
    }

    fn answer(candidates: &[&str]) -> Answer {
        Answer {
            meta_prompt: "shown".into(),
            request: crate::mentor::ChatRequest {
                endpoint: "embedded:test".into(),
                model: "m".into(),
                messages: Vec::new(),
                sampling: crate::mentor::Sampling::default(),
                mode: Default::default(),
                mask: None,
            },
            response: crate::mentor::ChatResponse {
                model_id: "m".into(),
                text: candidates.join("\n"),
                prompt_tokens: 1,
                completion_tokens: 1,
                finish_reason: "stop".into(),
            },
            source: crate::mentor::Source::Live,
            parsed: crate::mentor::ParsedReply {
                candidates: candidates.iter().map(|c| c.to_string()).collect(),
                dropped: Vec::new(),
            },
        }
    }

    /// Candidates pool over a round's calls: a later copy of a kept one (ignoring case) is
    /// dropped as a duplicate; the first exchange is the round's `mentor`, the rest `further`.
    #[test]
    fn calls_pool_their_candidates_and_record_every_exchange() {
        let mut kept = Vec::new();
        let mut record = RoundRecord::new(0, 20, Vec::new());
        push(&mut record, pool(&mut kept, answer(&["a b", "c d"])), 5);
        push(&mut record, pool(&mut kept, answer(&["C D", "e f"])), 5);
        push(&mut record, pool(&mut kept, answer(&[])), 5);
        assert_eq!(kept, ["a b", "c d", "e f"]);
        let first = record.mentor.as_ref().unwrap();
        assert_eq!(first.candidates, ["a b", "c d"]);
        assert_eq!(first.word_limit, Some(5));
        assert_eq!(record.meta_prompt.as_deref(), Some("shown"));
        assert_eq!(record.further.len(), 2);
        let second = &record.further[0];
        assert_eq!(second.candidates, ["e f"]);
        assert_eq!(second.dropped.len(), 1);
        assert_eq!(second.dropped[0].reason, DropReason::Duplicate);
        assert_eq!(second.dropped[0].text, "C D");
        assert_eq!(record.exchanges().count(), 3);
    }

    #[test]
    fn shuffled_scores_keep_the_texts_and_the_scores_but_not_their_pairing() {
        let before = shown();
        let mut moved_somewhere = false;
        for round in 0..4 {
            let mut after = shown();
            shuffle_scores(&mut after, 7, round);
            let texts = |v: &[ScoredPrompt]| v.iter().map(|p| p.text.clone()).collect::<Vec<_>>();
            assert_eq!(texts(&after), texts(&before));
            let mut scores: Vec<(f64, f64)> = after.iter().map(|p| (p.loss, p.accuracy)).collect();
            scores.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut want: Vec<(f64, f64)> = before.iter().map(|p| (p.loss, p.accuracy)).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(scores, want, "a score was lost or made up");
            moved_somewhere |= after != before;
            // Seeded: the same round gives the same permutation.
            let mut again = shown();
            shuffle_scores(&mut again, 7, round);
            assert_eq!(again, after);
        }
        assert!(moved_somewhere, "no round permuted any score");
    }
}
