//! `ingest-mahnob`: MAHNOB-HCI `Sessions` (BDF + session.xml) → `recordings.parquet`
//! and `labels.parquet`, one trial per usable session, streamed subject by subject.
//!
//! Per session:
//! 1. The stimulus lies between the first two trigger onsets of `Status` (low 16
//!    bits; an onset is a sample whose trigger value rises above the previous one,
//!    as `mne.find_events(consecutive='increasing')` counts them: pulses or steps
//!    at stimulus start and end). A file with a single onset whose trigger stays
//!    up for at least 1 s is read as a level-coded trigger: the stimulus ends
//!    where the trigger value falls again.
//!    Its length is checked against `cutLenSec` (a mismatch beyond
//!    `length_tolerance_s` is counted and reported, not fatal). Sessions without
//!    such edges, or without `baseline_s` of recording before the stimulus, are
//!    skipped and counted.
//! 2. DECISION: each trial is written as `baseline_s` (default 3) of pre-stimulus
//!    recording followed by the whole stimulus, the layout of DEAP's preprocessed
//!    trials (3 s baseline + 60 s), so the `windows` stage treats both datasets
//!    the same way through its own `baseline_s`/`baseline` parameters. MAHNOB's
//!    longer 30-s baselines are otherwise only used as filter margins.
//! 3. BioSemi records unreferenced: EEG carries electrode offsets of millivolts
//!    and common-mode noise. EEG is re-referenced to the common average of the
//!    EEG channels (`reference: average`, as DEAP's preprocessing did) and
//!    high-passed (`highpass_hz`, default 0.5 Hz, 2nd-order Butterworth run
//!    forward and backward: zero phase), as are the EOG channels. Other channels
//!    (ECG, GSR, respiration, temperature ...) keep their levels.
//! 4. EOG: MAHNOB recorded none. `eog: proxy` (default) derives a clearly labelled
//!    proxy from frontal EEG: horizontal `hEOG = F7 − F8`, vertical
//!    `vEOG = mean(Fp1, Fp2) − mean(F3, F4)` (blinks are strongest at the
//!    frontopolar sites). `eog: [A, B]` instead takes hEOG from channel A and vEOG
//!    from B, each a channel name or a bipolar `X-Y`. The choice is recorded in
//!    the file metadata (`eog`).
//! 5. Every channel is resampled to `sample_rate` (default 128 Hz) with the
//!    anti-aliasing polyphase filter of [`crate::data::signal::Resampler`]; the
//!    filters run over the segment plus up to 10 s of margin on both sides, which
//!    are cut off afterwards.
//!
//! `subject` is the `<subject id>` of session.xml; `trial` numbers a subject's
//! usable sessions from 1 in session-id order (the mapping is the `sessions`
//! metadata entry). Labels: valence = feltVlnc, arousal = feltArsl, dominance =
//! feltCtrl, liking null.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::data::bdf::{BdfReader, TRIGGER_MASK};
use crate::data::mahnob::{self, Session};
use crate::data::signal::{Biquad, Resampler};
use crate::data::tables::{self, ChannelRecord, LabelRecord, RecordingsWriter};
use crate::params::ParamSchema;
use crate::stage::{Context, Outcome, Stage, StageError};

pub const DATASET: &str = "mahnob";
/// Bumped when the output for the same input changes.
pub const READER_VERSION: &str = "pipe ingest-mahnob 1 (bdf reader 1)";
/// Shortest level-coded stimulus (a single trigger onset held up).
const MIN_LEVEL_S: f64 = 1.0;
/// Filter margin kept on each side of the written segment, where available.
const MARGIN_S: f64 = 10.0;

/// One EOG channel's source.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelExpr {
    One(String),
    /// Bipolar: first minus second.
    Diff(String, String),
}

impl ChannelExpr {
    fn parse(s: &str) -> Result<Self, StageError> {
        let s = s.trim();
        match s.split_once('-') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Ok(ChannelExpr::Diff(
                a.trim().to_string(),
                b.trim().to_string(),
            )),
            None if !s.is_empty() => Ok(ChannelExpr::One(s.to_string())),
            _ => Err(StageError::Param(format!(
                "eog: cannot read channel {s:?} (a name or X-Y)"
            ))),
        }
    }

    fn describe(&self) -> String {
        match self {
            ChannelExpr::One(a) => a.clone(),
            ChannelExpr::Diff(a, b) => format!("{a} - {b}"),
        }
    }
}

/// Where the hEOG and vEOG channels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EogSource {
    /// hEOG = F7 − F8, vEOG = mean(Fp1, Fp2) − mean(F3, F4).
    Proxy,
    Channels {
        heog: ChannelExpr,
        veog: ChannelExpr,
    },
}

impl EogSource {
    pub fn parse(items: &[String]) -> Result<Self, StageError> {
        match items {
            [p] if p.trim() == "proxy" => Ok(EogSource::Proxy),
            [h, v] => Ok(EogSource::Channels { heog: ChannelExpr::parse(h)?, veog: ChannelExpr::parse(v)? }),
            _ => Err(StageError::Param(format!(
                "eog must be `proxy` or two channels [horizontal, vertical] (names or X-Y), got {items:?}"
            ))),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            EogSource::Proxy => "proxy from frontal EEG (MAHNOB recorded no EOG): hEOG = F7 - F8, \
                                 vEOG = mean(Fp1, Fp2) - mean(F3, F4)"
                .into(),
            EogSource::Channels { heog, veog } => {
                format!("hEOG = {}, vEOG = {}", heog.describe(), veog.describe())
            }
        }
    }

