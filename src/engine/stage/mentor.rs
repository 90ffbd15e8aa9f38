//! The mentor stage: the best prompts so far rendered into the meta-prompt, one call to the
//! mentor (through the cassette when there is one), the reply parsed into candidates; the
//! whole exchange is recorded in the round.

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use crate::engine::components::{Components, RunIo};
use crate::engine::records::{MentorExchange, RoundRecord};
use crate::engine::schedule::MentorStage;
use crate::engine::state::RunState;
use crate::error::{Error, Result};
use crate::mentor::{ask, MetaPromptContext, ParserConfig, Question, ScoredPrompt};

/// Asks the mentor for candidates; returns the texts the parser kept.
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
    // The best `history` prompts, shown worst → best.
    let mut shown = state.pool.clone();
    shown.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    shown.truncate(stage.history);
    let task = &c.config.task;
    if stage.shuffle_scores {
        shuffle_scores(&mut shown, task.seed, round);
    }
    let context = MetaPromptContext::new(
        task.description.clone(),
        shown,
        stage.candidates,
        stage.word_limit,
    );
    let mut sampling = stage.sampling.clone();
    sampling.seed = stage
        .sampling
        .seed
        .wrapping_add(task.seed * 1000 + round as u64);
    show(&io.progress, c, round, "mentor");
    io.progress
        .set_message(format!("{} candidates asked", stage.candidates));
    let before = m.usage();
    let question = Question {
        protocol: stage.protocol,
        template,
        context,
        sampling,
        parser: ParserConfig {
            max_candidates: stage.candidates,
            ..ParserConfig::default()
        },
        mask: stage.line_mask(),
    };
    let answer = ask(m, io.cassette.as_deref_mut(), question)?;
    state.spend(before, m.usage());
    let candidates = answer.parsed.candidates.clone();
    show(&io.progress, c, round, "scoring");
    io.progress
        .set_message(format!("{} candidates", candidates.len()));
    record.meta_prompt = Some(answer.meta_prompt);
    record.reply = Some(answer.response.text.clone());
    record.mentor = Some(MentorExchange {
        request: answer.request,
        response: answer.response,
        source: answer.source,
        candidates: answer.parsed.candidates,
        dropped: answer.parsed.dropped,
    });
    Ok(candidates)
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
