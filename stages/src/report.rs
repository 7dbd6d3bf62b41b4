//! The report schema: what an instance writes to `report.json` in its output folder
//! for the run report (`reports/<pipeline>/index.md`, the CSV files, the plots and the
//! table `pipe run` ends with). The engine lays out what instances declare here and
//! knows nothing else about their results; `run:` stages can write the same file.
//! The format is documented in `docs/report.md`.
//!
//! Items from several instances merge: tables by `id` (rows appended, identical rows
//! once), figures by `file` (panels by title; line series appended; bar categories
//! appended and a bar series of a known label filling its empty bars), and
//! sections are listed in run order. Everything is laid out by `order`, then by first
//! appearance.
//!
//! Labels: a row, series or category names what it shows with `label` and, when that
//! is a stage of the pipeline, `source`. The engine appends ` [variation]` when the
//! `source` stage differs between the pipeline's variations, and ` (axis=value, …)`
//! for the axes of the writing instance's matrix cell that the item does not account
//! for itself (`merge_axes`). A label left out is the writing instance's stage name,
//! with `source` that stage.

use serde::{Deserialize, Serialize};

/// The file an instance writes into its output folder.
pub const REPORT_JSON: &str = "report.json";
/// The version of the format below.
pub const REPORT_SCHEMA: u32 = 1;

/// The content of `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<Table>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
}

impl ReportFile {
    pub fn new() -> Self {
        ReportFile {
            schema_version: REPORT_SCHEMA,
            ..ReportFile::default()
        }
    }
}

/// Where a table is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Show {
    /// A Markdown table in `index.md`.
    Markdown,
    /// Printed after `pipe run`'s instance table.
    Console,
}

/// A table: a header and rows of cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Tables of one `id` from several instances are one table.
    pub id: String,
    /// Its heading in `index.md`.
    pub title: String,
    /// Markdown shown between the heading and the table.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub intro: String,
    /// The header of the label column followed by one per value.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Also written as this CSV file in the report folder (label, variation, then
    /// the values; a mean ± std value becomes two columns `<column>_mean`, `_std`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    #[serde(default = "markdown_only")]
    pub show: Vec<Show>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merge_axes: Vec<String>,
    #[serde(default)]
    pub order: i32,
}

fn markdown_only() -> Vec<Show> {
    vec![Show::Markdown]
}

/// One row: its label and a value per column after the first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub values: Vec<Cell>,
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// Shown as `mean ± std`; fractions (|mean| ≤ 1) in percent.
    MeanStd(MeanStd),
    /// A number shown as written (NaN: `-`).
    Number(f64),
    Text(String),
    /// No value: `-`.
    Empty(Option<()>),
}

impl Cell {
    /// `mean ± std` of a mean and std that may be undefined (NaN).
    pub fn mean_std(mean: f64, std: f64) -> Cell {
        let finite = |v: f64| v.is_finite().then_some(v);
        Cell::MeanStd(MeanStd {
            mean: finite(mean),
            std: finite(std),
        })
    }
}

/// A mean and its standard deviation; null: not defined (NaN).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanStd {
    pub mean: Option<f64>,
    pub std: Option<f64>,
}

/// How a figure draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FigureKind {
    /// Lines through `points` (x, y).
    Lines,
    /// Lines through `points` with a marker at each.
    Markers,
    /// Horizontal bars: one per category and series (`values`, aligned with the
    /// panel's `categories`).
    Bars,
}

/// A PNG plot of one or more panels side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// The PNG's name in the report folder; figures of one `file` are one figure.
    pub file: String,
    /// Its heading in `index.md`.
    pub title: String,
    pub kind: FigureKind,
    #[serde(default)]
    pub x_label: String,
    #[serde(default)]
    pub y_label: String,
    /// The value axis (y; x for bars); default: the data's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
    /// Axis labels at whole x values only (folds, epochs).
    #[serde(default)]
    pub integer_x: bool,
    /// Series of one label in one panel (e.g. one per fold) are drawn as their
    /// pointwise mean over x.
    #[serde(default)]
    pub mean_of_same_label: bool,
    pub panels: Vec<Panel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merge_axes: Vec<String>,
    #[serde(default)]
    pub order: i32,
}

/// One panel of a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Its caption; panels of one title in merged figures are one panel.
    pub title: String,
    /// Bars: the category of each bar group, top to bottom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Series>,
    pub series: Vec<Series>,
}

/// One line, or one colour of bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Lines and markers: (x, y), finite (see [`Series::point`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<(f64, f64)>,
    /// Bars: one value per category (null: no bar).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// A series named `label`, from pipeline stage `source` when given.
    pub fn named(label: &str, source: Option<&str>) -> Series {
        Series {
            label: Some(label.to_string()),
            source: source.map(str::to_string),
            points: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl Series {
    /// Adds (x, y) unless one is not finite (JSON has no NaN).
    pub fn point(&mut self, x: f64, y: f64) {
        if x.is_finite() && y.is_finite() {
            self.points.push((x, y));
        }
    }
}

/// Free text: a heading and Markdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Default: the writing instance's label and stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub markdown: String,
    #[serde(default)]
    pub order: i32,
}

/// Writes `report` as `report.json` into `dir` (an instance's output folder).
pub fn write(dir: &std::path::Path, report: &ReportFile) -> Result<(), crate::StageError> {
    let path = dir.join(REPORT_JSON);
    let text = serde_json::to_string_pretty(report).expect("the report serialises");
    std::fs::write(&path, text).map_err(|e| crate::StageError::io(&path, e))
}