    /// `(name, [(channel, weight)])` for hEOG and vEOG.
    fn terms(&self) -> [(&'static str, Vec<(String, f64)>); 2] {
        let expr = |e: &ChannelExpr| match e {
            ChannelExpr::One(a) => vec![(a.clone(), 1.0)],
            ChannelExpr::Diff(a, b) => vec![(a.clone(), 1.0), (b.clone(), -1.0)],
        };
        match self {
            EogSource::Proxy => [
                ("hEOG", vec![("F7".into(), 1.0), ("F8".into(), -1.0)]),
                (
                    "vEOG",
                    vec![
                        ("Fp1".into(), 0.5),
                        ("Fp2".into(), 0.5),
                        ("F3".into(), -0.5),
                        ("F4".into(), -0.5),
                    ],
                ),
            ],
            EogSource::Channels { heog, veog } => [("hEOG", expr(heog)), ("vEOG", expr(veog))],
        }
    }
}

/// Ingestion settings (the stage's parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub sample_rate: f64,
    pub baseline_s: f64,
    pub eog: EogSource,
    pub average_reference: bool,
    /// 0: off.
    pub highpass_hz: f64,
    pub length_tolerance_s: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sample_rate: 128.0,
            baseline_s: 3.0,
            eog: EogSource::Proxy,
            average_reference: true,
            highpass_hz: 0.5,
            length_tolerance_s: 1.0,
        }
    }
}

/// A segmented, processed session.
#[derive(Debug, Clone)]
pub struct TrialData {
    /// `(name, kind, samples)`, all at `Options::sample_rate`, equal lengths.
    pub channels: Vec<(String, &'static str, Vec<f32>)>,
    /// Stimulus length from the triggers.
    pub stimulus_s: f64,
    /// Trigger onsets found (2 expected; 1 for a level-coded trigger).
    pub onsets: usize,
    /// Set when the stimulus length differs from `cutLenSec` beyond the tolerance.
    pub length_warning: Option<String>,
}

/// What one session gives.
#[derive(Debug, Clone)]
pub enum Segmented {
    Trial(TrialData),
    Skipped(SkipReason),
}

/// Why a readable session yields no trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// No trigger onset in Status, or a single one that never falls.
    NoTrigger,
    /// Not `baseline_s` of recording before the stimulus, or the stimulus runs
    /// past the end of the file.
    TooShort,
}

impl SkipReason {
    fn key(self) -> &'static str {
        match self {
            SkipReason::NoTrigger => "no_trigger",
            SkipReason::TooShort => "too_short",
        }
    }
}

/// Samples where the trigger value (low 16 bits) rises above the previous sample's.
pub fn trigger_onsets(status: &[i32]) -> Vec<usize> {
    status
        .windows(2)
        .enumerate()
        .filter(|(_, w)| (w[1] & TRIGGER_MASK) > (w[0] & TRIGGER_MASK))
        .map(|(i, _)| i + 1)
        .collect()
}

/// The stimulus as `[start, end)` samples of `status`, and the number of onsets:
/// the first two onsets, or for a single onset the next fall of the trigger value
/// if the trigger stays up for at least `min_level` samples (a shorter lone pulse
/// is a marker without its partner, not a stimulus).
pub fn stimulus_bounds(status: &[i32], min_level: usize) -> Option<(usize, usize, usize)> {
    let onsets = trigger_onsets(status);
    match onsets[..] {
        [] => None,
        [s0] => (s0 + 1..status.len())
            .find(|&i| (status[i] & TRIGGER_MASK) < (status[i - 1] & TRIGGER_MASK))
            .filter(|&s1| s1 - s0 >= min_level)
            .map(|s1| (s0, s1, 1)),
        [s0, s1, ..] => Some((s0, s1, onsets.len())),
    }
}

/// Where one signal's segment lies: input span `[from, to)` and the resampled
/// index of the stimulus onset inside it.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: usize,
    to: usize,
    onset_out: usize,
}

fn span_for(
    rate: f64,
    len: usize,
    onset_s: f64,
    stimulus_s: f64,
    opts: &Options,
    rs: &Resampler,
) -> Span {
    let (up, down) = rs.factors();
    let onset = (onset_s * rate).round() as usize;
    let n_stim = (stimulus_s * rate).round() as usize;
    let margin = (MARGIN_S * rate).ceil() as usize;
    let need = (opts.baseline_s * rate).ceil() as usize + margin;
    // A lead that is a multiple of `down` puts the onset exactly on the output grid.
    let lead = need
        .div_ceil(down)
        .saturating_mul(down)
        .min(onset.min(len) / down * down);
    let from = onset.min(len) - lead;
    let to = len.min(onset.saturating_add(n_stim).saturating_add(margin));
    Span {
        from,
        to: to.max(from),
        onset_out: lead * up / down,
    }
}

