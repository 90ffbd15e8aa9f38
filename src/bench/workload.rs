//! Benchmark workloads: each is prepared once (weights loaded, data encoded, caches built) and
//! then runs one iteration per call, with the device synchronised before it returns.

use std::sync::Arc;

use burn::module::Param;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::gemm::{gemm_workload, GemmShape};
use super::scoring::{scoring, Scoring, ScoringReadout, SCREEN_EXAMPLES, SCREEN_PROMPTS};
use crate::assets::{Assets, MINILM, SMOLLM2};
use crate::backbone::{
    Backbone, BertConfig, BertEncoder, BertTokenizer, FrozenEncoder, Vocabulary,
};
use crate::backend::BackendKind;
use crate::decoder::{argmax, ChatLlm};
use crate::error::{Error, Result};
use crate::gradient::{GradientConfig, GradientStage, LrSchedule};
use crate::mentor::{Message, MetaPromptContext, MetaPromptTemplate, ScoredPrompt};
use crate::prompt::{Metric, Projector, PromptInit, SoftPrompt};
use crate::readout::{
    ClassPromptReadout, EncodedData, EncodedSplit, Head, InputHeadReadout, PromptModel, Readout,
};

/// The frozen encoder a gradient-step workload runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchModel {
    /// all-MiniLM-L6-v2 (384 wide, 6 layers), its real weights; batch 32, 30 text tokens,
    /// 8 prompt vectors (the shapes of `benches/peers/grad_step_peer.py`).
    MiniLm,
    /// A BERT-base-sized encoder (768 wide, 12 layers, 12 heads, ff 3072) with seeded random
    /// weights; batch 32, 128 text tokens, 16 prompt vectors.
    BertBase,
}

impl BenchModel {
    /// Name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            BenchModel::MiniLm => "minilm",
            BenchModel::BertBase => "bert_base",
        }
    }

    /// (batch, text tokens, prompt vectors).
    pub fn shape(self) -> (usize, usize, usize) {
        match self {
            BenchModel::MiniLm => (32, 30, 8),
            BenchModel::BertBase => (32, 128, 16),
        }
    }
}

/// The readout of a gradient-step workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchReadout {
    /// Class prompts against cached frozen sample embeddings (on a CPU backend through the
    /// host encoder, as a run there).
    ClassPrompt,
    /// The same step through burn's generic path (the host encoder off): the reference the
    /// host path is timed against.
    ClassPromptGeneric,
    /// Prompt spliced before the text, mean pool, linear head (on a CPU backend through the
    /// host encoder, as a run there).
    InputHead,
    /// The same step through burn's generic path: the reference the host path is timed
    /// against.
    InputHeadGeneric,
}

impl BenchReadout {
    /// Name used in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            BenchReadout::ClassPrompt => "class_prompt",
            BenchReadout::ClassPromptGeneric => "class_prompt_generic",
            BenchReadout::InputHead => "input_head",
            BenchReadout::InputHeadGeneric => "input_head_generic",
        }
    }

    /// Whether the step runs on the host encoder (on a CPU backend).
    fn on_host(self, cpu: bool) -> bool {
        cpu && matches!(self, BenchReadout::ClassPrompt | BenchReadout::InputHead)
    }
}

/// What one benchmark iteration does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One optimizer step: forward, input-only backward through the frozen encoder, clipping,
    /// AdamW on the prompt (and head).
    GradStep(BenchReadout, BenchModel),
    /// One optimizer step of a 4-vector prompt through the frozen SmolLM2-135M decoder with the
    /// verbalizer readout (`mr`, 8 examples of at most 40 tokens, prompt ⊕ text ⊕ cue): on CPU
    /// backends through the host decoder (the engine's path), or through burn's generic path
    /// (`generic`, the reference, as on GPU backends).
    DecoderStep {
        /// burn's decoder and autodiff even on CPU backends.
        generic: bool,
    },
    /// Projection of an 8-vector prompt onto MiniLM's 30,522-token vocabulary (L2, top-3).
    Projection,
    /// 32 greedy tokens of the embedded SmolLM2-135M after a fixed chat prompt.
    MentorDecode,
    /// Rendering the catalyst meta-prompt with an 8-prompt history.
    TemplateRender,
    /// One whole catalyst round on UCI IMDB (16 shots, 100 selection examples): loading the
    /// task, a 10-step gradient stage, scoring 2 projected texts, a 48-token mentor reply from
    /// the embedded SmolLM2, scoring its candidates, the restart.
    CatalystRound,
    /// The probe screen's scoring: 16 text prompts on 100 selection examples of `mr`, batched
    /// or one pass each ([`super::scoring`]).
    Scoring(ScoringReadout, Scoring),
    /// One matrix product of the encoders' linears through the `gemm` crate
    /// ([`super::gemm`]); only when asked for (`--only gemm`), not in [`Workload::all`].
    Gemm(GemmShape),
}

