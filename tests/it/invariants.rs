//! Property tests of the optimizer's invariants on the real components (MiniLM, SmolLM2, UCI
//! IMDB), with small generated schedules so they run in CI in seconds to minutes. Failures shrink
//! to minimal cases, persisted in `proptest-regressions/invariants.txt`.

use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use tandem::assets::{MINILM, SMOLLM2, UCI_SENTIMENT};
use tandem::backbone::Backbone;
use tandem::decoder::ChatLlm;
use tandem::engine::{
    apply_overrides, run_schedule, ArmSource, MentorStage, Probe, Restart, RoundRecord, RunConfig,
    RunControl, RunIo, RunResult, Schedule, Screen,
};
use tandem::mentor::{LocalMentor, Mentor, Message, Protocol, Sampling};
use tandem::prompt::{fit_to_len, Metric, Projector, SoftPrompt};
use tandem::run::RunDir;
use tandem::tune::TuneConfig;

use crate::support;

/// `cases` cases from a fixed seed: the same cases on every run, whatever else runs beside.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x7a4d_e301),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/invariants.txt",
        ))),
        ..Config::default()
    }
}

fn backbone() -> &'static Backbone<support::Cpu> {
    static BB: OnceLock<Backbone<support::Cpu>> = OnceLock::new();
    BB.get_or_init(|| {
        let assets = support::assets(&[MINILM]);
        Backbone::minilm(&assets, &Default::default()).unwrap()
    })
}

fn projectors() -> &'static [(Metric, Projector<support::Cpu>); 2] {
    static P: OnceLock<[(Metric, Projector<support::Cpu>); 2]> = OnceLock::new();
    P.get_or_init(|| {
        let bb = backbone();
        [Metric::L2, Metric::Cosine].map(|m| (m, Projector::new(&bb.encoder, &bb.tokenizer, m)))
    })
}

/// The embedded mentor, shared by the tests of this module (one load).
fn mentor() -> &'static Mutex<LocalMentor<support::Cpu>> {
    static M: OnceLock<Mutex<LocalMentor<support::Cpu>>> = OnceLock::new();
    M.get_or_init(|| {
        let assets = support::assets(&[SMOLLM2]);
        let llm = ChatLlm::load(&assets.path(&SMOLLM2.files[0]), &Default::default()).unwrap();
        Mutex::new(LocalMentor::new(llm))
    })
}

proptest! {
    #![proptest_config(config(48))]

    /// A vocabulary row projects to its own token under both metrics, the top-k distances are
    /// sorted, and projection is idempotent.
    #[test]
    fn vocabulary_rows_project_to_themselves(ids in prop::collection::vec(1996u32..29612, 1..6)) {
        let bb = backbone();
        let rows = SoftPrompt::token_rows(&bb.encoder, &ids);
        for (metric, p) in projectors() {
            let proj = p.project(rows.clone(), 3);
            prop_assert_eq!(&proj.nearest(), &ids, "{:?}", metric);
            for d in &proj.distances {
                prop_assert!(d.windows(2).all(|w| w[0] <= w[1] + 1e-6), "{:?}: {:?}", metric, d);
            }
            let again = p.project(SoftPrompt::token_rows(&bb.encoder, &proj.nearest()), 1);
            prop_assert_eq!(again.nearest(), proj.nearest());
        }
    }

    /// Random vectors: projecting the projection gives the same tokens (idempotence), and no
    /// special token is ever returned.
    #[test]
    fn projection_is_idempotent_on_random_prompts(seed in any::<u64>(), len in 1usize..8) {
        use burn::tensor::{Distribution, Tensor};
        use burn::tensor::backend::Backend;
        let bb = backbone();
        support::Cpu::seed(&Default::default(), seed);
        let rows: Tensor<support::Cpu, 2> =
            Tensor::random([len, bb.encoder.hidden_size()], Distribution::Normal(0.0, 0.05), &Default::default());
        for (metric, p) in projectors() {
            let proj = p.project(rows.clone(), 3);
            prop_assert!(proj.token_ids.iter().flatten().all(|&t| !bb.tokenizer.is_special(t)));
            let again = p.project(SoftPrompt::token_rows(&bb.encoder, &proj.nearest()), 1);
            prop_assert_eq!(again.nearest(), proj.nearest(), "{:?}", metric);
        }
    }

    /// Restart: every candidate text becomes exactly L prompt rows (cycled or truncated), so the
    /// prompt's shape never changes across rounds; a text without tokens is refused upstream.
    #[test]
    fn every_candidate_text_becomes_exactly_l_rows(text in "\\PC{0,60}", len in 1usize..32) {
        let bb = backbone();
        let ids = bb.tokenizer.encode(&text);
        prop_assume!(!ids.is_empty());
        let fitted = fit_to_len(&ids, len);
        prop_assert_eq!(fitted.len(), len);
        for (i, id) in fitted.iter().enumerate() {
            prop_assert_eq!(*id, ids[i % ids.len()]);
        }
        let rows = SoftPrompt::token_rows(&bb.encoder, &fitted);
        prop_assert_eq!(rows.dims(), [len, bb.encoder.hidden_size()]);
    }
}