/// Read, segment and process one session's BDF.
pub fn process_session(
    bdf: &Path,
    cut_len_s: Option<f64>,
    opts: &Options,
) -> Result<Segmented, StageError> {
    let mut reader = BdfReader::open(bdf)?;
    let h = reader.header().clone();
    if h.is_discontinuous() {
        return Err(StageError::bad_file(
            bdf,
            "BDF+D (discontinuous) recordings are not supported",
        ));
    }
    let labels: Vec<&str> = h.signals.iter().map(|s| s.label.as_str()).collect();
    let status_idx = h
        .signal_index(crate::data::bdf::STATUS_LABEL)
        .ok_or_else(|| {
            StageError::bad_file(
                bdf,
                format!(
                    "no `Status` channel to find the stimulus in (channels: {})",
                    labels.join(", ")
                ),
            )
        })?;
    let data_idx: Vec<usize> = (0..h.signals.len())
        .filter(|&i| i != status_idx && !h.signals[i].is_annotation())
        .collect();
    let status = reader
        .read_digital(&[status_idx], 0..h.records)?
        .pop()
        .unwrap_or_default();
    let status_rate = h.sample_rate(status_idx).unwrap_or(1.0);
    let min_level = (MIN_LEVEL_S * status_rate).ceil() as usize;
    let Some((s0, s1, onsets)) = stimulus_bounds(&status, min_level) else {
        return Ok(Segmented::Skipped(SkipReason::NoTrigger));
    };
    let onset_s = s0 as f64 / status_rate;
    let stimulus_s = (s1 - s0) as f64 / status_rate;
    let length_warning = cut_len_s
        .filter(|c| (c - stimulus_s).abs() > opts.length_tolerance_s)
        .map(|c| {
            format!(
                "{}: stimulus between the triggers lasts {stimulus_s:.3} s, cutLenSec says {c} s",
                bdf.display()
            )
        });

    let raw = reader.read_physical(&data_idx, 0..h.records)?;
    let rate_of = |k: usize| h.sample_rate(data_idx[k]).unwrap_or(1.0);
    let name_of = |k: usize| h.signals[data_idx[k]].label.as_str();
    let mut resamplers: Vec<(f64, Resampler)> = Vec::new();
    let mut resampler = |rate: f64| -> Result<Resampler, StageError> {
        if let Some((_, r)) = resamplers.iter().find(|(r, _)| *r == rate) {
            return Ok(r.clone());
        }
        let r = Resampler::new(rate, opts.sample_rate).map_err(|m| StageError::bad_file(bdf, m))?;
        resamplers.push((rate, r.clone()));
        Ok(r)
    };
    let pre_out = (opts.baseline_s * opts.sample_rate).round() as usize;
    let n_out = (stimulus_s * opts.sample_rate).round() as usize;

    // Slices over each channel's span.
    let mut spans = Vec::with_capacity(data_idx.len());
    let mut slices: Vec<Vec<f32>> = Vec::with_capacity(data_idx.len());
    for (k, x) in raw.iter().enumerate() {
        let rs = resampler(rate_of(k))?;
        let span = span_for(rate_of(k), x.len(), onset_s, stimulus_s, opts, &rs);
        if span.onset_out < pre_out || rs.output_len(span.to - span.from) < span.onset_out + n_out {
            return Ok(Segmented::Skipped(SkipReason::TooShort));
        }
        slices.push(x[span.from..span.to].to_vec());
        spans.push(span);
    }
    drop(raw);

    // EOG from the raw slices (a reference cancels in the differences).
    let find = |name: &str| -> Result<usize, StageError> {
        (0..data_idx.len())
            .find(|&k| name_of(k) == name)
            .ok_or_else(|| {
                StageError::Param(format!(
                    "eog ({}) needs channel `{name}`, which {} lacks; its channels: {}",
                    opts.eog.describe(),
                    bdf.display(),
                    labels.join(", ")
                ))
            })
    };
    let mut eog: Vec<(&'static str, Vec<f32>, usize)> = Vec::new();
    for (name, terms) in opts.eog.terms() {
        let ks: Vec<(usize, f64)> = terms
            .iter()
            .map(|(c, w)| find(c).map(|k| (k, *w)))
            .collect::<Result<_, _>>()?;
        let first = ks[0].0;
        if ks
            .iter()
            .any(|&(k, _)| rate_of(k) != rate_of(first) || slices[k].len() != slices[first].len())
        {
            return Err(StageError::bad_file(
                bdf,
                format!("the channels of {name} have different sampling rates"),
            ));
        }
        let mut x = vec![0.0f32; slices[first].len()];
        for &(k, w) in &ks {
            for (o, v) in x.iter_mut().zip(&slices[k]) {
                *o += (w as f32) * v;
            }
        }
        eog.push((name, x, first));
    }

    // EEG: common average reference, then high-pass; EOG: high-pass.
    let eeg: Vec<usize> = (0..data_idx.len())
        .filter(|&k| tables::channel_kind(name_of(k)) == "eeg")
        .collect();
    if opts.average_reference && !eeg.is_empty() {
        let len = slices[eeg[0]].len();
        if eeg.iter().any(|&k| slices[k].len() != len) {
            return Err(StageError::bad_file(
                bdf,
                "EEG channels have different sampling rates; cannot average-reference",
            ));
        }
        let mut mean = vec![0.0f64; len];
        for &k in &eeg {
            for (m, v) in mean.iter_mut().zip(&slices[k]) {
                *m += f64::from(*v);
            }
        }
        for &k in &eeg {
            for (v, m) in slices[k].iter_mut().zip(&mean) {
                *v = (f64::from(*v) - m / eeg.len() as f64) as f32;
            }
        }
    }
    if opts.highpass_hz > 0.0 {
        let hp = |rate: f64| {
            Biquad::butter_highpass(opts.highpass_hz, rate)
                .map_err(|m| StageError::Param(format!("highpass_hz: {m}")))
        };
        for &k in &eeg {
            hp(rate_of(k))?.filtfilt_highpass(&mut slices[k]);
        }
        for (_, x, k) in &mut eog {
            hp(rate_of(*k))?.filtfilt_highpass(x);
        }
    }

    let cut = |x: &[f32], k: usize, rs: &Resampler| -> Vec<f32> {
        let y = rs.apply(x);
        let start = spans[k].onset_out - pre_out;
        y[start..start + pre_out + n_out].to_vec()
    };
    let mut channels = Vec::with_capacity(data_idx.len() + 2);
    for (k, slice) in slices.iter().enumerate() {
        let name = name_of(k);
        if name == "hEOG" || name == "vEOG" {
            continue; // the EOG outputs below carry these names
        }
        let rs = resampler(rate_of(k))?;
        channels.push((
            name.to_string(),
            tables::channel_kind(name),
            cut(slice, k, &rs),
        ));
    }
    for (name, x, k) in eog {
        let rs = resampler(rate_of(k))?;
        channels.push((name.to_string(), "eog", cut(&x, k, &rs)));
    }
    if let Some((name, ..)) = channels
        .iter()
        .find(|(_, _, x)| x.iter().any(|v| !v.is_finite()))
    {
        return Err(StageError::bad_file(
            bdf,
            format!("channel {name} has non-finite values after processing"),
        ));
    }
    Ok(Segmented::Trial(TrialData {
        channels,
        stimulus_s,
        onsets,
        length_warning,
    }))
}

/// BLAKE3 over every used session's id, session.xml and BDF, in order.
fn source_digest(sessions: &[Session]) -> Result<String, StageError> {
    let per: Vec<[u8; 32]> = sessions
        .par_iter()
        .map(|s| {
            let mut h = blake3::Hasher::new();
            h.update(s.id.as_bytes());
            for p in [&s.xml_path, &s.bdf] {
                h.update_mmap(p)
                    .map_err(|e| StageError::io(p.as_path(), e))?;
            }
            Ok(*h.finalize().as_bytes())
        })
        .collect::<Result<_, StageError>>()?;
    let mut h = blake3::Hasher::new();
    for d in per {
        h.update(&d);
    }
    Ok(h.finalize().to_hex().to_string())
}

pub struct IngestMahnob;

/// The `reference` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Subtract the mean of the EEG channels at every sample.
    Average,
    /// Keep the recorded reference.
    None,
}

