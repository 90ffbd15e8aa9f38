//! The burn MiniLM encoder against an independent NumPy reference computed from the same weights
//! (`tests/fixtures/minilm_numpy.py`), and tokenization against the reference tokenizer.

use serde::Deserialize;
use tandem::assets::MINILM;
use tandem::backbone::Backbone;

use crate::support;

#[derive(Deserialize)]
struct Reference {
    max_len: usize,
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string("tests/fixtures/minilm_reference.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rows(t: burn::tensor::Tensor<support::Cpu, 2>) -> Vec<Vec<f32>> {
    let [n, d] = t.dims();
    let v: Vec<f32> = t.into_data().convert::<f32>().into_vec().unwrap();
    (0..n).map(|i| v[i * d..(i + 1) * d].to_vec()).collect()
}

fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

#[test]
fn tokenizer_matches_reference_ids() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let r = reference();
    for (s, ids) in r.sentences.iter().zip(&r.token_ids) {
        let mut ours = vec![bb.tokenizer.cls()];
        ours.extend(bb.tokenizer.encode(s).into_iter().take(r.max_len - 2));
        ours.push(bb.tokenizer.sep());
        assert_eq!(&ours, ids, "token ids of {s:?}");
    }
}

#[test]
fn padded_batch_embeddings_match_numpy_reference() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let r = reference();
    assert!(r.sentences.len() >= 8);
    let seqs: Vec<Vec<u32>> = r.sentences.iter().map(|s| bb.tokenizer.encode(s)).collect();
    let lens: std::collections::BTreeSet<_> = seqs.iter().map(Vec::len).collect();
    assert!(
        lens.len() >= 6,
        "sentences of different lengths, so that padding is exercised"
    );
    // One chunk: every sentence but the longest is padded.
    let ours = rows(bb.embed(&seqs, r.max_len, 64));
    let mut worst: f64 = 0.0;
    for (i, (a, b)) in ours.iter().zip(&r.embeddings).enumerate() {
        let e = rel_err(a, b);
        worst = worst.max(e);
        assert!(
            e <= 1e-4,
            "sentence {i} ({:?}): relative error {e:e}",
            r.sentences[i]
        );
    }
    eprintln!("worst relative error vs NumPy reference: {worst:e}");
}

#[test]
fn padding_does_not_change_an_embedding() {
    let assets = support::assets(&[MINILM]);
    let bb = Backbone::<support::Cpu>::minilm(&assets, &Default::default()).unwrap();
    let r = reference();
    let seqs: Vec<Vec<u32>> = r.sentences.iter().map(|s| bb.tokenizer.encode(s)).collect();
    let batched = rows(bb.embed(&seqs, r.max_len, 64));
    for (i, s) in seqs.iter().enumerate() {
        let alone = rows(bb.embed(std::slice::from_ref(s), r.max_len, 1));
        let b64: Vec<f64> = batched[i].iter().map(|&x| x as f64).collect();
        let e = rel_err(&alone[0], &b64);
        assert!(e <= 1e-5, "sentence {i}: alone vs padded differ by {e:e}");
    }
}
