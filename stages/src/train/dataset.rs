//! The training data of one (fold, target) cell: `windows.parquet` + `splits.parquet`
//! → per-role (train / val / test) arrays of the requested modalities, z-scored per
//! channel with statistics of the **training role only** (docs/method.md, "Inputs").
//!
//! `windows.parquet` is streamed a record batch at a time and only the channels of the
//! requested modalities of windows that have a role in the fold are kept, so memory is
//! one copy of what training needs (not the whole table).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, UInt16Type, UInt8Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::stage::StageError;

/// Which binary label a model is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Arousal,
    Valence,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, StageError> {
        match s {
            "arousal" => Ok(Target::Arousal),
            "valence" => Ok(Target::Valence),
            other => Err(StageError::Param(format!(
                "parameter `target` must be arousal or valence, got {other:?}"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Arousal => "arousal",
            Target::Valence => "valence",
        }
    }
}

pub use crate::data::folds::Role;

/// A group of channels a network branch reads, found by the `kinds` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    Eeg,
    Eog,
}

impl Modality {
    pub fn kind(self) -> &'static str {
        match self {
            Modality::Eeg => "eeg",
            Modality::Eog => "eog",
        }
    }
}

/// File-level metadata of `windows.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowsMeta {
    pub channels: Vec<String>,
    /// "eeg" | "eog" | "other", one per channel.
    pub kinds: Vec<String>,
    /// Samples per channel per window (T).
    pub samples: usize,
    pub sample_rate: f32,
    pub dataset: String,
    /// The synthetic generator the data came from ("" for recorded data).
    pub generated_by: String,
}

impl WindowsMeta {
    /// Indices of the channels of `modality`, in table order.
    pub fn channels_of(&self, modality: Modality) -> Vec<usize> {
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.as_str() == modality.kind())
            .map(|(i, _)| i)
            .collect()
    }
}

/// Which window a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    pub subject: u16,
    pub trial: u16,
    pub window: u16,
}

/// The windows of one role: labels, ids and one array per requested modality,
/// each `n × channels × samples` row-major.
#[derive(Debug, Clone, Default)]
pub struct RoleSet {
    pub ids: Vec<WindowId>,
    pub labels: Vec<u8>,
    /// One per requested modality (same order as [`FoldData::modalities`]).
    pub views: Vec<Vec<f32>>,
}

impl RoleSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Per-channel z-score statistics (from the training role).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    pub mean: Vec<f32>,
    /// Population standard deviation; a constant channel gets 1 so it maps to 0.
    pub std: Vec<f32>,
}

/// Everything a training stage needs from the data tables for one cell.
#[derive(Debug, Clone)]
pub struct FoldData {
    pub meta: WindowsMeta,
    /// The evaluation protocol that made the splits (`splits.parquet`'s metadata).
    pub protocol: String,
    pub fold: u16,
    pub target: Target,
    pub modalities: Vec<Modality>,
    /// Table channel indices per modality.
    pub channels: Vec<Vec<usize>>,
    /// Statistics per modality, computed on the training role.
    pub stats: Vec<ChannelStats>,
    roles: [RoleSet; 3],
}

impl FoldData {
    pub fn role(&self, role: Role) -> &RoleSet {
        &self.roles[role.index()]
    }
    pub fn samples(&self) -> usize {
        self.meta.samples
    }
    /// Number of channels of the `m`-th requested modality.
    pub fn n_channels(&self, m: usize) -> usize {
        self.channels.get(m).map_or(0, Vec::len)
    }

