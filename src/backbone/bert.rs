//! A frozen BERT encoder (post-LN, exact GELU, absolute positions) in burn, loading HuggingFace
//! BERT tensor names from safetensors. All-MiniLM-L6-v2 is one instance.
//!
//! The weights are plain tensors, not [`burn::module::Param`]s: they never require gradients, so a
//! backward pass through the encoder computes only the gradients of its inputs (the soft prompt),
//! never weight gradients.

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Architecture of a BERT encoder (the fields of HuggingFace's `config.json` that matter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width d.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Number of learned absolute positions.
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// HuggingFace's architecture name; only `bert` is read (absent in some old files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Feed-forward activation; only GELU variants are implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Position encoding; only learned absolute positions are implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Reads a HuggingFace `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let cfg: BertConfig =
            serde_json::from_str(&text).map_err(|e| Error::model(path, format!("config: {e}")))?;
        cfg.validate().map_err(|r| Error::model(path, r))?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(t) = self.model_type.as_deref().filter(|t| *t != "bert") {
            return Err(format!(
                "model_type `{t}` is not supported: tandem reads BERT-family encoders with `model_type: bert` (BERT, MiniLM, BGE, E5 and other BERT checkpoints)"
            ));
        }
        if let Some(a) = self
            .hidden_act
            .as_deref()
            .filter(|a| !a.starts_with("gelu"))
        {
            return Err(format!("hidden_act `{a}` is not supported (GELU only)"));
        }
        if let Some(p) = self
            .position_embedding_type
            .as_deref()
            .filter(|p| *p != "absolute")
        {
            return Err(format!(
                "position_embedding_type `{p}` is not supported (absolute only)"
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// A BERT-base-sized architecture (768 wide, 12 layers, 12 heads, ff 3072), for benchmarks
    /// with random weights.
    pub fn base() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            model_type: Some("bert".into()),
            hidden_act: Some("gelu".into()),
            position_embedding_type: None,
        }
    }
}

#[derive(Module, Debug)]
struct LayerNorm<B: Backend> {
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let (var, mean) = x.clone().var_mean_bias(D - 1);
        let normed = (x - mean) / (var + self.eps).sqrt();
        normed * self.gamma.clone().unsqueeze() + self.beta.clone().unsqueeze()
    }
}

/// A dense layer with the weight stored transposed, `[in, out]`, ready for `x · W`.
#[derive(Module, Debug)]
struct Dense<B: Backend> {
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
}

impl<B: Backend> Dense<B> {
    /// `x: [n, in] -> [n, out]`.
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.clone()) + self.bias.clone().unsqueeze()
    }
}

#[derive(Module, Debug)]
struct Layer<B: Backend> {
    /// Query, key and value fused: `[d, 3d]`.
    qkv: Dense<B>,
    attn_out: Dense<B>,
    ln_attn: LayerNorm<B>,
    ff_in: Dense<B>,
    ff_out: Dense<B>,
    ln_ff: LayerNorm<B>,
}

/// The frozen encoder. Its weights are constant tensors of the module (no `Param`s), so
/// `valid()` gives the same encoder on the inner backend and optimizers never see them.
#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    #[module(skip)]
    config: BertConfig,
    word_embeddings: Tensor<B, 2>,
    /// Position embeddings plus the type-0 embedding, `[max_pos, d]` (segment ids are always 0).
    position_type: Tensor<B, 2>,
    ln_embed: LayerNorm<B>,
    layers: Vec<Layer<B>>,
}

/// Reads named f32 tensors from a safetensors file.
struct SafeTensors<'a> {
    path: &'a Path,
    inner: safetensors::SafeTensors<'a>,
    /// `bert.` when the encoder was saved inside a task model (`BertForSequenceClassification`).
    prefix: &'static str,
}

impl SafeTensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<(Vec<f32>, Vec<usize>)> {
        let full = format!("{}{name}", self.prefix);
        let name = full.as_str();
        let view = self
            .inner
            .tensor(name)
            .map_err(|e| Error::model(self.path, format!("tensor `{name}`: {e}")))?;
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::model(
                    self.path,
                    format!("tensor `{name}` is {other:?}, expected F32, F16 or BF16"),
                ))
            }
        };
        if view.shape() != shape {
            return Err(Error::model(
                self.path,
                format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    view.shape()
                ),
            ));
        }
        Ok((data, shape.to_vec()))
    }
}

/// The named tensors of a checkpoint, read as the parts of an encoder of `config`.
struct Weights<'a, B: Backend> {
    st: &'a SafeTensors<'a>,
    config: &'a BertConfig,
    device: &'a B::Device,
}

