//! Checkpoints of a run after every stage and inside a probe: the prompt model, the optimizer
//! state, the best prompt so far, each probe arm's prompt and optimizer state (burn records),
//! the RNG position and everything recorded (JSON). Written to a
//! fresh folder, fsynced (files and folder), and swapped in by renames, so neither a crash nor
//! a power loss leaves less than the previous checkpoint.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::records::{ProbeProgress, RoundRecord};
use super::stage::arms::{origin, Arm};
use super::state::RunState;
use crate::error::{Error, Result};
use crate::gradient::{PromptOptimizer, TrajectoryPoint};
use crate::mentor::{ScoredPrompt, Usage};
use crate::readout::PromptModel;

/// Which part of a round a checkpoint follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The round's gradient stage finished; its mentor stage had not.
    GradientDone,
    /// The whole round (mentor stage, selection, restart) finished.
    RoundDone,
    /// Inside the round's probe: the mentor's reply in hand and the arms built, or some of
    /// the probe's rungs run.
    Probe,
}

/// The position of the run's random generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

impl RngState {
    /// Captures `rng`.
    pub fn of(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// The generator at the captured position.
    pub fn restore(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// Everything but the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The round the checkpoint is in (`rounds` for the final stage).
    pub round: usize,
    /// Where in the round.
    pub phase: Phase,
    /// Gradient steps taken.
    pub step: usize,
    /// Scorings of the selection split that could choose a prompt.
    #[serde(default)]
    pub selection_evals: usize,
    /// The whole trajectory so far.
    pub trajectory: Vec<TrajectoryPoint>,
    /// The trajectory of the current round (the mentor stage samples it).
    pub round_points: Vec<TrajectoryPoint>,
    /// Divergences the current round's gradient stage rolled back.
    #[serde(default)]
    pub round_rollbacks: Vec<crate::gradient::Rollback>,
    /// Finished rounds.
    pub rounds: Vec<RoundRecord>,
    /// Every prompt scored so far.
    pub pool: Vec<ScoredPrompt>,
    /// Selection accuracy and loss of the best prompt so far.
    pub overall: Option<(f64, f64)>,
    /// The run's generator.
    pub rng: RngState,
    /// Mentor calls and tokens spent by the run so far.
    pub usage: Usage,
    /// Checkpoints written so far (this one included).
    pub count: usize,
    /// The probe under way (with `Phase::Probe`); each arm's tensors are stored beside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeProgress>,
}

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::new()
}

fn rec_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::data(path, format!("checkpoint: {e}"))
}

/// Writes a checkpoint into `dir/checkpoint`.
fn save<B: AutodiffBackend>(
    dir: &Path,
    state: &CheckpointState,
    model: &PromptModel<B>,
    optim: &PromptOptimizer<B>,
    best: Option<&PromptModel<B>>,
    arms: &[Arm<B>],
) -> Result<()> {
    let next = dir.join("checkpoint.next");
    let _ = std::fs::remove_dir_all(&next);
    std::fs::create_dir_all(&next).map_err(|e| Error::io("creating", &next, e))?;
    save_tensors(&next, "", model, optim)?;
    for (i, arm) in arms.iter().enumerate() {
        save_tensors(&next, &format!("arm{i}-"), &arm.model, &arm.optim)?;
    }
    if let Some(b) = best {
        b.clone()
            .save_file(next.join("best"), &recorder())
            .map_err(|e| rec_err(&next, e))?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| rec_err(&next, e))?;
    let state_path = next.join("state.json");
    std::fs::write(&state_path, json).map_err(|e| Error::io("writing", &state_path, e))?;
    sync_folder_and_files(&next)?;
    let current = dir.join("checkpoint");
    let old = dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| Error::io("renaming", &current, e))?;
    }
    std::fs::rename(&next, &current).map_err(|e| Error::io("renaming", &next, e))?;
    sync_path(dir)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Writes a prompt model and its optimizer state as `{prefix}model` and `{prefix}optim`.
fn save_tensors<B: AutodiffBackend>(
    dir: &Path,
    prefix: &str,
    model: &PromptModel<B>,
    optim: &PromptOptimizer<B>,
) -> Result<()> {
    model
        .clone()
        .save_file(dir.join(format!("{prefix}model")), &recorder())
        .map_err(|e| rec_err(dir, e))?;
    recorder()
        .record(optim.to_record(), dir.join(format!("{prefix}optim")))
        .map_err(|e| rec_err(dir, e))
}

