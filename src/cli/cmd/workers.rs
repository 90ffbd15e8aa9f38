//! The runs of a `run` or `sweep` job side by side (`--jobs N`): workers take the next
//! planned run until none is left. One run keeps about 1.3 CPU cores busy on the CPU
//! backends (the GEMMs use every core, the element-wise ops one), so runs side by side are
//! how a sweep uses a machine's cores. Each worker asks its own mentor, loaded when its first
//! run with mentor stages starts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::tensor::backend::AutodiffBackend;
use indicatif::MultiProgress;

use super::jobs::{make_mentor, run_in, RunJob};
use tandem::backend::BackendKind;
use tandem::engine::{RunConfig, RunResult};
use tandem::mentor::Mentor;
use tandem::run::RunDir;

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
