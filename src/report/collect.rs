//! Gathers what the report shows from a finished run: the `report.json` each
//! instance wrote (`stages::report`, documented in `docs/report.md`), merged across
//! instances, with labels told apart by variation and matrix cell.

use std::collections::BTreeSet;

use serde_json::Value;
use stages::report::{Cell, Figure, ReportFile, Section, Series, Show, Table, REPORT_JSON};

use crate::exec::summary::{InstanceReport, RunSummary, Status};
use crate::graph::instance::show;

/// A section with its title filled in (the writing instance's label and stage when it gave none).
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub title: String,
    pub markdown: String,
}

/// A row as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShownRow {
    /// The label with its cell tag.
    pub label: String,
    /// The variations the row belongs to ("" = all).
    pub variation: String,
    pub values: Vec<Cell>,
}

impl ShownRow {
    /// The label with ` [variation]`, as Markdown and the console show it.
    pub(crate) fn shown_label(&self) -> String {
        with_variation(&self.label, &self.variation)
    }
}

/// `label [variation]`, or the label alone when the variation is "" (all).
fn with_variation(label: &str, variation: &str) -> String {
    if variation.is_empty() {
        label.to_string()
    } else {
        format!("{label} [{variation}]")
    }
}

/// A table, its rows from every instance that declared it.
#[derive(Debug, Clone)]
pub(crate) struct ShownTable {
    pub id: String,
    pub title: String,
    pub intro: String,
    pub columns: Vec<String>,
    pub rows: Vec<ShownRow>,
    pub csv: Option<String>,
    pub show: Vec<Show>,
}

/// One item of the report, in layout order.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Table(ShownTable),
    Figure(Figure),
    Section(Text),
}

/// What a run's instances declared for the report.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Merged, in layout order (`order`, then first appearance).
    pub items: Vec<Item>,
    /// `report.json` files that could not be read: (instance, why).
    pub unreadable: Vec<(String, String)>,
}

impl Collected {
    pub(crate) fn tables(&self) -> impl Iterator<Item = &ShownTable> {
        self.items.iter().filter_map(|i| match i {
            Item::Table(t) => Some(t),
            _ => None,
        })
    }
}

/// How the labels of one instance's items are completed.
struct Labeller<'a> {
    instance: &'a InstanceReport,
    /// The instance's variations, e.g. "v2,v3" ("" when it is in all of them).
    variation: String,
    /// Pipeline stages whose instances differ between variations.
    varying: &'a BTreeSet<&'a str>,
}

impl Labeller<'_> {
    /// ` (axis=value, …)` for the cell's axes not in `merge_axes`.
    fn cell_tag(&self, merge_axes: &[String]) -> String {
        let axes: Vec<String> = self
            .instance
            .cell
            .iter()
            .filter(|(axis, _)| !merge_axes.contains(axis))
            .map(|(axis, v)| format!("{axis}={}", show(v)))
            .collect();
        if axes.is_empty() {
            String::new()
        } else {
            format!(" ({})", axes.join(","))
        }
    }

    /// The label with its cell tag, and the variation it belongs to ("" = all).
    fn complete(
        &self,
        label: &mut Option<String>,
        source: &mut Option<String>,
        merge_axes: &[String],
    ) -> String {
        if label.is_none() {
            *label = Some(self.instance.stage.clone());
            *source = Some(self.instance.stage.clone());
        }
        let Some(src) = source.as_deref() else {
            return String::new();
        };
        let variation = if self.varying.contains(src) {
            self.variation.clone()
        } else {
            String::new()
        };
        if let Some(l) = label.as_mut() {
            l.push_str(&self.cell_tag(merge_axes));
        }
        variation
    }

    /// Label shown in Markdown and on the console: ` [variation]` appended.
    fn shown(&self, label: &mut Option<String>, source: &mut Option<String>, axes: &[String]) {
        let variation = self.complete(label, source, axes);
        if let Some(l) = label.as_mut() {
            *l = with_variation(l, &variation);
        }
    }

    fn table(&self, t: Table) -> ShownTable {
        let rows = t
            .rows
            .into_iter()
            .map(|mut row| {
                let variation = self.complete(&mut row.label, &mut row.source, &t.merge_axes);
                ShownRow {
                    label: row.label.unwrap_or_default(),
                    variation,
                    values: row.values,
                }
            })
            .collect();
        ShownTable {
            id: t.id,
            title: t.title,
            intro: t.intro,
            columns: t.columns,
            rows,
            csv: t.csv,
            show: t.show,
        }
    }

    fn figure(&self, mut f: Figure) -> Figure {
        for panel in &mut f.panels {
            for s in panel.categories.iter_mut().chain(panel.series.iter_mut()) {
                self.shown(&mut s.label, &mut s.source, &f.merge_axes);
            }
        }
        f
    }
}