impl Workload {
    /// Every workload, in report order.
    pub fn all() -> Vec<Workload> {
        let mut all = Vec::new();
        for model in [BenchModel::MiniLm, BenchModel::BertBase] {
            for readout in [
                BenchReadout::ClassPrompt,
                BenchReadout::ClassPromptGeneric,
                BenchReadout::InputHead,
                BenchReadout::InputHeadGeneric,
            ] {
                all.push(Workload::GradStep(readout, model));
            }
        }
        all.extend([
            Workload::DecoderStep { generic: false },
            Workload::DecoderStep { generic: true },
            Workload::Projection,
            Workload::MentorDecode,
            Workload::TemplateRender,
            Workload::CatalystRound,
        ]);
        for readout in [
            ScoringReadout::ClassPrompt,
            ScoringReadout::InputHead,
            ScoringReadout::Verbalizer,
        ] {
            for scoring in [Scoring::Batched, Scoring::Separate] {
                all.push(Workload::Scoring(readout, scoring));
            }
        }
        all
    }

    /// Bench id without the backend: `grad_step/input_head/bert_base/b32`.
    pub fn id(self) -> String {
        match self {
            Workload::GradStep(r, m) => {
                format!("grad_step/{}/{}/b{}", r.name(), m.name(), m.shape().0)
            }
            Workload::DecoderStep { generic } => format!(
                "grad_step/verbalizer{}/smollm2/b{DECODER_BATCH}",
                if generic { "_generic" } else { "" }
            ),
            Workload::Projection => "projection/minilm_vocab/l8".into(),
            Workload::MentorDecode => "mentor_decode/smollm2/t32".into(),
            Workload::TemplateRender => "template_render/catalyst/h8".into(),
            Workload::CatalystRound => "catalyst_round/uci_imdb/s10".into(),
            Workload::Gemm(shape) => shape.id(),
            Workload::Scoring(r, s) => format!(
                "screen/{}/k{SCREEN_PROMPTS}_n{SCREEN_EXAMPLES}/{}",
                r.name(),
                s.name()
            ),
        }
    }

    /// Parses an id prefix (`grad_step`, `grad_step/input_head`, `projection`, `gemm`, …);
    /// `all` is every workload of [`Workload::all`].
    pub fn select(filter: &str) -> Result<Vec<Workload>> {
        let chosen: Vec<Workload> = if filter == "all" {
            Workload::all()
        } else {
            let kernels = GemmShape::all().into_iter().map(Workload::Gemm);
            (Workload::all().into_iter().chain(kernels))
                .filter(|w| w.id().starts_with(filter))
                .collect()
        };
        if chosen.is_empty() {
            let ids: Vec<String> = Workload::all().iter().map(|w| w.id()).collect();
            return Err(Error::config(
                format!("bench `{filter}`"),
                format!("matches no workload; ids: {}", ids.join(", ")),
            ));
        }
        Ok(chosen)
    }

    /// Items one iteration processes (samples, tokens, renders): the throughput unit.
    pub fn items(self) -> (usize, &'static str) {
        match self {
            Workload::GradStep(_, m) => (m.shape().0, "samples"),
            Workload::DecoderStep { .. } => (DECODER_BATCH, "samples"),
            Workload::Projection => (8, "vectors"),
            Workload::MentorDecode => (32, "tokens"),
            Workload::TemplateRender => (1, "renders"),
            Workload::CatalystRound => (1, "rounds"),
            Workload::Scoring(..) => (SCREEN_PROMPTS, "prompts"),
            Workload::Gemm(shape) => (shape.mflop(), "MFLOP"),
        }
    }
}

