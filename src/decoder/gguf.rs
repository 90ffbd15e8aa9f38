//! Reading a llama-architecture GGUF file through the `ggus` crate: the architecture, the
//! tokenizer's vocabulary and merges, the chat template, and tensors dequantized to f32 by
//! `ggml-quants`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ggus::ggml_quants::{QuantExt, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
use ggus::{GGmlType, GGuf, GGufMetaMapExt};

use super::config::LlamaConfig;
use crate::error::{Error, Result};

/// A GGUF file held in memory, its tensor directory read once.
pub struct GgufFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Name → (type, logical shape outermost first, byte range within `bytes`).
    tensors: HashMap<String, (GGmlType, Vec<usize>, std::ops::Range<usize>)>,
}

/// The tokenizer section of a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    /// Token strings, indexed by id (GPT-2 byte-level alphabet).
    pub tokens: Vec<String>,
    /// Token types (1 normal, 3 control, 4 user-defined, …), indexed by id.
    pub token_types: Vec<i32>,
    /// BPE merges, `"a b"`.
    pub merges: Vec<String>,
    /// The pre-tokenizer name (`tokenizer.ggml.pre`).
    pub pre: String,
    /// Beginning-of-sequence id.
    pub bos: u32,
    /// End-of-sequence id.
    pub eos: u32,
    /// Whether the model expects a BOS token before the prompt.
    pub add_bos: bool,
}

