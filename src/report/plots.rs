//! Run plots: training loss over steps with the round restarts marked, and selection accuracy
//! per round; for a sweep, each schedule's paired difference from the baseline with its
//! interval. Drawn as SVG with plotters; each SVG is also rasterized to PNG with resvg.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::paired::PairedComparison;
use crate::engine::RoundRecord;
use crate::error::{Error, Result};
use crate::gradient::TrajectoryPoint;

const SIZE: (u32, u32) = (900, 480);

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::config(format!("plot `{}`", path.display()), e.to_string())
}

/// Writes `loss.svg`/`.png` and `selection.svg`/`.png` into `dir`; returns the files written.
pub fn plot_run(
    dir: &Path,
    title: &str,
    trajectory: &[TrajectoryPoint],
    rounds: &[RoundRecord],
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let loss = dir.join("loss.svg");
    loss_svg(&loss, title, trajectory, rounds)?;
    written.push(loss.clone());
    written.push(svg_to_png(&loss)?);
    let selection = dir.join("selection.svg");
    selection_svg(&selection, title, rounds)?;
    written.push(selection.clone());
    written.push(svg_to_png(&selection)?);
    Ok(written)
}

/// A comparison's row label: task, schedule − baseline, and the seeds paired.
fn paired_label(r: &PairedComparison) -> String {
    format!(
        "{} / {} − {} ({} seeds)",
        r.task, r.schedule, r.baseline, r.pairs
    )
}

/// Each comparison as a point (the mean paired difference) with its bootstrap 95% interval, one
/// row per task and schedule, and a line at zero (no difference from the baseline).
pub fn paired_svg(path: &Path, rows: &[PairedComparison]) -> Result<()> {
    let e = |err: &dyn std::fmt::Display| plot_err(path, err);
    let height = 120 + 40 * rows.len() as u32;
    let root = SVGBackend::new(path, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (lo, hi) = rows.iter().fold((0.0f64, 0.0f64), |(lo, hi), r| {
        (
            lo.min(r.ci95.0).min(r.mean_diff),
            hi.max(r.ci95.1).max(r.mean_diff),
        )
    });
    let pad = ((hi - lo) * 0.1).max(0.5);
    let n = rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "schedule − baseline, paired by seed (mean, bootstrap 95% interval)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(340)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n - 0.5))
        .map_err(|x| e(&x))?;
    let labels: Vec<String> = rows.iter().map(paired_label).collect();
    chart
        .configure_mesh()
        .x_desc("Δ test metric (accuracy and macro-F1 in points, MCC as is)")
        .y_labels(rows.len().max(1))
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .disable_y_mesh()
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n - 0.5)],
            BLACK.mix(0.5),
        )))
        .map_err(|x| e(&x))?;
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64;
        chart
            .draw_series([
                PathElement::new(vec![(r.ci95.0, y), (r.ci95.1, y)], BLUE.stroke_width(2)),
                PathElement::new(
                    vec![(r.ci95.0, y - 0.15), (r.ci95.0, y + 0.15)],
                    BLUE.stroke_width(1),
                ),
                PathElement::new(
                    vec![(r.ci95.1, y - 0.15), (r.ci95.1, y + 0.15)],
                    BLUE.stroke_width(1),
                ),
            ])
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (r.mean_diff, y),
                5,
                BLUE.filled(),
            )))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{:+.2}, p = {:.3}", r.mean_diff, r.p_value),
                (r.mean_diff, y + 0.35),
                ("sans-serif", 12).into_font(),
            )))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}

/// Training loss (mean over each recorded interval) against the global step, one dashed line
/// at each restart, labelled with where the next round starts from.
pub fn loss_svg(
    path: &Path,
    title: &str,
    trajectory: &[TrajectoryPoint],
    rounds: &[RoundRecord],
) -> Result<()> {
    let e = |err: &dyn std::fmt::Display| plot_err(path, err);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let max_step = trajectory.iter().map(|p| p.step).max().unwrap_or(1).max(1) as f64;
    let finite = || trajectory.iter().map(|p| p.loss).filter(|l| l.is_finite());
    let (lo, hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), l| {
        (a.min(l), b.max(l))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: training loss"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step, (lo - pad)..(hi + pad))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("gradient step")
        .y_desc("cross-entropy")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(
            trajectory
                .iter()
                .filter(|p| p.loss.is_finite())
                .map(|p| (p.step as f64, p.loss)),
            BLUE.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label("loss")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    // Every round but the final stage ends in a restart.
    let restarts: Vec<&RoundRecord> = rounds
        .iter()
        .filter(|r| r.mentor.is_some() || r.restart_from != "continuous")
        .filter(|r| (r.step as f64) < max_step)
        .collect();
    for r in &restarts {
        let x = r.step as f64;
        let color = if r.restart_from.starts_with("candidate") {
            RED.mix(1.0)
        } else {
            BLACK.mix(0.5)
        };
        let dashes = (0..24).map(|i| {
            let y0 = lo - pad + (hi - lo + 2.0 * pad) * (i as f64 / 24.0);
            let y1 = y0 + (hi - lo + 2.0 * pad) / 48.0;
            PathElement::new([(x, y0), (x, y1)], color.stroke_width(1))
        });
        chart.draw_series(dashes).map_err(|x| e(&x))?;
        let label = restart_label(&r.restart_from);
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x, hi + pad * 0.5),
                ("sans-serif", 12).into_font().color(&color),
            )))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

