//! `windows`: recordings + labels → fixed-length, labelled windows
//! (`windows.parquet`, the contract in `tables.rs` and docs/data.md).
//!
//! Per trial: pick the requested channels by name (EEG group, then EOG group),
//! handle the pre-trial baseline (`baseline_s`, default 3 s = DEAP's; `baseline:
//! drop` cuts it off, `subtract-mean` first subtracts each channel's baseline mean
//! from the rest), then cut windows of `window_s` (4 s) with `overlap` (fraction
//! of a window shared by neighbours, 0 by default); a trial's tail shorter than a
//! window is dropped. Labels: `rating > threshold` (5) → 1.
//!
//! Reads with polars, one subject at a time (a predicate on `subject` that the
//! Parquet statistics turn into skipped row groups), so a DEAP-sized recordings
//! table is never in memory whole; writes with arrow/parquet, a row group per
//! 256 windows. Normalisation is left to the training stages (training-fold
//! statistics). The `kinds` metadata gives each channel's group: `eeg` for
//! `eeg_channels`, `eog` for `eog_channels`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListBuilder, Float32Builder, RecordBatch, UInt16Builder, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use serde_json::{json, Map, Value};

use crate::data::channels::{METHOD_EEG, METHOD_EOG};
use crate::data::provenance;
use crate::data::tables;
use crate::data::tables::read::{read_index, read_labels, read_subject};
use crate::params::ParamSchema;
use crate::stage::{Context, Outcome, Stage, StageError};

pub mod reader;

/// Rows per Parquet row group of `windows.parquet`.
const ROW_GROUP: usize = 256;

/// How the pre-trial baseline is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    Drop,
    SubtractMean,
}

crate::choice_param!(Baseline { Drop => "drop", SubtractMean => "subtract-mean" });

crate::stage_params! {
    /// The stage's parameters.
    pub struct WindowSpec {
        /// EEG channels, in this order (default: the method's 28)
        eeg_channels: Vec<String> = METHOD_EEG.iter().map(|s| s.to_string()).collect();
        /// EOG channels, after the EEG ones
        eog_channels: Vec<String> = METHOD_EOG.iter().map(|s| s.to_string()).collect();
        /// seconds of pre-trial baseline at the start of each trial
        baseline_s: f64 = 3.0;
        /// drop the baseline, or subtract each channel's baseline mean and then drop it
        baseline: Baseline = Baseline::Drop;
        /// window length in seconds
        window_s: f64 = 4.0;
        /// fraction of a window shared with the next, in [0, 1)
        overlap: f64 = 0.0;
        /// a rating above this is high (1)
        threshold: f64 = 5.0;
    }
}

impl Default for WindowSpec {
    fn default() -> Self {
        crate::params::ParamSet::defaults()
    }
}

impl WindowSpec {
    fn check(&self) -> Result<(), StageError> {
        let bad = |m: String| Err(StageError::Param(m));
        if self.eeg_channels.is_empty() && self.eog_channels.is_empty() {
            return bad("eeg_channels and eog_channels are both empty: nothing to window".into());
        }
        let mut seen = BTreeSet::new();
        for c in self.eeg_channels.iter().chain(&self.eog_channels) {
            if !seen.insert(c) {
                return bad(format!("channel {c} is asked for twice"));
            }
        }
        if !(self.window_s > 0.0 && self.window_s.is_finite()) {
            return bad(format!("window_s must be > 0, got {}", self.window_s));
        }
        if !(0.0..1.0).contains(&self.overlap) {
            return bad(format!("overlap must be in [0, 1), got {}", self.overlap));
        }
        if !(self.baseline_s >= 0.0 && self.baseline_s.is_finite()) {
            return bad(format!("baseline_s must be >= 0, got {}", self.baseline_s));
        }
        if !self.threshold.is_finite() {
            return bad(format!(
                "threshold must be a number, got {}",
                self.threshold
            ));
        }
        Ok(())
    }

    fn channels(&self) -> Vec<(&str, &'static str)> {
        self.eeg_channels
            .iter()
            .map(|c| (c.as_str(), "eeg"))
            .chain(self.eog_channels.iter().map(|c| (c.as_str(), "eog")))
            .collect()
    }

