//! Readouts: how a soft prompt and the frozen backbone turn an example into class scores.
//!
//! - [`ClassPromptReadout`] (CoOp-style): class embedding = encoder(prompt ⊕ class name), sample
//!   embedding = frozen encoder(text), computed once and cached; logits = scale · cosine.
//! - [`InputHeadReadout`] (Lester-style): prompt spliced before the input tokens, mean pooled,
//!   trainable linear head.
//! - [`VerbalizerReadout`] (Lester-style on a decoder): prompt ⊕ input ⊕ cue (or input ⊕
//!   prompt ⊕ cue), scored by the frozen decoder's next-token logits of the class words.

mod batch;
mod class_prompt;
mod class_prompt_host;
mod data;
mod host_loss;
pub mod input_cache;
mod input_head;
mod model;
mod pooled_pass;
mod verbalizer;

use batch::{each_separately, stacked_prompts, Tally};
pub use class_prompt::ClassPromptReadout;
pub use data::{EncodedData, EncodedSplit, SplitName};
pub use host_loss::HostLoss;
pub use input_head::InputHeadReadout;
pub use model::{Head, PromptModel};
pub use verbalizer::VerbalizerReadout;

use burn::module::AutodiffModule;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Which readout a task uses, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ReadoutConfig {
    /// CoOp-style class prompts compared by cosine to cached sentence embeddings.
    ClassPrompt {
        /// Logit scale (inverse temperature) applied to cosine similarities.
        scale: f32,
    },
    /// Lester-style input prompt, mean pooling and a trainable linear head.
    InputHead,
    /// A frozen decoder's next-token logits of the class words after prompt ⊕ input ⊕ cue.
    Verbalizer {
        /// Text appended after the input, before the class word (e.g. `"\nSentiment:"`).
        cue: crate::task::Text,
        /// Where the prompt goes: `prefix` (before the input, Lester-style) or `suffix` (after
        /// the input, before the cue: the input's states are computed once per example, so a
        /// step or a scoring runs only the prompt and cue through the decoder).
        #[serde(default, skip_serializing_if = "PromptPosition::is_prefix")]
        position: PromptPosition,
    },
}

/// Where a decoder's soft prompt sits in the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptPosition {
    /// Prompt ⊕ input ⊕ cue.
    #[default]
    Prefix,
    /// Input ⊕ prompt ⊕ cue.
    Suffix,
}

impl PromptPosition {
    /// Whether this is the default, `prefix`.
    pub fn is_prefix(&self) -> bool {
        *self == PromptPosition::Prefix
    }
}

/// The verbalizer's default cue.
pub const DEFAULT_CUE: &str = "\nAnswer:";

impl Default for ReadoutConfig {
    fn default() -> Self {
        ReadoutConfig::ClassPrompt { scale: 20.0 }
    }
}

impl std::str::FromStr for ReadoutConfig {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "class-prompt" => Ok(Self::default()),
            "input-head" => Ok(Self::InputHead),
            "verbalizer" => Ok(Self::Verbalizer {
                cue: DEFAULT_CUE.into(),
                position: PromptPosition::Prefix,
            }),
            _ => Err(crate::error::Error::config(
                format!("readout `{s}`"),
                "expected `class-prompt`, `input-head` or `verbalizer`",
            )),
        }
    }
}

/// Loss, accuracy, macro-F1 and MCC of a prompt on a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 scores, over the classes that have examples or are
    /// predicted (as scikit-learn's `f1_score(average="macro")`): a class with examples that is
    /// never predicted counts as F1 = 0; a class neither present nor predicted is left out.
    #[serde(default)]
    pub macro_f1: f64,
    /// Matthews correlation coefficient, multi-class (0 when undefined).
    #[serde(default)]
    pub mcc: f64,
    /// Number of examples.
    pub count: usize,
}

