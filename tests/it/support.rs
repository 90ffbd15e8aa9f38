//! Helpers shared by the integration tests: the real asset cache, fetched once per process.

use std::sync::Mutex;

use tandem::assets::{AssetGroup, Assets};

static FETCH: Mutex<()> = Mutex::new(());

/// The asset cache (`$TANDEM_ASSETS` or `./assets`) with `groups` fetched and verified.
pub fn assets(groups: &[AssetGroup]) -> Assets {
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let assets = Assets::from_env();
    for g in groups {
        assets.ensure(g).expect("fetching test assets");
    }
    assets
}

/// The default wgpu device, once wgpu has found an adapter; otherwise the test fails with the
/// one-line reason and what to install (burn's runtime would panic deep inside cubecl).
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    if let Err(e) = tandem::backend::preflight(tandem::backend::BackendKind::Wgpu) {
        panic!("{e}");
    }
    Default::default()
}

/// The CPU backend without autodiff.
pub type Cpu = burn::backend::NdArray;
/// The CPU backend with autodiff.
pub type CpuAd = burn::backend::Autodiff<burn::backend::NdArray>;

/// A small real task for end-to-end runs: UCI IMDB, 4 shots per class, 30 selection and 40 test
/// examples, a 3-vector prompt, a trajectory point every step.
pub fn tiny_task(seed: u64) -> tandem::tune::TuneConfig {
    use tandem::data::SplitConfig;
    use tandem::gradient::GradientConfig;
    tandem::tune::TuneConfig {
        prompt_len: 3,
        init: tandem::prompt::PromptInit::Text("this review is".into()),
        seed,
        split: SplitConfig {
            max_test: 40,
            max_selection: 30,
            shots: Some(4),
            ..Default::default()
        },
        gradient: GradientConfig {
            batch_size: 4,
            record_every: 1,
            ..Default::default()
        },
        max_len: 40,
        ..tandem::task::lookup("uci-imdb").unwrap().tune_config()
    }
}

/// Reads one HTTP request from a loopback client: its head (request line and headers) and body.
pub fn read_request(stream: std::net::TcpStream) -> (String, Vec<u8>, std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Read};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok();
    let mut reader = BufReader::new(stream);
    let (mut head, mut len) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok();
    (head, body, reader.into_inner())
}

/// Eight hand-written movie-review snippets with their labels (0 negative, 1 positive).
pub const SNIPPETS: &[(&str, usize)] = &[
    ("a wonderful, moving film", 1),
    ("dull and lifeless", 0),
    ("the best movie of the year", 1),
    ("a waste of two hours", 0),
    ("sharp, funny and heartfelt", 1),
    ("tedious, predictable and badly acted", 0),
    ("a triumph", 1),
    ("i hated every minute", 0),
];

/// [`SNIPPETS`] as every split of a two-class dataset.
pub fn snippet_data(tokenizer: &tandem::backbone::BertTokenizer) -> tandem::readout::EncodedData {
    let split = tandem::readout::EncodedSplit {
        tokens: SNIPPETS.iter().map(|(t, _)| tokenizer.encode(t)).collect(),
        labels: SNIPPETS.iter().map(|(_, l)| *l).collect(),
    };
    tandem::readout::EncodedData {
        class_names: vec!["negative".into(), "positive".into()],
        train: split.clone(),
        selection: split.clone(),
        test: split,
    }
}

