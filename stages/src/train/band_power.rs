//! `band-power`: the classical baseline — per-channel log band powers → logistic
//! regression — per (target, fold[, subject]) cell, on EEG + EOG or EOG only. It writes
//! `predictions.csv` (test role) and `metrics.json` like the networks, so `evaluate`
//! reports it as a row and contrasts can name it.
//!
//! Features: for every window and channel, the Hann-windowed periodogram averaged over
//! the bins of θ 4–8, α 8–13, β 13–30 and γ 30–45 Hz (bins up to Nyquist), log10,
//! standardised with the training role's mean and sd. Model: L2-regularised logistic
//! regression fitted by Newton's method (the Hessian is small: 4 · channels + 1), the
//! penalty chosen from a grid by validation accuracy (the role the networks stop
//! early on). Hand-written rather than `linfa-logistic`, whose `ndarray` + `argmin`
//! stack would be the only users of those crates here; Newton on a convex objective
//! converges in a few steps and is checked against a closed-form case in the tests.

use std::f64::consts::PI;

use serde_json::{Map, Value};

use crate::data::tables::{SPLITS, WINDOWS};
use crate::params::ParamSchema;
use crate::stage::{Context, Outcome, Stage, StageError};
use crate::train::dataset::{FoldData, Modality, Role};
use crate::train::evaluate::METRICS_JSON;
use crate::train::fit::{accuracy, EpochRecord, FitReport};
use crate::train::predictions::PREDICTIONS;
use crate::train::training_stage::{
    finish, load_data, predictions, write_test_predictions, CellParams, LEARNING_CURVE,
};

/// The frequency bands (Hz).
pub(crate) const BANDS: [(&str, f64, f64); 4] = [
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
];
/// The L2 penalties tried (on standardised features, per training window).
pub(crate) const PENALTIES: [f64; 5] = [1e-3, 1e-2, 1e-1, 1.0, 10.0];

pub(crate) struct BandPower;

/// The channels whose band powers are the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inputs {
    EegEog,
    Eog,
}

crate::choice_param!(Inputs { EegEog => "eeg+eog", Eog => "eog" });

crate::stage_params! {
    /// What `band-power` takes: the cell, and which channels. (No optimiser: the
    /// logistic regression is fitted by Newton's method.)
    pub(crate) struct BandPowerParams {
        ..cell: CellParams,
        /// the channels whose band powers are the features
        inputs: Inputs = Inputs::EegEog;
    }
}

impl Stage for BandPower {
    fn name(&self) -> &'static str {
        "band-power"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "baseline: per-channel log band powers (theta, alpha, beta, gamma) -> L2 logistic regression, penalty chosen on val; EEG+EOG or EOG only"
    }
    fn schema(&self) -> ParamSchema {
        ParamSchema::of::<BandPowerParams>()
    }
    fn consumes(&self) -> Vec<&'static str> {
        vec![WINDOWS, SPLITS]
    }
    fn produces(&self) -> Vec<&'static str> {
        vec![PREDICTIONS, METRICS_JSON, LEARNING_CURVE]
    }
    fn resources(&self) -> crate::Resources {
        crate::Resources::light()
    }
    fn run(&self, ctx: &Context) -> Result<Outcome, StageError> {
        let p: BandPowerParams = ctx.params()?;
        let modalities: &[Modality] = match p.inputs {
            Inputs::Eog => &[Modality::Eog],
            Inputs::EegEog => &[Modality::Eeg, Modality::Eog],
        };
        let data = load_data(ctx, modalities)?;
        let feats = |role| features(&data, role);
        let (train, val, test) = (feats(Role::Train), feats(Role::Val), feats(Role::Test));
        let y_train = &data.role(Role::Train).labels;
        if train.is_empty() {
            return Err(StageError::Data("the fold has no training windows".into()));
        }
        let (mean, sd) = standardiser(&train);
        let z = |x: &[Vec<f64>]| -> Vec<Vec<f64>> {
            x.iter().map(|r| standardise(r, &mean, &sd)).collect()
        };
        let (train, val, test) = (z(&train), z(&val), z(&test));
        let y_val = &data.role(Role::Val).labels;
        // the penalty with the best validation accuracy (ties: the stronger penalty)
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        for &l2 in PENALTIES.iter().rev() {
            ctx.check_cancelled()?;
            let w = fit_logistic(&train, y_train, l2);
            let acc = if val.is_empty() {
                f64::NAN
            } else {
                accuracy(y_val, &p_high(&w, &val))
            };
            if best
                .as_ref()
                .is_none_or(|b| acc > b.1 || (b.1.is_nan() && l2 == 1.0))
            {
                best = Some((l2, acc, w));
            }
        }
        let (l2, val_acc, w) = best.expect("a penalty was tried");
        let train_loss = log_loss(&w, &train, y_train);
        let val_loss = if val.is_empty() {
            f64::NAN
        } else {
            log_loss(&w, &val, y_val)
        };
        let report = FitReport {
            curve: vec![EpochRecord {
                epoch: 1,
                train_loss,
                val_loss,
                val_acc,
                quiz_loss: f64::NAN,
                fb_ratio: f64::NAN,
            }],
            best_epoch: 1,
            stopped_early: false,
        };
        let preds = predictions(&data, Role::Test, &p_high(&w, &test));
        let test_metrics = write_test_predictions(ctx, PREDICTIONS, &preds)?;
        let mut extra = Map::new();
        extra.insert("l2".into(), Value::from(l2));
        extra.insert("features".into(), Value::from(mean.len()));
        Ok(Outcome::with_metrics(finish(
            ctx,
            self.name(),
            &data,
            &report,
            test_metrics,
            extra,
        )?))
    }
}

