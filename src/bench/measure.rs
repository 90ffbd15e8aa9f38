//! Timing of prepared workloads: warm-up (and kernel autotuning) outside the timed region, the
//! first iteration's wall time reported as the cold start, the median of the timed iterations.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::workload::{Prepared, Workload};
use crate::error::Result;

/// One workload measured on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Bench id with the backend first: `ndarray/grad_step/input_head/minilm/b32`.
    pub id: String,
    /// Backend name.
    pub backend: String,
    /// Seconds spent preparing (loading weights, encoding data, building caches).
    pub prepare_s: f64,
    /// Wall time of the first iteration, kernel compilation and autotuning included.
    pub first_iter_s: f64,
    /// Median wall time of the timed iterations, milliseconds.
    pub median_ms: f64,
    /// Fastest timed iteration, milliseconds.
    pub min_ms: f64,
    /// Timed iterations.
    pub iters: usize,
    /// Items per second at the median (samples, tokens, vectors or renders).
    pub throughput: f64,
    /// What an item is.
    pub unit: String,
    /// Peak resident memory of the process while this workload ran, MiB (Linux; host memory).
    pub peak_rss_mib: Option<f64>,
    /// Training loss of the first iteration (gradient steps), for comparison with a peer.
    pub first_loss: Option<f64>,
}

/// Resets the kernel's peak-RSS mark of this process (Linux), so the next reading is this
/// workload's peak.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `warmup` untimed iterations (the first one timed separately as the cold start), then
/// `iters` timed ones.
pub fn measure(
    workload: Workload,
    backend: &str,
    prepare_s: f64,
    prepared: &mut Prepared<'_>,
    warmup: usize,
    iters: usize,
) -> Result<Measurement> {
    let t = Instant::now();
    let first_loss = prepared.iterate()?;
    let first_iter_s = t.elapsed().as_secs_f64();
    for _ in 1..warmup {
        prepared.iterate()?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        prepared.iterate()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median_ms = times[times.len() / 2];
    let (items, unit) = workload.items();
    Ok(Measurement {
        id: format!("{backend}/{}", workload.id()),
        backend: backend.to_string(),
        prepare_s,
        first_iter_s,
        median_ms,
        min_ms: times[0],
        iters: times.len(),
        throughput: items as f64 / (median_ms / 1e3),
        unit: unit.to_string(),
        peak_rss_mib: peak_rss_mib(),
        first_loss,
    })
}

/// The measurements as a Markdown table.
pub fn table(ms: &[Measurement]) -> String {
    let mut s = String::from(
        "| bench | ms / iter (median) | throughput | first iter s | prepare s | peak RSS MiB |\n|---|---|---|---|---|---|\n",
    );
    for m in ms {
        s.push_str(&format!(
            "| {} | {:.2} | {:.1} {}/s | {:.2} | {:.2} | {} |\n",
            m.id,
            m.median_ms,
            m.throughput,
            m.unit,
            m.first_iter_s,
            m.prepare_s,
            m.peak_rss_mib
                .map(|x| format!("{x:.0}"))
                .unwrap_or_else(|| "–".into())
        ));
    }
    s
}