/// `k` prompt models around `model`: itself, then `k - 1` copies whose prompt rows (and head
/// weights) carry seeded Gaussian noise of standard deviation `noise`.
pub fn neighbours<B: burn::tensor::backend::Backend>(
    model: &tandem::readout::PromptModel<B>,
    k: usize,
    noise: f32,
) -> Vec<tandem::readout::PromptModel<B>> {
    use burn::tensor::Tensor;
    use rand::SeedableRng;
    use rand_distr::Distribution;
    fn jitter<B: burn::tensor::backend::Backend, const D: usize>(
        t: Tensor<B, D>,
        rng: &mut rand_chacha::ChaCha8Rng,
        noise: f32,
    ) -> Tensor<B, D> {
        let normal = rand_distr::Normal::new(0.0f32, noise).unwrap();
        let shape = t.shape();
        let values: Vec<f32> = (0..shape.num_elements())
            .map(|_| normal.sample(rng))
            .collect();
        let device = t.device();
        t + Tensor::from_data(burn::tensor::TensorData::new(values, shape), &device)
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut all = vec![model.detached()];
    for _ in 1..k {
        let mut m = model.detached();
        m.prompt =
            tandem::prompt::SoftPrompt::from_tensor(jitter(m.prompt.rows(), &mut rng, noise));
        if let Some(h) = m.head.as_mut() {
            h.weight = burn::module::Param::from_tensor(jitter(h.weight.val(), &mut rng, noise));
        }
        all.push(m);
    }
    all
}

/// Largest absolute difference of two equally long float vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Scoring `models` in one batched pass ([`Readout::logits_each`],
/// [`Readout::evaluate_each_on`]) gives what one pass per model gives: the same logits up to
/// float rounding, the same predictions and metrics; and distinct prompts give distinct
/// logits (the pass does not reuse one prompt's rows for another).
pub fn assert_batched_equals_separate<B, R>(
    readout: &R,
    models: &[tandem::readout::PromptModel<B>],
    split: tandem::readout::SplitName,
    idx: &[usize],
) where
    B: burn::tensor::backend::Backend,
    R: tandem::readout::Readout<B>,
{
    let separate: Vec<Vec<f32>> = models
        .iter()
        .map(|m| floats(readout.logits(m, split, idx)))
        .collect();
    let batched = readout.logits_each(models, split, idx);
    assert_eq!(batched.len(), models.len());
    for (k, (b, s)) in batched.into_iter().zip(&separate).enumerate() {
        let scale = s.iter().fold(1.0f32, |a, v| a.max(v.abs()));
        let diff = max_diff(&floats(b), s);
        assert!(
            diff <= 1e-4 * scale,
            "{split:?}: prompt {k}'s logits in the batched pass differ from its own pass by {diff}"
        );
    }
    for (k, w) in separate.windows(2).enumerate() {
        assert!(
            max_diff(&w[0], &w[1]) > 1e-4,
            "prompts {k} and {} score alike: the test cannot tell them apart",
            k + 1
        );
    }
    let each = readout.evaluate_each_on(models, split, idx);
    assert_eq!(each.len(), models.len());
    for (k, (b, m)) in each.iter().zip(models).enumerate() {
        let s = readout.evaluate_on(m, split, idx);
        assert_eq!(
            (b.count, b.accuracy, b.macro_f1, b.mcc),
            (s.count, s.accuracy, s.macro_f1, s.mcc),
            "{split:?}: prompt {k}"
        );
        assert!(
            (b.loss - s.loss).abs() < 1e-5,
            "{split:?}: prompt {k}: {b:?} vs {s:?}"
        );
    }
}

/// The host loss of `host` (the readout with its frozen model on the host) equals the loss
/// `generic` (the same readout without it) lets autodiff differentiate: the same value within
/// `loss_tol`, and through the surrogate the same gradient of every trainable tensor (prompt,
/// and the head's weight and bias where the model has one) within `grad_tol` of each tensor's
/// largest entry. The generic readout has no host loss.
pub fn assert_host_loss_equals_autodiff<B, R>(
    generic: &R,
    host: &R,
    model: &tandem::readout::PromptModel<B>,
    split: tandem::readout::SplitName,
    idx: &[usize],
    (loss_tol, grad_tol): (f64, f32),
) where
    B: burn::tensor::backend::AutodiffBackend,
    R: tandem::readout::Readout<B>,
{
    use burn::tensor::ElementConversion;
    let grads_of = |g: &B::Gradients| -> Vec<Vec<f32>> {
        let mut all = vec![floats(
            model.prompt.rows().grad(g).expect("a prompt gradient"),
        )];
        if let Some(h) = &model.head {
            all.push(floats(
                h.weight.val().grad(g).expect("a head weight gradient"),
            ));
            all.push(floats(h.bias.val().grad(g).expect("a head bias gradient")));
        }
        all
    };
    let loss = generic.loss(model, split, idx);
    let want_loss: f64 = loss.clone().into_scalar().elem();
    let want = grads_of(&loss.backward());
    assert!(generic.host_loss(model, split, idx).is_none());
    let got_loss = host
        .host_loss(model, split, idx)
        .expect("the host path applies");
    assert!(
        (got_loss.value - want_loss).abs() < loss_tol * want_loss.abs().max(1.0),
        "{split:?}: loss {} vs {want_loss}",
        got_loss.value
    );
    let got = grads_of(&got_loss.surrogate.backward());
    for (which, (got, want)) in ["prompt", "head weight", "head bias"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{split:?}: no {which} gradient");
        let worst = max_diff(got, want);
        assert!(
            worst < grad_tol * scale,
            "{split:?}: {which} gradients differ by {worst} (largest entry {scale})"
        );
    }
}

fn floats<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::Tensor<B, D>,
) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Rounding bound of an f32 network's outputs, from the standard error analysis of dot products
/// (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1): a sum of `k` products in
/// any order, any vector width and with or without fused multiply-adds carries a relative error
/// of at most γₖ = k·u / (1 − k·u), u = 2⁻²⁴, of the magnitudes summed. Through `layers` residual
/// layers whose longest dot product has length `k`, the errors add to first order, so an
/// output's deviation from exact arithmetic is at most `layers · γₖ` of `scale`, the magnitude
/// of the outputs it is read among (the largest logit of its row). It holds for the AVX2 and
/// the AVX-512 kernels alike, which only change the order and the width of the sums.
pub fn f32_network_bound(layers: usize, k: usize, scale: f64) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let gamma = k as f64 * u / (1.0 - k as f64 * u);
    layers as f64 * gamma * scale
}