/// Variation label of an instance: empty when it is shared by every variation.
fn variation_label(r: &InstanceReport, total: usize) -> String {
    if r.variations.len() >= total || (r.variations.len() == 1 && r.variations[0] == "default") {
        String::new()
    } else {
        r.variations.join(",")
    }
}

fn merge_table(into: &mut ShownTable, t: ShownTable) {
    for row in t.rows {
        if !into.rows.contains(&row) {
            into.rows.push(row);
        }
    }
}

fn merge_figure(into: &mut Figure, f: Figure) {
    for panel in f.panels {
        let Some(have) = into.panels.iter_mut().find(|p| p.title == panel.title) else {
            into.panels.push(panel);
            continue;
        };
        if panel.categories.is_empty() {
            have.series.extend(panel.series);
            continue;
        }
        // bars: each incoming category's index in the merged panel (appended when new);
        // a value fills its bar where the merged series has none there yet
        let at: Vec<usize> = panel
            .categories
            .into_iter()
            .map(
                |c| match have.categories.iter().position(|h| h.label == c.label) {
                    Some(j) => j,
                    None => {
                        have.categories.push(c);
                        have.categories.len() - 1
                    }
                },
            )
            .collect();
        let n = have.categories.len();
        for s in panel.series {
            let i = match have.series.iter().position(|h| h.label == s.label) {
                Some(i) => i,
                None => {
                    have.series.push(Series {
                        values: Vec::new(),
                        ..s.clone()
                    });
                    have.series.len() - 1
                }
            };
            let h = &mut have.series[i];
            h.values.resize(n, None);
            for (k, v) in s.values.iter().enumerate() {
                if let (Some(&j), Some(v)) = (at.get(k), v) {
                    h.values[j].get_or_insert(*v);
                }
            }
        }
        for h in &mut have.series {
            h.values.resize(n, None);
        }
    }
}