impl Metrics {
    /// Metrics of predictions from a confusion matrix `confusion[label][prediction]` and the
    /// summed loss.
    pub fn from_confusion(confusion: &[Vec<usize>], loss_sum: f64) -> Self {
        let k = confusion.len();
        let n: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let actual: Vec<f64> = confusion
            .iter()
            .map(|r| r.iter().sum::<usize>() as f64)
            .collect();
        let predicted: Vec<f64> = (0..k)
            .map(|j| confusion.iter().map(|r| r[j]).sum::<usize>() as f64)
            .collect();
        let mut f1_sum = 0.0;
        let mut classes = 0;
        for i in 0..k {
            if actual[i] == 0.0 && predicted[i] == 0.0 {
                continue;
            }
            classes += 1;
            let tp = confusion[i][i] as f64;
            f1_sum += 2.0 * tp / (actual[i] + predicted[i]);
        }
        let (nf, cf) = (n as f64, correct as f64);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let cov_xy = cf * nf - dot(&actual, &predicted);
        let cov_xx = nf * nf - dot(&predicted, &predicted);
        let cov_yy = nf * nf - dot(&actual, &actual);
        let denom = (cov_xx * cov_yy).sqrt();
        Metrics {
            loss: loss_sum / nf.max(1.0),
            accuracy: cf / nf.max(1.0),
            macro_f1: if classes == 0 {
                0.0
            } else {
                f1_sum / classes as f64
            },
            mcc: if denom > 0.0 { cov_xy / denom } else { 0.0 },
            count: n,
        }
    }
}

/// Scores examples given a prompt model. Implementations hold the frozen backbone and any cache.
pub trait Readout<B: Backend> {
    /// Logits `[idx.len(), classes]` of examples `idx` of `split`. Gradients flow to the model's
    /// trainable tensors when they require them.
    fn logits(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 2>;

    /// The encoded data the readout scores.
    fn data(&self) -> &EncodedData;

    /// Mean cross-entropy of a batch (differentiable).
    fn loss(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Tensor<B, 1> {
        let logits = self.logits(model, split, idx);
        let labels = self.data().split(split).labels_of(idx);
        cross_entropy(logits, &labels)
    }

    /// The mean cross-entropy of a batch computed outside the backend's autodiff, with a
    /// surrogate carrying its gradients ([`HostLoss`]), where the readout can (its frozen
    /// model on the host, for CPU backends); `None` otherwise, and then [`Readout::loss`] is
    /// differentiated.
    fn host_loss(
        &self,
        _model: &PromptModel<B>,
        _split: SplitName,
        _idx: &[usize],
    ) -> Option<HostLoss<B>> {
        None
    }

    /// Loss and accuracy over a whole split, without tracking gradients.
    fn evaluate(&self, model: &PromptModel<B>, split: SplitName) -> Metrics {
        let all: Vec<usize> = (0..self.data().split(split).len()).collect();
        self.evaluate_on(model, split, &all)
    }

    /// Loss and accuracy over examples `idx` of a split, without tracking gradients.
    fn evaluate_on(&self, model: &PromptModel<B>, split: SplitName, idx: &[usize]) -> Metrics {
        let mut each = self.evaluate_each_on(std::slice::from_ref(model), split, idx);
        each.pop().unwrap_or_else(|| Tally::new(0).metrics())
    }

    /// [`Readout::evaluate_on`] of each of `models`, in order, scoring every chunk of examples
    /// under all of them in one pass ([`Readout::logits_each`]): the same metrics as separate
    /// calls, up to float rounding.
    fn evaluate_each_on(
        &self,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Vec<Metrics> {
        let frozen: Vec<PromptModel<B>> = models.iter().map(PromptModel::detached).collect();
        let examples = self.data().split(split);
        // Chunks of similar length waste little compute on padding.
        let mut all = idx.to_vec();
        all.sort_by_key(|&i| examples.tokens[i].len());
        let mut tallies = vec![Tally::new(self.data().num_classes()); models.len()];
        for chunk in all.chunks(self.eval_chunk_each(models.len())) {
            let labels = examples.labels_of(chunk);
            let logits = self.logits_each(&frozen, split, chunk);
            for (tally, logits) in tallies.iter_mut().zip(logits) {
                tally.add(logits, &labels);
            }
        }
        tallies.iter().map(Tally::metrics).collect()
    }

    /// Logits `[idx.len(), classes]` of examples `idx` under each of `models`, in order: in
    /// one pass ([`Readout::logits_stacked`]) when their prompts have one shape and the readout
    /// can stack them, else each model's [`Readout::logits`].
    fn logits_each(
        &self,
        models: &[PromptModel<B>],
        split: SplitName,
        idx: &[usize],
    ) -> Vec<Tensor<B, 2>> {
        stacked_prompts(models)
            .and_then(|prompts| self.logits_stacked(prompts, models, split, idx))
            .unwrap_or_else(|| each_separately(self, models, split, idx))
    }

    /// [`Readout::logits_each`] in one pass, given the models' prompts stacked `[K, L, d]`;
    /// `None` where the readout cannot stack them.
    fn logits_stacked(
        &self,
        _prompts: Tensor<B, 3>,
        _models: &[PromptModel<B>],
        _split: SplitName,
        _idx: &[usize],
    ) -> Option<Vec<Tensor<B, 2>>> {
        None
    }

    /// How many examples one pass of [`Readout::evaluate_each_on`] scores under `k` prompts:
    /// by default [`Readout::eval_chunk`] sequences in all.
    fn eval_chunk_each(&self, k: usize) -> usize {
        self.eval_chunk().div_ceil(k.max(1)).max(1)
    }

    /// How many examples [`Readout::evaluate`] scores at once.
    fn eval_chunk(&self) -> usize {
        64
    }
}

/// Evaluates an autodiff readout on its inner backend, so that no autodiff graph is built.
pub fn evaluate_valid<B, R>(readout: &R, model: &PromptModel<B>, split: SplitName) -> Metrics
where
    B: AutodiffBackend,
    R: Readout<B> + AutodiffModule<B>,
    R::InnerModule: Readout<B::InnerBackend>,
{
    readout.valid().evaluate(&model.valid(), split)
}

/// Mean cross-entropy of logits `[n, C]` against labels.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: &[usize]) -> Tensor<B, 1> {
    let device = logits.device();
    let n = labels.len();
    let idx: Tensor<B, 2, Int> = Tensor::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n, 1]),
        &device,
    );
    log_softmax(logits, 1).gather(1, idx).mean().neg()
}