    /// Copy the rows `idx` of role `role`, modality number `m`, into one contiguous
    /// `idx.len() × channels × samples` buffer.
    pub fn gather(&self, role: Role, m: usize, idx: &[usize]) -> Vec<f32> {
        let set = self.role(role);
        let row = self.n_channels(m) * self.samples();
        let view = &set.views[m];
        let mut out = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            out.extend_from_slice(&view[i * row..(i + 1) * row]);
        }
        out
    }

    /// Labels of rows `idx` of `role`.
    pub fn gather_labels(&self, role: Role, idx: &[usize]) -> Vec<u8> {
        let set = self.role(role);
        idx.iter().map(|&i| set.labels[i]).collect()
    }

    /// Read the tables for `fold` and `target`, keeping the channels of `modalities`.
    /// Errors name the file and what is wrong; a role without windows is an error for
    /// `train` and `test`, allowed (empty) for `val`.
    pub fn load(
        windows: &Path,
        splits: &Path,
        fold: u16,
        target: Target,
        modalities: &[Modality],
    ) -> Result<FoldData, StageError> {
        Self::load_subject(windows, splits, fold, target, modalities, None)
    }

    /// [`FoldData::load`] restricted to one subject's trials (per-subject models of
    /// the subject-dependent protocol) when `subject` is given.
    pub fn load_subject(
        windows: &Path,
        splits: &Path,
        fold: u16,
        target: Target,
        modalities: &[Modality],
        subject: Option<u16>,
    ) -> Result<FoldData, StageError> {
        let mut roles_of = read_splits(splits, fold)?;
        if let Some(s) = subject {
            roles_of.retain(|k, _| k.0 == s);
            if roles_of.is_empty() {
                return Err(StageError::bad_file(
                    splits,
                    format!("subject {s} has no trials in fold {fold}"),
                ));
            }
        }
        let mut reader = WindowsReader::open(windows)?;
        let meta = reader.meta.clone();
        let mut channels = Vec::new();
        for &m in modalities {
            let ch = meta.channels_of(m);
            if ch.is_empty() {
                return Err(StageError::bad_file(
                    windows,
                    format!(
                        "no {} channel in the table (kinds: {:?}); the model needs at least one",
                        m.kind(),
                        meta.kinds
                    ),
                ));
            }
            channels.push(ch);
        }
        let row_len = meta.channels.len() * meta.samples;
        let mut roles: [RoleSet; 3] = Default::default();
        for set in roles.iter_mut() {
            set.views = vec![Vec::new(); modalities.len()];
        }
        let mut seen = std::collections::HashSet::new();
        while let Some(batch) = reader.next_batch()? {
            for r in 0..batch.len() {
                let id = batch.ids[r];
                let Some(&role) = roles_of.get(&(id.subject, id.trial)) else {
                    continue;
                };
                if !seen.insert(id) {
                    return Err(StageError::bad_file(
                        windows,
                        format!(
                            "window {} of subject {} trial {} appears twice",
                            id.window, id.subject, id.trial
                        ),
                    ));
                }
                let data = &batch.data[r * row_len..(r + 1) * row_len];
                if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
                    let ch = bad / meta.samples;
                    return Err(StageError::bad_file(
                        windows,
                        format!(
                            "non-finite value ({}) in subject {} trial {} window {} channel {} sample {}",
                            data[bad],
                            id.subject,
                            id.trial,
                            id.window,
                            meta.channels.get(ch).map_or("?", String::as_str),
                            bad % meta.samples
                        ),
                    ));
                }
                let set = &mut roles[role.index()];
                set.ids.push(id);
                set.labels.push(match target {
                    Target::Arousal => batch.arousal[r],
                    Target::Valence => batch.valence[r],
                });
                for (m, ch) in channels.iter().enumerate() {
                    for &c in ch {
                        set.views[m]
                            .extend_from_slice(&data[c * meta.samples..(c + 1) * meta.samples]);
                    }
                }
            }
        }
        for role in [Role::Train, Role::Test] {
            if roles[role.index()].is_empty() {
                return Err(StageError::Data(format!(
                    "fold {fold} has no {} windows: no trial of {} with role {} in {} has windows",
                    role.as_str(),
                    windows.display(),
                    role.as_str(),
                    splits.display()
                )));
            }
        }
        let mut stats = Vec::new();
        for (m, ch) in channels.iter().enumerate() {
            let s = channel_stats(&roles[0].views[m], ch.len(), meta.samples);
            for set in roles.iter_mut() {
                apply_zscore(&mut set.views[m], &s, meta.samples);
            }
            stats.push(s);
        }
        let protocol = crate::data::provenance::parquet_metadata(splits)?
            .remove("protocol")
            .unwrap_or_default();
        Ok(FoldData {
            meta,
            protocol,
            fold,
            target,
            modalities: modalities.to_vec(),
            channels,
            stats,
            roles,
        })
    }
}

