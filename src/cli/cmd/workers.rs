//! The runs of a `run` or `sweep` job side by side (`--jobs N`): workers take the next
//! planned run until none is left. On the CPU backends one run keeps about 1.2 cores busy
//! (its GEMMs use every core, its element-wise ops one), and its GEMMs on one thread are
//! nearly as fast as on two, so runs side by side, each GEMM on its share of the cores, are how
//! a job uses a machine. Each worker asks its own mentor, loaded when its first run with mentor
//! stages starts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::tensor::backend::AutodiffBackend;
use indicatif::MultiProgress;

use super::jobs::{make_mentor, run_in, RunJob};
use tandem::backend::BackendKind;
use tandem::engine::{RunConfig, RunResult};
use tandem::mentor::Mentor;
use tandem::run::RunDir;

/// Gives each of `jobs` runs side by side its share of the cores for its GEMMs: sets
/// `MATMUL_NUM_THREADS` (read by the GEMM of the ndarray backend when it first runs) unless the
/// user set it. Call before any tensor work and before any thread starts.
pub fn share_cores(jobs: usize) {
    const VAR: &str = "MATMUL_NUM_THREADS";
    if jobs < 2 || std::env::var_os(VAR).is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::set_var(VAR, (cores / jobs).max(1).to_string());
}

/// A planned run with its folder: `index` is its place in the plan.
pub struct Work {
    pub index: usize,
    pub config: RunConfig,
    pub dir: RunDir,
}

/// What the workers of one job share.
pub struct Workers<'a, B: AutodiffBackend> {
    pub job: &'a RunJob,
    pub kind: BackendKind,
    pub device: &'a B::Device,
    pub progress: &'a MultiProgress,
}

/// The queue the workers draw from, and whether a run failed (no new run starts then).
struct Queue<'w> {
    work: &'w [Work],
    next: AtomicUsize,
    failed: AtomicBool,
}

impl<B: AutodiffBackend> Workers<'_, B> {
    /// Runs every piece of `work`, `job.jobs` at a time: each run's plan index, result and
    /// folder. After a failure the runs under way finish and no new one starts; the first
    /// error in plan order is returned.
    pub fn run(&self, work: &[Work]) -> tandem::Result<Vec<(usize, (RunResult, PathBuf))>> {
        let queue = Queue {
            work,
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        };
        let workers = self.job.jobs.clamp(1, work.len().max(1));
        let mut done: Vec<(usize, tandem::Result<RunResult>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| s.spawn(|| self.worker(&queue)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        done.sort_by_key(|(i, _)| *i);
        done.into_iter()
            .map(|(i, r)| {
                let dir = work.iter().find(|w| w.index == i).map(|w| w.dir.path());
                let dir = dir.unwrap_or(self.job.out.as_path()).to_path_buf();
                r.map(|r| (i, (r, dir)))
            })
            .collect()
    }

    /// One worker: the next run of the queue until none is left or one failed.
    fn worker(&self, queue: &Queue) -> Vec<(usize, tandem::Result<RunResult>)> {
        let mut mentor: Option<Box<dyn Mentor>> = None;
        let mut out = Vec::new();
        while !queue.failed.load(Ordering::SeqCst) {
            let Some(w) = queue.work.get(queue.next.fetch_add(1, Ordering::SeqCst)) else {
                break;
            };
            let r = self.run_one(w, &mut mentor);
            if r.is_err() {
                queue.failed.store(true, Ordering::SeqCst);
            }
            out.push((w.index, r));
        }
        out
    }

    /// One run, with the worker's mentor (loaded first when the run needs one).
    fn run_one(&self, w: &Work, mentor: &mut Option<Box<dyn Mentor>>) -> tandem::Result<RunResult> {
        let job = self.job;
        if w.config.schedule.mentor.is_some() && mentor.is_none() {
            *mentor = Some(make_mentor::<B::InnerBackend>(
                &job.mentor,
                &job.assets,
                self.kind,
                self.device,
            )?);
        }
        // Sweeps continue a run a crash interrupted; `run` starts fresh.
        run_in::<B>(
            &w.config,
            &job.assets,
            self.device,
            mentor,
            &w.dir,
            job.sweep,
            self.progress,
        )
    }
}
