//! The alternating engine end to end on a small real task (UCI IMDB) with the embedded SmolLM2
//! mentor: equal gradient budgets across schedules, one mentor call per round, every candidate
//! and the continuous prompt scored on the selection split, the run folder written, and the same
//! seed reproducing the whole run (mentor sampling included).

use tandem::assets::{MINILM, SMOLLM2, UCI_SENTIMENT};
use tandem::data::SplitConfig;
use tandem::decoder::ChatLlm;
use tandem::engine::{
    run_schedule, RoundRecord, RunConfig, RunControl, RunIo, RunResult, Schedule,
};
use tandem::gradient::GradientConfig;
use tandem::mentor::{LocalMentor, Mentor};
use tandem::prompt::PromptInit;
use tandem::run::RunDir;
use tandem::tune::TuneConfig;

use crate::support;

fn config(schedule: &str) -> RunConfig {
    let mut s = Schedule::builtin(schedule).unwrap();
    s.rounds = 2;
    s.steps_per_round = if s.steps_per_round == 0 { 0 } else { 6 };
    s.final_steps = if s.mentor.is_none() && s.rounds == 1 {
        0
    } else {
        6
    };
    if s.name == "gradient-only" {
        s.rounds = 1;
        s.steps_per_round = 18;
        s.final_steps = 0;
    }
    if let Some(m) = s.mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 40;
    }
    RunConfig {
        task: TuneConfig {
            prompt_len: 4,
            init: PromptInit::Text("this movie review is".into()),
            seed: 3,
            split: SplitConfig {
                max_test: 120,
                max_selection: 60,
                shots: Some(8),
                ..Default::default()
            },
            gradient: GradientConfig {
                batch_size: 8,
                record_every: 3,
                ..Default::default()
            },
            max_len: 48,
            ..tandem::task::lookup("uci-imdb").unwrap().tune_config()
        },
        schedule: s,
    }
}