    /// `(baseline, window, step)` in samples at `rate`.
    pub fn samples(&self, rate: f64) -> Result<(usize, usize, usize), StageError> {
        let window = (self.window_s * rate).round() as usize;
        if window == 0 {
            return Err(StageError::Param(format!(
                "window_s {} s is less than one sample at {rate} Hz",
                self.window_s
            )));
        }
        let step = ((window as f64) * (1.0 - self.overlap)).round().max(1.0) as usize;
        Ok(((self.baseline_s * rate).round() as usize, window, step))
    }
}

/// The windows of one trial: `channels[c]` all of one length.
/// Returns the start sample (after the baseline) of each window.
pub fn window_starts(len: usize, baseline: usize, window: usize, step: usize) -> Vec<usize> {
    if len < baseline + window {
        return Vec::new();
    }
    (0..=(len - baseline - window) / step)
        .map(|w| baseline + w * step)
        .collect()
}

/// Streams rows of `windows.parquet`.
pub(crate) struct WindowsWriter {
    path: std::path::PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    width: i32,
    subject: UInt16Builder,
    trial: UInt16Builder,
    window: UInt16Builder,
    arousal: UInt8Builder,
    valence: UInt8Builder,
    arousal_rating: Float32Builder,
    valence_rating: Float32Builder,
    data: FixedSizeListBuilder<Float32Builder>,
    rows: usize,
}

impl WindowsWriter {
    pub(crate) fn create(
        path: &Path,
        width: usize,
        metadata: Vec<(&str, String)>,
    ) -> Result<Self, StageError> {
        let width = i32::try_from(width)
            .map_err(|_| StageError::Param(format!("a window of {width} values is too large")))?;
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("subject", DataType::UInt16, false),
            Field::new("trial", DataType::UInt16, false),
            Field::new("window", DataType::UInt16, false),
            Field::new("arousal", DataType::UInt8, false),
            Field::new("valence", DataType::UInt8, false),
            Field::new("arousal_rating", DataType::Float32, false),
            Field::new("valence_rating", DataType::Float32, false),
            Field::new("data", DataType::FixedSizeList(item.clone(), width), false),
        ]));
        let props = crate::data::tables::zstd_props(&metadata).build();
        let file = File::create(path).map_err(|e| StageError::io(path, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| StageError::bad_file(path, format!("writing Parquet: {e}")))?;
        Ok(WindowsWriter {
            path: path.to_path_buf(),
            writer,
            schema,
            width,
            subject: UInt16Builder::new(),
            trial: UInt16Builder::new(),
            window: UInt16Builder::new(),
            arousal: UInt8Builder::new(),
            valence: UInt8Builder::new(),
            arousal_rating: Float32Builder::new(),
            valence_rating: Float32Builder::new(),
            data: FixedSizeListBuilder::new(Float32Builder::new(), width).with_field(item),
            rows: 0,
        })
    }

    /// `data`: the window's `C × T` values, channel-major.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        subject: u16,
        trial: u16,
        window: u16,
        labels: (u8, u8),
        ratings: (f32, f32),
        data: &[f32],
    ) -> Result<(), StageError> {
        debug_assert_eq!(data.len(), self.width as usize);
        self.subject.append_value(subject);
        self.trial.append_value(trial);
        self.window.append_value(window);
        self.arousal.append_value(labels.0);
        self.valence.append_value(labels.1);
        self.arousal_rating.append_value(ratings.0);
        self.valence_rating.append_value(ratings.1);
        self.data.values().append_slice(data);
        self.data.append(true);
        self.rows += 1;
        if self.rows >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StageError> {
        if self.rows == 0 {
            return Ok(());
        }
        let err = |e: &dyn std::fmt::Display| {
            StageError::bad_file(&self.path, format!("writing Parquet: {e}"))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.subject.finish()),
            Arc::new(self.trial.finish()),
            Arc::new(self.window.finish()),
            Arc::new(self.arousal.finish()),
            Arc::new(self.valence.finish()),
            Arc::new(self.arousal_rating.finish()),
            Arc::new(self.valence_rating.finish()),
            Arc::new(self.data.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| err(&e))?;
        self.writer.write(&batch).map_err(|e| err(&e))?;
        self.writer.flush().map_err(|e| err(&e))?;
        self.rows = 0;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), StageError> {
        self.flush()?;
        let path = self.path.clone();
        self.writer
            .close()
            .map_err(|e| StageError::bad_file(&path, format!("writing Parquet: {e}")))?;
        Ok(())
    }
}