/// A valid schedule: at least one gradient step, a mentor stage whose trajectory sample fits
/// what a round records, `restart: best` only with a mentor.
fn schedule_strategy(max_rounds: usize, max_steps: usize) -> impl Strategy<Value = Schedule> {
    (
        1..=max_rounds,
        0..=max_steps,
        0..=max_steps,
        any::<bool>(),
        1usize..=3,
        1usize..=8,
        1usize..=3,
        prop_oneof![
            Just(Restart::Best),
            Just(Restart::Continue),
            Just(Restart::Random),
            Just(Restart::Reference)
        ],
        0u64..1000,
        prop::option::of(probe_strategy()),
    )
        .prop_filter_map(
            "valid schedule",
            |(rounds, spr, fin, mentor, c, h, s, restart, seed, probe)| {
                if rounds * spr + fin == 0 || (!mentor && restart == Restart::Best && rounds > 1) {
                    return None;
                }
                // Every protocol: a chat instruction, a list continued as a document, edits.
                let protocol =
                    [Protocol::List, Protocol::Instruction, Protocol::Edit][seed as usize % 3];
                let mentor = mentor.then(|| MentorStage {
                    protocol,
                    template: protocol.default_template().into(),
                    candidates: c,
                    history: h,
                    // What a round records: one point per step (record_every 1).
                    sample: if spr == 0 { s } else { s.min(spr) },
                    word_limit: 8,
                    sampling: Sampling {
                        temperature: 0.7,
                        top_p: 0.95,
                        max_tokens: 16,
                        stop: Vec::new(),
                        seed,
                    },
                    shuffle_scores: seed % 2 == 1,
                    // The embedded mentor's logit mask on some schedules of each protocol.
                    mask: seed % 5 == 2,
                    calls: 1 + (seed % 4) as usize,
                    temperatures: if seed % 7 == 0 {
                        vec![0.5, 1.0]
                    } else {
                        Vec::new()
                    },
                    fit: seed % 11 == 3,
                });
                let restart =
                    if mentor.is_none() && matches!(restart, Restart::Best | Restart::Reference) {
                        Restart::Continue
                    } else {
                        restart
                    };
                // A probe restarts from its winner; mentor arms need a mentor stage.
                let probe = probe.map(|mut p: Probe| {
                    if mentor.is_none() && p.arms == ArmSource::Mentor {
                        p.arms = ArmSource::Random;
                    }
                    p
                });
                let restart = if probe.is_some() {
                    Restart::Probe
                } else {
                    restart
                };
                Some(Schedule {
                    name: "generated".into(),
                    rounds,
                    steps_per_round: spr,
                    final_steps: fin,
                    mentor,
                    restart,
                    probe,
                })
            },
        )
}