/// A prepared workload: call [`Prepared::iterate`] for one synchronised iteration.
pub struct Prepared<'a> {
    step: Box<dyn FnMut() -> Result<Option<f64>> + 'a>,
}

impl<'a> Prepared<'a> {
    /// A workload whose iteration is `step`.
    pub(super) fn new(step: impl FnMut() -> Result<Option<f64>> + 'a) -> Self {
        Self {
            step: Box::new(step),
        }
    }

    /// Runs one iteration; the device is synchronised before it returns. Gradient steps return
    /// their training loss (to compare with a peer running the same weights).
    pub fn iterate(&mut self) -> Result<Option<f64>> {
        (self.step)()
    }
}

/// Deterministic regular-vocabulary ids (`[1996, 29612)` are ordinary WordPiece tokens of the
/// uncased BERT vocabulary), identical in the PyTorch peer.
pub fn synthetic_tokens(batch: usize, tokens: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|i| {
            (0..tokens)
                .map(|j| 1996 + ((i * 7919 + j * 104_729) % 27_616) as u32)
                .collect()
        })
        .collect()
}

/// The input head a gradient-step workload starts from, identical in the PyTorch peer (its
/// `bench_head`): a fixed pattern of small weights, zero bias, so that the first losses of the
/// two sides can be compared.
fn bench_head<B: Backend>(d: usize, classes: usize, device: &B::Device) -> Head<B> {
    let w: Vec<f32> = (0..d * classes)
        .map(|i| {
            let (j, c) = (i / classes, i % classes);
            0.05 * (((j * 31 + c * 17) % 101) as f32 / 50.0 - 1.0)
        })
        .collect();
    Head {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d, classes]), device)),
        bias: Param::from_tensor(Tensor::zeros([classes], device)),
    }
}

fn synthetic_data(batch: usize, tokens: usize) -> EncodedData {
    let split = EncodedSplit {
        tokens: synthetic_tokens(batch, tokens),
        labels: (0..batch).map(|i| i % 2).collect(),
    };
    EncodedData {
        class_names: vec!["negative".into(), "positive".into()],
        train: split.clone(),
        selection: split.clone(),
        test: split,
    }
}

/// Environment variable naming a safetensors file of BERT-base-sized weights (HF names) for the
/// `bert_base` workloads, e.g. the ones `benches/peers/grad_step_peer.py --save-weights` writes,
/// so that tandem and the PyTorch peer run the very same tensors.
pub const BERT_BASE_WEIGHTS_ENV: &str = "TANDEM_BENCH_BERT_BASE";

/// The encoder of a workload: MiniLM's real weights, or BERT-base-sized ones (from
/// [`BERT_BASE_WEIGHTS_ENV`] when set, else seeded random on the device), with MiniLM's
/// tokenizer, whose vocabulary has BERT's 30,522 tokens.
pub fn bench_backbone<B: AutodiffBackend>(
    model: BenchModel,
    assets: &Assets,
    device: &B::Device,
) -> Result<Backbone<B>> {
    match model {
        BenchModel::MiniLm => Backbone::minilm(assets, device),
        BenchModel::BertBase => {
            let tokenizer =
                BertTokenizer::from_file(&assets.require(&MINILM, "minilm/tokenizer.json")?)?;
            let (encoder, source) = match std::env::var_os(BERT_BASE_WEIGHTS_ENV) {
                Some(path) => {
                    let path = std::path::PathBuf::from(path);
                    let encoder = BertEncoder::from_safetensors(&path, BertConfig::base(), device)?;
                    (encoder, path.display().to_string())
                }
                None => {
                    B::seed(device, 0);
                    let encoder = BertEncoder::random(BertConfig::base(), device);
                    (encoder, "random:seed0".to_string())
                }
            };
            Ok(Backbone {
                encoder,
                tokenizer,
                weights_sha256: source,
            })
        }
    }
}

