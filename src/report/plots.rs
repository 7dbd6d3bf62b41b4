//! PNG plots of the figures instances declare (`stages::report::Figure`): lines,
//! lines with markers, horizontal bars (plotters, bitmap backend, bundled DejaVu
//! Sans — no system fonts needed).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use stages::report::{Figure, FigureKind, Panel, Series};

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

/// Draws `figure` as a PNG at `path`: its panels side by side.
pub(crate) fn draw(figure: &Figure, path: &Path) -> PlotResult {
    register_font();
    let n = figure.panels.len().max(1);
    let (width, height) = match figure.kind {
        FigureKind::Bars => (600, 520),
        FigureKind::Lines | FigureKind::Markers => (560, 440),
    };
    let root = BitMapBackend::new(path, (width * n as u32, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, panel) in root.split_evenly((1, n)).iter().zip(&figure.panels) {
        match figure.kind {
            FigureKind::Bars => bars(area, figure, panel)?,
            FigureKind::Lines | FigureKind::Markers => lines(area, figure, panel)?,
        }
    }
    root.present().map_err(err)
}

type Points = Vec<(f64, f64)>;

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// The lines of a panel, one per label: the series of one label joined (sorted by
/// x), or their pointwise mean when the figure asks for it.
fn by_label(figure: &Figure, panel: &Panel) -> Vec<(String, Points)> {
    let mut out: Vec<(String, Vec<Points>)> = Vec::new();
    for s in &panel.series {
        let label = s.label.clone().unwrap_or_default();
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, v)) => v.push(s.points.clone()),
            None => out.push((label, vec![s.points.clone()])),
        }
    }
    out.into_iter()
        .map(|(label, runs)| {
            let mut pts: Vec<(f64, f64)> = runs.concat();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if figure.mean_of_same_label {
                let mut mean: Vec<(f64, f64, usize)> = Vec::new();
                for (x, y) in pts {
                    match mean.last_mut() {
                        Some(m) if m.0 == x => {
                            m.1 += y;
                            m.2 += 1;
                        }
                        _ => mean.push((x, y, 1)),
                    }
                }
                pts = mean
                    .into_iter()
                    .map(|(x, s, n)| (x, s / n as f64))
                    .collect();
            }
            (label, pts)
        })
        .collect()
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    }
}

fn lines(area: &Area, figure: &Figure, panel: &Panel) -> PlotResult {
    let lines = by_label(figure, panel);
    let all = || lines.iter().flat_map(|(_, p)| p.iter());
    let (x0, x1) = span(all().map(|p| p.0));
    let (x0, x1) = if figure.integer_x {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let (y0, y1) = figure.range.unwrap_or_else(|| span(all().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&figure.x_label)
        .y_desc(&figure.y_label)
        .label_style(("sans-serif", 13));
    if figure.integer_x {
        mesh.x_label_formatter(&integer);
        if x1 - x0 < 30.0 {
            mesh.x_labels(((x1 - x0) * 2.0) as usize + 1);
        }
    }
    mesh.draw().map_err(err)?;
    for (k, (label, pts)) in lines.into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let width = if figure.kind == FigureKind::Markers {
            1
        } else {
            2
        };
        let line = chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
            .map_err(err)?;
        // a line of one point draws nothing: give it its marker
        if figure.kind == FigureKind::Markers || pts.len() == 1 {
            chart
                .draw_series(
                    pts.into_iter()
                        .map(move |p| Circle::new(p, 4, color.filled())),
                )
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
        } else {
            line.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
    }
    legend(&mut chart)
}

/// Horizontal bars (labels stay readable at any length): a group per category, top
/// to bottom, a bar per series.
fn bars(area: &Area, figure: &Figure, panel: &Panel) -> PlotResult {
    let labels: Vec<String> = panel
        .categories
        .iter()
        .map(|c| c.label.clone().unwrap_or_default())
        .collect();
    let n = labels.len().max(1);
    let k_series = panel.series.len().max(1) as f64;
    let (v0, v1) = figure.range.unwrap_or_else(|| {
        let (lo, hi) = span(
            panel
                .series
                .iter()
                .flat_map(|s| s.values.iter().flatten().copied()),
        );
        (lo.min(0.0), hi)
    });
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(210)
        .build_cartesian_2d(v0..v1, 0.0..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(&figure.x_label)
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
    let height = 0.8 / k_series;
    for (k, s) in panel.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let bars: Vec<(usize, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        chart
            .draw_series(bars.into_iter().map(move |(i, v)| {
                // the first category at the top
                let top = n as f64 - i as f64 - 0.1 - height * k as f64;
                Rectangle::new([(v0, top - height), (v, top)], color.mix(0.8).filled())
            }))
            .map_err(err)?
            .label(series_label(s))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.8).filled())
            });
    }
    legend(&mut chart)
}

fn series_label(s: &Series) -> String {
    s.label.clone().unwrap_or_default()
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