impl<B: Backend> Weights<'_, B> {
    fn layer_norm(&self, prefix: &str) -> Result<LayerNorm<B>> {
        let d = self.config.hidden_size;
        Ok(LayerNorm {
            gamma: tensor(self.st.get(&format!("{prefix}.weight"), &[d])?, self.device),
            beta: tensor(self.st.get(&format!("{prefix}.bias"), &[d])?, self.device),
            eps: self.config.layer_norm_eps,
        })
    }

    /// A linear layer; HF stores its weight as `[out, in]`, transposed once here.
    fn dense(&self, prefix: &str, out: usize, inp: usize) -> Result<Dense<B>> {
        let (w, _) = self.st.get(&format!("{prefix}.weight"), &[out, inp])?;
        Ok(Dense {
            weight: tensor::<B, 2>((transpose(&w, out, inp), vec![inp, out]), self.device),
            bias: tensor(self.st.get(&format!("{prefix}.bias"), &[out])?, self.device),
        })
    }

    /// Encoder layer `i` (`encoder.layer.i.*`), query, key and value fused.
    fn layer(&self, i: usize) -> Result<Layer<B>> {
        let (d, ff) = (self.config.hidden_size, self.config.intermediate_size);
        let p = format!("encoder.layer.{i}");
        let q = self.dense(&format!("{p}.attention.self.query"), d, d)?;
        let k = self.dense(&format!("{p}.attention.self.key"), d, d)?;
        let v = self.dense(&format!("{p}.attention.self.value"), d, d)?;
        Ok(Layer {
            qkv: Dense {
                weight: Tensor::cat(vec![q.weight, k.weight, v.weight], 1),
                bias: Tensor::cat(vec![q.bias, k.bias, v.bias], 0),
            },
            attn_out: self.dense(&format!("{p}.attention.output.dense"), d, d)?,
            ln_attn: self.layer_norm(&format!("{p}.attention.output.LayerNorm"))?,
            ff_in: self.dense(&format!("{p}.intermediate.dense"), ff, d)?,
            ff_out: self.dense(&format!("{p}.output.dense"), d, ff)?,
            ln_ff: self.layer_norm(&format!("{p}.output.LayerNorm"))?,
        })
    }
}

fn tensor<B: Backend, const D: usize>(
    (data, shape): (Vec<f32>, Vec<usize>),
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

impl<B: Backend> BertEncoder<B> {
    /// Loads HuggingFace BERT weights (`embeddings.*`, `encoder.layer.N.*`) from safetensors.
    pub fn from_safetensors(path: &Path, config: BertConfig, device: &B::Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        let inner = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::model(path, format!("not a safetensors file: {e}")))?;
        let prefix = if inner
            .tensor("bert.embeddings.word_embeddings.weight")
            .is_ok()
        {
            "bert."
        } else {
            ""
        };
        let st = SafeTensors {
            path,
            inner,
            prefix,
        };
        let d = config.hidden_size;
        let word_embeddings = tensor(
            st.get("embeddings.word_embeddings.weight", &[config.vocab_size, d])?,
            device,
        );
        let pos: Tensor<B, 2> = tensor(
            st.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, d],
            )?,
            device,
        );
        let types: Tensor<B, 2> = tensor(
            st.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, d],
            )?,
            device,
        );
        let weights = Weights {
            st: &st,
            config: &config,
            device,
        };
        let ln_embed = weights.layer_norm("embeddings.LayerNorm")?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| weights.layer(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            word_embeddings,
            position_type: pos + types.slice([0..1, 0..d]),
            ln_embed,
            layers,
        })
    }

    /// An encoder with random weights (N(0, 0.02), unit layer norms), for benchmarks of larger sizes.
    pub fn random(config: BertConfig, device: &B::Device) -> Self {
        Self::random_with_std(config, 0.02, device)
    }

    /// An encoder with N(0, `std`) weights and unit layer norms (a large `std` makes every
    /// part of the computation matter, for tests).
    pub fn random_with_std(config: BertConfig, std: f64, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let ff = config.intermediate_size;
        let normal = Distribution::Normal(0.0, std);
        let ln = || LayerNorm {
            gamma: Tensor::ones([d], device),
            beta: Tensor::zeros([d], device),
            eps: config.layer_norm_eps,
        };
        let dense = |inp: usize, out: usize| Dense {
            weight: Tensor::random([inp, out], normal, device),
            bias: Tensor::zeros([out], device),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| Layer {
                qkv: dense(d, 3 * d),
                attn_out: dense(d, d),
                ln_attn: ln(),
                ff_in: dense(d, ff),
                ff_out: dense(ff, d),
                ln_ff: ln(),
            })
            .collect();
        Self {
            word_embeddings: Tensor::random([config.vocab_size, d], normal, device),
            position_type: Tensor::random([config.max_position_embeddings, d], normal, device),
            ln_embed: ln(),
            layers,
            config,
        }
    }

    /// The architecture.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Hidden width d.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The word-embedding table `[vocab, d]` (the space soft prompts live in).
    pub fn word_embeddings(&self) -> Tensor<B, 2> {
        self.word_embeddings.clone()
    }

    /// Looks up word embeddings: `ids: [batch, len] -> [batch, len, d]`.
    pub fn embed_tokens(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        self.word_embeddings
            .clone()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, self.config.hidden_size])
    }

    /// Runs the encoder on word-level input embeddings (`[batch, len, d]`, e.g. soft prompt rows
    /// spliced between token embeddings); `mask: [batch, len]` is 1 for real positions, 0 for
    /// padding. Returns the last hidden states `[batch, len, d]`.
    pub fn forward_embeds(&self, inputs: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 3> {
        let [b, t, d] = inputs.dims();
        let h = self.config.num_attention_heads;
        let dh = d / h;
        let pos = self
            .position_type
            .clone()
            .slice([0..t, 0..d])
            .unsqueeze::<3>();
        let x = self.ln_embed.forward(inputs + pos);
        // Additive key mask [b, 1, 1, t]: 0 where attended, -1e4·(1-mask) elsewhere (as HF BERT,
        // which uses the dtype's minimum; any large negative gives the same softmax in f32).
        let key_bias = (mask.ones_like() - mask)
            .mul_scalar(-1e4)
            .reshape([b, 1, 1, t]);
        let scale = 1.0 / (dh as f64).sqrt();
        let mut x = x.reshape([b * t, d]);
        for layer in &self.layers {
            let qkv = layer.qkv.forward(x.clone()).reshape([b, t, 3, h, dh]);
            let heads = |i: usize| {
                qkv.clone()
                    .slice([0..b, 0..t, i..i + 1, 0..h, 0..dh])
                    .reshape([b, t, h, dh])
                    .swap_dims(1, 2)
            };
            let (q, k, v) = (heads(0), heads(1), heads(2));
            let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + key_bias.clone();
            let ctx = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b * t, d]);
            let x1 = layer.ln_attn.forward(layer.attn_out.forward(ctx) + x);
            let ff = layer
                .ff_out
                .forward(exact_gelu(layer.ff_in.forward(x1.clone())));
            x = layer.ln_ff.forward(ff + x1);
        }
        x.reshape([b, t, d])
    }

    /// Mean of the hidden states over real positions: `[batch, len, d], [batch, len] -> [batch, d]`.
    pub fn mean_pool(hidden: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = mask.unsqueeze_dim::<3>(2);
        let summed = (hidden * m.clone()).sum_dim(1).squeeze_dim::<2>(1);
        let counts = m.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
        summed / counts
    }

    /// Every weight tensor as stored (the same autodiff nodes the forward pass reads), for
    /// checks that the encoder stays frozen: the matrices, then the vectors (biases, norms).
    pub fn weights(&self) -> (Vec<Tensor<B, 2>>, Vec<Tensor<B, 1>>) {
        let mut matrices = vec![self.word_embeddings.clone(), self.position_type.clone()];
        let mut vectors = vec![self.ln_embed.gamma.clone(), self.ln_embed.beta.clone()];
        for l in &self.layers {
            for dense in [&l.qkv, &l.attn_out, &l.ff_in, &l.ff_out] {
                matrices.push(dense.weight.clone());
                vectors.push(dense.bias.clone());
            }
            for ln in [&l.ln_attn, &l.ln_ff] {
                vectors.extend([ln.gamma.clone(), ln.beta.clone()]);
            }
        }
        (matrices, vectors)
    }
}