/// The log10 band powers of every window of `role`: channels (in modality order) ×
/// [`BANDS`].
pub(crate) fn features(data: &FoldData, role: Role) -> Vec<Vec<f64>> {
    let n = data.role(role).len();
    let bands = Periodogram::new(data.samples(), f64::from(data.meta.sample_rate));
    let idx: Vec<usize> = (0..n).collect();
    let mut out = vec![Vec::new(); n];
    for m in 0..data.modalities.len() {
        let c = data.n_channels(m);
        let values = data.gather(role, m, &idx);
        for (row, window) in out.iter_mut().zip(values.chunks_exact(c * data.samples())) {
            for x in window.chunks_exact(data.samples()) {
                row.extend(bands.log_band_powers(x));
            }
        }
    }
    out
}

/// Hann-windowed periodogram at the DFT bins of [`BANDS`].
struct Periodogram {
    hann: Vec<f64>,
    bins: Vec<Vec<usize>>,
    /// cos/sin of every used bin, in band order
    tables: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Periodogram {
    fn new(s: usize, fs: f64) -> Periodogram {
        let bins = band_bins(s, fs);
        let tables = bins
            .iter()
            .flatten()
            .map(|&k| {
                let w = 2.0 * PI * k as f64 / s as f64;
                let cos = (0..s).map(|i| (w * i as f64).cos()).collect();
                let sin = (0..s).map(|i| (w * i as f64).sin()).collect();
                (cos, sin)
            })
            .collect();
        let hann = (0..s)
            .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / s as f64).cos())
            .collect();
        Periodogram { hann, bins, tables }
    }

    /// log10 of the mean power in each band of one channel's window.
    fn log_band_powers(&self, x: &[f32]) -> Vec<f64> {
        let xw: Vec<f64> = x
            .iter()
            .zip(&self.hann)
            .map(|(v, h)| f64::from(*v) * h)
            .collect();
        let power: Vec<f64> = self
            .tables
            .iter()
            .map(|(cos, sin)| {
                let (re, im) = xw
                    .iter()
                    .zip(cos.iter().zip(sin))
                    .fold((0.0, 0.0), |(re, im), (v, (c, s))| (re + v * c, im - v * s));
                re * re + im * im
            })
            .collect();
        let mut at = 0;
        self.bins
            .iter()
            .map(|b| {
                let mean = if b.is_empty() {
                    0.0
                } else {
                    power[at..at + b.len()].iter().sum::<f64>() / b.len() as f64
                };
                at += b.len();
                (mean + 1e-12).log10()
            })
            .collect()
    }
}

/// The DFT bins of each band for `s` samples at `fs` Hz (empty above Nyquist).
fn band_bins(s: usize, fs: f64) -> Vec<Vec<usize>> {
    let df = fs / s as f64;
    BANDS
        .iter()
        .map(|&(_, lo, hi)| {
            (1..=s / 2)
                .filter(|&k| {
                    let f = k as f64 * df;
                    f >= lo && f < hi
                })
                .collect()
        })
        .collect()
}