/// What the engine refuses in a `report.json` besides what its types say: file names
/// that leave the report folder or replace the engine's own files, rows whose length
/// does not match the columns.
fn check(file: &ReportFile) -> Result<(), String> {
    let plain = |name: &str, ext: &str| {
        let ok = !name.is_empty()
            && !name.contains(['/', '\\'])
            && !name.starts_with('.')
            && name.ends_with(ext);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{name}` must be a plain file name ending in `{ext}`"
            ))
        }
    };
    for t in &file.tables {
        if let Some(csv) = &t.csv {
            plain(csv, ".csv")?;
        }
        let want = t.columns.len().saturating_sub(1);
        if let Some(r) = t.rows.iter().find(|r| r.values.len() != want) {
            return Err(format!(
                "table `{}`: a row has {} values for {} columns after the label",
                t.id,
                r.values.len(),
                want
            ));
        }
    }
    for f in &file.figures {
        plain(&f.file, ".png")?;
    }
    Ok(())
}

fn read(path: &std::path::Path) -> Result<Option<ReportFile>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let version = value.get("schema_version").and_then(Value::as_u64);
    if version != Some(u64::from(stages::report::REPORT_SCHEMA)) {
        return Err(format!(
            "schema_version {} (this pipe reads {})",
            version.map_or("missing".to_string(), |v| v.to_string()),
            stages::report::REPORT_SCHEMA
        ));
    }
    let file: ReportFile = serde_json::from_value(value).map_err(|e| e.to_string())?;
    check(&file)?;
    Ok(Some(file))
}

pub(crate) fn collect(summary: &RunSummary, variation_count: usize) -> Collected {
    let varying: BTreeSet<&str> = summary
        .instances
        .iter()
        .filter(|r| r.variations.len() < variation_count)
        .map(|r| r.stage.as_str())
        .collect();
    let mut c = Collected::default();
    let mut ordered: Vec<(i32, Item)> = Vec::new();
    for r in summary
        .instances
        .iter()
        .filter(|r| matches!(r.status, Status::Ran | Status::Cached))
    {
        let Some(dir) = &r.out_dir else { continue };
        let file = match read(&dir.join(REPORT_JSON)) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(why) => {
                c.unreadable.push((r.label.clone(), why));
                continue;
            }
        };
        let l = Labeller {
            instance: r,
            variation: variation_label(r, variation_count),
            varying: &varying,
        };
        for t in file.tables {
            let order = t.order;
            let t = l.table(t);
            match ordered
                .iter_mut()
                .find_map(|(_, i)| matches!(i, Item::Table(x) if x.id == t.id).then_some(i))
            {
                Some(Item::Table(have)) => merge_table(have, t),
                _ => ordered.push((order, Item::Table(t))),
            }
        }
        for f in file.figures {
            let f = l.figure(f);
            match ordered
                .iter_mut()
                .find_map(|(_, i)| matches!(i, Item::Figure(x) if x.file == f.file).then_some(i))
            {
                Some(Item::Figure(have)) => merge_figure(have, f),
                _ => ordered.push((f.order, Item::Figure(f))),
            }
        }
        for Section {
            title,
            markdown,
            order,
        } in file.sections
        {
            let title = title.unwrap_or_else(|| format!("{} ({})", r.label, r.uses));
            ordered.push((order, Item::Section(Text { title, markdown })));
        }
    }
    // stable: equal `order` keeps first appearance
    ordered.sort_by_key(|(order, _)| *order);
    c.items = ordered.into_iter().map(|(_, i)| i).collect();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use stages::report::{FigureKind, Panel};

    fn bars(categories: &[&str], series: &[(&str, &[Option<f64>])]) -> Figure {
        Figure {
            file: "b.png".into(),
            title: "b".into(),
            kind: FigureKind::Bars,
            x_label: String::new(),
            y_label: String::new(),
            range: None,
            integer_x: false,
            mean_of_same_label: false,
            panels: vec![Panel {
                title: "p".into(),
                categories: categories.iter().map(|c| Series::named(c, None)).collect(),
                series: series
                    .iter()
                    .map(|(l, v)| Series {
                        values: v.to_vec(),
                        ..Series::named(l, None)
                    })
                    .collect(),
            }],
            merge_axes: Vec::new(),
            order: 0,
        }
    }

    #[test]
    fn merged_bars_keep_every_value_under_its_category() {
        let mut have = bars(&["A", "B"], &[("arousal", &[Some(1.0), Some(2.0)])]);
        merge_figure(
            &mut have,
            bars(
                &["B", "C"],
                &[
                    ("valence", &[Some(3.0), Some(4.0)]),
                    ("arousal", &[Some(9.0), Some(5.0)]),
                ],
            ),
        );
        let p = &have.panels[0];
        let labels: Vec<_> = p
            .categories
            .iter()
            .map(|c| c.label.clone().unwrap())
            .collect();
        assert_eq!(labels, ["A", "B", "C"]);
        // arousal: B keeps its first value, C is new
        assert_eq!(p.series[0].values, [Some(1.0), Some(2.0), Some(5.0)]);
        // valence: B and C, nothing for A
        assert_eq!(p.series[1].values, [None, Some(3.0), Some(4.0)]);
    }

    #[test]
    fn file_names_outside_the_report_folder_and_ragged_rows_are_refused() {
        let file = |json: &str| -> ReportFile { serde_json::from_str(json).unwrap() };
        let table = |csv: &str, values: &str| {
            file(&format!(
                r#"{{"schema_version": 1, "tables": [{{"id": "t", "title": "t", "columns": ["a", "b"], "csv": "{csv}", "rows": [{{"label": "x", "values": {values}}}]}}]}}"#
            ))
        };
        assert!(check(&table("ok.csv", "[1]")).is_ok());
        for bad in ["../x.csv", "/tmp/x.csv", "results.json", ".csv"] {
            let e = check(&table(bad, "[1]")).unwrap_err();
            assert!(e.contains("plain file name"), "{bad}: {e}");
        }
        let e = check(&table("ok.csv", "[1, 2]")).unwrap_err();
        assert!(e.contains("a row has 2 values for 1 columns"), "{e}");
        let figure = file(
            r#"{"schema_version": 1, "figures": [{"file": "index.md", "title": "f", "kind": "lines", "panels": []}]}"#,
        );
        assert!(check(&figure).unwrap_err().contains("`index.md`"));
        // a mean ± std cell takes exactly `mean` and `std`
        assert!(serde_json::from_str::<ReportFile>(
            r#"{"schema_version": 1, "tables": [{"id": "t", "title": "t", "columns": ["a", "b"], "rows": [{"label": "x", "values": [{"mean": 1, "sd": 2}]}]}]}"#
        )
        .is_err());
    }
}
