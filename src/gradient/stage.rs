//! One gradient stage over the training split.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{GradientConfig, TrajectoryPoint};
use crate::backbone::Vocabulary;
use crate::error::{Error, Result};
use crate::prompt::Projector;
use crate::readout::{evaluate_valid, PromptModel, Readout, SplitName};
use burn::module::AutodiffModule;

/// The optimizer the gradient stage uses.
pub type PromptOptimizer<B> = OptimizerAdaptor<AdamW, PromptModel<B>, B>;

/// What a stage produced.
#[derive(Debug)]
pub struct StageOutcome<B: AutodiffBackend> {
    /// The model after the last step.
    pub model: PromptModel<B>,
    /// Recorded trajectory points, in step order.
    pub trajectory: Vec<TrajectoryPoint>,
    /// Mean training loss of each step.
    pub step_losses: Vec<f64>,
    /// Step (global) of the returned model, when `keep_best` chose an earlier one.
    pub best_step: Option<usize>,
    /// Divergences detected and rolled back, in order.
    pub rollbacks: Vec<Rollback>,
}

/// A non-finite loss or gradient, detected and rolled back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rollback {
    /// Global step at which the divergence was detected.
    pub step: usize,
    /// What was not finite.
    pub reason: String,
    /// Global step of the prompt the stage went back to (its loss was finite).
    pub back_to_step: usize,
    /// Learning-rate multiplier from then on.
    pub lr_scale: f64,
}

/// Runs gradient stages of a readout with a fixed configuration.
pub struct GradientStage<'a, B: AutodiffBackend, R> {
    readout: &'a R,
    projector: &'a Projector<B>,
    tokenizer: &'a dyn Vocabulary,
    config: &'a GradientConfig,
}

