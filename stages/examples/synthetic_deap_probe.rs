//! How much the synthetic DEAP data tell about their labels, measured with a simple
//! feature baseline (not the paper's models): per 4 s window, log band powers
//! (theta, alpha, beta) of the method's 28 EEG channels and EOG features (log power of
//! hEOG and vEOG in 0.5–4 Hz and 4–13 Hz, blink-like threshold crossings of vEOG),
//! logistic regression, 5-fold cross-validation over trials (all windows of a trial in
//! one fold), labels = rating > 5. Prints accuracies for EEG+EOG, EEG only, EOG only
//! and the label ceiling (how often a label agrees with the sign of its latent).
//!
//! ```text
//! cargo build --workspace --examples
//! target/debug/examples/synthetic_deap_probe [subjects trials seconds eeg_effect eog_effect label_noise seed]
//! ```

use rand::seq::SliceRandom;
use rand::SeedableRng;
use stages::data::channels::{DEAP_CHANNELS, METHOD_EEG};
use stages::data::synthetic_deap::{generate_subject, SynthConfig};

const WINDOW_S: f64 = 4.0;
const FOLDS: usize = 5;

struct Window {
    trial_key: usize,
    eeg: Vec<f64>,
    eog: Vec<f64>,
    labels: [bool; 2], // arousal, valence
}

/// Power per DFT bin k0..k1 of `x` (twiddles precomputed in `table`).
fn bin_powers(x: &[f64], table: &[(f64, f64)], bins: usize) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    (0..bins)
        .map(|b| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in x.iter().enumerate() {
                let (c, s) = table[b * n + i];
                re += (v - mean) * c;
                im -= (v - mean) * s;
            }
            re * re + im * im
        })
        .collect()
}

fn band(p: &[f64], k_first: usize, lo: f64, hi: f64, window_s: f64) -> f64 {
    let (a, b) = (
        (lo * window_s) as usize - k_first,
        (hi * window_s) as usize - k_first,
    );
    (p[a..b].iter().sum::<f64>() / (b - a) as f64).ln()
}

fn features(cfg: &SynthConfig) -> (Vec<Window>, f64, f64) {
    let fs = cfg.sample_rate;
    let n = (WINDOW_S * fs) as usize;
    let (k0, k1) = ((0.5 * WINDOW_S) as usize, (30.0 * WINDOW_S) as usize);
    let bins = k1 - k0;
    let mut table = Vec::with_capacity(bins * n);
    for b in 0..bins {
        let w = std::f64::consts::TAU * (k0 + b) as f64 / n as f64;
        table.extend((0..n).map(|i| ((w * i as f64).cos(), (w * i as f64).sin())));
    }
    let idx = |name: &str| {
        DEAP_CHANNELS
            .iter()
            .position(|c| *c == name)
            .expect("channel")
    };
    let eeg: Vec<usize> = METHOD_EEG.iter().map(|c| idx(c)).collect();
    let (heog, veog) = (idx("hEOG"), idx("vEOG"));
    let samples = cfg.samples();
    let mut windows = Vec::new();
    let (mut agree, mut total) = (0.0, 0.0);
    for s in 1..=cfg.subjects as u16 {
        let g = generate_subject(cfg, s);
        for t in 0..cfg.trials {
            let lab = &g.labels[t * 4..t * 4 + 4];
            let labels = [lab[1] > 5.0, lab[0] > 5.0];
            let (a, v) = g.latents[t];
            agree += f64::from(u8::from(labels[0] == (a > 0.0)) + u8::from(labels[1] == (v > 0.0)));
            total += 2.0;
            let chan = |c: usize| &g.data[(t * 40 + c) * samples..(t * 40 + c + 1) * samples];
            let mut start = cfg.baseline_samples();
            while start + n <= samples {
                let mut e = Vec::new();
                for &c in &eeg {
                    let p = bin_powers(&chan(c)[start..start + n], &table, bins);
                    for (lo, hi) in [(4.0, 8.0), (8.0, 13.0), (13.0, 30.0)] {
                        e.push(band(&p, k0, lo, hi, WINDOW_S));
                    }
                }
                let mut o = Vec::new();
                for c in [heog, veog] {
                    let p = bin_powers(&chan(c)[start..start + n], &table, bins);
                    o.push(band(&p, k0, 0.5, 4.0, WINDOW_S));
                    o.push(band(&p, k0, 4.0, 13.0, WINDOW_S));
                }
                let v = &chan(veog)[start..start + n];
                let mut sorted = v.to_vec();
                sorted.sort_by(f64::total_cmp);
                let median = sorted[n / 2];
                let crossings = v
                    .windows(2)
                    .filter(|w| w[0] - median < 60.0 && w[1] - median >= 60.0)
                    .count();
                o.push(crossings as f64);
                windows.push(Window {
                    trial_key: usize::from(s) * 100_000 + t,
                    eeg: e,
                    eog: o,
                    labels,
                });
                start += n;
            }
        }
    }
    (windows, agree / total, total / 2.0)
}