crate::choice_param!(Reference { Average => "average", None => "none" });

crate::stage_params! {
    /// What `ingest-mahnob` takes.
    pub struct IngestMahnobParams {
        /// a MAHNOB-HCI `Sessions` folder (or its parent); default: the upstream stage's Sessions
        path: Option<PathBuf> = None, if_missing mahnob::DOWNLOAD_HINT;
        /// output sampling rate in Hz (anti-aliased resampling)
        sample_rate: f64 = Options::default().sample_rate;
        /// seconds of pre-stimulus recording written before each stimulus
        baseline_s: f64 = Options::default().baseline_s;
        /// `proxy` (hEOG = F7 - F8, vEOG = mean(Fp1,Fp2) - mean(F3,F4)) or [horizontal, vertical] channels (name or X-Y)
        eog: Vec<String> = vec!["proxy".to_string()];
        /// EEG re-reference
        reference: Reference = Reference::Average;
        /// zero-phase high-pass of EEG and EOG (0: off)
        highpass_hz: f64 = Options::default().highpass_hz;
        /// warn when the trigger-to-trigger length differs from cutLenSec by more
        length_tolerance_s: f64 = Options::default().length_tolerance_s;
    }
}

impl IngestMahnob {
    fn options(p: &IngestMahnobParams) -> Result<Options, StageError> {
        let o = Options {
            sample_rate: p.sample_rate,
            baseline_s: p.baseline_s,
            eog: EogSource::parse(&p.eog)?,
            average_reference: p.reference == Reference::Average,
            highpass_hz: p.highpass_hz,
            length_tolerance_s: p.length_tolerance_s,
        };
        if o.sample_rate.is_nan() || o.sample_rate < 1.0 {
            return Err(StageError::Param(format!(
                "sample_rate must be >= 1 Hz, got {}",
                o.sample_rate
            )));
        }
        if o.baseline_s.is_nan() || o.baseline_s < 0.0 {
            return Err(StageError::Param(format!(
                "baseline_s must be >= 0, got {}",
                o.baseline_s
            )));
        }
        if o.highpass_hz.is_nan() || o.highpass_hz < 0.0 {
            return Err(StageError::Param(format!(
                "highpass_hz must be >= 0 (0: off), got {}",
                o.highpass_hz
            )));
        }
        Ok(o)
    }