/// Prepares a workload on backend `B`, of kind `backend` (the autodiff backend for gradient
/// steps; inference runs on its inner backend). CPU backends take the host paths the engine
/// takes there (quantized host decoding, the host encoder and decoder).
pub fn prepare<'a, B: AutodiffBackend>(
    workload: Workload,
    assets: &'a Assets,
    device: &'a B::Device,
    backend: BackendKind,
) -> Result<Prepared<'a>> {
    let quantized_decode = backend.is_cpu();
    match workload {
        Workload::GradStep(readout, model) => {
            grad_step::<B>(readout, model, assets, device, quantized_decode)
        }
        Workload::DecoderStep { generic } => decoder_step::<B>(assets, device, backend, generic),
        Workload::Projection => {
            let backbone = Backbone::<B::InnerBackend>::minilm(assets, device)?;
            let projector = Projector::new(&backbone.encoder, &backbone.tokenizer, Metric::L2);
            let rows: Tensor<B::InnerBackend, 2> = Tensor::random(
                [8, backbone.encoder.hidden_size()],
                burn::tensor::Distribution::Normal(0.0, 0.05),
                device,
            );
            Ok(Prepared {
                step: Box::new(move || {
                    // The projection reads its result back to the host: a synchronisation.
                    let p = projector.project(rows.clone(), 3);
                    std::hint::black_box(p.nearest());
                    Ok(None)
                }),
            })
        }
        Workload::MentorDecode => {
            assets.ensure(&SMOLLM2)?;
            let path = assets.path(&SMOLLM2.files[0]);
            let llm = ChatLlm::<B::InnerBackend>::load_with(&path, device, quantized_decode)?;
            let prompt = llm.prompt_ids(&[Message::user("Write a short poem about the sea.")])?;
            Ok(Prepared {
                step: Box::new(move || {
                    let (logits, mut state) = llm.start(&prompt)?;
                    let mut token = argmax(&logits);
                    // Logits come back to the host every token: each step is synchronised.
                    for _ in 0..32 {
                        token = argmax(&llm.next(token, &mut state)?);
                    }
                    std::hint::black_box(token);
                    Ok(None)
                }),
            })
        }
        Workload::CatalystRound => catalyst_round::<B>(assets, device, backend),
        Workload::Scoring(readout, how) => scoring::<B>(readout, how, assets, device),
        Workload::Gemm(shape) => gemm_workload(shape),
        Workload::TemplateRender => {
            let template = MetaPromptTemplate::builtin("catalyst")?;
            let history = (0..8)
                .map(|i| ScoredPrompt {
                    text: format!("prompt number {i} about movie reviews"),
                    loss: 0.7 - i as f64 * 0.05,
                    accuracy: 0.5 + i as f64 * 0.03,
                })
                .collect();
            let context = MetaPromptContext::new("sentiment of movie reviews", history, 3, 12);
            Ok(Prepared {
                step: Box::new(move || {
                    std::hint::black_box(template.render(&context)?);
                    Ok(None)
                }),
            })
        }
    }
}

fn catalyst_round<'a, B: AutodiffBackend>(
    assets: &'a Assets,
    device: &'a B::Device,
    backend: BackendKind,
) -> Result<Prepared<'a>> {
    use crate::engine::{run_schedule, RunConfig, RunIo, Schedule};
    use crate::mentor::LocalMentor;
    assets.ensure(&SMOLLM2)?;
    let llm = ChatLlm::<B::InnerBackend>::load_with(
        &assets.path(&SMOLLM2.files[0]),
        device,
        backend.is_cpu(),
    )?;
    let mut mentor = LocalMentor::new(llm);
    let mut schedule = Schedule::builtin("catalyst")?;
    schedule.rounds = 1;
    schedule.steps_per_round = 10;
    schedule.final_steps = 0;
    if let Some(m) = schedule.mentor.as_mut() {
        m.sample = 2;
        m.sampling.max_tokens = 48;
    }
    let mut task = crate::task::lookup("uci-imdb")?.tune_config();
    task.backend = backend;
    task.split.max_test = 100;
    task.split.max_selection = 100;
    task.gradient.batch_size = 16;
    let config = RunConfig { task, schedule };
    let progress = indicatif::ProgressBar::hidden();
    Ok(Prepared {
        step: Box::new(move || {
            let io = RunIo {
                mentor: Some(&mut mentor),
                progress: progress.clone(),
                ..RunIo::default()
            };
            run_schedule::<B>(&config, assets, device, io)?;
            Ok(None)
        }),
    })
}

