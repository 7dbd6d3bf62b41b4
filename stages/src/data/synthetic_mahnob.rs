//! `synthetic-mahnob`: a MAHNOB-HCI-format stand-in, written as the real files
//! (`Sessions/<id>/Part_<subject>_S_Trial<k>_emotion.bdf` + `session.xml`) so the
//! default pipeline goes through the same BDF and XML readers as the real dataset.
//!
//! # Generative model (deterministic from `seed`)
//! Per session, latent arousal `a` and valence `v` ~ N(0, 1). The felt ratings in
//! `session.xml` are `clamp(round(5.5 + 1.6·latent + subject bias + label_noise·ε),
//! 1, 9)` with ε ~ N(0, 1) and a subject bias ~ N(0, 0.4): integers like MAHNOB's
//! SAM scale, high (> 5) exactly when `1.6·latent + bias + noise ≥ 0`. `feltCtrl`
//! and `feltPred` are uninformative ratings around 5; `feltEmo` follows the latent
//! quadrant.
//!
//! Recording layout (BioSemi, 24-bit, `sample_rate` Hz, 1-s records): `baseline_s`
//! before the stimulus, the stimulus (`stimulus_s` ± `stimulus_jitter`), at least
//! `baseline_s` after it. `Status` holds system flags in its high byte (bits 20 and
//! 23, so raw values are negative 24-bit numbers and readers must mask) and two
//! 0.1-s trigger pulses in its low 16 bits: code 1 at stimulus onset, code 2 at its
//! end. `cutLenSec` is the stimulus length.
//!
//! EEG (32 channels, DEAP's names and order), in µV:
//! - 1/f background (6 µV rms) per channel;
//! - alpha (an AR(2) resonance at a subject's peak frequency 9–11.5 Hz): 6 µV ×
//!   `exp(-0.25·eeg_effect·a)` at posterior sites (P, PO, O, CP: less alpha with
//!   arousal); 2.5 µV elsewhere, on the left frontal sites × `exp(-0.25·
//!   eeg_effect·v)` and on the right × `exp(+0.25·eeg_effect·v)` (frontal alpha
//!   asymmetry with valence);
//! - beta (20 Hz, broad, 2 µV), × `exp(+0.25·eeg_effect·a)` at central and
//!   posterior sites. Frontal EEG power thus says nothing about arousal, and the
//!   EOG proxy's differences of left and right sites carry the asymmetry's power
//!   (symmetric in `v`) but not its sign: what the proxy knows of the latents
//!   comes from the eye movements;
//! - subject gains per channel (log-normal, σ 0.15);
//! - BioSemi's unreferenced recording: per-electrode offsets (±8 mV) with slow
//!   drift, and a common-mode signal (50 Hz, 15 µV, plus a slow wander) shared by
//!   every electrode, which average referencing removes;
//! - eye activity (MAHNOB recorded no EOG, so it exists only as leakage): blinks
//!   (120 µV, 0.35 s) at `0.33 Hz · exp(eog_effect·(0.35·a − 0.2·v))` leaking
//!   into Fp1/Fp2 fully and weaker backwards (AF 0.55, F3/F4/F7/F8 0.3 ...);
//!   horizontal eye position (saccades at `1 Hz · exp(0.3·eog_effect·a)`, jump sd
//!   `40 µV · exp(0.2·eog_effect·v)`) leaking into F7/F8, FC5/FC6, T7/T8 with
//!   opposite signs. The ingest stage's EOG proxy (hEOG = F7 − F8, vEOG =
//!   mean(Fp1, Fp2) − mean(F3, F4)) recovers them.
//!
//! Other channels are plausible but carry at most weak arousal effects: ECG on
//! EXG1–3 (heart rate 68 + 3·a bpm), noise on EXG4–8, skin resistance on GSR1/GSR2
//! (conductance rising with arousal, with phasic responses), Erg1/Erg2 noise,
//! breathing (Resp), a pulse wave (Plet) and skin temperature (Temp).
//!
//! Why the latents are recoverable beyond the labels: the ratings are noisy
//! reports of `a`, `v`; EEG band power reflects the latents themselves. With the
//! default noise a rating's side of 5 matches its latent's sign for about 81 % of
//! sessions (`1/2 + arctan(1.6/√(1 + 0.4²))/π`), which bounds any classifier.
//!
//! Measured separability (a band-power + logistic-regression baseline, not the
//! method's model; `stages/benches/mahnob_separability.py` on the output of
//! `target/debug/examples/mahnob_pipeline /tmp/mp2 8 20 20`: 8
//! subjects × 20 sessions of 20 s, default effects, ingest/windows defaults,
//! 5-fold trial-kfold): arousal 77.5 ± 5.6 % with EEG + EOG proxy, 62.2 ± 4.9 %
//! with the EOG proxy alone; valence 79.8 ± 3.1 % and 61.3 ± 5.0 %; chance
//! ≈ 50 % (high fractions 0.54 and 0.50).

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::data::bdf::{self, BdfHeader, SignalData, SignalHeader};
use crate::data::channels::EEG_32;
use crate::params::ParamSchema;
use crate::stage::{Context, IoContext, Outcome, Stage, StageError};