impl GgufFile {
    /// Reads a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        let mut file = Self {
            path: path.to_path_buf(),
            bytes,
            tensors: HashMap::new(),
        };
        let g = file.parse()?;
        // The tensor data section is the tail of the file.
        let base = file.bytes.len() - g.data.len();
        let mut tensors = HashMap::new();
        for (name, meta) in &g.tensors {
            let info = meta.to_info();
            let shape = info.shape().iter().rev().map(|&d| d as usize).collect();
            let start = base + info.offset();
            if start + info.nbytes() > file.bytes.len() {
                return Err(file.err(format!(
                    "truncated: tensor `{name}` ends past the end of the file"
                )));
            }
            tensors.insert(
                name.to_string(),
                (info.ty(), shape, start..start + info.nbytes()),
            );
        }
        file.tensors = tensors;
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self) -> Result<GGuf<'_>> {
        // ggus slices the tensor data without checking the file's length: a truncated file
        // panics inside it, which is caught and reported as what it is.
        let bytes: &[u8] = &self.bytes;
        match std::panic::catch_unwind(|| GGuf::new(bytes)) {
            Ok(parsed) => {
                parsed.map_err(|e| Error::model(&self.path, format!("not a GGUF v3 file: {e}")))
            }
            Err(_) => Err(Error::model(
                &self.path,
                format!(
                    "truncated or corrupt GGUF file ({} bytes): its tensor data runs past the end",
                    self.bytes.len()
                ),
            )),
        }
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::model(&self.path, reason)
    }

    fn usize_key(&self, g: &GGuf<'_>, key: &str) -> Result<usize> {
        g.get_usize(key)
            .map_err(|e| self.err(format!("metadata `{key}`: {e:?}")))
    }

    fn f32_key(&self, g: &GGuf<'_>, key: &str) -> Result<f32> {
        g.get_f32(key)
            .map_err(|e| self.err(format!("metadata `{key}`: {e:?}")))
    }

    /// The architecture, read from `llama.*` metadata; other architectures are refused.
    pub fn config(&self) -> Result<LlamaConfig> {
        let g = self.parse()?;
        let arch = g
            .get_str("general.architecture")
            .map_err(|e| self.err(format!("metadata `general.architecture`: {e:?}")))?;
        if arch != "llama" {
            return Err(self.err(format!(
                "architecture `{arch}` is not supported (only `llama`)"
            )));
        }
        let vocab_size = g
            .get_str_arr("tokenizer.ggml.tokens")
            .map_err(|e| self.err(format!("metadata `tokenizer.ggml.tokens`: {e:?}")))?
            .len();
        let config = LlamaConfig {
            vocab_size,
            hidden_size: self.usize_key(&g, "llama.embedding_length")?,
            num_layers: self.usize_key(&g, "llama.block_count")?,
            num_heads: self.usize_key(&g, "llama.attention.head_count")?,
            num_kv_heads: self.usize_key(&g, "llama.attention.head_count_kv")?,
            intermediate_size: self.usize_key(&g, "llama.feed_forward_length")?,
            max_position: self.usize_key(&g, "llama.context_length")?,
            rope_theta: self.f32_key(&g, "llama.rope.freq_base").unwrap_or(10_000.0),
            rms_eps: self.f32_key(&g, "llama.attention.layer_norm_rms_epsilon")?,
            tied_embeddings: !self.tensors.contains_key("output.weight"),
        };
        config.validate().map_err(|r| self.err(r))?;
        Ok(config)
    }

    /// The tokenizer section.
    pub fn vocab(&self) -> Result<GgufVocab> {
        let g = self.parse()?;
        let strings = |key: &str| -> Result<Vec<String>> {
            g.get_str_arr(key)
                .map_err(|e| self.err(format!("metadata `{key}`: {e:?}")))?
                .map(|s| {
                    s.map(str::to_string)
                        .map_err(|e| self.err(format!("metadata `{key}`: {e:?}")))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let token_types = match g.get_i32_arr("tokenizer.ggml.token_type") {
            Ok(arr) => arr
                .map(|t| {
                    t.map_err(|e| self.err(format!("metadata `tokenizer.ggml.token_type`: {e:?}")))
                })
                .collect::<Result<Vec<i32>>>()?,
            Err(_) => vec![1; tokens.len()],
        };
        if token_types.len() != tokens.len() {
            return Err(self.err(format!(
                "{} token types for {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }
        let model = g.get_str("tokenizer.ggml.model").unwrap_or("");
        if model != "gpt2" {
            return Err(self.err(format!(
                "tokenizer model `{model}` is not supported (only the byte-level BPE `gpt2`)"
            )));
        }
        let id = |key: &str| {
            g.get_u32(key)
                .map_err(|e| self.err(format!("metadata `{key}`: {e:?}")))
        };
        Ok(GgufVocab {
            pre: g
                .get_str("tokenizer.ggml.pre")
                .unwrap_or("default")
                .to_string(),
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            add_bos: g.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
            tokens,
            token_types,
            merges,
        })
    }

    /// The Jinja chat template stored with the model.
    pub fn chat_template(&self) -> Result<String> {
        let g = self.parse()?;
        g.get_str("tokenizer.chat_template")
            .map(str::to_string)
            .map_err(|e| self.err(format!("metadata `tokenizer.chat_template`: {e:?}")))
    }

    /// The stored bytes and type of tensor `name`, checked against the logical `shape`.
    pub fn raw_tensor(&self, name: &str, shape: &[usize]) -> Result<(GGmlType, &[u8])> {
        let (ty, logical, range) = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(format!("tensor `{name}` is missing")))?;
        if logical != shape {
            return Err(self.err(format!(
                "tensor `{name}` has shape {logical:?}, expected {shape:?}"
            )));
        }
        let bytes = self
            .bytes
            .get(range.clone())
            .ok_or_else(|| self.err(format!("tensor `{name}` runs past the end of the file")))?;
        Ok((*ty, bytes))
    }

    /// A tensor dequantized to f32, in row-major order of its logical shape (outermost first:
    /// the reverse of GGUF's `ne` order), checked against `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (ty, bytes) = self.raw_tensor(name, shape)?;
        let n: usize = shape.iter().product();
        let mut out = vec![0f32; n];
        let bad = |e| self.err(format!("tensor `{name}`: {e:?}"));
        match ty {
            GGmlType::F32 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            GGmlType::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            GGmlType::Q8_0 => {
                Q8_0::dequantize_slice(&mut out, &blocks::<Q8_0>(bytes)).map_err(bad)?
            }
            GGmlType::Q4_0 => {
                Q4_0::dequantize_slice(&mut out, &blocks::<Q4_0>(bytes)).map_err(bad)?
            }
            GGmlType::Q4_1 => {
                Q4_1::dequantize_slice(&mut out, &blocks::<Q4_1>(bytes)).map_err(bad)?
            }
            GGmlType::Q5_0 => {
                Q5_0::dequantize_slice(&mut out, &blocks::<Q5_0>(bytes)).map_err(bad)?
            }
            GGmlType::Q5_1 => {
                Q5_1::dequantize_slice(&mut out, &blocks::<Q5_1>(bytes)).map_err(bad)?
            }
            other => {
                return Err(self.err(format!(
                    "tensor `{name}` has type {other:?}, which tandem does not dequantize"
                )))
            }
        }
        Ok(out)
    }
}

/// Copies raw block bytes into properly aligned blocks (the file gives no alignment guarantee
/// for a `Vec<u8>`).
pub(crate) fn blocks<T: ggus::ggml_quants::DataBlock>(bytes: &[u8]) -> Vec<T> {
    let size = std::mem::size_of::<T>();
    let n = bytes.len() / size;
    let mut out: Vec<T> = (0..n).map(|_| T::ZEROS).collect();
    // SAFETY: every block type of ggml-quants is `repr(C)` plain old data whose every bit
    // pattern is valid, `out` has room for exactly `n * size` bytes, and the regions are disjoint.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), n * size);
    }
    out
}