#[test]
fn catalyst_alternates_with_the_embedded_mentor_and_reproduces() {
    let assets = support::assets(&[MINILM, UCI_SENTIMENT, SMOLLM2]);
    let llm = ChatLlm::<support::Cpu>::load(&assets.path(&SMOLLM2.files[0]), &Default::default())
        .unwrap();
    let mut mentor = LocalMentor::new(llm);
    let run = |cfg: &RunConfig,
               mentor: &mut LocalMentor<support::Cpu>,
               out: Option<&RunDir>|
     -> (RunResult, Vec<RoundRecord>) {
        let m: Option<&mut dyn Mentor> = cfg
            .schedule
            .mentor
            .as_ref()
            .map(|_| mentor as &mut dyn Mentor);
        run_schedule::<support::CpuAd>(
            cfg,
            &assets,
            &Default::default(),
            RunIo {
                mentor: m,
                out,
                ..RunIo::default()
            },
        )
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = RunDir::create(dir.path().join("run")).unwrap();
    let cat = config("catalyst");
    let (r1, rounds) = run(&cat, &mut mentor, Some(&out));
    let (g, _) = run(&config("gradient-only"), &mut mentor, None);
    assert_eq!(r1.gradient_steps, 18);
    assert_eq!(
        g.gradient_steps, r1.gradient_steps,
        "equal gradient budgets"
    );
    assert_eq!(r1.llm_calls, 2);
    assert_eq!(g.llm_calls, 0);
    assert_eq!(rounds.len(), 2);
    for r in &rounds {
        assert!(r
            .meta_prompt
            .as_deref()
            .unwrap()
            .contains("this movie review is"));
        assert!(r.reply.is_some());
        // The transcript records the exact model and every sampling setting sent.
        let ex = r.mentor.as_ref().unwrap();
        assert_eq!(ex.response.model_id, "SmolLM2-135M-Instruct.Q4_1");
        assert_eq!(ex.request.sampling.max_tokens, 40);
        assert_eq!(Some(&ex.response.text), r.reply.as_ref());
        assert!(ex.candidates.len() <= 3);
        assert_eq!(r.scored[0].kind, "continuous");
        assert!(r.scored.iter().all(|s| s.selection.count == 60));
    }
    for f in [
        "config.yaml",
        "split.json",
        "trajectory.jsonl",
        "rounds.jsonl",
        "results.json",
    ] {
        assert!(out.path().join(f).exists(), "{f} missing");
    }
    let yaml = std::fs::read_to_string(out.path().join("config.yaml")).unwrap();
    assert_eq!(serde_yaml::from_str::<RunConfig>(&yaml).unwrap(), cat);
    // Plots: one restart mark per round that ends before the last step, and PNGs with ink.
    let loss = std::fs::read_to_string(out.path().join("loss.svg")).unwrap();
    let marked = rounds.iter().filter(|r| r.step < r1.gradient_steps).count();
    assert!(marked > 0);
    assert_eq!(loss.matches("restart: ").count(), marked, "{loss}");
    let selection = std::fs::read_to_string(out.path().join("selection.svg")).unwrap();
    assert!(selection.contains("best mentor candidate") && selection.contains("continuous prompt"));
    for png in ["loss.png", "selection.png"] {
        let image = resvg::tiny_skia::Pixmap::load_png(out.path().join(png)).unwrap();
        assert_eq!((image.width(), image.height()), (900, 480));
        let ink = image.pixels().iter().filter(|p| p.red() < 200).count();
        assert!(ink > 2000, "{png}: {ink} dark pixels");
    }
    let summary = tandem::report::run_summary(out.path(), &r1, &rounds);
    assert!(
        summary.contains("catalyst") && summary.contains("2 LLM calls"),
        "{summary}"
    );
    assert_eq!(
        summary.matches("  round ").count(),
        rounds.len(),
        "{summary}"
    );
    // The same seed reproduces the run, mentor replies included.
    let (r2, rounds2) = run(&cat, &mut mentor, None);
    assert_eq!(r2.test, r1.test);
    assert_eq!(
        (r2.llm_calls, r2.llm_tokens),
        (r1.llm_calls, r1.llm_tokens),
        "usage is per run"
    );
    assert_eq!(r2.final_text, r1.final_text);
    assert_eq!(
        rounds2.iter().map(|r| r.reply.clone()).collect::<Vec<_>>(),
        rounds.iter().map(|r| r.reply.clone()).collect::<Vec<_>>()
    );
}

/// A run stopped after any checkpoint (the last one before a kill during a gradient stage, or
/// during a mentor stage) and resumed ends with exactly the uninterrupted run's record.
#[test]
fn a_halted_run_resumes_to_the_identical_result() {
    let assets = support::assets(&[MINILM, UCI_SENTIMENT, SMOLLM2]);
    let llm = ChatLlm::<support::Cpu>::load(&assets.path(&SMOLLM2.files[0]), &Default::default())
        .unwrap();
    let mut mentor = LocalMentor::new(llm);
    let cfg = config("catalyst");
    let mut go = |out: &RunDir, control: RunControl| {
        run_schedule::<support::CpuAd>(
            &cfg,
            &assets,
            &Default::default(),
            RunIo {
                mentor: Some(&mut mentor as &mut dyn Mentor),
                out: Some(out),
                control,
                ..RunIo::default()
            },
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let full_dir = RunDir::create(tmp.path().join("full")).unwrap();
    let (full, full_rounds) = go(&full_dir, RunControl::default()).unwrap();
    // Checkpoints: 1 = round 0 gradient, 2 = round 0 done, 3 = round 1 gradient, ...
    for halt in [2, 3] {
        let dir = RunDir::create(tmp.path().join(format!("halt{halt}"))).unwrap();
        let err = go(
            &dir,
            RunControl {
                resume: false,
                halt_after: Some(halt),
            },
        )
        .unwrap_err();
        assert!(matches!(err, tandem::Error::Halted { checkpoints } if checkpoints == halt));
        assert!(!dir.path().join("results.json").exists());
        let (resumed, rounds) = go(
            &dir,
            RunControl {
                resume: true,
                halt_after: None,
            },
        )
        .unwrap();
        let mut a = resumed.clone();
        a.wall_seconds = full.wall_seconds;
        assert_eq!(a, full, "halted after checkpoint {halt}");
        assert_eq!(rounds, full_rounds);
        let traj = |d: &RunDir| std::fs::read_to_string(d.path().join("trajectory.jsonl")).unwrap();
        assert_eq!(traj(&dir), traj(&full_dir));
    }
}
