//! `tandem bench`: the benchmark workloads on every backend the build has (or those chosen),
//! one table; the same workloads as the criterion benches.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;

use crate::cli::args::BenchArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::bench::{
    kernels, measure, prepare, reset_peak_rss, table, CpuInfo, Measurement, Workload,
};

struct BenchJob {
    workloads: Vec<Workload>,
    warmup: usize,
    iters: usize,
    assets: Assets,
    /// Measurements so far (of earlier backends too), rewritten here after each workload so
    /// that a run cut short keeps what it measured.
    json: Option<(PathBuf, Vec<Measurement>)>,
}

impl BackendJob for BenchJob {
    type Output = Vec<Measurement>;

    fn run<B: AutodiffBackend>(
        mut self,
        kind: BackendKind,
        device: B::Device,
    ) -> tandem::Result<Self::Output> {
        let mut out = Vec::new();
        for w in self.workloads {
            reset_peak_rss();
            let t = Instant::now();
            let mut prepared = prepare::<B>(w, &self.assets, &device, kind)?;
            let prepare_s = t.elapsed().as_secs_f64();
            let m = measure(
                w,
                kind.name(),
                prepare_s,
                &mut prepared,
                self.warmup,
                self.iters,
            )?;
            eprintln!(
                "{}: {:.2} ms/iter, {:.1} {}/s (first iteration {:.2} s)",
                m.id, m.median_ms, m.throughput, m.unit, m.first_iter_s
            );
            if let Some((path, so_far)) = &mut self.json {
                so_far.push(m.clone());
                let text = serde_json::to_string_pretty(so_far)
                    .map_err(|e| tandem::Error::config("bench json", e.to_string()))?;
                std::fs::write(&*path, text)
                    .map_err(|e| tandem::Error::io("writing", path.clone(), e))?;
            }
            out.push(m);
        }
        Ok(out)
    }
}

impl BenchArgs {
    /// `tandem bench [--backend B ...] [--only ID ...] [options]`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        let kinds: Vec<BackendKind> = if self.backends.is_empty() {
            BackendKind::available()
        } else {
            self.backends
                .iter()
                .map(|b| b.parse())
                .collect::<tandem::Result<_>>()?
        };
        let workloads = self.workloads()?;
        if self.warmup == 0 || self.iters == 0 {
            anyhow::bail!("--warmup and --iters must be at least 1");
        }
        let cpu = CpuInfo::detect();
        eprintln!("CPU: {cpu}");
        let mut all = Vec::new();
        for kind in kinds {
            eprintln!("{kind}: {}", kernels(kind, &cpu));
            let job = BenchJob {
                workloads: workloads.clone(),
                warmup: self.warmup,
                iters: self.iters,
                assets: assets.clone(),
                json: self.json.clone().map(|p| (p, all.clone())),
            };
            all.extend(dispatch(kind, job)?);
        }
        println!("CPU: {cpu}\n");
        print!("{}", table(&all));
        if let Some(path) = self.json {
            let text = serde_json::to_string_pretty(&all)?;
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// The workloads `--only` selects (all without it), each once, in the order given.
    fn workloads(&self) -> tandem::Result<Vec<Workload>> {
        let all = ["all".to_string()];
        let filters = if self.only.is_empty() {
            &all[..]
        } else {
            &self.only[..]
        };
        let mut workloads: Vec<Workload> = Vec::new();
        for filter in filters {
            for w in Workload::select(filter)? {
                if !workloads.contains(&w) {
                    workloads.push(w);
                }
            }
        }
        Ok(workloads)
    }
}