/// Logistic regression (gradient descent, L2), features standardised on the training set.
fn accuracy(train: &[Vec<f64>], ytr: &[bool], test: &[Vec<f64>], yte: &[bool]) -> f64 {
    let d = train[0].len();
    let mut mean = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for x in train {
        for j in 0..d {
            mean[j] += x[j] / train.len() as f64;
        }
    }
    for x in train {
        for j in 0..d {
            sd[j] += (x[j] - mean[j]).powi(2) / train.len() as f64;
        }
    }
    let z = |x: &Vec<f64>| -> Vec<f64> {
        (0..d)
            .map(|j| (x[j] - mean[j]) / sd[j].sqrt().max(1e-9))
            .collect()
    };
    let ztr: Vec<Vec<f64>> = train.iter().map(z).collect();
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    for _ in 0..300 {
        let mut gw = vec![0.0; d];
        let mut gb = 0.0;
        for (x, &y) in ztr.iter().zip(ytr) {
            let p = 1.0 / (1.0 + (-(b + x.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())).exp());
            let err = p - f64::from(u8::from(y));
            for j in 0..d {
                gw[j] += err * x[j];
            }
            gb += err;
        }
        let n = ztr.len() as f64;
        for j in 0..d {
            w[j] -= 0.5 * (gw[j] / n + 1e-3 * w[j]);
        }
        b -= 0.5 * gb / n;
    }
    let correct = test
        .iter()
        .zip(yte)
        .filter(|(x, &y)| {
            let x = z(x);
            (b + x.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>() > 0.0) == y
        })
        .count();
    correct as f64 / test.len() as f64
}

fn main() {
    let a: Vec<f64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("a number"))
        .collect();
    let get = |i: usize, d: f64| a.get(i).copied().unwrap_or(d);
    let cfg = SynthConfig {
        subjects: get(0, 4.0) as usize,
        trials: get(1, 20.0) as usize,
        seconds: get(2, 60.0),
        eeg_effect: get(3, SynthConfig::default().eeg_effect),
        eog_effect: get(4, SynthConfig::default().eog_effect),
        label_noise: get(5, 1.0),
        seed: get(6, 0.0) as u64,
        ..SynthConfig::default()
    };
    let (windows, ceiling, trials) = features(&cfg);
    println!("{cfg:?}");
    println!(
        "{} trials, {} windows; labels agree with the latent's sign: {:.1} %",
        trials,
        windows.len(),
        100.0 * ceiling
    );
    let mut keys: Vec<usize> = windows.iter().map(|w| w.trial_key).collect();
    keys.dedup();
    keys.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
    for (target, name) in [(0, "arousal"), (1, "valence")] {
        let mut line = format!("{name:8}");
        for (set, label) in [(0, "EEG+EOG"), (1, "EEG"), (2, "EOG")] {
            let x = |w: &Window| -> Vec<f64> {
                match set {
                    0 => w.eeg.iter().chain(&w.eog).copied().collect(),
                    1 => w.eeg.clone(),
                    _ => w.eog.clone(),
                }
            };
            let mut accs = Vec::new();
            for f in 0..FOLDS {
                let test_keys: Vec<usize> = keys.iter().copied().skip(f).step_by(FOLDS).collect();
                let (mut tr, mut ytr, mut te, mut yte) = (vec![], vec![], vec![], vec![]);
                for w in &windows {
                    if test_keys.contains(&w.trial_key) {
                        te.push(x(w));
                        yte.push(w.labels[target]);
                    } else {
                        tr.push(x(w));
                        ytr.push(w.labels[target]);
                    }
                }
                accs.push(accuracy(&tr, &ytr, &te, &yte));
            }
            let mean = accs.iter().sum::<f64>() / accs.len() as f64;
            line.push_str(&format!("  {label} {:.1} %", 100.0 * mean));
        }
        println!("{line}");
    }
}