/// Mean cross-entropy and the argmax prediction of each example.
pub fn loss_and_predictions<B: Backend>(
    logits: Tensor<B, 2>,
    labels: &[usize],
) -> (f64, Vec<usize>) {
    let pred: Vec<usize> = logits
        .clone()
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.max(0) as usize)
        .collect();
    let loss = cross_entropy(logits, labels)
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap_or_default()
        .first()
        .copied()
        .unwrap_or(f64::NAN);
    (loss, pred)
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// The classic binary MCC, class 1 positive: `confusion = [[tn, fp], [fn, tp]]`.
    fn binary_mcc(c: [[usize; 2]; 2]) -> f64 {
        let [[tn, fp], [fn_, tp]] = c.map(|r| r.map(|x| x as f64));
        (tp * tn - fp * fn_) / ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt()
    }

    fn of(c: &[&[usize]]) -> Metrics {
        let c: Vec<Vec<usize>> = c.iter().map(|r| r.to_vec()).collect();
        Metrics::from_confusion(&c, 0.0)
    }

    #[test]
    fn perfect_predictions() {
        let m = Metrics::from_confusion(&[vec![3, 0, 0], vec![0, 2, 0], vec![0, 0, 4]], 4.5);
        assert_eq!(m.count, 9);
        assert!(close(m.loss, 0.5));
        assert!(
            close(m.accuracy, 1.0) && close(m.macro_f1, 1.0) && close(m.mcc, 1.0),
            "{m:?}"
        );
    }

    #[test]
    fn all_one_class_predictions() {
        // Everything predicted `0`: F1 of class 0 is 2·5/(5+10), class 1 has F1 0; MCC is
        // undefined (no variance in the predictions) and reads 0.
        let m = of(&[&[5, 0], &[5, 0]]);
        assert!(close(m.accuracy, 0.5));
        assert!(close(m.macro_f1, (10.0 / 15.0 + 0.0) / 2.0), "{m:?}");
        assert_eq!(m.mcc, 0.0);
        // Only class 0 present and predicted: class 1 is left out of the macro mean.
        let m = of(&[&[10, 0], &[0, 0]]);
        assert!(close(m.macro_f1, 1.0) && close(m.accuracy, 1.0));
        assert_eq!(m.mcc, 0.0);
    }

    #[test]
    fn no_examples_gives_zeros_not_nan() {
        let m = of(&[&[0, 0], &[0, 0]]);
        assert_eq!(
            (m.count, m.loss, m.accuracy, m.macro_f1, m.mcc),
            (0, 0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn sklearn_documented_macro_f1() {
        // scikit-learn's f1_score example: y_true = [0, 1, 2, 0, 1, 2],
        // y_pred = [0, 2, 1, 0, 0, 1] gives macro F1 0.2666… (F1 = 0.8, 0, 0).
        let m = of(&[&[2, 0, 0], &[1, 0, 1], &[0, 2, 0]]);
        assert!(close(m.macro_f1, 0.8 / 3.0), "{m:?}");
        assert!(close(m.accuracy, 2.0 / 6.0));
        // t = (2, 2, 2), p = (3, 2, 1): c·s − t·p = 2·6 − 12 = 0.
        assert!(close(m.mcc, 0.0), "{m:?}");
    }

    #[test]
    fn sklearn_documented_binary_mcc() {
        // scikit-learn's matthews_corrcoef example: y_true = [+1, +1, +1, -1],
        // y_pred = [+1, -1, +1, +1] gives -0.33…; classes in order (-1, +1).
        let m = of(&[&[0, 1], &[1, 2]]);
        assert!(close(m.mcc, -1.0 / 3.0), "{m:?}");
    }

    #[test]
    fn three_class_by_hand() {
        // n = 20, c = 15, row sums t = (6, 6, 8), column sums p = (7, 5, 8):
        // MCC = (c·n − t·p) / sqrt((n² − p·p)(n² − t·t)) = (300 − 136) / sqrt(262 · 264).
        let m = of(&[&[5, 1, 0], &[2, 3, 1], &[0, 1, 7]]);
        assert!(close(m.mcc, 164.0 / (262.0f64 * 264.0).sqrt()), "{m:?}");
        assert!((m.mcc - 0.623_578).abs() < 1e-6);
        // F1 = 2tp / (t + p) per class: 10/13, 6/11, 14/16.
        let f1 = (10.0 / 13.0 + 6.0 / 11.0 + 14.0 / 16.0) / 3.0;
        assert!(close(m.macro_f1, f1), "{m:?}");
        assert!(close(m.accuracy, 0.75));
    }

    #[test]
    fn binary_mcc_is_the_classic_formula() {
        for c in [
            [[50, 10], [5, 35]],
            [[1, 2], [3, 4]],
            [[90, 1], [30, 2]],
            [[7, 0], [1, 7]],
        ] {
            let m = of(&[&c[0], &c[1]]);
            assert!(
                close(m.mcc, binary_mcc(c)),
                "{c:?}: {} vs {}",
                m.mcc,
                binary_mcc(c)
            );
            // Symmetric in which class is called positive.
            let swapped = of(&[&[c[1][1], c[1][0]], &[c[0][1], c[0][0]]]);
            assert!(close(swapped.mcc, m.mcc));
        }
        assert!(close(of(&[&[0, 5], &[5, 0]]).mcc, -1.0));
    }
}