/// Examples in one decoder gradient step.
const DECODER_BATCH: usize = 8;

/// Environment variable naming a JSON file that the decoder step's set-up writes its batch to
/// ([`DecoderBatch`]), for the PyTorch peer (`benches/peers/grad_step_peer.py --model smollm2`).
pub const DECODER_BATCH_ENV: &str = "TANDEM_BENCH_DECODER_BATCH";

/// What the decoder step computes, for a peer to compute the same: the initial prompt rows,
/// each example's tokens after the prompt (input ⊕ cue), the class words' tokens, the labels
/// and the optimizer's settings. The weights are the GGUF's, dequantized.
#[derive(serde::Serialize)]
struct DecoderBatch {
    /// `[L, d]`, row-major.
    prompt: Vec<f32>,
    prompt_len: usize,
    tails: Vec<Vec<u32>>,
    verbalizers: Vec<u32>,
    labels: Vec<usize>,
    lr: f64,
    betas: [f32; 2],
    eps: f32,
    weight_decay: f32,
    grad_clip: Option<f32>,
}

impl DecoderBatch {
    fn of<B: AutodiffBackend>(
        readout: &crate::readout::VerbalizerReadout<B>,
        model: &PromptModel<B>,
        idx: &[usize],
        config: &GradientConfig,
    ) -> Self {
        let rows = model.prompt.rows();
        let [prompt_len, _] = rows.dims();
        Self {
            prompt: rows.into_data().iter::<f32>().collect(),
            prompt_len,
            tails: readout.tails(crate::readout::SplitName::Train, idx),
            verbalizers: readout.verbalizers().to_vec(),
            labels: readout.data().train.labels_of(idx),
            lr: config.lr,
            betas: [config.beta1, config.beta2],
            eps: config.eps,
            weight_decay: config.weight_decay,
            grad_clip: config.grad_clip,
        }
    }

    fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = serde_json::to_string(self)
            .map_err(|e| Error::config("decoder batch", e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))
    }
}

/// The engine's own set-up of `mr` on the decoder backbone, then one step per iteration.
fn decoder_step<'a, B: AutodiffBackend>(
    assets: &'a Assets,
    device: &'a B::Device,
    backend: BackendKind,
    generic: bool,
) -> Result<Prepared<'a>> {
    use crate::engine::{AnyReadout, TaskSetup};
    let mut config = crate::task::lookup("mr")?.tune_config();
    config.backend = backend;
    config.backbone = crate::task::BackboneSpec::SmolLm2;
    config.readout = crate::readout::ReadoutConfig::Verbalizer {
        cue: crate::readout::DEFAULT_CUE.into(),
        position: crate::readout::PromptPosition::Prefix,
    };
    config.prompt_len = 4;
    config.init = PromptInit::Text("Movie review:".into());
    config.split.shots = Some(DECODER_BATCH / 2);
    config.split.max_selection = 8;
    config.split.max_test = 8;
    config.max_len = 40;
    config.gradient.batch_size = DECODER_BATCH;
    let mut setup = TaskSetup::<B>::new(&config, assets, device)?;
    if generic {
        if let AnyReadout::Verbalizer(r) = setup.readout {
            setup.readout = AnyReadout::Verbalizer(r.without_frozen());
        }
    }
    let gradient = GradientConfig {
        steps: 1,
        schedule: LrSchedule::Constant,
        keep_best: false,
        ..config.gradient.clone()
    };
    let idx: Vec<usize> = (0..setup.readout.data().train.len().min(DECODER_BATCH)).collect();
    if let (Some(path), AnyReadout::Verbalizer(r)) =
        (std::env::var_os(DECODER_BATCH_ENV), &setup.readout)
    {
        let batch = DecoderBatch::of(r, &setup.model, &idx, &gradient);
        batch.save(std::path::Path::new(&path))?;
    }
    let stepper = Stepper {
        readout: setup.readout,
        projector: setup.projector,
        vocab: setup.space.vocab,
        config: gradient,
        model: Some(setup.model),
        optim: None,
        idx,
        device: device.clone(),
    };
    Ok(stepper.prepared())
}