/// The folder this stage writes (as the dataset's archive unpacks).
pub const SESSIONS_DIR: &str = "Sessions";

/// MAHNOB-HCI's recorded channels after the 32 EEG channels, in file order;
/// `Status` follows them.
pub const MAHNOB_OTHER: [&str; 15] = [
    "EXG1", "EXG2", "EXG3", "EXG4", "EXG5", "EXG6", "EXG7", "EXG8", "GSR1", "GSR2", "Erg1", "Erg2",
    "Resp", "Plet", "Temp",
];

/// Status high-byte flags written in every sample (bits 20 and 23).
const STATUS_FLAGS: i32 = 0x90_0000 - 0x100_0000;
const ONSET_CODE: i32 = 1;
const END_CODE: i32 = 2;

/// The stage's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub subjects: usize,
    pub sessions: usize,
    pub stimulus_s: f64,
    pub stimulus_jitter: f64,
    pub baseline_s: f64,
    pub sample_rate: usize,
    pub eeg_effect: f64,
    pub eog_effect: f64,
    pub label_noise: f64,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            subjects: 4,
            sessions: 10,
            stimulus_s: 20.0,
            stimulus_jitter: 0.25,
            baseline_s: 30.0,
            sample_rate: 256,
            eeg_effect: 1.0,
            eog_effect: 1.0,
            label_noise: 1.0,
            seed: 0,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), StageError> {
        let bad = |m: String| Err(StageError::Param(m));
        if self.subjects == 0 || self.subjects > 999 {
            return bad(format!("subjects must be 1 to 999, got {}", self.subjects));
        }
        if self.sessions == 0 || self.sessions > 999 {
            return bad(format!("sessions must be 1 to 999, got {}", self.sessions));
        }
        if !(self.stimulus_s >= 1.0 && self.stimulus_s <= 3600.0) {
            return bad(format!(
                "stimulus_s must be 1 to 3600 s, got {}",
                self.stimulus_s
            ));
        }
        if !(0.0..0.9).contains(&self.stimulus_jitter) {
            return bad(format!(
                "stimulus_jitter must be in [0, 0.9), got {}",
                self.stimulus_jitter
            ));
        }
        if !(self.baseline_s >= 0.5 && self.baseline_s <= 600.0) {
            return bad(format!(
                "baseline_s must be 0.5 to 600 s, got {}",
                self.baseline_s
            ));
        }
        if !(64..=4096).contains(&self.sample_rate) {
            return bad(format!(
                "sample_rate must be 64 to 4096 Hz, got {}",
                self.sample_rate
            ));
        }
        for (name, v) in [
            ("eeg_effect", self.eeg_effect),
            ("eog_effect", self.eog_effect),
            ("label_noise", self.label_noise),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// An RNG for one purpose, derived from the seed and a label (stable across
/// versions of `rand`: ChaCha8 seeded from BLAKE3).
fn rng_for(seed: u64, label: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"pipe synthetic-mahnob\0");
    h.update(&seed.to_le_bytes());
    h.update(label.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// Scale to zero mean, unit standard deviation (a flat signal stays zero).
fn standardize(x: &mut [f64]) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    for v in x.iter_mut() {
        *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 };
    }
}

/// 1/f noise (Kellet's three-pole approximation), unit sd.
fn pink(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    let mut out: Vec<f64> = (0..n)
        .map(|_| {
            let w = normal(rng);
            b0 = 0.99765 * b0 + w * 0.099_046;
            b1 = 0.963 * b1 + w * 0.296_516_4;
            b2 = 0.57 * b2 + w * 1.052_691_3;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect();
    standardize(&mut out);
    out
}

/// Narrow-band noise around `freq` Hz (an AR(2) resonator), unit sd.
fn resonance(n: usize, freq: f64, bandwidth: f64, fs: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let r = (-std::f64::consts::PI * bandwidth / fs).exp();
    let c1 = 2.0 * r * (2.0 * std::f64::consts::PI * freq / fs).cos();
    let c2 = -r * r;
    let (mut y1, mut y2) = (0.0, 0.0);
    // Run in for a second so the start is stationary.
    let warm = fs as usize;
    let mut out = Vec::with_capacity(n);
    for i in 0..n + warm {
        let y = c1 * y1 + c2 * y2 + normal(rng);
        y2 = y1;
        y1 = y;
        if i >= warm {
            out.push(y);
        }
    }
    standardize(&mut out);
    out
}

/// Event times (in samples) of a Poisson process at `rate` Hz.
fn poisson_events(n: usize, rate: f64, fs: f64, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut out = Vec::new();
    if rate <= 0.0 {
        return out;
    }
    let mut t = 0.0;
    loop {
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        t += -u.ln() / rate;
        let i = (t * fs) as usize;
        if i >= n {
            return out;
        }
        out.push(i);
    }
}

/// Add `amp · shape((i − at)/fs)` around `at`.
fn add_bump(x: &mut [f64], at: usize, fs: f64, rise_s: f64, fall_s: f64, amp: f64) {
    let rise = (rise_s * fs) as usize;
    let fall = (fall_s * fs) as usize;
    for k in 0..rise + fall {
        let Some(v) = x.get_mut(at + k) else { break };
        let shape = if k < rise {
            0.5 - 0.5 * (std::f64::consts::PI * k as f64 / rise as f64).cos()
        } else {
            0.5 + 0.5 * (std::f64::consts::PI * (k - rise) as f64 / fall as f64).cos()
        };
        *v += amp * shape;
    }
}

/// What one subject has in common across sessions.
struct Subject {
    gains: Vec<f64>,
    alpha_hz: f64,
    arousal_bias: f64,
    valence_bias: f64,
    blink_scale: f64,
    heart_bpm: f64,
    conductance_us: f64,
    temperature: f64,
}

impl Subject {
    fn new(seed: u64, subject: usize) -> Self {
        let mut rng = rng_for(seed, &format!("subject {subject}"));
        Subject {
            gains: (0..EEG_32.len())
                .map(|_| (0.15 * normal(&mut rng)).exp())
                .collect(),
            alpha_hz: rng.gen_range(9.0..11.5),
            arousal_bias: 0.4 * normal(&mut rng),
            valence_bias: 0.4 * normal(&mut rng),
            blink_scale: (0.3 * normal(&mut rng)).exp(),
            heart_bpm: rng.gen_range(60.0..78.0),
            conductance_us: rng.gen_range(2.0..8.0),
            temperature: rng.gen_range(31.5..34.5),
        }
    }
}

fn is_posterior(name: &str) -> bool {
    name.starts_with('P') || name.starts_with('O') || name.starts_with("CP")
}

/// −1 left hemisphere frontal, +1 right, 0 otherwise (odd = left, even = right).
fn frontal_side(name: &str) -> f64 {
    if !(name.starts_with('F') || name.starts_with("AF")) || name.ends_with('z') {
        return 0.0;
    }
    match name.chars().last().and_then(|c| c.to_digit(10)) {
        Some(d) if d % 2 == 1 => -1.0,
        Some(_) => 1.0,
        None => 0.0,
    }
}

/// How much of a blink reaches each electrode.
fn blink_weight(name: &str) -> f64 {
    match name {
        "Fp1" | "Fp2" => 1.0,
        "AF3" | "AF4" => 0.55,
        "Fz" => 0.35,
        "F3" | "F4" | "F7" | "F8" => 0.3,
        "FC1" | "FC2" | "FC5" | "FC6" => 0.15,
        "C3" | "C4" | "Cz" | "T7" | "T8" => 0.07,
        _ => 0.02,
    }
}

/// How much horizontal eye position reaches each electrode (signed).
fn saccade_weight(name: &str) -> f64 {
    match name {
        "F7" => 0.55,
        "F8" => -0.55,
        "T7" => 0.3,
        "T8" => -0.3,
        "FC5" => 0.25,
        "FC6" => -0.25,
        "Fp1" => 0.15,
        "Fp2" => -0.15,
        "AF3" => 0.1,
        "AF4" => -0.1,
        _ => 0.0,
    }
}

fn rating(center: f64, rng: &mut ChaCha8Rng, noise: f64) -> u8 {
    (center + noise * normal(rng)).round().clamp(1.0, 9.0) as u8
}

/// MAHNOB's `feltEmo` codes by latent quadrant (0 neutral, 3 fear, 4 joy, 5
/// sadness, 11 amusement).
fn felt_emotion(a: f64, v: f64) -> u8 {
    if a.abs() < 0.3 && v.abs() < 0.3 {
        0
    } else {
        match (a >= 0.0, v >= 0.0) {
            (true, true) => 4,
            (true, false) => 3,
            (false, true) => 11,
            (false, false) => 5,
        }
    }
}

/// One generated session, ready to write.
struct SessionFiles {
    id: usize,
    bdf_name: String,
    xml: String,
    header: BdfHeader,
    physical: Vec<Vec<f32>>,
    status: Vec<i32>,
}

fn generate_session(
    cfg: &Config,
    subj: &Subject,
    subject: usize,
    trial: usize,
    id: usize,
) -> SessionFiles {
    let mut rng = rng_for(cfg.seed, &format!("session {subject} {trial}"));
    let fs = cfg.sample_rate as f64;
    let a = normal(&mut rng);
    let v = normal(&mut rng);
    let jitter = if cfg.stimulus_jitter > 0.0 {
        rng.gen_range(-cfg.stimulus_jitter..cfg.stimulus_jitter)
    } else {
        0.0
    };
    let n_stim = ((cfg.stimulus_s * (1.0 + jitter)) * fs).round().max(1.0) as usize;
    let pre = (cfg.baseline_s * fs).round() as usize;
    let records = (pre + n_stim + pre).div_ceil(cfg.sample_rate);
    let n = records * cfg.sample_rate;
    let stim_len_s = n_stim as f64 / fs;

    // Eye activity, shared by the electrodes it leaks into.
    let mut blinks = vec![0.0; n];
    let blink_rate = 0.33 * subj.blink_scale * (cfg.eog_effect * (0.35 * a - 0.2 * v)).exp();
    for at in poisson_events(n, blink_rate, fs, &mut rng) {
        let amp = 120.0 * (1.0 + 0.15 * normal(&mut rng));
        add_bump(&mut blinks, at, fs, 0.1, 0.25, amp);
    }
    let mut gaze = vec![0.0; n];
    let saccade_rate = (0.3 * cfg.eog_effect * a).exp();
    let jump_sd = 40.0 * (0.2 * cfg.eog_effect * v).exp();
    let mut pos = 0.0;
    let mut next = poisson_events(n, saccade_rate, fs, &mut rng)
        .into_iter()
        .peekable();
    let glide = (0.04 * fs).max(1.0);
    let mut target = 0.0f64;
    for (i, g) in gaze.iter_mut().enumerate() {
        while next.next_if(|&e| e <= i).is_some() {
            target = (target * 0.5 + jump_sd * normal(&mut rng)).clamp(-150.0, 150.0);
        }
        pos += (target - pos) / glide;
        *g = pos;
    }
    // Common mode: mains and a slow wander, identical on every electrode.
    let wander = pink(n, &mut rng);
    let common: Vec<f64> = (0..n)
        .map(|i| {
            15.0 * (2.0 * std::f64::consts::PI * 50.0 * i as f64 / fs).sin() + 30.0 * wander[i]
        })
        .collect();

    let alpha_gain = (-0.25 * cfg.eeg_effect * a).exp();
    let beta_gain = (0.25 * cfg.eeg_effect * a).exp();
    let mut physical: Vec<Vec<f32>> = Vec::with_capacity(EEG_32.len() + MAHNOB_OTHER.len());
    for (c, name) in EEG_32.iter().enumerate() {
        let bg = pink(n, &mut rng);
        let alpha = resonance(n, subj.alpha_hz, 2.0, fs, &mut rng);
        let beta = resonance(n, 20.0, 8.0, fs, &mut rng);
        let side = frontal_side(name);
        // Left frontal (side −1) loses alpha with valence, right (side +1) gains.
        let asymmetry = (0.25 * cfg.eeg_effect * v * side).exp();
        // Arousal acts on posterior alpha and centro-parietal beta only, so the
        // frontal EOG proxy learns of it through the eyes, not the EEG.
        let alpha_amp = if is_posterior(name) {
            6.0 * alpha_gain
        } else {
            2.5 * asymmetry
        };
        let beta_amp = if is_posterior(name) || name.starts_with('C') {
            2.0 * beta_gain
        } else {
            2.0
        };
        let offset = rng.gen_range(-8000.0..8000.0);
        let drift = rng.gen_range(-3.0..3.0); // µV per second
        let (bw, sw) = (blink_weight(name), saccade_weight(name));
        let g = subj.gains[c];
        physical.push(
            (0..n)
                .map(|i| {
                    let brain = 6.0 * bg[i] + alpha_amp * alpha[i] + beta_amp * beta[i];
                    let eyes = bw * blinks[i] + sw * gaze[i];
                    (g * brain + eyes + offset + drift * i as f64 / fs + common[i]) as f32
                })
                .collect(),
        );
    }
    other_channels(cfg, subj, a, n, &common, &mut rng, &mut physical);

    let mut status = vec![STATUS_FLAGS; n];
    let pulse = (0.1 * fs) as usize;
    for (start, code) in [(pre, ONSET_CODE), (pre + n_stim, END_CODE)] {
        for s in status.iter_mut().skip(start).take(pulse) {
            *s = STATUS_FLAGS | code;
        }
    }

    let bias_a = subj.arousal_bias;
    let bias_v = subj.valence_bias;
    let felt_arsl = rating(5.5 + 1.6 * a + bias_a, &mut rng, cfg.label_noise);
    let felt_vlnc = rating(5.5 + 1.6 * v + bias_v, &mut rng, cfg.label_noise);
    let felt_ctrl = rating(5.0, &mut rng, 1.5);
    let felt_pred = rating(5.0, &mut rng, 1.5);
    let bdf_name = format!("Part_{subject}_S_Trial{trial}_emotion.bdf");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <!-- synthetic session written by pipe's synthetic-mahnob stage (seed {seed}) -->\n\
         <session cutNr=\"{trial}\" cutLenSec=\"{stim_len_s:.4}\" experimentType=\"emotion elicitation\" \
         isStim=\"1\" feltEmo=\"{emo}\" feltArsl=\"{felt_arsl}\" feltVlnc=\"{felt_vlnc}\" feltCtrl=\"{felt_ctrl}\" \
         feltPred=\"{felt_pred}\" mediaFile=\"{media}.avi\" sessionId=\"{id}\">\n  \
         <subject id=\"{subject}\" />\n  \
         <track type=\"Physiological\" id=\"0\" sensor=\"BioSemi ActiveTwo\" filename=\"{bdf_name}\" />\n\
         </session>\n",
        seed = cfg.seed,
        emo = felt_emotion(a, v),
        media = 10 + trial,
    );
    let header = header_for(cfg, subject, trial, records);
    SessionFiles {
        id,
        bdf_name,
        xml,
        header,
        physical,
        status,
    }
}

/// ECG, unused EXG inputs, GSR, Erg, Resp, Plet, Temp (in `MAHNOB_OTHER` order).
fn other_channels(
    cfg: &Config,
    subj: &Subject,
    a: f64,
    n: usize,
    common: &[f64],
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Vec<f32>>,
) {
    let fs = cfg.sample_rate as f64;
    // Heart beats, shared by ECG and the pulse wave.
    let bpm = subj.heart_bpm + 3.0 * a;
    let mut beats = Vec::new();
    let mut t = rng.gen_range(0.0..0.8);
    while ((t * fs) as usize) < n {
        beats.push((t * fs) as usize);
        t += 60.0 / bpm * (1.0 + 0.04 * normal(rng));
    }
    for lead in [1.0, 0.6, -0.4] {
        let mut x = vec![0.0; n];
        for &b in &beats {
            add_bump(&mut x, b, fs, 0.02, 0.03, 1200.0 * lead);
            add_bump(
                &mut x,
                b + (0.25 * fs) as usize,
                fs,
                0.08,
                0.1,
                300.0 * lead,
            );
        }
        let noise = pink(n, rng);
        let offset = rng.gen_range(-8000.0..8000.0);
        out.push(
            (0..n)
                .map(|i| (x[i] + 5.0 * noise[i] + offset + common[i]) as f32)
                .collect(),
        );
    }
    for _ in 0..5 {
        let noise = pink(n, rng);
        let offset = rng.gen_range(-8000.0..8000.0);
        out.push(
            (0..n)
                .map(|i| (5.0 * noise[i] + offset + common[i]) as f32)
                .collect(),
        );
    }
    // Skin conductance (µS) → resistance (Ω).
    let mut g = vec![subj.conductance_us + 0.4 * a; n];
    for at in poisson_events(n, 0.05 * (0.5 * a).exp(), fs, rng) {
        add_bump(&mut g, at, fs, 1.0, 3.0, 0.3 * (1.0 + 0.3 * normal(rng)));
    }
    for scale in [1.0, 1.05] {
        let noise = pink(n, rng);
        out.push(
            (0..n)
                .map(|i| (1e6 / (g[i].max(0.2) * scale) + 200.0 * noise[i]) as f32)
                .collect(),
        );
    }
    for _ in 0..2 {
        let noise = pink(n, rng);
        out.push(noise.iter().map(|v| (10.0 * v) as f32).collect());
    }
    let breaths_hz = 0.25 * (1.0 + 0.05 * a);
    let noise = pink(n, rng);
    out.push(
        (0..n)
            .map(|i| {
                (2000.0 * (2.0 * std::f64::consts::PI * breaths_hz * i as f64 / fs).sin()
                    + 50.0 * noise[i]) as f32
            })
            .collect(),
    );
    let mut pulse = vec![0.0; n];
    for &b in &beats {
        add_bump(&mut pulse, b + (0.2 * fs) as usize, fs, 0.15, 0.5, 5000.0);
    }
    out.push(pulse.iter().map(|&p| (p + 1000.0) as f32).collect());
    let drift = rng.gen_range(-0.002..0.002);
    out.push(
        (0..n)
            .map(|i| (subj.temperature + drift * i as f64 / fs) as f32)
            .collect(),
    );
}

fn header_for(cfg: &Config, subject: usize, trial: usize, records: usize) -> BdfHeader {
    let spr = cfg.sample_rate;
    let mut signals: Vec<SignalHeader> = EEG_32
        .iter()
        .map(|name| {
            let mut s = SignalHeader::new(name, "uV", -262144.0, 262143.0, spr);
            s.transducer = "Active Electrode".into();
            s.prefiltering = "HP: DC; LP: 52 Hz".into();
            s
        })
        .collect();
    for name in MAHNOB_OTHER {
        let (dim, lo, hi) = match name {
            "GSR1" | "GSR2" => ("Ohm", 0.0, 16_777_215.0),
            "Temp" => ("degC", -20.0, 80.0),
            _ => ("uV", -262144.0, 262143.0),
        };
        signals.push(SignalHeader::new(name, dim, lo, hi, spr));
    }
    signals.push(SignalHeader::status(spr));
    let minutes = trial * 3;
    BdfHeader {
        patient: format!("Part_{subject}"),
        recording: format!("pipe synthetic-mahnob seed {}", cfg.seed),
        start_date: "01.06.10".into(),
        start_time: format!("{:02}.{:02}.00", 9 + minutes / 60, minutes % 60),
        reserved: "24BIT".into(),
        records,
        record_duration: 1.0,
        signals,
    }
}

/// Write the `Sessions` folder under `out`. Returns the number of sessions.
pub fn generate(out: &Path, cfg: &Config) -> Result<usize, StageError> {
    cfg.check()?;
    let root = out.join(SESSIONS_DIR);
    std::fs::create_dir_all(&root).at(&root)?;
    let jobs: Vec<(usize, usize, usize)> = (1..=cfg.subjects)
        .flat_map(|s| (1..=cfg.sessions).map(move |t| (s, t)))
        .enumerate()
        .map(|(k, (s, t))| (s, t, 2 * (k + 1)))
        .collect();
    let subjects: Vec<Subject> = (1..=cfg.subjects)
        .map(|s| Subject::new(cfg.seed, s))
        .collect();
    jobs.par_iter()
        .map(|&(subject, trial, id)| {
            let files = generate_session(cfg, &subjects[subject - 1], subject, trial, id);
            write_session(&root, &files)
        })
        .collect::<Result<Vec<()>, StageError>>()?;
    Ok(jobs.len())
}

fn write_session(root: &Path, f: &SessionFiles) -> Result<(), StageError> {
    let dir: PathBuf = root.join(f.id.to_string());
    std::fs::create_dir_all(&dir).at(&dir)?;
    let xml_path = dir.join("session.xml");
    std::fs::write(&xml_path, &f.xml).at(&xml_path)?;
    let mut data: Vec<SignalData> = f.physical.iter().map(|p| SignalData::Physical(p)).collect();
    data.push(SignalData::Digital(&f.status));
    bdf::write_bdf(&dir.join(&f.bdf_name), f.header.clone(), &data)?;
    Ok(())
}

pub struct SyntheticMahnob;

crate::stage_params! {
    /// What `synthetic-mahnob` takes.
    pub struct SyntheticMahnobParams {
        /// number of subjects
        subjects: usize = Config::default().subjects;
        /// stimulus sessions per subject
        sessions: usize = Config::default().sessions;
        /// mean stimulus length in seconds
        stimulus_s: f64 = Config::default().stimulus_s;
        /// stimulus lengths vary uniformly by ± this fraction
        stimulus_jitter: f64 = Config::default().stimulus_jitter;
        /// recording before and after the stimulus (MAHNOB: 30 s)
        baseline_s: f64 = Config::default().baseline_s;
        /// BDF sampling rate in Hz (MAHNOB: 256)
        sample_rate: usize = Config::default().sample_rate;
        /// strength of the latents' EEG band-power effects
        eeg_effect: f64 = Config::default().eeg_effect;
        /// strength of the latents' effects on blinks and saccades
        eog_effect: f64 = Config::default().eog_effect;
        /// sd of the rating noise (rating points)
        label_noise: f64 = Config::default().label_noise;
        /// random seed (same seed, same bytes)
        seed: i64 = 0;
    }
}

impl Stage for SyntheticMahnob {
    fn name(&self) -> &'static str {
        "synthetic-mahnob"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "writes a MAHNOB-HCI-format stand-in (Sessions/<id>/ with a 24-bit BDF and session.xml) from a latent arousal/valence model"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<SyntheticMahnobParams>()
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![SESSIONS_DIR]
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: SyntheticMahnobParams = ctx.params()?;
        let cfg = Config {
            subjects: p.subjects,
            sessions: p.sessions,
            stimulus_s: p.stimulus_s,
            stimulus_jitter: p.stimulus_jitter,
            baseline_s: p.baseline_s,
            sample_rate: p.sample_rate,
            eeg_effect: p.eeg_effect,
            eog_effect: p.eog_effect,
            label_noise: p.label_noise,
            seed: ctx.seed,
        };
        ctx.progress
            .start("sessions", (cfg.subjects * cfg.sessions) as u64);
        let pool = ctx.thread_pool()?;
        let n = pool.install(|| generate(&ctx.out_dir, &cfg))?;
        let root = crate::data::mahnob::sessions_root(&ctx.out_dir.join(SESSIONS_DIR));
        crate::data::provenance::mark(&root, self.name(), ctx.seed)?;
        ctx.progress.update(n as u64, "written");
        let mut m = Map::new();
        m.insert("sessions".into(), Value::from(n));
        m.insert("subjects".into(), Value::from(cfg.subjects));
        Ok(Outcome::with_metrics(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::bdf::BdfReader;
    use crate::data::mahnob;

    fn tiny() -> Config {
        Config {
            subjects: 2,
            sessions: 3,
            stimulus_s: 4.0,
            baseline_s: 2.0,
            seed: 5,
            ..Config::default()
        }
    }

    fn digest(dir: &Path) -> String {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut h = blake3::Hasher::new();
        for f in files {
            h.update(f.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
            h.update(&std::fs::read(&f).unwrap());
        }
        h.finalize().to_hex().to_string()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        generate(a.path(), &tiny()).unwrap();
        generate(b.path(), &tiny()).unwrap();
        generate(c.path(), &Config { seed: 6, ..tiny() }).unwrap();
        assert_eq!(digest(a.path()), digest(b.path()));
        assert_ne!(digest(a.path()), digest(c.path()));
    }

    #[test]
    fn writes_mahnob_layout_that_the_readers_accept() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(generate(tmp.path(), &tiny()).unwrap(), 6);
        let d = mahnob::discover(&tmp.path().join(SESSIONS_DIR)).unwrap();
        assert_eq!(d.sessions.len(), 6);
        assert_eq!(d.skipped.total(), 0);
        let s = &d.sessions[4];
        assert_eq!((s.subject, s.trial, s.id.as_str()), (2, 2, "10"));
        assert!(s.bdf.ends_with("Part_2_S_Trial2_emotion.bdf"));
        let mut r = BdfReader::open(&s.bdf).unwrap();
        let h = r.header().clone();
        assert_eq!(h.reserved, "24BIT");
        let labels: Vec<&str> = h.signals.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(&labels[..32], &EEG_32[..]);
        assert_eq!(&labels[32..47], &MAHNOB_OTHER[..]);
        assert_eq!(labels[47], "Status");
        assert_eq!(h.sample_rate(0), Some(256.0));
        let status = r.read_digital(&[47], 0..h.records).unwrap().pop().unwrap();
        assert!(
            status.iter().all(|&v| v < 0),
            "flags make raw status negative"
        );
        let onsets: Vec<usize> = (1..status.len())
            .filter(|&i| (status[i] & bdf::TRIGGER_MASK) > (status[i - 1] & bdf::TRIGGER_MASK))
            .collect();
        assert_eq!(onsets.len(), 2);
        assert_eq!(onsets[0], 512);
        let cut = s.xml.cut_len_s.unwrap();
        assert!(((onsets[1] - onsets[0]) as f64 / 256.0 - cut).abs() < 1e-3);
        assert!((3.0..=5.0).contains(&cut));
        // After the stimulus at least the baseline again, in whole records.
        assert!(status.len() >= onsets[1] + 512 && status.len().is_multiple_of(256));
        // Raw EEG carries big electrode offsets, like BioSemi's.
        let fp1 = r.read_signal(0).unwrap();
        assert!(fp1.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bad_params_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        for cfg in [
            Config {
                subjects: 0,
                ..tiny()
            },
            Config {
                stimulus_s: 0.0,
                ..tiny()
            },
            Config {
                label_noise: -1.0,
                ..tiny()
            },
            Config {
                stimulus_jitter: 1.0,
                ..tiny()
            },
        ] {
            assert!(matches!(
                generate(tmp.path(), &cfg),
                Err(StageError::Param(_))
            ));
        }
    }

    #[test]
    fn frontal_sides_and_weights() {
        assert_eq!(frontal_side("F3"), -1.0);
        assert_eq!(frontal_side("AF4"), 1.0);
        assert_eq!(frontal_side("Fz"), 0.0);
        assert_eq!(frontal_side("Fp1"), -1.0);
        assert_eq!(frontal_side("C3"), 0.0);
        assert!(is_posterior("PO3") && is_posterior("CP6") && !is_posterior("FC1"));
        // The vertical proxy sees blinks, the horizontal proxy sees gaze.
        let v = (blink_weight("Fp1") + blink_weight("Fp2")) / 2.0
            - (blink_weight("F3") + blink_weight("F4")) / 2.0;
        assert!(v > 0.5);
        assert!(saccade_weight("F7") - saccade_weight("F8") > 1.0);
        assert_eq!(blink_weight("F7") - blink_weight("F8"), 0.0);
    }
}