/// What [`make_windows`] counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    pub subjects: usize,
    pub trials: usize,
    pub windows: usize,
    pub trials_without_windows: usize,
    pub arousal_high: usize,
    pub valence_high: usize,
    pub samples: usize,
    pub sample_rate: f64,
}

/// Read `recordings` + `labels`, write `out` (`windows.parquet`).
pub fn make_windows(
    recordings: &Path,
    labels: &Path,
    out: &Path,
    spec: &WindowSpec,
    mut on_subject: impl FnMut(usize, usize) -> Result<(), StageError>,
) -> Result<WindowStats, StageError> {
    spec.check()?;
    let index = read_index(recordings)?;
    let wanted = spec.channels();
    let missing: Vec<&str> = wanted
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !index.channels.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(StageError::Data(format!(
            "{}: no channel {} (asked for by eeg_channels/eog_channels); available: {}",
            recordings.display(),
            missing.join(", "),
            index.order.join(", ")
        )));
    }
    let rates: BTreeSet<u32> = wanted
        .iter()
        .flat_map(|(c, _)| index.channels[*c].iter().copied())
        .collect();
    let rate = match rates.iter().next() {
        Some(&r) if rates.len() == 1 => f64::from(f32::from_bits(r)),
        _ => {
            let shown: Vec<String> = rates
                .iter()
                .map(|r| f32::from_bits(*r).to_string())
                .collect();
            return Err(StageError::Data(format!(
                "{}: the selected channels have different sample rates ({} Hz); resample them at ingestion",
                recordings.display(),
                shown.join(", ")
            )));
        }
    };
    let (base, window, step) = spec.samples(rate)?;
    let names: Vec<&str> = wanted.iter().map(|(c, _)| *c).collect();
    let kinds: Vec<&str> = wanted.iter().map(|(_, k)| *k).collect();
    let ratings = read_labels(labels)?;
    let metadata = vec![
        ("channels", json!(names).to_string()),
        ("kinds", json!(kinds).to_string()),
        ("samples", window.to_string()),
        ("sample_rate", rate.to_string()),
        ("dataset", index.dataset.clone()),
        (
            provenance::KEY,
            provenance::parquet_metadata(recordings)?
                .remove(provenance::KEY)
                .unwrap_or_default(),
        ),
        ("window_s", spec.window_s.to_string()),
        ("overlap", spec.overlap.to_string()),
        ("threshold", spec.threshold.to_string()),
        (
            "baseline",
            format!(
                "{} s {}",
                spec.baseline_s,
                if spec.baseline == Baseline::Drop {
                    "dropped"
                } else {
                    "mean subtracted, then dropped"
                }
            ),
        ),
    ];
    let c = names.len();
    let mut writer = WindowsWriter::create(out, c * window, metadata)?;
    let mut stats = WindowStats {
        samples: window,
        sample_rate: rate,
        ..WindowStats::default()
    };
    let mut buf = vec![0.0f32; c * window];
    for (done, &subject) in index.subjects.iter().enumerate() {
        let trials = read_subject(recordings, subject, &names)?;
        for (trial, chans) in trials {
            let mut data: Vec<Vec<f32>> = Vec::with_capacity(c);
            for (k, ch) in chans.into_iter().enumerate() {
                data.push(ch.ok_or_else(|| {
                    StageError::bad_file(
                        recordings,
                        format!(
                            "subject {subject} trial {trial} has no channel {}",
                            names[k]
                        ),
                    )
                })?);
            }
            let len = data[0].len();
            if let Some(k) = data.iter().position(|d| d.len() != len) {
                return Err(StageError::bad_file(
                    recordings,
                    format!(
                        "subject {subject} trial {trial}: channel {} has {} samples, {} has {len}",
                        names[k],
                        data[k].len(),
                        names[0]
                    ),
                ));
            }
            if let Some(k) = data.iter().position(|d| d.iter().any(|v| !v.is_finite())) {
                return Err(StageError::bad_file(
                    recordings,
                    format!(
                        "subject {subject} trial {trial}: channel {} has NaN or infinite samples",
                        names[k]
                    ),
                ));
            }
            let &(a, v) = ratings.get(&(subject, trial)).ok_or_else(|| {
                StageError::bad_file(
                    labels,
                    format!("no ratings for subject {subject} trial {trial}"),
                )
            })?;
            if spec.baseline == Baseline::SubtractMean && base > 0 && len >= base {
                for d in &mut data {
                    let mean =
                        (d[..base].iter().map(|&x| f64::from(x)).sum::<f64>() / base as f64) as f32;
                    for x in &mut d[base..] {
                        *x -= mean;
                    }
                }
            }
            let starts = window_starts(len, base, window, step);
            if starts.len() > usize::from(u16::MAX) + 1 {
                return Err(StageError::Data(format!(
                    "subject {subject} trial {trial}: {} windows do not fit the u16 window index",
                    starts.len()
                )));
            }
            stats.trials += 1;
            if starts.is_empty() {
                stats.trials_without_windows += 1;
            }
            let labels_bin = (
                u8::from(f64::from(a) > spec.threshold),
                u8::from(f64::from(v) > spec.threshold),
            );
            for (w, &start) in starts.iter().enumerate() {
                for (k, d) in data.iter().enumerate() {
                    buf[k * window..(k + 1) * window].copy_from_slice(&d[start..start + window]);
                }
                writer.push(subject, trial, w as u16, labels_bin, (a, v), &buf)?;
                stats.windows += 1;
                stats.arousal_high += usize::from(labels_bin.0);
                stats.valence_high += usize::from(labels_bin.1);
            }
        }
        writer.flush()?;
        stats.subjects += 1;
        on_subject(done + 1, index.subjects.len())?;
    }
    writer.finish()?;
    if stats.windows == 0 {
        return Err(StageError::Data(format!(
            "{}: no trial is long enough for one {} s window after a {} s baseline",
            recordings.display(),
            spec.window_s,
            spec.baseline_s
        )));
    }
    Ok(stats)
}