/// Reads what [`save_tensors`] wrote, into the shapes of `model` and `optim`.
fn load_tensors<B: AutodiffBackend>(
    dir: &Path,
    prefix: &str,
    model: PromptModel<B>,
    optim: PromptOptimizer<B>,
    device: &B::Device,
) -> Result<(PromptModel<B>, PromptOptimizer<B>)> {
    let model = model
        .load_file(dir.join(format!("{prefix}model")), &recorder(), device)
        .map_err(|e| rec_err(dir, e))?;
    let record = recorder()
        .load(dir.join(format!("{prefix}optim")), device)
        .map_err(|e| rec_err(dir, e))?;
    Ok((model, optim.load_record(record)))
}

/// fsyncs every file in `dir`, then `dir` itself, so its entries are on disk before a rename
/// publishes it.
fn sync_folder_and_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io("reading", dir, e))?.path();
        if path.is_file() {
            sync_path(&path)?;
        }
    }
    sync_path(dir)
}

/// fsyncs one file or folder (a folder is opened read-only, which POSIX allows to sync).
fn sync_path(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", path, e))
}

/// Writes a run's state after every stage and restores the newest one; with no run folder it
/// does nothing.
#[derive(Debug, Clone, Copy)]
pub struct Checkpointer<'a> {
    dir: Option<&'a Path>,
    halt_after: Option<usize>,
}

impl<'a> Checkpointer<'a> {
    /// Checkpoints into `dir`; fault injection stops the run after `halt_after` checkpoints.
    pub fn new(dir: Option<&'a Path>, halt_after: Option<usize>) -> Self {
        Self { dir, halt_after }
    }

    /// Saves `state` after the stage `phase` names.
    pub fn save<B: AutodiffBackend>(&self, state: &mut RunState<B>, phase: Phase) -> Result<()> {
        let Some(dir) = self.dir else { return Ok(()) };
        state.checkpoints += 1;
        let snapshot = state.snapshot(phase);
        let best = state.best.as_ref().map(|b| &b.model);
        let arms = state.probe.as_ref().map_or(&[][..], |p| &p.arms[..]);
        save(dir, &snapshot, &state.model, &state.optim, best, arms)?;
        if self.halt_after.is_some_and(|h| state.checkpoints >= h) {
            return Err(Error::Halted {
                checkpoints: state.checkpoints,
            });
        }
        Ok(())
    }

    /// The newest checkpoint's state, loaded into the shapes of `fresh`; `None` when there is
    /// none (a fresh start).
    pub fn restore<B: AutodiffBackend>(
        &self,
        fresh: RunState<B>,
        device: &B::Device,
    ) -> Result<RunState<B>> {
        let Some(cp) = self.dir.and_then(latest) else {
            return Ok(fresh);
        };
        let (snapshot, model, optim, best, arms) = load(&cp, fresh.model, fresh.optim, device)?;
        Ok(RunState::restore(snapshot, model, optim, best, arms))
    }
}

/// The newest complete checkpoint folder under `dir`, if any.
fn latest(dir: &Path) -> Option<PathBuf> {
    ["checkpoint", "checkpoint.old"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.join("state.json").exists())
}

/// A checkpoint as read: the state and its tensors.
type Loaded<B> = (
    CheckpointState,
    PromptModel<B>,
    PromptOptimizer<B>,
    Option<PromptModel<B>>,
    Vec<Arm<B>>,
);

/// Reads a checkpoint: the state, and the tensors loaded into `model`'s and `optim`'s shapes.
fn load<B: AutodiffBackend>(
    cp: &Path,
    model: PromptModel<B>,
    optim: PromptOptimizer<B>,
    device: &B::Device,
) -> Result<Loaded<B>> {
    let state_path = cp.join("state.json");
    let text =
        std::fs::read_to_string(&state_path).map_err(|e| Error::io("reading", &state_path, e))?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| rec_err(&state_path, e))?;
    let template = model.clone();
    let mut arms = Vec::new();
    for (i, a) in state.probe.iter().flat_map(|p| p.arms.iter()).enumerate() {
        let Some(origin) = origin(&a.origin) else {
            return Err(rec_err(
                &state_path,
                format!("unknown arm origin `{}`", a.origin),
            ));
        };
        let prefix = format!("arm{i}-");
        let (model, optim) = load_tensors(cp, &prefix, template.clone(), optim.clone(), device)?;
        arms.push(Arm {
            origin,
            text: a.text.clone(),
            tokens: a.tokens,
            model,
            optim,
        });
    }
    let (model, optim) = load_tensors(cp, "", model, optim, device)?;
    let best = if cp.join("best.bin").exists() {
        Some(
            template
                .load_file(cp.join("best"), &recorder(), device)
                .map_err(|e| rec_err(cp, e))?,
        )
    } else {
        None
    };
    Ok((state, model, optim, best, arms))
}