/// Mean and population std per channel of an `n × ch × t` buffer, accumulated in f64.
pub fn channel_stats(view: &[f32], ch: usize, t: usize) -> ChannelStats {
    let n = view.len().checked_div(ch * t).unwrap_or(0);
    let mut mean = vec![0f64; ch];
    for row in view.chunks_exact(ch * t.max(1)) {
        for (c, m) in mean.iter_mut().enumerate() {
            *m += row[c * t..(c + 1) * t]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
        }
    }
    let count = (n * t).max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= count);
    let mut var = vec![0f64; ch];
    for row in view.chunks_exact(ch * t.max(1)) {
        for (c, v) in var.iter_mut().enumerate() {
            *v += row[c * t..(c + 1) * t]
                .iter()
                .map(|&x| (x as f64 - mean[c]).powi(2))
                .sum::<f64>();
        }
    }
    let std = var
        .iter()
        .map(|v| {
            let s = (v / count).sqrt();
            if s > 1e-12 {
                s as f32
            } else {
                1.0
            }
        })
        .collect();
    ChannelStats {
        mean: mean.into_iter().map(|m| m as f32).collect(),
        std,
    }
}

/// z-score an `n × ch × t` buffer in place.
pub fn apply_zscore(view: &mut [f32], stats: &ChannelStats, t: usize) {
    let ch = stats.mean.len();
    if ch * t == 0 {
        return;
    }
    for row in view.chunks_exact_mut(ch * t) {
        for c in 0..ch {
            let (m, s) = (stats.mean[c], stats.std[c]);
            for v in &mut row[c * t..(c + 1) * t] {
                *v = (*v - m) / s;
            }
        }
    }
}

/// `splits.parquet` for one fold: (subject, trial) → role.
pub fn read_splits(path: &Path, fold: u16) -> Result<HashMap<(u16, u16), Role>, StageError> {
    let builder = open_parquet(path)?;
    let reader = builder
        .build()
        .map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
    let mut out = HashMap::new();
    let mut folds_seen = std::collections::BTreeSet::new();
    for batch in reader {
        let batch =
            batch.map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        let f = u16_column(path, &batch, "fold")?;
        let s = u16_column(path, &batch, "subject")?;
        let t = u16_column(path, &batch, "trial")?;
        let roles = string_column(path, &batch, "role")?;
        for i in 0..batch.num_rows() {
            folds_seen.insert(f[i]);
            if f[i] != fold {
                continue;
            }
            let role = Role::parse(&roles[i]).ok_or_else(|| {
                StageError::bad_file(
                    path,
                    format!("row {i}: role {:?} is not train, val or test", roles[i]),
                )
            })?;
            if out
                .insert((s[i], t[i]), role)
                .is_some_and(|old| old != role)
            {
                return Err(StageError::bad_file(
                    path,
                    format!("fold {fold}: subject {} trial {} has two roles", s[i], t[i]),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(StageError::bad_file(
            path,
            format!("fold {fold} is not in the table (folds present: {folds_seen:?})"),
        ));
    }
    Ok(out)
}

fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, StageError> {
    let file = File::open(path).map_err(|e| StageError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| StageError::bad_file(path, format!("not a readable Parquet file: {e}")))
}

fn column<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, StageError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| StageError::bad_file(path, format!("missing column `{name}`")))?;
    if col.null_count() > 0 {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` has missing values"),
        ));
    }
    Ok(col)
}

fn cast_to(path: &Path, col: &ArrayRef, name: &str, to: &DataType) -> Result<ArrayRef, StageError> {
    if !col.data_type().is_integer() {
        return Err(StageError::bad_file(
            path,
            format!(
                "column `{name}` has type {}, expected {to}",
                col.data_type()
            ),
        ));
    }
    let cast = arrow::compute::cast(col, to)
        .map_err(|e| StageError::bad_file(path, format!("column `{name}`: {e}")))?;
    if cast.null_count() > 0 {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` has values outside {to}"),
        ));
    }
    Ok(cast)
}