fn restart_label(from: &str) -> String {
    match from.split_once(": ") {
        Some((kind, _)) => format!("restart: {kind}"),
        None => format!("restart: {from}"),
    }
}

/// Selection accuracy per round: the continuous prompt, the best projected text, the best
/// mentor candidate, and the best so far over the run.
pub fn selection_svg(path: &Path, title: &str, rounds: &[RoundRecord]) -> Result<()> {
    let e = |err: &dyn std::fmt::Display| plot_err(path, err);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let series = [
        ("continuous prompt", "continuous", BLUE),
        ("best projected text", "projected", GREEN),
        ("best mentor candidate", "candidate", RED),
    ];
    let (lo, hi) = accuracy_range(rounds);
    let pad = ((hi - lo) * 0.1).max(0.01);
    let n = rounds.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: selection accuracy per round"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.3..(n - 0.7), (lo - pad).max(0.0)..(hi + pad).min(1.0))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc("accuracy")
        .x_labels(rounds.len().max(2))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    for (label, kind, color) in series {
        let points: Vec<(f64, f64)> = rounds
            .iter()
            .filter_map(|r| best_of(r, kind).map(|a| (r.round as f64, a)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    chart
        .draw_series(LineSeries::new(
            running_best(rounds),
            BLACK.mix(0.6).stroke_width(1),
        ))
        .map_err(|x| e(&x))?
        .label("best so far")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.6)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// The best selection accuracy of a round's arms of `kind`.
fn best_of(r: &RoundRecord, kind: &str) -> Option<f64> {
    r.scored
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.selection.accuracy)
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))))
}

/// The lowest and highest selection accuracy scored in any round (0..1 when they coincide).
fn accuracy_range(rounds: &[RoundRecord]) -> (f64, f64) {
    let all = rounds
        .iter()
        .flat_map(|r| r.scored.iter().map(|s| s.selection.accuracy));
    let (lo, hi) = all.fold((1.0f64, 0.0f64), |(lo, hi), a| (lo.min(a), hi.max(a)));
    let (lo, hi) = (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0));
    if lo < hi {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// The best selection accuracy over the run so far, after each round that scored anything.
fn running_best(rounds: &[RoundRecord]) -> Vec<(f64, f64)> {
    let mut best = f64::NEG_INFINITY;
    rounds
        .iter()
        .filter_map(|r| {
            let m = r
                .scored
                .iter()
                .map(|s| s.selection.accuracy)
                .fold(f64::NEG_INFINITY, f64::max);
            best = best.max(m);
            best.is_finite().then_some((r.round as f64, best))
        })
        .collect()
}

/// Rasterizes an SVG next to it as PNG, with the system's fonts (text is left out where the
/// system has none).
pub fn svg_to_png(svg: &Path) -> Result<PathBuf> {
    let data = std::fs::read(svg).map_err(|e| Error::io("reading", svg, e))?;
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // plotters names the generic `sans-serif`; map it to a sans face the system has.
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let preferred = [
        "DejaVu Sans",
        "Liberation Sans",
        "Noto Sans",
        "Arial",
        "FreeSans",
    ];
    if let Some(family) = preferred
        .iter()
        .find(|p| families.iter().any(|f| f == *p))
        .map(|p| p.to_string())
        .or_else(|| families.first().cloned())
    {
        fonts.set_sans_serif_family(family);
    }
    let tree = resvg::usvg::Tree::from_data(&data, &options).map_err(|e| plot_err(svg, e))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| plot_err(svg, "empty image"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let png = svg.with_extension("png");
    pixmap.save_png(&png).map_err(|e| plot_err(&png, e))?;
    Ok(png)
}
