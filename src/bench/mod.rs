//! Benchmark workloads shared by the criterion benches (`benches/tandem.rs`) and
//! `tandem bench`: the same preparation and the same synchronised iteration, timed by either.

mod cpu;
mod gemm;
mod measure;
mod scoring;
mod workload;

pub use cpu::{kernels, CpuInfo};
pub use gemm::{GemmShape, Linear};
pub use measure::{measure, peak_rss_mib, reset_peak_rss, table, Measurement};
pub use scoring::{Scoring, ScoringReadout, SCREEN_EXAMPLES, SCREEN_PROMPTS};
pub use workload::{
    bench_backbone, prepare, synthetic_tokens, BenchModel, BenchReadout, Prepared, Workload,
    BERT_BASE_WEIGHTS_ENV,
};