impl<'a, B, R> GradientStage<'a, B, R>
where
    B: AutodiffBackend,
    R: Readout<B> + AutodiffModule<B>,
    R::InnerModule: Readout<B::InnerBackend>,
{
    /// A stage over `readout`'s training split; `projector` and `tokenizer` turn recorded prompts
    /// into text.
    pub fn new(
        readout: &'a R,
        projector: &'a Projector<B>,
        tokenizer: &'a dyn Vocabulary,
        config: &'a GradientConfig,
    ) -> Self {
        Self {
            readout,
            projector,
            tokenizer,
            config,
        }
    }

    /// A fresh AdamW optimizer with the stage's settings.
    pub fn optimizer(&self) -> PromptOptimizer<B> {
        AdamWConfig::new()
            .with_beta_1(self.config.beta1)
            .with_beta_2(self.config.beta2)
            .with_epsilon(self.config.eps)
            .with_weight_decay(self.config.weight_decay)
            .init()
    }

    /// Runs `config.steps` steps from `model`. `step_offset` is the global step count before the
    /// stage (trajectory steps are global). All sampling randomness comes from `rng`.
    pub fn run(
        &self,
        mut model: PromptModel<B>,
        optim: &mut PromptOptimizer<B>,
        rng: &mut impl Rng,
        step_offset: usize,
        progress: &ProgressBar,
    ) -> Result<StageOutcome<B>> {
        let cfg = self.config;
        let n = self.readout.data().train.len();
        if n == 0 {
            return Err(Error::config("training split", "is empty"));
        }
        let batch = cfg.batch_size.min(n);
        let mut st = StageLoop::new(cfg.steps);
        for step in 0..cfg.steps {
            let idx = st.next_batch(n, batch, rng);
            let lr = cfg.schedule.lr(cfg.lr, step, cfg.steps) * st.lr_scale;
            let input = model.detached();
            let at = step_offset + step;
            match self.step(model, optim, &idx, lr, at + 1) {
                Ok((next, loss)) => {
                    st.last_good = Some((at, input));
                    model = next;
                    st.step_losses.push(loss);
                    st.since_record.push(loss);
                    let done = step + 1;
                    if done % cfg.record_every == 0 || done == cfg.steps {
                        self.record(&mut st, &model, step_offset + done, lr);
                    }
                    progress.set_message(format!("loss {loss:.4}"));
                }
                Err(Error::Diverged { step, reason }) => {
                    model = self.roll_back(&mut st, optim, (step, reason), at, input)?;
                }
                Err(e) => return Err(e),
            }
            progress.inc(1);
        }
        Ok(self.finish(st, model, step_offset + cfg.steps))
    }

    /// After a divergence (`(step, reason)`) in the step from global step `at`, goes back to
    /// the newest prompt whose loss was finite (`input`, the prompt that step started from,
    /// when there is none) with a lower learning rate and a fresh optimizer.
    fn roll_back(
        &self,
        st: &mut StageLoop<B>,
        optim: &mut PromptOptimizer<B>,
        (step, reason): (usize, String),
        at: usize,
        input: PromptModel<B>,
    ) -> Result<PromptModel<B>> {
        let cfg = self.config;
        if st.rollbacks.len() >= cfg.max_rollbacks {
            return Err(Error::Diverged {
                step,
                reason: format!(
                    "{reason}, still after {} rollbacks (learning rate ×{:.0e}); lower gradient.lr",
                    st.rollbacks.len(),
                    st.lr_scale
                ),
            });
        }
        let (back_to_step, good) = st.last_good.take().unwrap_or((at, input));
        st.lr_scale *= cfg.rollback_lr_factor;
        st.rollbacks.push(Rollback {
            step,
            reason,
            back_to_step,
            lr_scale: st.lr_scale,
        });
        // Adam's moments may hold the non-finite values: start them afresh.
        *optim = self.optimizer();
        let model = trainable(&good);
        st.last_good = Some((back_to_step, good));
        Ok(model)
    }

    /// Records a trajectory point at global step `step` (and, with `keep_best`, scores the
    /// selection split and keeps the best prompt so far).
    fn record(&self, st: &mut StageLoop<B>, model: &PromptModel<B>, step: usize, lr: f64) {
        let mean = st.since_record.iter().sum::<f64>() / st.since_record.len() as f64;
        st.since_record.clear();
        let selection = self.config.keep_best.then(|| {
            let m = evaluate_valid(self.readout, model, SplitName::Selection);
            let better = st.best.as_ref().is_none_or(|(acc, _, _)| m.accuracy > *acc);
            if better {
                st.best = Some((m.accuracy, step, model.detached()));
            }
            m.accuracy
        });
        st.snapshots.push(Snapshot {
            step,
            loss: mean,
            lr,
            selection,
            rows: model.prompt.rows().detach(),
        });
    }

    /// The stage's outcome: the recorded prompts projected, and the best checkpoint put back
    /// when it is not the last (`end` is the global step after the last).
    fn finish(&self, st: StageLoop<B>, mut model: PromptModel<B>, end: usize) -> StageOutcome<B> {
        let trajectory = self.project_snapshots(st.snapshots);
        let mut best_step = None;
        if let Some((_, step, kept)) = st.best {
            if step != end {
                best_step = Some(step);
                model = reattach(kept, model);
            }
        }
        StageOutcome {
            model,
            trajectory,
            step_losses: st.step_losses,
            best_step,
            rollbacks: st.rollbacks,
        }
    }

    /// One optimizer step on training examples `idx` at learning rate `lr`: forward, backward
    /// (gradients of the trainable tensors only), global-norm clipping, AdamW. Returns the
    /// updated model and the batch loss; a non-finite loss or gradient is an error naming `step`.
    pub fn step(
        &self,
        model: PromptModel<B>,
        optim: &mut PromptOptimizer<B>,
        idx: &[usize],
        lr: f64,
        step: usize,
    ) -> Result<(PromptModel<B>, f64)> {
        let (loss_value, grads) = match self.readout.host_loss(&model, SplitName::Train, idx) {
            // The host computed the loss: its surrogate has the same gradients.
            Some(host) => (host.value, host.surrogate.backward()),
            None => {
                let loss = self.readout.loss(&model, SplitName::Train, idx);
                (loss.clone().into_scalar().elem(), loss.backward())
            }
        };
        if !loss_value.is_finite() {
            return Err(Error::Diverged {
                step,
                reason: format!("training loss is {loss_value}"),
            });
        }
        let mut grads = GradientsParams::from_grads(grads, &model);
        if let Some(max_norm) = self.config.grad_clip {
            clip_global_norm(&model, &mut grads, max_norm as f64, step)?;
        }
        let next = optim.step(lr, model, grads);
        // An update can overflow even when the loss and gradient were finite (a huge learning
        // rate): the prompt (and head) must stay finite too.
        let mut magnitude: f64 = next.prompt.rows().abs().sum().into_scalar().elem();
        if let Some(h) = &next.head {
            magnitude += h.weight.val().abs().sum().into_scalar().elem::<f64>();
        }
        if !magnitude.is_finite() {
            return Err(Error::Diverged {
                step,
                reason: format!("the update at learning rate {lr:.1e} made the prompt's magnitude non-finite (overflow)"),
            });
        }
        Ok((next, loss_value))
    }

    /// Projects all recorded prompts in one batched computation.
    fn project_snapshots(&self, snaps: Vec<Snapshot<B>>) -> Vec<TrajectoryPoint> {
        let prompts: Vec<_> = snaps.iter().map(|s| s.rows.clone()).collect();
        let projections = self.projector.project_many(&prompts, self.config.top_k);
        snaps
            .into_iter()
            .zip(projections)
            .map(|(s, p)| {
                let ids = p.nearest();
                TrajectoryPoint {
                    step: s.step,
                    loss: s.loss,
                    lr: s.lr,
                    selection_accuracy: s.selection,
                    text: self.tokenizer.decode_ids(&ids),
                    distances: p.nearest_distances(),
                    token_ids: ids,
                    top_k: p.token_ids,
                }
            })
            .collect()
    }
}