    fn root(ctx: &Context, p: &IngestMahnobParams) -> Result<PathBuf, StageError> {
        if let Some(path) = p.path.clone() {
            return Ok(path);
        }
        match ctx.input_file(crate::data::synthetic_mahnob::SESSIONS_DIR) {
            Ok(p) => Ok(p),
            Err(_) => Err(StageError::Data(format!(
                "ingest-mahnob has no input: neither the `path` parameter nor an upstream `Sessions` folder; {}",
                mahnob::DOWNLOAD_HINT
            ))),
        }
    }
}

impl Stage for IngestMahnob {
    fn name(&self) -> &'static str {
        "ingest-mahnob"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "reads MAHNOB-HCI Sessions (BDF + session.xml): stimulus from Status triggers, EOG proxy, resampling -> recordings.parquet, labels.parquet"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<IngestMahnobParams>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![crate::data::synthetic_mahnob::SESSIONS_DIR]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![tables::RECORDINGS, tables::LABELS]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: IngestMahnobParams = ctx.params()?;
        let opts = IngestMahnob::options(&p)?;
        let from_path_param = p.path.is_some();
        let root = IngestMahnob::root(ctx, &p)?;
        let found = mahnob::discover(&root)?;
        if found.sessions.is_empty() {
            return Err(StageError::Data(format!(
                "{}: no usable session ({}); {}",
                root.display(),
                found.warnings.join("; "),
                mahnob::DOWNLOAD_HINT
            )));
        }
        let pool = ctx.thread_pool()?;
        let digest = pool.install(|| source_digest(&found.sessions))?;
        let map: Map<String, Value> = found
            .sessions
            .iter()
            .map(|s| {
                (
                    format!("{}/{}", s.subject, s.trial),
                    Value::from(s.id.clone()),
                )
            })
            .collect();
        let metadata = [
            (
                "source_path",
                crate::data::provenance::source_label(
                    ctx,
                    from_path_param,
                    &mahnob::sessions_root(&root),
                ),
            ),
            ("source_digest", digest),
            ("reader_version", READER_VERSION.to_string()),
            ("eog", opts.eog.describe()),
            (
                "reference",
                if opts.average_reference {
                    "average of the EEG channels"
                } else {
                    "none (as recorded)"
                }
                .into(),
            ),
            ("highpass_hz", opts.highpass_hz.to_string()),
            ("baseline_s", opts.baseline_s.to_string()),
            ("sessions", Value::Object(map).to_string()),
            (
                crate::data::provenance::KEY,
                crate::data::provenance::generator_of(&mahnob::sessions_root(&root)),
            ),
        ];
        let out = ctx.out_dir.join(tables::RECORDINGS);
        let mut writer = RecordingsWriter::create(&out, DATASET, &metadata)?;
        let mut labels = Vec::new();
        let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut warnings = found.warnings.clone();
        let (mut mismatches, mut extra_triggers, mut level_triggers) = (0usize, 0usize, 0usize);
        let mut stimulus_total = 0.0f64;
        ctx.progress.start("sessions", found.sessions.len() as u64);
        let mut done = 0u64;
        for subject_sessions in found.sessions.chunk_by(|a, b| a.subject == b.subject) {
            ctx.check_cancelled()?;
            let results: Vec<Result<Segmented, StageError>> = pool.install(|| {
                subject_sessions
                    .par_iter()
                    .map(|s| process_session(&s.bdf, s.xml.cut_len_s, &opts))
                    .collect()
            });
            for (s, result) in subject_sessions.iter().zip(results) {
                match result? {
                    Segmented::Skipped(reason) => {
                        *skipped.entry(reason.key()).or_default() += 1;
                        warnings.push(format!(
                            "skipped session {} ({}): {}",
                            s.id,
                            s.bdf.display(),
                            reason.key()
                        ));
                    }
                    Segmented::Trial(trial) => {
                        if let Some(w) = trial.length_warning.clone() {
                            mismatches += 1;
                            warnings.push(w);
                        }
                        if trial.onsets > 2 {
                            extra_triggers += 1;
                        }
                        if trial.onsets == 1 {
                            level_triggers += 1;
                        }
                        stimulus_total += trial.stimulus_s;
                        for (name, kind, samples) in &trial.channels {
                            writer.push(&ChannelRecord {
                                subject: s.subject,
                                trial: s.trial,
                                channel: name,
                                kind,
                                sample_rate: opts.sample_rate as f32,
                                samples,
                            });
                        }
                        labels.push(LabelRecord {
                            subject: s.subject,
                            trial: s.trial,
                            valence: s.valence,
                            arousal: s.arousal,
                            dominance: s.dominance,
                            liking: None,
                        });
                    }
                }
            }
            writer.flush()?;
            done += subject_sessions.len() as u64;
            ctx.progress
                .update(done, &format!("subject {}", subject_sessions[0].subject));
        }
        writer.finish()?;
        if labels.is_empty() {
            return Err(StageError::Data(format!(
                "{}: none of the {} sessions could be segmented: {}",
                root.display(),
                found.sessions.len(),
                warnings.join("; ")
            )));
        }
        tables::write_labels(&ctx.out_dir.join(tables::LABELS), DATASET, &labels)?;
        let subjects: std::collections::BTreeSet<u16> = labels.iter().map(|l| l.subject).collect();
        let mut m = Map::new();
        m.insert("trials".into(), Value::from(labels.len()));
        m.insert("subjects".into(), Value::from(subjects.len()));
        m.insert(
            "stimulus_seconds".into(),
            Value::from((stimulus_total * 1000.0).round() / 1000.0),
        );
        let mut skip = serde_json::to_value(&found.skipped).unwrap_or_default();
        if let Value::Object(o) = &mut skip {
            for (k, v) in &skipped {
                o.insert((*k).into(), Value::from(*v));
            }
        }
        m.insert("skipped".into(), skip);
        m.insert("length_mismatches".into(), Value::from(mismatches));
        m.insert("extra_triggers".into(), Value::from(extra_triggers));
        m.insert("level_coded_triggers".into(), Value::from(level_triggers));
        m.insert("eog".into(), Value::from(opts.eog.describe()));
        const SHOWN: usize = 20;
        let more = warnings.len().saturating_sub(SHOWN);
        let mut shown: Vec<Value> = warnings.into_iter().take(SHOWN).map(Value::from).collect();
        if more > 0 {
            shown.push(Value::from(format!("... and {more} more")));
        }
        m.insert("warnings".into(), Value::Array(shown));
        Ok(Outcome::with_metrics(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::bdf::{write_bdf, BdfHeader, SignalData, SignalHeader};
    use crate::data::synthetic_mahnob::{self, Config, SESSIONS_DIR};
    use crate::test_support::{context, parquet_metadata};
    use polars::prelude::*;
    use serde_json::json;

    #[test]
    fn onsets_rise_in_the_low_16_bits_only() {
        let flags = -0x70_0000; // high byte set: negative raw values
        let s = [
            flags,
            flags | 1,
            flags | 1,
            flags,
            flags,
            flags | 2,
            flags | 3,
            flags | 1,
            flags,
            flags ^ 0x10_0000,
        ];
        assert_eq!(trigger_onsets(&s), vec![1, 5, 6]);
        // A trigger already high at the first sample is not an onset.
        assert_eq!(trigger_onsets(&[5, 5, 0, 5]), vec![3]);
        assert!(trigger_onsets(&[]).is_empty());
        assert_eq!(stimulus_bounds(&s, 1), Some((1, 5, 3)));
        // Level-coded: high for the whole stimulus.
        let level = [flags, flags, flags | 8, flags | 8, flags | 8, flags];
        assert_eq!(stimulus_bounds(&level, 3), Some((2, 5, 1)));
        assert_eq!(stimulus_bounds(&level, 4), None);
        assert_eq!(stimulus_bounds(&[0, 0, 3, 3, 0], 1), Some((2, 4, 1)));
        assert_eq!(stimulus_bounds(&[0, 0, 3, 3], 1), None);
        assert_eq!(stimulus_bounds(&[0, 0], 1), None);
    }

    /// Fp1: 100 µV 5-Hz sine + 3 mV offset at 256 Hz; GSR1: a ramp at 128 Hz;
    /// triggers at 10 s and 15 s of a 25-s file.
    fn hand_made(path: &Path, onsets: &[usize], pulse: usize) {
        let fs = 256;
        let n = 25 * fs;
        let fp1: Vec<f32> = (0..n)
            .map(|i| {
                (3000.0 + 100.0 * (2.0 * std::f64::consts::PI * 5.0 * i as f64 / fs as f64).sin())
                    as f32
            })
            .collect();
        let gsr: Vec<f32> = (0..n / 2).map(|i| i as f32).collect();
        let mut status = vec![0i32; n];
        for &o in onsets {
            for s in &mut status[o..o + pulse] {
                *s = 4;
            }
        }
        let header = BdfHeader {
            patient: String::new(),
            recording: String::new(),
            start_date: "01.01.10".into(),
            start_time: "00.00.00".into(),
            reserved: "24BIT".into(),
            records: 0,
            record_duration: 1.0,
            signals: vec![
                SignalHeader::new("Fp1", "uV", -262144.0, 262143.0, 256),
                SignalHeader::new("GSR1", "Ohm", 0.0, 16_777_215.0, 128),
                SignalHeader::status(256),
            ],
        };
        write_bdf(
            path,
            header,
            &[
                SignalData::Physical(&fp1),
                SignalData::Physical(&gsr),
                SignalData::Digital(&status),
            ],
        )
        .unwrap();
    }

    fn plain() -> Options {
        Options {
            eog: EogSource::parse(&["Fp1".into(), "Fp1".into()]).unwrap(),
            average_reference: false,
            highpass_hz: 0.0,
            ..Options::default()
        }
    }

    #[test]
    fn segments_baseline_plus_stimulus_on_the_output_grid() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.bdf");
        hand_made(&p, &[2560, 3840], 10);
        let Segmented::Trial(t) = process_session(&p, Some(5.0), &plain()).unwrap() else {
            panic!("skipped")
        };
        assert_eq!(t.stimulus_s, 5.0);
        assert!(t.length_warning.is_none());
        let names: Vec<&str> = t.channels.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["Fp1", "GSR1", "hEOG", "vEOG"]);
        let kinds: Vec<&str> = t.channels.iter().map(|c| c.1).collect();
        assert_eq!(kinds, ["eeg", "other", "eog", "eog"]);
        for (_, _, x) in &t.channels {
            assert_eq!(x.len(), 8 * 128);
        }
        // Output sample j is at 7 s + j/128 s of the recording.
        for (j, &y) in t.channels[0].2.iter().enumerate() {
            let time = 7.0 + j as f64 / 128.0;
            let want = 3000.0 + 100.0 * (2.0 * std::f64::consts::PI * 5.0 * time).sin();
            assert!((f64::from(y) - want).abs() < 0.3, "[{j}] {y} vs {want}");
        }
        let gsr = &t.channels[1].2;
        assert!(gsr
            .iter()
            .enumerate()
            .all(|(j, &v)| v == (7 * 128 + j) as f32));
        assert_eq!(t.channels[2].2, t.channels[0].2);
    }

