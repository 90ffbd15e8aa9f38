//! The trainable part of a prompt-tuning model: the soft prompt and, for the input-head readout,
//! a linear head.

use burn::module::{Module, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;

use crate::prompt::SoftPrompt;

/// A trainable linear head `[d] -> [classes]`.
#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    /// Weight `[d, classes]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Bias `[classes]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Head<B> {
    /// Uniform(-1/√d, 1/√d) weights and zero bias, drawn from `rng`.
    pub fn init(d: usize, classes: usize, rng: &mut impl Rng, device: &B::Device) -> Self {
        let k = 1.0 / (d as f32).sqrt();
        let w: Vec<f32> = (0..d * classes).map(|_| rng.random_range(-k..k)).collect();
        Self {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d, classes]), device)),
            bias: Param::from_tensor(Tensor::zeros([classes], device)),
        }
    }

    /// `[n, d] -> [n, classes]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze()
    }
}

/// Everything gradient descent updates.
#[derive(Module, Debug)]
pub struct PromptModel<B: Backend> {
    /// The soft prompt.
    pub prompt: SoftPrompt<B>,
    /// The head, for readouts that have one.
    pub head: Option<Head<B>>,
}

impl<B: Backend> PromptModel<B> {
    /// A copy whose tensors are detached from any autodiff graph (for evaluation).
    pub fn detached(&self) -> Self {
        let head = self.head.as_ref().map(|h| Head {
            weight: frozen(h.weight.val()),
            bias: frozen(h.bias.val()),
        });
        Self {
            prompt: SoftPrompt {
                vectors: frozen(self.prompt.rows()),
            },
            head,
        }
    }
}

/// A parameter holding a detached tensor that does not require gradients.
fn frozen<B: Backend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), t.detach())
}

impl<B: Backend> PromptModel<B> {
    /// Ids of the rank-2 trainable tensors (prompt, head weight).
    pub fn param_ids_2d(&self) -> Vec<ParamId> {
        let mut ids = vec![self.prompt.vectors.id];
        if let Some(h) = &self.head {
            ids.push(h.weight.id);
        }
        ids
    }

    /// Ids of the rank-1 trainable tensors (head bias).
    pub fn param_ids_1d(&self) -> Vec<ParamId> {
        self.head.iter().map(|h| h.bias.id).collect()
    }
}
