//! A disk cache of frozen sentence embeddings, keyed by the backbone's weights, the maximum
//! length and every token id, so that a dataset is embedded once across runs.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use sha2::{Digest, Sha256};

use super::Backbone;

/// A folder of cached `[n, d]` f32 embedding matrices.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

const MAGIC: &[u8; 8] = b"TNDMEMB1";

impl EmbeddingCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(weights_sha: &str, max_len: usize, seqs: &[Vec<u32>]) -> String {
        let mut h = Sha256::new();
        h.update(weights_sha.as_bytes());
        h.update((max_len as u64).to_le_bytes());
        for s in seqs {
            h.update((s.len() as u64).to_le_bytes());
            for id in s {
                h.update(id.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// Mean-pooled embeddings of `seqs`, read from the cache or computed and stored. A cache
    /// file that is unreadable or of the wrong size is ignored and rewritten, never trusted.
    pub fn embed<B: Backend>(
        &self,
        backbone: &Backbone<B>,
        seqs: &[Vec<u32>],
        max_len: usize,
    ) -> Tensor<B, 2> {
        let d = backbone.encoder.hidden_size();
        let path = self.dir.join(format!(
            "{}.bin",
            Self::key(&backbone.weights_sha256, max_len, seqs)
        ));
        if let Some(values) = read(&path, seqs.len(), d) {
            return Tensor::from_data(TensorData::new(values, [seqs.len(), d]), &backbone.device());
        }
        let emb = backbone.embed(seqs, max_len, 64);
        if let Ok(values) = emb.to_data().convert::<f32>().into_vec::<f32>() {
            // A failed write only costs a recomputation next time.
            let _ = write(&self.dir, &path, seqs.len(), d, &values);
        }
        emb
    }
}

fn read(path: &Path, n: usize, d: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    let header = 8 + 16;
    if bytes.len() != header + n * d * 4 || &bytes[..8] != MAGIC {
        return None;
    }
    let rn = u64::from_le_bytes(bytes[8..16].try_into().ok()?) as usize;
    let rd = u64::from_le_bytes(bytes[16..24].try_into().ok()?) as usize;
    if (rn, rd) != (n, d) {
        return None;
    }
    Some(
        bytes[header..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

fn write(dir: &Path, path: &Path, n: usize, d: usize, values: &[f32]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = Vec::with_capacity(24 + values.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(n as u64).to_le_bytes());
    bytes.extend_from_slice(&(d as u64).to_le_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(tmp, path)
}