/// GELU in its exact (erf) form, forward and backward. burn-flex computes both in one pass each
/// (its `gelu_backward` is the erf form's derivative), so on flex this is burn's `gelu`. Elsewhere
/// burn 0.21's `gelu` computes the erf form forward but its backward is the derivative of the
/// tanh approximation, so the function is built from primitive ops (the same op sequence as
/// burn's forward) that autodiff differentiates exactly.
fn exact_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if has_exact_fused_gelu::<B>(&x.device()) {
        return burn::tensor::activation::gelu(x);
    }
    let cdf = x
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0);
    (x * cdf).div_scalar(2.0)
}

/// Whether `B` is burn-flex, on its own or under autodiff (`flex`, `autodiff<flex>`).
fn has_exact_fused_gelu<B: Backend>(device: &B::Device) -> bool {
    let name = B::name(device);
    name == "flex" || name == "autodiff<flex>"
}

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    #[test]
    fn gelu_gradient_is_the_exact_derivative() {
        gelu_gradient_is_exact::<Autodiff<NdArray>>();
        gelu_gradient_is_exact::<Autodiff<burn::backend::Flex>>();
        assert!(has_exact_fused_gelu::<Autodiff<burn::backend::Flex>>(
            &Default::default()
        ));
        assert!(!has_exact_fused_gelu::<Autodiff<NdArray>>(
            &Default::default()
        ));
    }

    fn gelu_gradient_is_exact<B: burn::tensor::backend::AutodiffBackend>() {
        let xs: Vec<f32> = vec![-3.0, -1.5, -0.7, 0.0, 0.4, 1.0, 2.5];
        let x =
            Tensor::<B, 1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &Default::default())
                .require_grad();
        let grads = exact_gelu(x.clone()).sum().backward();
        let g: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap();
        for (xi, gi) in xs.iter().zip(&g) {
            let xi = *xi as f64;
            let pdf = (-xi * xi / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let cdf = 0.5 * (1.0 + erf(xi / std::f64::consts::SQRT_2));
            let exact = cdf + xi * pdf;
            assert!((*gi as f64 - exact).abs() < 1e-5, "x={xi}: {gi} vs {exact}");
        }
    }

    /// erf by its Maclaurin series (converges fast for |x| ≤ 3), independent of burn's.
    fn erf(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }
}