fn u16_column(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<u16>, StageError> {
    let col = cast_to(path, column(path, batch, name)?, name, &DataType::UInt16)?;
    Ok(col.as_primitive::<UInt16Type>().values().to_vec())
}

fn u8_column(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<u8>, StageError> {
    let col = cast_to(path, column(path, batch, name)?, name, &DataType::UInt8)?;
    let v = col.as_primitive::<UInt8Type>().values().to_vec();
    if let Some(bad) = v.iter().find(|&&x| x > 1) {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` must hold binary labels 0/1, found {bad}"),
        ));
    }
    Ok(v)
}

fn string_column(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<String>, StageError> {
    let col = column(path, batch, name)?;
    let strings: Vec<String> = match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        other => {
            return Err(StageError::bad_file(
                path,
                format!("column `{name}` has type {other}, expected a string"),
            ))
        }
    };
    Ok(strings)
}

/// One decoded record batch of `windows.parquet`.
struct WindowsBatch {
    ids: Vec<WindowId>,
    arousal: Vec<u8>,
    valence: Vec<u8>,
    /// `len × channels × samples`.
    data: Vec<f32>,
}

impl WindowsBatch {
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Streams `windows.parquet` a record batch at a time, checking the schema.
struct WindowsReader {
    path: PathBuf,
    meta: WindowsMeta,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

impl WindowsReader {
    fn open(path: &Path) -> Result<WindowsReader, StageError> {
        let builder = open_parquet(path)?;
        let meta = read_windows_meta(
            path,
            builder.metadata().file_metadata().key_value_metadata(),
        )?;
        let reader = builder
            .with_batch_size(256)
            .build()
            .map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        Ok(WindowsReader {
            path: path.to_path_buf(),
            meta,
            reader,
        })
    }

    fn next_batch(&mut self) -> Result<Option<WindowsBatch>, StageError> {
        let path = self.path.as_path();
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch =
            batch.map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        let subject = u16_column(path, &batch, "subject")?;
        let trial = u16_column(path, &batch, "trial")?;
        let window = u16_column(path, &batch, "window")?;
        let arousal = u8_column(path, &batch, "arousal")?;
        let valence = u8_column(path, &batch, "valence")?;
        let row_len = self.meta.channels.len() * self.meta.samples;
        let col = column(path, &batch, "data")?;
        let (values, width): (&dyn Array, Option<usize>) = match col.data_type() {
            DataType::FixedSizeList(_, n) => {
                let l = col.as_fixed_size_list();
                (l.values().as_ref(), Some(*n as usize))
            }
            DataType::List(_) => (col.as_list::<i32>().values().as_ref(), None),
            DataType::LargeList(_) => (col.as_list::<i64>().values().as_ref(), None),
            other => {
                return Err(StageError::bad_file(
                    path,
                    format!("column `data` has type {other}, expected a fixed-size list of f32"),
                ))
            }
        };
        let floats = values.as_primitive_opt::<Float32Type>().ok_or_else(|| {
            StageError::bad_file(
                path,
                format!("column `data` holds {}, expected f32", values.data_type()),
            )
        })?;
        if floats.null_count() > 0 {
            return Err(StageError::bad_file(
                path,
                "column `data` has missing samples",
            ));
        }
        if let Some(w) = width {
            if w != row_len {
                return Err(StageError::bad_file(
                    path,
                    format!(
                        "column `data` holds {w} values per window, but the metadata says {} channels × {} samples = {row_len}",
                        self.meta.channels.len(),
                        self.meta.samples
                    ),
                ));
            }
        }
        // Variable-length lists: check every row's length through the offsets.
        let data: Vec<f32> = match col.data_type() {
            DataType::FixedSizeList(..) => {
                let l = col.as_fixed_size_list();
                let start = l.offset() * row_len;
                floats.values()[start..start + l.len() * row_len].to_vec()
            }
            _ => {
                let mut out = Vec::with_capacity(batch.num_rows() * row_len);
                for r in 0..batch.num_rows() {
                    let (a, b) = match col.data_type() {
                        DataType::List(_) => {
                            let o = col.as_list::<i32>().value_offsets();
                            (o[r] as usize, o[r + 1] as usize)
                        }
                        _ => {
                            let o = col.as_list::<i64>().value_offsets();
                            (o[r] as usize, o[r + 1] as usize)
                        }
                    };
                    if b - a != row_len {
                        return Err(StageError::bad_file(
                            path,
                            format!(
                                "subject {} trial {} window {}: {} values, expected {} channels × {} samples = {row_len}",
                                subject[r], trial[r], window[r], b - a,
                                self.meta.channels.len(), self.meta.samples
                            ),
                        ));
                    }
                    out.extend_from_slice(&floats.values()[a..b]);
                }
                out
            }
        };
        let ids = (0..batch.num_rows())
            .map(|r| WindowId {
                subject: subject[r],
                trial: trial[r],
                window: window[r],
            })
            .collect();
        Ok(Some(WindowsBatch {
            ids,
            arousal,
            valence,
            data,
        }))
    }
}

fn read_windows_meta(
    path: &Path,
    kv: Option<&Vec<parquet::file::metadata::KeyValue>>,
) -> Result<WindowsMeta, StageError> {
    let get = |key: &str| -> Option<String> {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let need = |key: &str| {
        get(key).ok_or_else(|| {
            StageError::bad_file(
                path,
                format!("missing key-value metadata `{key}` (written by the windows stage)"),
            )
        })
    };
    let list = |key: &str, text: &str| -> Result<Vec<String>, StageError> {
        serde_json::from_str::<Vec<String>>(text).map_err(|e| {
            StageError::bad_file(
                path,
                format!("metadata `{key}` is not a JSON list of strings: {e}"),
            )
        })
    };
    let channels = list("channels", &need("channels")?)?;
    let kinds = match get("kinds") {
        Some(text) => list("kinds", &text)?,
        // Older tables: derive the kind from the channel name.
        None => channels
            .iter()
            .map(|c| crate::data::tables::channel_kind(c).to_string())
            .collect(),
    };
    if kinds.len() != channels.len() {
        return Err(StageError::bad_file(
            path,
            format!(
                "metadata lists {} channels but {} kinds",
                channels.len(),
                kinds.len()
            ),
        ));
    }
    let samples_text = need("samples")?;
    let samples: usize = samples_text.trim().parse().map_err(|_| {
        StageError::bad_file(
            path,
            format!("metadata `samples` = {samples_text:?} is not an integer"),
        )
    })?;
    if samples == 0 || channels.is_empty() {
        return Err(StageError::bad_file(
            path,
            "metadata says windows have no samples or no channels",
        ));
    }
    let sample_rate = match get("sample_rate") {
        Some(t) => t.trim().parse().map_err(|_| {
            StageError::bad_file(
                path,
                format!("metadata `sample_rate` = {t:?} is not a number"),
            )
        })?,
        None => 0.0,
    };
    Ok(WindowsMeta {
        channels,
        kinds,
        samples,
        sample_rate,
        dataset: get("dataset").unwrap_or_default(),
        generated_by: get(crate::data::provenance::KEY).unwrap_or_default(),
    })
}

/// Seeded shuffled mini-batches of `0..n` (the last one may be smaller).
pub fn shuffled_batches(n: usize, batch: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    idx.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Batches of `0..n` in order (for evaluation).
pub fn ordered_batches(n: usize, batch: usize) -> Vec<Vec<usize>> {
    (0..n)
        .collect::<Vec<_>>()
        .chunks(batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::fixture::{write_splits, write_windows, SplitRow, WindowsFixture};
    use rand::SeedableRng;

    fn small() -> WindowsFixture {
        // 2 subjects × 3 trials × 2 windows, channels: 2 EEG, 1 other, 2 EOG, T = 4.
        WindowsFixture::random(2, 3, 2, &["Fp1", "AF3", "Status", "hEOG", "vEOG"], 4, 1)
    }

    fn splits_for(fix: &WindowsFixture) -> Vec<SplitRow> {
        let mut rows = Vec::new();
        for s in 1..=fix.subjects {
            for t in 1..=fix.trials {
                // fold 0: trial 1 test, trial 2 val, trial 3 train; fold 1: everything train except trial 3 test.
                let r0 = match t {
                    1 => "test",
                    2 => "val",
                    _ => "train",
                };
                let r1 = if t == 3 { "test" } else { "train" };
                rows.push(SplitRow {
                    fold: 0,
                    subject: s,
                    trial: t,
                    role: r0.into(),
                });
                rows.push(SplitRow {
                    fold: 1,
                    subject: s,
                    trial: t,
                    role: r1.into(),
                });
            }
        }
        rows
    }

    #[test]
    fn loads_roles_channels_and_training_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let d =
            FoldData::load(&w, &s, 0, Target::Valence, &[Modality::Eeg, Modality::Eog]).unwrap();
        assert_eq!(d.channels, vec![vec![0, 1], vec![3, 4]]);
        assert_eq!(d.role(Role::Train).len(), 4);
        assert_eq!(d.role(Role::Val).len(), 4);
        assert_eq!(d.role(Role::Test).len(), 4);
        assert!(d.role(Role::Test).ids.iter().all(|id| id.trial == 1));
        // labels come from the valence column
        for (id, &y) in d
            .role(Role::Train)
            .ids
            .iter()
            .zip(&d.role(Role::Train).labels)
        {
            assert_eq!(y, fix.valence_of(id.subject, id.trial));
        }
        // EOG channel 1 (= table channel 4) of the first test window, z-scored with
        // statistics of the training windows (trial 3) only.
        let train_vals: Vec<f64> = fix
            .rows()
            .filter(|r| r.trial == 3)
            .flat_map(|r| {
                fix.channel(&r, 4)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mean = train_vals.iter().sum::<f64>() / train_vals.len() as f64;
        let std = (train_vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / train_vals.len() as f64)
            .sqrt();
        let id = d.role(Role::Test).ids[0];
        let raw = fix.channel(&fix.row_of(id), 4);
        let got = &d.role(Role::Test).views[1][4..8];
        for (g, r) in got.iter().zip(raw) {
            assert!(
                (*g as f64 - (*r as f64 - mean) / std).abs() < 1e-4,
                "{g} vs {r}"
            );
        }
        // training role is standardised
        let s1 = channel_stats(&d.role(Role::Train).views[0], 2, 4);
        for (m, s) in s1.mean.iter().zip(&s1.std) {
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4);
        }
        // gather
        let g = d.gather(Role::Test, 1, &[1, 0]);
        assert_eq!(&g[8..16], &d.role(Role::Test).views[1][0..8]);
    }

    #[test]
    fn missing_fold_channel_and_nan_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let e = FoldData::load(&w, &s, 7, Target::Arousal, &[Modality::Eog])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fold 7 is not in the table") && e.contains("splits.parquet"),
            "{e}"
        );
        let fix2 = WindowsFixture::random(1, 3, 1, &["Fp1", "AF3"], 4, 1);
        write_windows(&w, &fix2).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eog])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no eog channel"), "{e}");
        fix.data[7] = f32::NAN;
        write_windows(&w, &fix).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("non-finite") && e.contains("windows.parquet"),
            "{e}"
        );
        std::fs::write(&w, b"not parquet").unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a readable Parquet file"), "{e}");
        let e = FoldData::load(
            &dir.path().join("nope.parquet"),
            &s,
            0,
            Target::Arousal,
            &[Modality::Eeg],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.parquet"), "{e}");
    }

    #[test]
    fn wrong_width_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut fix = small();
        let (w, s) = (
            dir.path().join("windows.parquet"),
            dir.path().join("splits.parquet"),
        );
        fix.samples_meta_override = Some(5);
        write_windows(&w, &fix).unwrap();
        write_splits(&s, &splits_for(&fix)).unwrap();
        let e = FoldData::load(&w, &s, 0, Target::Arousal, &[Modality::Eeg])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("holds 20 values per window") && e.contains("25"),
            "{e}"
        );
    }

    #[test]
    fn batches_are_seeded_permutations() {
        let a = shuffled_batches(10, 4, &mut StdRng::seed_from_u64(3));
        let b = shuffled_batches(10, 4, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_ne!(a, shuffled_batches(10, 4, &mut StdRng::seed_from_u64(4)));
    }
}