pub struct Windows;

impl Stage for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "selects channels, removes the pre-trial baseline, cuts labelled fixed-length windows -> windows.parquet"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<WindowSpec>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![tables::RECORDINGS, tables::LABELS]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![tables::WINDOWS]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let spec: WindowSpec = ctx.params()?;
        let recordings = ctx.input_file(tables::RECORDINGS)?;
        let labels = ctx.input_file(tables::LABELS)?;
        ctx.progress.start("subjects", 0);
        let stats = make_windows(
            &recordings,
            &labels,
            &ctx.out_dir.join(tables::WINDOWS),
            &spec,
            |done, total| {
                ctx.check_cancelled()?;
                ctx.progress
                    .update(done as u64, &format!("subject {done}/{total}"));
                Ok(())
            },
        )?;
        let frac = |n: usize| (n as f64 / stats.windows.max(1) as f64 * 1e4).round() / 1e4;
        let mut m = Map::new();
        m.insert("windows".into(), Value::from(stats.windows));
        m.insert("trials".into(), Value::from(stats.trials));
        m.insert("subjects".into(), Value::from(stats.subjects));
        m.insert(
            "trials_without_windows".into(),
            Value::from(stats.trials_without_windows),
        );
        m.insert(
            "channels".into(),
            Value::from(spec.eeg_channels.len() + spec.eog_channels.len()),
        );
        m.insert("samples".into(), Value::from(stats.samples));
        m.insert("sample_rate".into(), Value::from(stats.sample_rate));
        m.insert(
            "class_balance".into(),
            json!({
                "arousal": {"high": stats.arousal_high, "low": stats.windows - stats.arousal_high, "high_fraction": frac(stats.arousal_high)},
                "valence": {"high": stats.valence_high, "low": stats.windows - stats.valence_high, "high_fraction": frac(stats.valence_high)},
            }),
        );
        Ok(Outcome::with_metrics(m))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::tables::read::scan;
    use crate::data::tables::{ChannelRecord, LabelRecord, RecordingsWriter};
    use crate::test_support::{context, parquet_metadata};

    pub(crate) const CHANNELS: [&str; 5] = ["Fp1", "F3", "hEOG", "vEOG", "GSR"];

    /// Sample `i` of channel `c` in (subject, trial): exact in f32, unique.
    pub(crate) fn value(subject: u16, trial: u16, c: usize, i: usize) -> f32 {
        (f32::from(subject) * 100.0 + f32::from(trial)) * 1000.0 + (c * 100 + i) as f32
    }

    /// Recordings at 4 Hz: subjects 1 and 3, trials 1..=3, `len` samples each;
    /// labels: arousal = trial + 3 (4, 5, 6), valence = 6 - trial (5, 4, 3).
    pub(crate) fn write_tables(dir: &Path, len: usize) {
        let mut w = RecordingsWriter::create(&dir.join(tables::RECORDINGS), "test", &[]).unwrap();
        let mut labels = Vec::new();
        for subject in [1u16, 3] {
            for trial in 1u16..=3 {
                for (c, name) in CHANNELS.iter().enumerate() {
                    let samples: Vec<f32> = (0..len).map(|i| value(subject, trial, c, i)).collect();
                    w.push(&ChannelRecord {
                        subject,
                        trial,
                        channel: name,
                        kind: tables::channel_kind(name),
                        sample_rate: 4.0,
                        samples: &samples,
                    });
                }
                labels.push(LabelRecord {
                    subject,
                    trial,
                    valence: 6.0 - f32::from(trial),
                    arousal: f32::from(trial) + 3.0,
                    dominance: None,
                    liking: None,
                });
            }
            w.flush().unwrap();
        }
        w.finish().unwrap();
        tables::write_labels(&dir.join(tables::LABELS), "test", &labels).unwrap();
    }

    pub(crate) struct Row {
        pub subject: u16,
        pub trial: u16,
        pub window: u16,
        pub arousal: u8,
        pub valence: u8,
        pub arousal_rating: f32,
        pub data: Vec<f32>,
    }

    pub(crate) fn read_rows(path: &Path) -> Vec<Row> {
        let df = scan(path).unwrap().collect().unwrap();
        let g = |n: &str| df.column(n).unwrap().clone();
        let (s, t, w, a, v, ar) = (
            g("subject"),
            g("trial"),
            g("window"),
            g("arousal"),
            g("valence"),
            g("arousal_rating"),
        );
        let data = df.column("data").unwrap().array().unwrap().clone();
        let mut out = Vec::new();
        for (i, d) in data.series_iter().enumerate() {
            out.push(Row {
                subject: s.u16().unwrap().get(i).unwrap(),
                trial: t.u16().unwrap().get(i).unwrap(),
                window: w.u16().unwrap().get(i).unwrap(),
                arousal: a.u8().unwrap().get(i).unwrap(),
                valence: v.u8().unwrap().get(i).unwrap(),
                arousal_rating: ar.f32().unwrap().get(i).unwrap(),
                data: d.unwrap().f32().unwrap().into_no_null_iter().collect(),
            });
        }
        out
    }

    fn spec(eeg: &[&str], eog: &[&str]) -> WindowSpec {
        WindowSpec {
            eeg_channels: eeg.iter().map(|s| s.to_string()).collect(),
            eog_channels: eog.iter().map(|s| s.to_string()).collect(),
            baseline_s: 1.0,
            window_s: 1.0,
            ..WindowSpec::default()
        }
    }

    #[test]
    fn window_starts_follow_baseline_window_and_step() {
        assert_eq!(window_starts(14, 4, 4, 4), vec![4, 8]);
        assert_eq!(window_starts(14, 4, 4, 2), vec![4, 6, 8, 10]);
        assert_eq!(window_starts(7, 4, 4, 4), Vec::<usize>::new());
        assert_eq!(window_starts(8, 4, 4, 4), vec![4]);
        // DEAP: 63 s at 128 Hz, 3 s baseline, 4 s windows -> 15 windows.
        let (b, w, s) = WindowSpec::default().samples(128.0).unwrap();
        assert_eq!((b, w, s), (384, 512, 512));
        assert_eq!(window_starts(8064, b, w, s).len(), 15);
    }

    #[test]
    fn windows_select_channels_in_order_drop_baseline_and_binarise() {
        let tmp = tempfile::tempdir().unwrap();
        write_tables(tmp.path(), 14);
        let out = tmp.path().join(tables::WINDOWS);
        let rec = tmp.path().join(tables::RECORDINGS);
        let lab = tmp.path().join(tables::LABELS);
        let stats = make_windows(
            &rec,
            &lab,
            &out,
            &spec(&["F3", "Fp1"], &["vEOG"]),
            |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!((stats.subjects, stats.trials, stats.windows), (2, 6, 12));
        assert_eq!(stats.arousal_high, 4); // trial 3 (rating 6) only
        assert_eq!(stats.valence_high, 0); // ratings 5, 4, 3: none > 5
        let rows = read_rows(&out);
        assert_eq!(rows.len(), 12);
        let r = &rows[7]; // subject 3, trial 1, window 1
        assert_eq!((r.subject, r.trial, r.window), (3, 1, 1));
        assert_eq!((r.arousal, r.valence, r.arousal_rating), (0, 0, 4.0));
        // channel-major: F3 (index 1) samples 8..12, then Fp1 (0), then vEOG (3)
        let want: Vec<f32> = [1usize, 0, 3]
            .iter()
            .flat_map(|&c| (8..12).map(move |i| value(3, 1, c, i)))
            .collect();
        assert_eq!(r.data, want);
        assert_eq!(rows[5].arousal, 1);
        let md = parquet_metadata(&out);
        assert_eq!(md["channels"], r#"["F3","Fp1","vEOG"]"#);
        assert_eq!(md["kinds"], r#"["eeg","eeg","eog"]"#);
        assert_eq!(md["samples"], "4");
        assert_eq!(md["sample_rate"], "4");
        assert_eq!(md["dataset"], "test");
    }

    #[test]
    fn overlap_and_subtract_mean() {
        let tmp = tempfile::tempdir().unwrap();
        write_tables(tmp.path(), 14);
        let out = tmp.path().join(tables::WINDOWS);
        let s = WindowSpec {
            overlap: 0.5,
            baseline: Baseline::SubtractMean,
            threshold: 4.5,
            ..spec(&["Fp1"], &[])
        };
        let stats = make_windows(
            &tmp.path().join(tables::RECORDINGS),
            &tmp.path().join(tables::LABELS),
            &out,
            &s,
            |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(stats.windows, 6 * 4);
        assert_eq!(stats.valence_high, 8); // valence 5 > 4.5: trial 1 of each subject, 4 windows each
        let rows = read_rows(&out);
        // Window 2 starts at sample 4 + 2·2 = 8; baseline mean of samples 0..4 is base + 1.5.
        let r = &rows[2];
        assert_eq!(r.window, 2);
        assert_eq!(r.data, vec![6.5, 7.5, 8.5, 9.5]);
    }

    #[test]
    fn missing_channel_lists_the_available_ones() {
        let tmp = tempfile::tempdir().unwrap();
        write_tables(tmp.path(), 14);
        let e = make_windows(
            &tmp.path().join(tables::RECORDINGS),
            &tmp.path().join(tables::LABELS),
            &tmp.path().join(tables::WINDOWS),
            &WindowSpec::default(),
            |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no channel AF3, F7"), "{e}");
        assert!(e.contains("available: Fp1, F3, hEOG, vEOG, GSR"), "{e}");
    }

    #[test]
    fn bad_params_and_missing_labels_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        write_tables(tmp.path(), 14);
        let rec = tmp.path().join(tables::RECORDINGS);
        let out = tmp.path().join(tables::WINDOWS);
        for s in [
            WindowSpec {
                overlap: 1.0,
                ..spec(&["Fp1"], &[])
            },
            WindowSpec {
                window_s: 0.0,
                ..spec(&["Fp1"], &[])
            },
            spec(&["Fp1"], &["Fp1"]),
            spec(&[], &[]),
        ] {
            let e = make_windows(&rec, &tmp.path().join(tables::LABELS), &out, &s, |_, _| {
                Ok(())
            });
            assert!(matches!(e, Err(StageError::Param(_))), "{s:?}");
        }
        tables::write_labels(&tmp.path().join("few.parquet"), "test", &[]).unwrap();
        let e = make_windows(
            &rec,
            &tmp.path().join("few.parquet"),
            &out,
            &spec(&["Fp1"], &[]),
            |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no ratings for subject 1 trial 1"), "{e}");
        let e = make_windows(
            &tmp.path().join("nope.parquet"),
            &rec,
            &out,
            &spec(&["Fp1"], &[]),
            |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.parquet"), "{e}");
    }

    #[test]
    fn too_short_trials_give_no_windows() {
        let tmp = tempfile::tempdir().unwrap();
        write_tables(tmp.path(), 7);
        let e = make_windows(
            &tmp.path().join(tables::RECORDINGS),
            &tmp.path().join(tables::LABELS),
            &tmp.path().join(tables::WINDOWS),
            &spec(&["Fp1"], &[]),
            |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no trial is long enough"), "{e}");
    }

    #[test]
    fn stage_reads_upstream_and_reports_class_balance() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("up");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&up).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        write_tables(&up, 14);
        let ctx = context(
            &Windows,
            json!({"eeg_channels": "Fp1,F3", "eog_channels": ["hEOG", "vEOG"], "window_s": 1, "baseline_s": 1}),
            &[("recordings", &up)],
            &out,
        );
        let m = Windows.run(&ctx).unwrap().metrics;
        assert_eq!(m["windows"], 12);
        assert_eq!(m["channels"], 4);
        assert_eq!(m["class_balance"]["arousal"]["high"], 4);
        assert_eq!(m["class_balance"]["valence"]["high_fraction"], 0.0);
        assert!(out.join(tables::WINDOWS).is_file());
    }

    /// The MAHNOB chain with every stage's defaults except sizes: the tables each
    /// stage writes are the ones the next one reads.
    #[test]
    fn mahnob_chain_synthetic_ingest_windows_folds() {
        use crate::data::{
            folds::Folds, ingest_mahnob::IngestMahnob, synthetic_mahnob::SyntheticMahnob,
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            let d = tmp.path().join(n);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let (data, rec, win, split) = (dir("data"), dir("rec"), dir("win"), dir("split"));
        let synth =
            json!({"subjects": 2, "sessions": 3, "stimulus_s": 9, "baseline_s": 5, "seed": 4});
        SyntheticMahnob
            .run(&context(&SyntheticMahnob, synth, &[], &data))
            .unwrap();
        IngestMahnob
            .run(&context(&IngestMahnob, json!({}), &[("data", &data)], &rec))
            .unwrap();
        let m = Windows
            .run(&context(&Windows, json!({}), &[("recordings", &rec)], &win))
            .unwrap()
            .metrics;
        // 9 s ± 25 % stimuli: one or two 4-s windows per trial, 30 channels of 512.
        let n = m["windows"].as_u64().unwrap();
        assert!((6..=12).contains(&n), "{m:?}");
        assert_eq!(m["channels"], 30);
        let md = parquet_metadata(&win.join(tables::WINDOWS));
        assert_eq!(md["dataset"], "mahnob");
        assert!(
            md["channels"].ends_with(r#""O2","hEOG","vEOG"]"#),
            "{}",
            md["channels"]
        );
        let rows = read_rows(&win.join(tables::WINDOWS));
        assert!(rows
            .iter()
            .all(|r| r.data.len() == 30 * 512 && r.data.iter().all(|v| v.is_finite())));
        let f = Folds
            .run(&context(
                &Folds,
                json!({"k": 3}),
                &[("windows", &win)],
                &split,
            ))
            .unwrap()
            .metrics;
        assert_eq!((f["trials"].as_u64(), f["k"].as_u64()), (Some(6), Some(3)));
    }
}