    #[test]
    fn length_mismatch_warns_and_missing_triggers_skip() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.bdf");
        hand_made(&p, &[2560, 3840], 10);
        let Segmented::Trial(t) = process_session(&p, Some(7.5), &plain()).unwrap() else {
            panic!()
        };
        assert!(t.length_warning.unwrap().contains("cutLenSec says 7.5 s"));
        // A lone 10-sample pulse is no stimulus; a trigger held for 5 s is one.
        hand_made(&p, &[2560], 10);
        assert!(matches!(
            process_session(&p, None, &plain()).unwrap(),
            Segmented::Skipped(SkipReason::NoTrigger)
        ));
        hand_made(&p, &[2560], 1280);
        let Segmented::Trial(t) = process_session(&p, None, &plain()).unwrap() else {
            panic!()
        };
        assert_eq!((t.stimulus_s, t.onsets), (5.0, 1));
        // Stimulus at 2 s: no room for a 3-s baseline.
        hand_made(&p, &[512, 1024], 10);
        assert!(matches!(
            process_session(&p, None, &plain()).unwrap(),
            Segmented::Skipped(SkipReason::TooShort)
        ));
        // A stimulus ending 10 samples before the end of the file (no margin left).
        hand_made(&p, &[2560, 6390], 10);
        let mut o = plain();
        o.baseline_s = 0.0;
        assert!(matches!(
            process_session(&p, None, &o).unwrap(),
            Segmented::Trial(_)
        ));
    }

    #[test]
    fn eog_parameter_forms() {
        assert_eq!(
            EogSource::parse(&["proxy".into()]).unwrap(),
            EogSource::Proxy
        );
        assert_eq!(
            EogSource::parse(&["EXG4 - EXG5".into(), "EXG6".into()]).unwrap(),
            EogSource::Channels {
                heog: ChannelExpr::Diff("EXG4".into(), "EXG5".into()),
                veog: ChannelExpr::One("EXG6".into())
            }
        );
        assert!(EogSource::parse(&["a".into()]).is_err());
        assert!(EogSource::parse(&["a-".into(), "b".into()]).is_err());
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.bdf");
        hand_made(&p, &[2560, 3840], 10);
        let e = process_session(
            &p,
            None,
            &Options {
                eog: EogSource::Proxy,
                ..plain()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs channel `F7`") && e.contains("its channels: Fp1, GSR1, Status"),
            "{e}"
        );
        let bipolar = EogSource::parse(&["Fp1".into(), "Fp1-GSR1".into()]).unwrap();
        let e = process_session(
            &p,
            None,
            &Options {
                eog: bipolar,
                ..plain()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("the channels of vEOG have different sampling rates"),
            "{e}"
        );
    }

    fn synthetic(dir: &Path) {
        let cfg = Config {
            subjects: 2,
            sessions: 3,
            stimulus_s: 5.0,
            baseline_s: 5.0,
            seed: 3,
            ..Config::default()
        };
        synthetic_mahnob::generate(dir, &cfg).unwrap();
    }

    #[test]
    fn proxy_is_the_stated_combination_of_processed_eeg() {
        let tmp = tempfile::tempdir().unwrap();
        synthetic(tmp.path());
        let d = mahnob::discover(&tmp.path().join(SESSIONS_DIR)).unwrap();
        let Segmented::Trial(t) = process_session(
            &d.sessions[0].bdf,
            d.sessions[0].xml.cut_len_s,
            &Options::default(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(t.channels.len(), 32 + 15 + 2);
        let get = |n: &str| &t.channels.iter().find(|c| c.0 == n).unwrap().2;
        let (h, v) = (get("hEOG"), get("vEOG"));
        for i in 0..h.len() {
            let hh = get("F7")[i] - get("F8")[i];
            let vv = (get("Fp1")[i] + get("Fp2")[i]) / 2.0 - (get("F3")[i] + get("F4")[i]) / 2.0;
            assert!((h[i] - hh).abs() < 0.05, "{i}: {} vs {hh}", h[i]);
            assert!((v[i] - vv).abs() < 0.05, "{i}: {} vs {vv}", v[i]);
        }
        // Referenced and high-passed: the millivolt electrode offsets are gone.
        let fp1 = get("Fp1");
        let mean = fp1.iter().map(|&x| f64::from(x)).sum::<f64>() / fp1.len() as f64;
        assert!(mean.abs() < 20.0, "{mean}");
        // Temperature keeps its level.
        assert!(get("Temp").iter().all(|&x| (30.0..36.0).contains(&x)));
    }

    #[test]
    fn stage_ingests_sessions_and_counts_skips() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("up");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        synthetic(&up);
        let sessions = up.join(SESSIONS_DIR);
        // Two extra sessions that must be skipped: no stimulus, no ratings.
        for (id, from, to) in [
            ("100", "isStim=\"1\"", "isStim=\"0\""),
            ("102", "feltVlnc=\"", "feltVlncX=\""),
        ] {
            let dir = sessions.join(id);
            std::fs::create_dir_all(&dir).unwrap();
            for e in std::fs::read_dir(sessions.join("2")).unwrap() {
                let p = e.unwrap().path();
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
            let xml = std::fs::read_to_string(dir.join("session.xml"))
                .unwrap()
                .replace(from, to);
            std::fs::write(dir.join("session.xml"), xml).unwrap();
        }
        let ctx = context(&IngestMahnob, json!({}), &[("data", &up)], &out);
        let m = IngestMahnob.run(&ctx).unwrap().metrics;
        assert_eq!(m["trials"], 6);
        assert_eq!(m["subjects"], 2);
        assert_eq!(m["skipped"]["no_stimulus"], 1);
        assert_eq!(m["skipped"]["missing_ratings"], 1);
        assert_eq!(m["length_mismatches"], 0);
        assert_eq!(m["warnings"].as_array().unwrap().len(), 2);

        let rec = out.join(tables::RECORDINGS);
        let md = parquet_metadata(&rec);
        assert!(md["eog"].starts_with("proxy from frontal EEG"));
        assert_eq!(
            md["sessions"],
            r#"{"1/1":"2","1/2":"4","1/3":"6","2/1":"8","2/2":"10","2/3":"12"}"#
        );
        assert_eq!(md["source_digest"].len(), 64);
        let df = LazyFrame::scan_parquet(
            PlRefPath::try_from_path(&rec).unwrap(),
            ScanArgsParquet::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        assert_eq!(df.height(), 6 * 49);
        let rates = df.column("sample_rate").unwrap().f32().unwrap();
        assert!(rates.into_no_null_iter().all(|r| r == 128.0));
        let kinds: Vec<&str> = df
            .column("kind")
            .unwrap()
            .str()
            .unwrap()
            .no_null_iter()
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "eog").count(), 12);
        assert_eq!(kinds.iter().filter(|k| **k == "eeg").count(), 6 * 32);

        let lab = LazyFrame::scan_parquet(
            PlRefPath::try_from_path(&out.join(tables::LABELS)).unwrap(),
            ScanArgsParquet::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        assert_eq!(lab.height(), 6);
        let d = mahnob::discover(&sessions).unwrap();
        let s = &d.sessions[4];
        let arousal = lab
            .column("arousal")
            .unwrap()
            .f32()
            .unwrap()
            .get(4)
            .unwrap();
        let valence = lab
            .column("valence")
            .unwrap()
            .f32()
            .unwrap()
            .get(4)
            .unwrap();
        let dominance = lab.column("dominance").unwrap().f32().unwrap().get(4);
        assert_eq!(
            (arousal, valence, dominance),
            (s.arousal, s.valence, s.dominance)
        );
        assert_eq!(lab.column("liking").unwrap().null_count(), 6);
    }

    #[test]
    fn missing_input_says_what_to_download() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(&IngestMahnob, json!({}), &[], tmp.path());
        let e = IngestMahnob.run(&ctx).unwrap_err().to_string();
        assert!(e.contains("MAHNOB-HCI") && e.contains("`path`"), "{e}");
        let empty = tmp.path().join("Sessions");
        std::fs::create_dir_all(&empty).unwrap();
        let ctx = context(
            &IngestMahnob,
            json!({"path": empty.to_str().unwrap()}),
            &[],
            tmp.path(),
        );
        let e = IngestMahnob.run(&ctx).unwrap_err().to_string();
        assert!(e.contains("no session folders found"), "{e}");
    }

    #[test]
    fn corrupt_bdf_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("up");
        synthetic(&up);
        let bdf = mahnob::discover(&up.join(SESSIONS_DIR)).unwrap().sessions[1]
            .bdf
            .clone();
        let bytes = std::fs::read(&bdf).unwrap();
        std::fs::write(&bdf, &bytes[..bytes.len() - 100]).unwrap();
        let ctx = context(
            &IngestMahnob,
            json!({"path": up.to_str().unwrap()}),
            &[],
            tmp.path(),
        );
        let e = IngestMahnob.run(&ctx).unwrap_err().to_string();
        assert!(
            e.contains(bdf.to_str().unwrap()) && e.contains("truncated"),
            "{e}"
        );
    }
}
