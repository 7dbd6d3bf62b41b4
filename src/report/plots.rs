//! PNG plots (plotters, bitmap backend, bundled DejaVu Sans — no system fonts needed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::collect::{Collected, Curve};
use super::paper;

static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // the bundled font is valid: a failure here is a packaging bug, shown as text-less plots
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type PlotResult = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn targets(c: &Collected) -> Vec<String> {
    let mut t: Vec<String> = c
        .scores
        .iter()
        .map(|s| s.target.clone())
        .chain(c.curves.iter().map(|s| s.target.clone()))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Validation accuracy per epoch, mean over folds, one panel per target.
pub fn learning_curves(c: &Collected, path: &Path) -> PlotResult {
    register_font();
    let ts = targets(c);
    let root = BitMapBackend::new(path, (560 * ts.len().max(1) as u32, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, ts.len().max(1)));
    for (panel, target) in panels.iter().zip(&ts) {
        let mut by_label: BTreeMap<&str, Vec<&Curve>> = BTreeMap::new();
        for curve in c.curves.iter().filter(|x| &x.target == target) {
            by_label.entry(&curve.label).or_default().push(curve);
        }
        let max_epoch = c
            .curves
            .iter()
            .flat_map(|x| x.points.iter().map(|p| p.0))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("Learning curves — {target} (mean over folds)"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..max_epoch + 1.0, 0.0..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("validation accuracy (%)")
            .x_label_formatter(&integer)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, (label, curves)) in by_label.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let n = curves.iter().map(|cv| cv.points.len()).max().unwrap_or(0);
            let mean: Vec<(f64, f64)> = (0..n)
                .filter_map(|e| {
                    let vals: Vec<f64> = curves
                        .iter()
                        .filter_map(|cv| cv.points.get(e))
                        .map(|p| p.3 * scale(p.3))
                        .filter(|v| v.is_finite())
                        .collect();
                    (!vals.is_empty())
                        .then(|| ((e + 1) as f64, vals.iter().sum::<f64>() / vals.len() as f64))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(mean, color.stroke_width(2)))
                .map_err(err)?
                .label(label.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)?;
    }
    root.present().map_err(err)
}

/// The legend box every plot uses.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
) -> PlotResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

/// Axis labels at whole numbers only (folds, epochs).
fn integer(x: &f64) -> String {
    if x.fract().abs() < 1e-9 && *x >= 0.0 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// Accuracies stored as fractions are shown in percent.
fn scale(v: f64) -> f64 {
    if v.abs() <= 1.0 {
        100.0
    } else {
        1.0
    }
}

/// Test accuracy of every fold, one line per model/variation, one panel per target.
pub fn per_fold(c: &Collected, path: &Path) -> PlotResult {
    register_font();
    let ts = targets(c);
    let root = BitMapBackend::new(path, (560 * ts.len().max(1) as u32, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, ts.len().max(1)));
    let max_fold = c.folds.iter().map(|f| f.fold).max().unwrap_or(0) as f64;
    for (panel, target) in panels.iter().zip(&ts) {
        let mut by_label: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for f in c.folds.iter().filter(|f| &f.target == target) {
            by_label
                .entry(&f.label)
                .or_default()
                .push((f.fold as f64, f.accuracy * scale(f.accuracy)));
        }
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("Test accuracy per fold — {target}"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5..max_fold + 0.5, 0.0..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("fold")
            .y_desc("accuracy (%)")
            .x_labels(max_fold as usize * 2 + 3)
            .x_label_formatter(&integer)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, (label, mut pts)) in by_label.into_iter().enumerate() {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(1)))
                .map_err(err)?;
            chart
                .draw_series(
                    pts.into_iter()
                        .map(move |p| Circle::new(p, 4, color.filled())),
                )
                .map_err(err)?
                .label(label.to_string())
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
        }
        legend(&mut chart)?;
    }
    root.present().map_err(err)
}

/// Our mean test accuracy (left panel) next to the paper's real-DEAP numbers (right
/// panel), per target. Two panels, never one mixed axis.
pub fn versus_paper(c: &Collected, path: &Path) -> PlotResult {
    register_font();
    let ts: Vec<String> = ["arousal", "valence"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    // ours
    let ours: Vec<String> = {
        let mut l: Vec<String> = c.scores.iter().map(|s| s.label()).collect();
        l.dedup();
        let mut seen = Vec::new();
        for x in l {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        seen
    };
    // horizontal bars: labels stay readable at any length
    let bars = |area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
                title: &str,
                labels: &[String],
                value: &dyn Fn(&str, &str) -> Option<f64>|
     -> PlotResult {
        let n = labels.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(210)
            .build_cartesian_2d(0.0..100.0, 0.0..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("accuracy (%)")
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = (n as f64 - y - 0.5).round();
                if (n as f64 - y - 0.5 - i).abs() < 0.26 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (k, target) in ts.iter().enumerate() {
            let color = PALETTE[k];
            let vals: Vec<(usize, f64)> = labels
                .iter()
                .enumerate()
                .filter_map(|(i, l)| value(l, target).map(|v| (i, v)))
                .collect();
            chart
                .draw_series(vals.into_iter().map(move |(i, v)| {
                    // first label at the top
                    let top = n as f64 - i as f64 - 0.1 - 0.4 * k as f64;
                    Rectangle::new([(0.0, top - 0.4), (v, top)], color.mix(0.8).filled())
                }))
                .map_err(err)?
                .label(target.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.8).filled())
                });
        }
        legend(&mut chart)
    };
    bars(
        &left,
        "Ours (this run's data), mean test accuracy",
        &ours,
        &|label, target| {
            c.scores
                .iter()
                .find(|s| s.label() == label && s.target == target)
                .map(|s| s.accuracy.0 * scale(s.accuracy.0))
        },
    )?;
    let paper_rows: Vec<String> = paper::DEAP_TABLE
        .iter()
        .chain(paper::ABLATION_TABLE)
        .map(|r| r.0.to_string())
        .collect();
    bars(
        &right,
        "Paper (REAL DEAP, published), accuracy",
        &paper_rows,
        &|label, target| {
            paper::DEAP_TABLE
                .iter()
                .chain(paper::ABLATION_TABLE)
                .find(|r| r.0 == label)
                .map(|r| if target == "arousal" { r.1 } else { r.3 })
        },
    )?;
    root.present().map_err(err)
}