fn standardiser(x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let d = x[0].len();
    let n = x.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let sd = (0..d)
        .map(|j| {
            let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
            if v > 1e-24 {
                v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    (mean, sd)
}

fn standardise(r: &[f64], mean: &[f64], sd: &[f64]) -> Vec<f64> {
    r.iter()
        .zip(mean)
        .zip(sd)
        .map(|((v, m), s)| (v - m) / s)
        .collect()
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// `w[0]` is the bias.
fn score(w: &[f64], x: &[f64]) -> f64 {
    w[0] + w[1..].iter().zip(x).map(|(a, b)| a * b).sum::<f64>()
}

/// P(high) per row.
pub(crate) fn p_high(w: &[f64], x: &[Vec<f64>]) -> Vec<f32> {
    x.iter().map(|r| sigmoid(score(w, r)) as f32).collect()
}

/// Mean negative log-likelihood.
fn log_loss(w: &[f64], x: &[Vec<f64>], y: &[u8]) -> f64 {
    let total: f64 = x
        .iter()
        .zip(y)
        .map(|(r, &t)| {
            let s = score(w, r);
            // log(1 + e^s) − t·s, stable
            s.max(0.0) + (-s.abs()).exp().ln_1p() - f64::from(t) * s
        })
        .sum();
    total / x.len().max(1) as f64
}

/// Minimises `Σ log-loss + l2·n/2·‖w_{1..}‖²` (the bias unpenalised) by Newton's method.
pub(crate) fn fit_logistic(x: &[Vec<f64>], y: &[u8], l2: f64) -> Vec<f64> {
    let d = x.first().map_or(0, Vec::len) + 1;
    let n = x.len() as f64;
    let mut w = vec![0.0; d];
    for _ in 0..50 {
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        for (r, &t) in x.iter().zip(y) {
            let p = sigmoid(score(&w, r));
            let e = p - f64::from(t);
            let v = p * (1.0 - p);
            let xi = |j: usize| if j == 0 { 1.0 } else { r[j - 1] };
            for a in 0..d {
                g[a] += e * xi(a);
                for b in 0..=a {
                    h[a * d + b] += v * xi(a) * xi(b);
                }
            }
        }
        for a in 1..d {
            g[a] += l2 * n * w[a];
            h[a * d + a] += l2 * n;
        }
        h[0] += 1e-9 * n; // keeps the bias row positive definite on separable data
        for a in 0..d {
            for b in 0..a {
                h[b * d + a] = h[a * d + b];
            }
        }
        let Some(step) = cholesky_solve(&h, &g, d) else {
            break;
        };
        let mut change = 0.0f64;
        for (wi, si) in w.iter_mut().zip(&step) {
            *wi -= si;
            change = change.max(si.abs());
        }
        if change < 1e-10 {
            break;
        }
    }
    w
}

/// Solves `A x = b` for symmetric positive definite `A` (row-major `d × d`).
fn cholesky_solve(a: &[f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                let v = a[i * d + i] - s;
                if v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        z[i] = (b[i] - (0..i).map(|k| l[i * d + k] * z[k]).sum::<f64>()) / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        x[i] = (z[i] - (i + 1..d).map(|k| l[k * d + i] * x[k]).sum::<f64>()) / l[i * d + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_finds_the_closed_form_optimum_of_one_binary_feature() {
        // x ∈ {−1, +1}: P(y=1 | x=+1) = 3/4, P(y=1 | x=−1) = 1/4 → without penalty the
        // MLE is bias 0, slope ln 3 / 1 = ln(3).
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (v, ones) in [(1.0, 3), (-1.0, 1)] {
            for i in 0..4 {
                x.push(vec![v]);
                y.push(u8::from(i < ones));
            }
        }
        let w = fit_logistic(&x, &y, 0.0);
        assert!(
            w[0].abs() < 1e-9 && (w[1] - 3f64.ln()).abs() < 1e-9,
            "{w:?}"
        );
        // a penalty shrinks the slope
        let shrunk = fit_logistic(&x, &y, 1.0);
        assert!(shrunk[1] > 0.0 && shrunk[1] < w[1]);
    }

    #[test]
    fn band_powers_find_a_sinusoid_in_its_band() {
        let (s, fs) = (512, 128.0);
        // 0.25 Hz resolution: θ 4–8 Hz has 16 bins, α 20, β 68, γ 30–45 Hz 60
        let bins = band_bins(s, fs);
        assert_eq!(
            bins.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![16, 20, 68, 60]
        );
        let p = Periodogram::new(s, fs);
        for (band, f) in [(0, 6.0), (1, 10.0), (2, 20.0), (3, 40.0)] {
            let x: Vec<f32> = (0..s)
                .map(|i| (2.0 * PI * f * i as f64 / fs).sin() as f32)
                .collect();
            let lp = p.log_band_powers(&x);
            let top = (0..4).max_by(|&a, &b| lp[a].total_cmp(&lp[b])).unwrap();
            assert_eq!(top, band, "{f} Hz: {lp:?}");
            // Hann leakage stays > 4 decades below the band's power
            assert!(
                (0..4).all(|i| i == band || lp[i] < lp[band] - 4.0),
                "{f} Hz: {lp:?}"
            );
        }
        // amplitude ×10 → power ×100: +2 in log10
        let x: Vec<f32> = (0..s)
            .map(|i| (2.0 * PI * 10.0 * i as f64 / fs).sin() as f32)
            .collect();
        let x10: Vec<f32> = x.iter().map(|v| v * 10.0).collect();
        let (a, b) = (p.log_band_powers(&x)[1], p.log_band_powers(&x10)[1]);
        assert!((b - a - 2.0).abs() < 1e-6);
    }
}