/// The state of one stage's loop: the batch order, losses, recorded prompts, the best
/// checkpoint so far, and what divergences did.
struct StageLoop<B: AutodiffBackend> {
    order: Vec<usize>,
    step_losses: Vec<f64>,
    snapshots: Vec<Snapshot<B>>,
    /// Selection accuracy, global step and prompt of the best checkpoint (`keep_best`).
    best: Option<(f64, usize, PromptModel<B>)>,
    /// Losses of the steps since the last recorded point.
    since_record: Vec<f64>,
    rollbacks: Vec<Rollback>,
    lr_scale: f64,
    /// The newest prompt whose loss was finite, and its global step.
    last_good: Option<(usize, PromptModel<B>)>,
}

impl<B: AutodiffBackend> StageLoop<B> {
    fn new(steps: usize) -> Self {
        Self {
            order: Vec::new(),
            step_losses: Vec::with_capacity(steps),
            snapshots: Vec::new(),
            best: None,
            since_record: Vec::new(),
            rollbacks: Vec::new(),
            lr_scale: 1.0,
            last_good: None,
        }
    }

    /// The next `batch` training examples of `n`: epochs of fresh shuffles, drawn in order.
    fn next_batch(&mut self, n: usize, batch: usize, rng: &mut impl Rng) -> Vec<usize> {
        if self.order.len() < batch {
            let mut fresh: Vec<usize> = (0..n).collect();
            fresh.shuffle(rng);
            self.order.extend(fresh);
        }
        self.order.drain(..batch).collect()
    }
}

/// A recorded prompt before projection.
struct Snapshot<B: AutodiffBackend> {
    step: usize,
    loss: f64,
    lr: f64,
    selection: Option<f64>,
    rows: Tensor<B, 2>,
}

/// A trainable copy of a (detached) model: fresh parameters that require gradients.
fn trainable<B: AutodiffBackend>(kept: &PromptModel<B>) -> PromptModel<B> {
    use burn::module::Param;
    PromptModel {
        prompt: crate::prompt::SoftPrompt {
            vectors: Param::from_tensor(kept.prompt.rows().require_grad()),
        },
        head: kept.head.as_ref().map(|h| crate::readout::Head {
            weight: Param::from_tensor(h.weight.val().require_grad()),
            bias: Param::from_tensor(h.bias.val().require_grad()),
        }),
    }
}

/// Puts the values of `kept` into the parameters of `current` (same ids, so the optimizer
/// state stays attached), requiring gradients again.
fn reattach<B: AutodiffBackend>(kept: PromptModel<B>, current: PromptModel<B>) -> PromptModel<B> {
    use burn::module::Param;
    let prompt = crate::prompt::SoftPrompt {
        vectors: Param::initialized(current.prompt.vectors.id, kept.prompt.rows().require_grad()),
    };
    let head = match (kept.head, current.head) {
        (Some(k), Some(c)) => Some(crate::readout::Head {
            weight: Param::initialized(c.weight.id, k.weight.val().require_grad()),
            bias: Param::initialized(c.bias.id, k.bias.val().require_grad()),
        }),
        (_, c) => c,
    };
    PromptModel { prompt, head }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm` (as PyTorch's
/// `clip_grad_norm_`), and rejects non-finite gradients.
fn clip_global_norm<B: AutodiffBackend>(
    model: &PromptModel<B>,
    grads: &mut GradientsParams,
    max_norm: f64,
    step: usize,
) -> Result<()> {
    let ids2 = model.param_ids_2d();
    let ids1 = model.param_ids_1d();
    let mut sq = 0.0f64;
    for &id in &ids2 {
        if let Some(g) = grads.get::<B::InnerBackend, 2>(id) {
            sq += g.square().sum().into_scalar().elem::<f64>();
        }
    }
    for &id in &ids1 {
        if let Some(g) = grads.get::<B::InnerBackend, 1>(id) {
            sq += g.square().sum().into_scalar().elem::<f64>();
        }
    }
    let norm = sq.sqrt();
    if !norm.is_finite() {
        return Err(Error::Diverged {
            step,
            reason: format!("gradient norm is {norm}"),
        });
    }
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for &id in &ids2 {
            if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
                grads.register(id, g.mul_scalar(scale));
            }
        }
        for &id in &ids1 {
            if let Some(g) = grads.remove::<B::InnerBackend, 1>(id) {
                grads.register(id, g.mul_scalar(scale));
            }
        }
    }
    Ok(())
}