fn grad_step<'a, B: AutodiffBackend>(
    readout: BenchReadout,
    model: BenchModel,
    assets: &'a Assets,
    device: &'a B::Device,
    cpu: bool,
) -> Result<Prepared<'a>> {
    let backbone = bench_backbone::<B>(model, assets, device)?;
    let (batch, tokens, prompt_len) = model.shape();
    let max_len = tokens + prompt_len + 2;
    let data = synthetic_data(batch, tokens);
    let config = GradientConfig {
        steps: 1,
        batch_size: batch,
        schedule: LrSchedule::Constant,
        keep_best: false,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let prompt = SoftPrompt::init(
        &PromptInit::Text("this movie review is".into()),
        prompt_len,
        &backbone.encoder,
        &backbone.tokenizer,
        &mut rng,
    )?;
    let idx: Vec<usize> = (0..batch).collect();
    let frozen = readout
        .on_host(cpu)
        .then(|| Arc::new(FrozenEncoder::from(&backbone.encoder)));
    match readout {
        BenchReadout::ClassPrompt | BenchReadout::ClassPromptGeneric => {
            let r = ClassPromptReadout::new(backbone.clone(), data, 20.0, max_len, None);
            let r = match frozen {
                Some(frozen) => r.with_frozen(frozen),
                None => r,
            };
            Ok(Stepper::over(
                r,
                &backbone,
                config,
                PromptModel { prompt, head: None },
                idx,
            )
            .prepared())
        }
        BenchReadout::InputHead | BenchReadout::InputHeadGeneric => {
            let head = bench_head(backbone.encoder.hidden_size(), 2, device);
            let r = InputHeadReadout::new(backbone.clone(), data, max_len);
            let r = match frozen {
                Some(frozen) => r.with_frozen(frozen),
                None => r,
            };
            let m = PromptModel {
                prompt,
                head: Some(head),
            };
            Ok(Stepper::over(r, &backbone, config, m, idx).prepared())
        }
    }
}

/// One gradient step per iteration, the engine's own stage over a readout: the state of a
/// gradient-step workload.
struct Stepper<B: AutodiffBackend, R> {
    readout: R,
    projector: Projector<B>,
    vocab: Arc<dyn Vocabulary>,
    config: GradientConfig,
    /// The prompt model between steps (taken by a step, put back after it).
    model: Option<PromptModel<B>>,
    /// Made on the first step, kept for the next.
    optim: Option<crate::gradient::PromptOptimizer<B>>,
    idx: Vec<usize>,
    device: B::Device,
}

impl<B, R> Stepper<B, R>
where
    B: AutodiffBackend,
    R: Readout<B> + burn::module::AutodiffModule<B>,
    R::InnerModule: Readout<B::InnerBackend>,
{
    /// Steps over `readout` on `backbone`'s vocabulary, with the nearest-token projector the
    /// run would use.
    fn over(
        readout: R,
        backbone: &Backbone<B>,
        config: GradientConfig,
        model: PromptModel<B>,
        idx: Vec<usize>,
    ) -> Self {
        Self {
            projector: Projector::new(&backbone.encoder, &backbone.tokenizer, config.metric),
            vocab: Arc::new(backbone.tokenizer.clone()),
            readout,
            config,
            model: Some(model),
            optim: None,
            idx,
            device: backbone.device(),
        }
    }

    /// One step; returns its loss.
    fn step(&mut self) -> Result<f64> {
        let stage = GradientStage::new(
            &self.readout,
            &self.projector,
            self.vocab.as_ref(),
            &self.config,
        );
        let optim = self.optim.get_or_insert_with(|| stage.optimizer());
        let m = self
            .model
            .take()
            .ok_or_else(|| Error::config("bench", "model lost"))?;
        // Reading the loss back is a host synchronisation; `sync` waits for the update too.
        let (next, loss) = stage.step(m, optim, &self.idx, 3e-3, 1)?;
        B::sync(&self.device).map_err(|e| Error::config("device sync", format!("{e:?}")))?;
        self.model = Some(next);
        Ok(loss)
    }

    fn prepared<'a>(mut self) -> Prepared<'a>
    where
        Self: 'a,
    {
        Prepared {
            step: Box::new(move || self.step().map(Some)),
        }
    }
}
