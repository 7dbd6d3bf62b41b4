//! Reading `recordings.parquet` (its index of subjects and channels, one subject's
//! channels at a time) and `labels.parquet`, with polars; errors name the file and
//! what is wrong. The writers are [`super::RecordingsWriter`] and
//! [`super::write_labels`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use polars::prelude::*;

use crate::stage::StageError;

fn polars_err(path: &Path, e: PolarsError) -> StageError {
    StageError::bad_file(path, format!("reading Parquet: {e}"))
}

pub(crate) fn scan(path: &Path) -> Result<LazyFrame, StageError> {
    let p = PlRefPath::try_from_path(path).map_err(|e| polars_err(path, e))?;
    LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(|e| polars_err(path, e))
}

/// The channels of a recordings table and where they occur (no samples read).
pub(crate) struct Index {
    pub(crate) dataset: String,
    pub(crate) subjects: Vec<u16>,
    /// channel → sample rates seen (as f32 bits)
    pub(crate) channels: BTreeMap<String, BTreeSet<u32>>,
    pub(crate) order: Vec<String>,
}

pub(crate) fn read_index(path: &Path) -> Result<Index, StageError> {
    let df = scan(path)?
        .select([
            col("dataset"),
            col("subject"),
            col("channel"),
            col("sample_rate"),
        ])
        .collect()
        .map_err(|e| polars_err(path, e))?;
    let e = |e: PolarsError| polars_err(path, e);
    let dataset = df.column("dataset").map_err(e)?.str().map_err(e)?;
    let subject = df.column("subject").map_err(e)?.u16().map_err(e)?;
    let channel = df.column("channel").map_err(e)?.str().map_err(e)?;
    let rate = df.column("sample_rate").map_err(e)?.f32().map_err(e)?;
    let mut datasets = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    let mut channels: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut order = Vec::new();
    let null = || StageError::bad_file(path, "null in a column that must not have nulls");
    for i in 0..df.height() {
        datasets.insert(dataset.get(i).ok_or_else(null)?.to_string());
        subjects.insert(subject.get(i).ok_or_else(null)?);
        let c = channel.get(i).ok_or_else(null)?;
        let r = rate.get(i).ok_or_else(null)?;
        if !(r > 0.0 && r.is_finite()) {
            return Err(StageError::bad_file(
                path,
                format!("channel {c} has sample rate {r}"),
            ));
        }
        let entry = channels.entry(c.to_string()).or_insert_with(|| {
            order.push(c.to_string());
            BTreeSet::new()
        });
        entry.insert(r.to_bits());
    }
    if subjects.is_empty() {
        return Err(StageError::bad_file(path, "the recordings table is empty"));
    }
    Ok(Index {
        dataset: datasets.into_iter().collect::<Vec<_>>().join("+"),
        subjects: subjects.into_iter().collect(),
        channels,
        order,
    })
}

/// `(subject, trial)` → (arousal, valence) ratings.
pub(crate) type Ratings = HashMap<(u16, u16), (f32, f32)>;
/// trial → samples of each requested channel (None: absent).
pub(crate) type SubjectTrials = BTreeMap<u16, Vec<Option<Vec<f32>>>>;

pub(crate) fn read_labels(path: &Path) -> Result<Ratings, StageError> {
    let df = scan(path)?
        .select([col("subject"), col("trial"), col("arousal"), col("valence")])
        .collect()
        .map_err(|e| polars_err(path, e))?;
    let e = |e: PolarsError| polars_err(path, e);
    let s = df.column("subject").map_err(e)?.u16().map_err(e)?;
    let t = df.column("trial").map_err(e)?.u16().map_err(e)?;
    let a = df.column("arousal").map_err(e)?.f32().map_err(e)?;
    let v = df.column("valence").map_err(e)?.f32().map_err(e)?;
    let mut out = HashMap::with_capacity(df.height());
    for i in 0..df.height() {
        match (s.get(i), t.get(i), a.get(i), v.get(i)) {
            (Some(s), Some(t), Some(a), Some(v)) if a.is_finite() && v.is_finite() => {
                out.insert((s, t), (a, v));
            }
            (s, t, ..) => {
                return Err(StageError::bad_file(
                    path,
                    format!(
                        "row {i} (subject {s:?}, trial {t:?}) has a missing or non-finite rating"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// One subject's selected channels: trial → samples per requested channel.
pub(crate) fn read_subject(
    path: &Path,
    subject: u16,
    names: &[&str],
) -> Result<SubjectTrials, StageError> {
    let mut pick = col("channel").eq(lit(names[0]));
    for n in &names[1..] {
        pick = pick.or(col("channel").eq(lit(*n)));
    }
    let df = scan(path)?
        .filter(col("subject").eq(lit(subject)).and(pick))
        .select([col("trial"), col("channel"), col("samples")])
        .collect()
        .map_err(|e| polars_err(path, e))?;
    let e = |e: PolarsError| polars_err(path, e);
    let trial = df.column("trial").map_err(e)?.u16().map_err(e)?;
    let channel = df.column("channel").map_err(e)?.str().map_err(e)?;
    let samples = df.column("samples").map_err(e)?.list().map_err(e)?;
    let mut out = SubjectTrials::new();
    for (i, s) in samples.series_iter().enumerate() {
        let (Some(t), Some(c), Some(s)) = (trial.get(i), channel.get(i), s) else {
            return Err(StageError::bad_file(
                path,
                format!("subject {subject}: row with a null trial, channel or samples"),
            ));
        };
        let Some(k) = names.iter().position(|n| *n == c) else {
            continue;
        };
        let values = s.f32().map_err(e)?;
        if values.null_count() > 0 {
            return Err(StageError::bad_file(
                path,
                format!("subject {subject} trial {t} channel {c}: null samples"),
            ));
        }
        let slot = &mut out.entry(t).or_insert_with(|| vec![None; names.len()])[k];
        if slot.is_some() {
            return Err(StageError::bad_file(
                path,
                format!("subject {subject} trial {t}: channel {c} appears twice"),
            ));
        }
        *slot = Some(values.into_no_null_iter().collect());
    }
    Ok(out)
}