/// Probes of up to 3 proposals, 2 first-rung steps and 2 rungs, from every arm source.
fn probe_strategy() -> impl Strategy<Value = Probe> {
    (
        0usize..=2,
        prop_oneof![Just(0.5), Just(1.0)],
        1usize..=2,
        prop_oneof![
            Just(ArmSource::Mentor),
            Just(ArmSource::Random),
            Just(ArmSource::Projected),
            Just(ArmSource::Restart)
        ],
        1usize..=3,
        prop_oneof![Just(0.0), Just(0.05)],
        prop::option::of((0usize..=4, 1usize..=40)),
    )
        .prop_map(
            |(steps, keep, rungs, arms, proposals, margin, screen)| Probe {
                steps,
                keep,
                rungs,
                arms,
                proposals,
                margin,
                screen: screen.map(|(more, examples)| Screen {
                    candidates: proposals + more,
                    examples,
                }),
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    /// Schedules are data: YAML round trip is the identity, a run configuration passes through
    /// `--set`-style overrides unchanged when none are given, and the budget is the sum of stages.
    #[test]
    fn schedule_yaml_round_trip_is_identity(s in schedule_strategy(8, 50)) {
        s.validate(1).unwrap();
        let yaml = serde_yaml::to_string(&s).unwrap();
        prop_assert_eq!(&serde_yaml::from_str::<Schedule>(&yaml).unwrap(), &s);
        let probe = s.probe.as_ref().map_or(0, |p| p.gradient_steps());
        prop_assert_eq!(s.gradient_steps(), s.rounds * (s.steps_per_round + probe) + s.final_steps);
        let c = RunConfig { task: TuneConfig::default(), schedule: s };
        prop_assert_eq!(apply_overrides(&c, &[]).unwrap(), c);
    }
}

/// The checkpoints a run in `dir` wrote (the newest checkpoint's count).
fn checkpoint_count(dir: &RunDir) -> usize {
    let text = std::fs::read_to_string(dir.path().join("checkpoint/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["count"].as_u64().expect("a checkpoint count") as usize
}

/// `config` run in `dir`, halted after checkpoint `halt`.
fn run_halting(
    config: &RunConfig,
    dir: &RunDir,
    halt: usize,
) -> tandem::Result<(RunResult, Vec<RoundRecord>)> {
    let control = RunControl {
        resume: false,
        halt_after: Some(halt),
    };
    run(config, Some(dir), control)
}

fn run(
    config: &RunConfig,
    out: Option<&RunDir>,
    control: RunControl,
) -> tandem::Result<(RunResult, Vec<RoundRecord>)> {
    let assets = support::assets(&[MINILM, UCI_SENTIMENT, SMOLLM2]);
    let mut guard = config
        .schedule
        .mentor
        .as_ref()
        .map(|_| mentor().lock().unwrap_or_else(|e| e.into_inner()));
    let m = guard.as_deref_mut().map(|m| m as &mut dyn Mentor);
    run_schedule::<support::CpuAd>(
        config,
        &assets,
        &Default::default(),
        RunIo {
            mentor: m,
            out,
            control,
            ..RunIo::default()
        },
    )
}

fn without_time(mut r: RunResult) -> RunResult {
    r.wall_seconds = 0.0;
    r
}

proptest! {
    #![proptest_config(config(4))]

    /// A random valid schedule runs to completion on a tiny task; it takes exactly its gradient
    /// budget, at most its mentor stage's calls per round, ends with a prompt at least as good on
    /// selection as every prompt it scored, and the same seed gives the same run.
    #[test]
    fn random_schedules_complete_within_budget_and_reproduce(
        s in schedule_strategy(2, 4), seed in 0u64..50,
    ) {
        let config = RunConfig { task: support::tiny_task(seed), schedule: s.clone() };
        let (r, rounds) = run(&config, None, RunControl::default()).unwrap();
        prop_assert_eq!(r.gradient_steps, s.gradient_steps());
        // Selection evaluations as planned; only raw candidate scoring may spend fewer (a reply
        // can hold fewer candidates than asked).
        let planned = s.budget(1, true).selection_evals;
        if s.mentor.is_some() && s.probe.is_none() && s.restart != Restart::Reference {
            prop_assert!(r.selection_evals <= planned, "{} > {}", r.selection_evals, planned);
        } else {
            prop_assert_eq!(r.selection_evals, planned);
        }
        let calls = s.mentor.as_ref().map_or(0, |m| m.calls) as u64;
        prop_assert!(r.llm_calls <= s.rounds as u64 * calls);
        if s.mentor.is_none() {
            prop_assert_eq!(r.llm_calls, 0);
        }
        let mut best_so_far = f64::NEG_INFINITY;
        for round in &rounds {
            let best = round.scored.iter().map(|x| x.selection.accuracy).fold(f64::NEG_INFINITY, f64::max);
            best_so_far = best_so_far.max(best);
            prop_assert!(r.selection.accuracy >= best - 1e-12,
                "final selection {} below a scored prompt's {}", r.selection.accuracy, best);
        }
        prop_assert!(r.selection.accuracy >= best_so_far - 1e-12);
        let (again, _) = run(&config, None, RunControl::default()).unwrap();
        prop_assert_eq!(without_time(again), without_time(r));
    }

    /// A run halted after each of its checkpoints in turn — halted after the first, resumed
    /// and halted after the second, and so on — ends with the uninterrupted run's exact record
    /// and trajectory; every halt point within the run's checkpoints halts, and no halted run
    /// has results.
    #[test]
    fn halting_at_every_checkpoint_then_resuming_gives_the_same_result(
        s in schedule_strategy(2, 3), seed in 0u64..50,
    ) {
        let config = RunConfig { task: support::tiny_task(seed), schedule: s };
        let tmp = tempfile::tempdir().unwrap();
        let full = RunDir::create(tmp.path().join("full")).unwrap();
        let (want, _) = run(&config, Some(&full), RunControl::default()).unwrap();
        let count = checkpoint_count(&full);
        prop_assert!(count >= 2, "{} checkpoints", count);
        let dir = RunDir::create(tmp.path().join("halted")).unwrap();
        for halt in 1..=count {
            let control = RunControl { resume: halt > 1, halt_after: Some(halt) };
            match run(&config, Some(&dir), control) {
                Err(tandem::Error::Halted { checkpoints }) => prop_assert_eq!(checkpoints, halt),
                Ok(_) => return Err(TestCaseError::fail(format!("no halt at checkpoint {halt} of {count}"))),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
            prop_assert!(!dir.path().join("results.json").exists());
        }
        let (got, _) = run(&config, Some(&dir), RunControl { resume: true, halt_after: None }).unwrap();
        prop_assert_eq!(without_time(got), without_time(want));
        let traj = |d: &RunDir| std::fs::read_to_string(d.path().join("trajectory.jsonl")).unwrap();
        prop_assert_eq!(traj(&dir), traj(&full));
        prop_assert_eq!(checkpoint_count(&dir), count);
    }

    /// The embedded mentor's budgets: a call is made exactly when it fits — calls left and the
    /// prompt shorter than the tokens left, the reply then capped to the rest — and refused with
    /// a budget error, spending nothing, when it does not; calls and tokens never exceed their
    /// caps, and a run of calls ends in a refusal.
    #[test]
    fn mentor_budgets_are_kept_exactly(max_calls in 0u64..4, max_tokens in 0u64..160) {
        static LLM: Mutex<Option<ChatLlm<support::Cpu>>> = Mutex::new(None);
        let mut slot = LLM.lock().unwrap_or_else(|e| e.into_inner());
        let llm = slot.take().unwrap_or_else(|| {
            let assets = support::assets(&[SMOLLM2]);
            ChatLlm::load(&assets.path(&SMOLLM2.files[0]), &Default::default()).unwrap()
        });
        let messages = vec![Message::user("Say hi.")];
        let prompt = llm.prompt_ids(&messages).unwrap().len() as u64;
        let mut local = LocalMentor::new(llm).with_budgets(Some(max_calls), Some(max_tokens));
        let sampling = Sampling { temperature: 0.7, top_p: 0.95, max_tokens: 24, stop: Vec::new(), seed: 1 };
        let mut refused = false;
        for _ in 0..5 {
            let before = local.usage();
            let fits = before.calls < max_calls && prompt < max_tokens.saturating_sub(before.tokens);
            let request = local.request(messages.clone(), sampling.clone());
            let sent = local.send(&request);
            let u = local.usage();
            match (fits, sent) {
                (true, Ok(reply)) => {
                    let cap = 24.min(max_tokens.saturating_sub(before.tokens + prompt));
                    prop_assert_eq!(u.calls, before.calls + 1);
                    prop_assert_eq!(u.tokens, before.tokens + prompt + u64::from(reply.completion_tokens));
                    prop_assert!(u64::from(reply.completion_tokens) <= cap);
                }
                (false, Err(tandem::Error::Budget { .. })) => {
                    prop_assert_eq!(u, before);
                    refused = true;
                    break;
                }
                (fits, other) => {
                    let got = other.map(|_| "a reply".to_string()).unwrap_or_else(|e| e.to_string());
                    return Err(TestCaseError::fail(format!("fits: {fits}, got {got}")));
                }
            }
            prop_assert!(u.calls <= max_calls && u.tokens <= max_tokens, "{:?} over ({}, {})", u, max_calls, max_tokens);
        }
        *slot = Some(local.into_llm());
        prop_assert!(refused, "five calls under a budget of {} calls were never refused", max_calls);
    }
}

/// A small probe schedule on the tiny task: 2 rounds of 2 steps, 1 final step.
fn probe_schedule(probe: Probe, mentor: Option<MentorStage>) -> Schedule {
    Schedule {
        name: "probe".into(),
        rounds: 2,
        steps_per_round: 2,
        final_steps: 1,
        mentor,
        restart: Restart::Probe,
        probe: Some(probe),
    }
}

proptest! {
    #![proptest_config(config(3))]

    /// Every probe spends exactly its declared gradient steps and selection evaluations (and
    /// the run its planned budget), runs `1 + proposals` arms through the rungs successive
    /// halving declares, and arms that start alike — copies of the continuous prompt, each with
    /// a fresh optimizer — score alike after every rung they share: all arms of a rung train on
    /// the same batches.
    #[test]
    fn probes_spend_their_budget_exactly_and_share_their_batches(
        seed in 0u64..50, steps in 1usize..=2, rungs in 1usize..=2,
    ) {
        let p = Probe { steps, keep: 0.5, rungs, arms: ArmSource::Restart, proposals: 3, margin: 0.0, screen: None };
        let schedule = probe_schedule(p.clone(), None);
        let config = RunConfig { task: support::tiny_task(seed), schedule: schedule.clone() };
        let (r, rounds) = run(&config, None, RunControl::default()).unwrap();
        prop_assert_eq!(r.gradient_steps, schedule.gradient_steps());
        prop_assert_eq!(r.selection_evals, schedule.budget(1, true).selection_evals);
        prop_assert_eq!(rounds.len(), 2);
        for round in &rounds {
            let probe = round.probe.as_ref().unwrap();
            prop_assert_eq!(probe.gradient_steps, p.gradient_steps());
            prop_assert_eq!(probe.selection_evals, p.selection_evals());
            prop_assert_eq!(probe.arms.len(), 4);
            let ran: Vec<usize> = (0..rungs)
                .map(|k| probe.arms.iter().filter(|a| a.rungs.len() > k).count())
                .collect();
            prop_assert_eq!(ran, p.rungs().iter().map(|g| g.arms).collect::<Vec<_>>());
            let copies: Vec<_> = probe.arms.iter().filter(|a| a.origin == "restart").collect();
            prop_assert_eq!(copies.len(), 3);
            for a in &copies[1..] {
                for (k, m) in a.rungs.iter().enumerate().take(copies[0].rungs.len()) {
                    prop_assert_eq!(m, &copies[0].rungs[k], "rung {}", k);
                }
            }
            prop_assert!(r.selection.accuracy >= probe.arms.iter().flat_map(|a| &a.rungs)
                .map(|m| m.accuracy).fold(f64::NEG_INFINITY, f64::max) - 1e-12);
        }
    }

    /// A probe of zero steps with one proposal judges the mentor's candidate as a raw text
    /// against the continuous prompt: the run equals one under today's `best` rule.
    #[test]
    fn a_probe_of_zero_steps_and_one_proposal_is_the_best_rule(seed in 0u64..50) {
        let mut best = Schedule::builtin("catalyst").unwrap();
        best.rounds = 2;
        best.steps_per_round = 2;
        best.final_steps = 1;
        if let Some(m) = best.mentor.as_mut() {
            m.candidates = 1;
            m.sample = 2;
            m.sampling.max_tokens = 24;
        }
        let p = Probe { steps: 0, keep: 1.0, rungs: 1, arms: ArmSource::Mentor, proposals: 1, margin: 0.0, screen: None };
        let probed = probe_schedule(p, best.mentor.clone());
        let task = support::tiny_task(seed);
        let (a, ra) = run(&RunConfig { task: task.clone(), schedule: best }, None, RunControl::default()).unwrap();
        let (b, rb) = run(&RunConfig { task, schedule: probed }, None, RunControl::default()).unwrap();
        // A round whose reply held no usable candidate fills the slot with a random arm,
        // which the `best` rule has no counterpart for.
        prop_assume!(rb.iter().all(|r| r.probe.as_ref().unwrap().arms.iter().all(|x| x.origin != "random-fill")));
        for (x, y) in ra.iter().zip(&rb) {
            let won = y.probe.as_ref().unwrap().winner == 1;
            prop_assert_eq!(x.restart_from.starts_with("candidate:"), won, "{} / {}", x.restart_from, y.restart_from);
        }
        prop_assert_eq!(a.gradient_steps, b.gradient_steps);
        prop_assert_eq!((a.selection, a.test, a.final_text), (b.selection, b.test, b.final_text));
    }
}

/// A screen scores exactly its declared proposals on its subsample, each round, keeps the best
/// `proposals` of them (no proposal left out beats one kept) in the order they were drawn, and
/// its scorings are counted apart from the selection evaluations, as the budget plans.
#[test]
fn a_screen_keeps_the_best_proposals_and_counts_every_scoring() {
    let p = Probe {
        rungs: 1,
        arms: ArmSource::Random,
        proposals: 2,
        screen: Some(Screen {
            candidates: 5,
            examples: 10,
        }),
        ..Probe::default()
    };
    let schedule = probe_schedule(p, None);
    let budget = schedule.budget(1, true);
    let config = RunConfig {
        task: support::tiny_task(5),
        schedule,
    };
    let (r, rounds) = run(&config, None, RunControl::default()).unwrap();
    assert_eq!((r.screen_evals, budget.screen_evals), (10, 10));
    assert_eq!(r.selection_evals, budget.selection_evals);
    for round in &rounds {
        assert_eq!(round.screen.len(), 5);
        assert!(round.screen.iter().all(|s| s.metrics.count == 10));
        let kept: Vec<_> = round.screen.iter().filter(|s| s.kept).collect();
        let arms = &round.probe.as_ref().unwrap().arms;
        assert_eq!(
            kept.iter().map(|s| &s.text).collect::<Vec<_>>(),
            arms[1..].iter().map(|a| &a.text).collect::<Vec<_>>()
        );
        let score = |m: &tandem::readout::Metrics| (m.accuracy, -m.loss);
        for out in round.screen.iter().filter(|s| !s.kept) {
            for k in &kept {
                assert!(
                    score(&out.metrics) <= score(&k.metrics),
                    "{out:?} beats {k:?}"
                );
            }
        }
    }
}

/// Several calls a round under the edit protocol: one exchange per call, each with its own
/// seed and operator, the word limit fitted to the prompt and masked, the candidates pooled
/// without duplicates, and the probe's mentor arms taken from that pool in order.
#[test]
fn several_edit_calls_ask_once_each_and_pool_their_candidates() {
    let mut m = Schedule::builtin("edit-probe").unwrap().mentor.unwrap();
    m.sample = 2;
    m.sampling.max_tokens = 24;
    // The default probe (mentor arms, 3 proposals) in one rung.
    let p = Probe {
        rungs: 1,
        ..Probe::default()
    };
    let config = RunConfig {
        task: support::tiny_task(2),
        schedule: probe_schedule(p, Some(m)),
    };
    let (r, rounds) = run(&config, None, RunControl::default()).unwrap();
    assert_eq!(r.llm_calls, 2 * 3);
    for round in &rounds {
        let calls: Vec<_> = round.exchanges().collect();
        assert_eq!(calls.len(), 3);
        let seeds: std::collections::BTreeSet<u64> =
            calls.iter().map(|c| c.request.sampling.seed).collect();
        assert_eq!(seeds.len(), 3);
        let asked = |i: usize| calls[i].request.messages[0].content.clone();
        assert!(asked(0).contains("Paraphrase the prompt"), "{}", asked(0));
        assert!(asked(1).contains("Change one or two words"), "{}", asked(1));
        let words = calls[0].word_limit.unwrap();
        // 3 prompt tokens of MiniLM: fewer words than tokens, never more than the limit.
        assert!((1..=3).contains(&words), "{words}");
        for (i, c) in calls.iter().enumerate() {
            assert_eq!(c.word_limit, Some(words));
            assert_eq!(
                c.request.mask.map(|m| (m.lines, m.words)),
                Some((1, words as u32))
            );
            assert!(
                asked(i).contains(&format!("at most {words} words")),
                "{}",
                asked(i)
            );
        }
        let pooled: Vec<String> = calls.iter().flat_map(|c| c.candidates.clone()).collect();
        let mut distinct: Vec<String> = pooled.iter().map(|c| c.to_lowercase()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), pooled.len(), "{pooled:?}");
        let arms = &round.probe.as_ref().unwrap().arms;
        let mentor: Vec<&String> = arms
            .iter()
            .filter(|a| a.origin == "mentor")
            .map(|a| &a.text)
            .collect();
        assert_eq!(mentor, pooled.iter().take(mentor.len()).collect::<Vec<_>>());
        assert_eq!(mentor.len(), pooled.len().min(3));
    }
}

/// A run with a mentor probe halted after each of its checkpoints — after a gradient stage,
/// when a probe starts (the mentor's reply in hand), between a probe's rungs, after a round —
/// and resumed ends with the uninterrupted run's exact record, without asking the mentor again.
#[test]
fn halting_inside_a_probe_then_resuming_gives_the_same_result() {
    let mut mentor = Schedule::builtin("catalyst").unwrap().mentor;
    if let Some(m) = mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 24;
    }
    let p = Probe {
        steps: 1,
        keep: 0.5,
        rungs: 2,
        arms: ArmSource::Mentor,
        proposals: 3,
        margin: 0.0,
        screen: None,
    };
    let config = RunConfig {
        task: support::tiny_task(7),
        schedule: probe_schedule(p, mentor),
    };
    let tmp = tempfile::tempdir().unwrap();
    let full = RunDir::create(tmp.path().join("full")).unwrap();
    let (want, want_rounds) = run(&config, Some(&full), RunControl::default()).unwrap();
    let traj = |d: &RunDir| std::fs::read_to_string(d.path().join("trajectory.jsonl")).unwrap();
    // Per round: gradient done, probe started, after rung 0, round done; then the final stage.
    let mut phases = Vec::new();
    for halt in 1..=9 {
        let dir = RunDir::create(tmp.path().join(format!("halt{halt}"))).unwrap();
        let halted = run_halting(&config, &dir, halt);
        assert!(
            matches!(halted, Err(tandem::Error::Halted { checkpoints }) if checkpoints == halt)
        );
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        let rungs_done = state["probe"]["rungs_done"].as_u64();
        phases.push((state["phase"].as_str().unwrap().to_string(), rungs_done));
        let (got, rounds) = run(
            &config,
            Some(&dir),
            RunControl {
                resume: true,
                halt_after: None,
            },
        )
        .unwrap();
        assert_eq!(
            without_time(got),
            without_time(want.clone()),
            "halted after checkpoint {halt}"
        );
        assert_eq!(rounds, want_rounds, "halted after checkpoint {halt}");
        assert_eq!(traj(&dir), traj(&full));
    }
    let probe = |r: u64| ("probe".to_string(), Some(r));
    let round = [
        ("gradient-done".to_string(), None),
        probe(0),
        probe(1),
        ("round-done".to_string(), None),
    ];
    let mut expected: Vec<_> = round.iter().chain(&round).cloned().collect();
    expected.push(("gradient-done".to_string(), None));
    assert_eq!(phases, expected);
}

/// `reference-compat` shrunk to 2 rounds of 2 steps and 1 final step on the tiny task. The
/// reply limit leaves the embedded mentor room for a whole first line: a reply cut by its limit
/// loses its last line (`cut`): at 32 and 64 tokens its replies here held no whole line that
/// parses as a template, at 96 the first round gets one.
fn small_reference_run() -> RunConfig {
    let mut s = Schedule::builtin("reference-compat").unwrap();
    s.rounds = 2;
    s.steps_per_round = 2;
    s.final_steps = 1;
    if let Some(m) = s.mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 96;
    }
    RunConfig {
        task: support::tiny_task(3),
        schedule: s,
    }
}

/// `restart: reference` takes the mentor's first candidate unconditionally and scores none:
/// every round whose reply held a candidate restarts from it, and no candidate is on the
/// selection split's books.
#[test]
fn the_reference_rule_restarts_from_the_first_candidate_unscored() {
    let config = small_reference_run();
    let s = config.schedule.clone();
    let (r, rounds) = run(&config, None, RunControl::default()).unwrap();
    assert_eq!(r.selection_evals, s.budget(1, true).selection_evals);
    let mut restarted = 0;
    for round in &rounds {
        assert!(
            round.scored.iter().all(|x| x.kind != "candidate"),
            "{:?}",
            round.scored
        );
        let candidates = &round.mentor.as_ref().unwrap().candidates;
        match candidates.first() {
            Some(first) => {
                assert_eq!(round.restart_from, format!("first candidate: {first}"));
                restarted += 1;
            }
            None => assert_eq!(round.restart_from, "continuous"),
        }
    }
    assert!(restarted > 0, "no reply held a candidate: {rounds:?}");
}

/// Under `restart: reference` the first candidate takes over the continuous prompt's AdamW
/// moments: after a round that restarted from a candidate, the checkpoint's optimizer state
/// holds moments for exactly the new prompt's parameter (a fresh optimizer would hold none).
#[test]
fn the_reference_rule_keeps_adamws_state() {
    use burn::module::Module;
    use burn::optim::{AdamWConfig, Optimizer};
    use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
    let config = small_reference_run();
    let tmp = tempfile::tempdir().unwrap();
    let device = Default::default();
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    let mut checked = 0;
    // Checkpoints 2 and 4 follow rounds 0 and 1 (their restarts).
    for halt in [2, 4] {
        let dir = RunDir::create(tmp.path().join(format!("halt{halt}"))).unwrap();
        let halted = run_halting(&config, &dir, halt);
        assert!(matches!(halted, Err(tandem::Error::Halted { .. })));
        let cp = dir.path().join("checkpoint");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cp.join("state.json")).unwrap()).unwrap();
        let rounds = state["rounds"].as_array().unwrap();
        let restart = rounds.last().unwrap()["restart_from"].as_str().unwrap();
        if !restart.starts_with("first candidate: ") {
            continue;
        }
        let rows = burn::tensor::Tensor::zeros([3, 384], &device);
        let template = tandem::readout::PromptModel::<support::CpuAd> {
            prompt: SoftPrompt::from_tensor(rows),
            head: None,
        };
        let model = template
            .load_file(cp.join("model"), &recorder, &device)
            .unwrap();
        let optim: tandem::gradient::PromptOptimizer<support::CpuAd> = AdamWConfig::new().init();
        let moments = optim
            .load_record(recorder.load(cp.join("optim"), &device).unwrap())
            .to_record();
        assert_eq!(
            moments.keys().collect::<Vec<_>>(),
            vec![&model.prompt.vectors.id],
            "{restart}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no round restarted from a candidate");
}

/// The same resume invariant on the other backbones and data: the frozen SmolLM2 decoder with
/// the verbalizer readout (`mr`), and a task declared on a user's JSONL file (`topics`, 4
/// classes). Each is halted after every checkpoint in turn and resumed; every resumed run equals
/// the uninterrupted one exactly (the decoder too, since its RMSNorm no longer goes through
/// burn-ndarray's address-dependent approximate `recip`: `src/decoder/model.rs`).
#[test]
fn decoder_and_file_tasks_resume_to_the_same_result_from_any_checkpoint() {
    let mut schedule = Schedule::builtin("catalyst").unwrap();
    schedule.rounds = 1;
    schedule.steps_per_round = 2;
    schedule.final_steps = 2;
    if let Some(m) = schedule.mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 24;
    }
    let decoder = {
        let mut t = tandem::task::lookup("mr").unwrap().tune_config();
        t.backbone = tandem::task::BackboneSpec::SmolLm2;
        t.readout = tandem::readout::ReadoutConfig::Verbalizer {
            cue: "\nSentiment:".into(),
            position: tandem::readout::PromptPosition::Prefix,
        };
        t.prompt_len = 2;
        t.init = tandem::prompt::PromptInit::Text("Review:".into());
        t.split.shots = Some(2);
        t.split.max_selection = 6;
        t.split.max_test = 6;
        t.gradient.batch_size = 2;
        t.gradient.record_every = 1;
        t.gradient.lr = 0.003;
        t.max_len = 24;
        t
    };
    let file = {
        let spec = tandem::task::resolve("examples/tasks/topics.yaml").unwrap();
        let mut t = spec.tune_config();
        t.gradient.batch_size = 4;
        t.gradient.record_every = 1;
        t.max_len = 40;
        t
    };
    for task in [decoder, file] {
        let config = RunConfig {
            task,
            schedule: schedule.clone(),
        };
        let tmp = tempfile::tempdir().unwrap();
        let full = RunDir::create(tmp.path().join("full")).unwrap();
        let (want, want_rounds) = run(&config, Some(&full), RunControl::default()).unwrap();
        assert_eq!(want.gradient_steps, 4);
        assert!(!want.final_text.is_empty());
        // Checkpoints: round 0 gradient, round 0 done, final gradient.
        for halt in 1..=3 {
            let dir = RunDir::create(tmp.path().join(format!("halt{halt}"))).unwrap();
            let halted = run(
                &config,
                Some(&dir),
                RunControl {
                    resume: false,
                    halt_after: Some(halt),
                },
            );
            assert!(
                matches!(halted, Err(tandem::Error::Halted { checkpoints }) if checkpoints == halt),
                "{}: {halted:?}",
                config.task.task
            );
            let (got, rounds) = run(
                &config,
                Some(&dir),
                RunControl {
                    resume: true,
                    halt_after: None,
                },
            )
            .unwrap();
            assert_eq!(without_time(got), without_time(want.clone()), "halt {halt}");
            assert_eq!(rounds, want_rounds, "halt {halt}");
        }
    }
}
