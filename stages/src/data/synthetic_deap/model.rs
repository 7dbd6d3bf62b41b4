//! The generative model of the synthetic DEAP data (documented in `../SYNTHETIC.md`).
//!
//! Every trial is generated from its own RNG stream, seeded from (seed, subject,
//! trial), and every subject's traits from (seed, subject): a subject's data does not
//! depend on how many subjects or threads there are.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::signals::{add_blink, gaze_trace, poisson_times, Pink, Resonator};
use crate::data::channels::DEAP_CHANNELS;

/// Sizes and effect strengths (the stage's parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub subjects: usize,
    pub trials: usize,
    /// Stimulus length (s), after the baseline.
    pub seconds: f64,
    /// Pre-trial baseline (s); DEAP's is 3.
    pub baseline_s: f64,
    pub sample_rate: f64,
    /// Multiplies the EEG band-power effects of the latents (0: EEG carries none).
    pub eeg_effect: f64,
    /// Multiplies the latents' effects on blink and saccade rates (0: EOG carries none).
    pub eog_effect: f64,
    /// SD (rating points) of the noise between a latent and its self-rating.
    pub label_noise: f64,
    /// Multiplies every between-subject spread (gains, offsets, rhythms, rates).
    pub subject_variability: f64,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            subjects: 4,
            trials: 20,
            seconds: 60.0,
            baseline_s: 3.0,
            sample_rate: 128.0,
            // tuned so that the paper's teacher lands clearly above the EOG student
            // (SYNTHETIC.md, "What the defaults give")
            eeg_effect: 2.5,
            eog_effect: 3.5,
            label_noise: 1.0,
            subject_variability: 1.0,
            seed: 0,
        }
    }
}

impl SynthConfig {
    pub fn baseline_samples(&self) -> usize {
        (self.baseline_s * self.sample_rate).round() as usize
    }
    /// Samples per trial (baseline + stimulus): 8064 for DEAP.
    pub fn samples(&self) -> usize {
        ((self.baseline_s + self.seconds) * self.sample_rate).round() as usize
    }
}

pub(super) const CHANNELS: usize = DEAP_CHANNELS.len();
const EEG: usize = 32;
const HEOG: usize = 32;
const VEOG: usize = 33;

/// One subject's arrays, as they go into `sNN.dat`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSubject {
    pub subject: u16,
    /// trials × 40 × samples, row-major (µV for EEG/EOG).
    pub data: Vec<f64>,
    /// trials × 4: valence, arousal, dominance, liking (1–9).
    pub labels: Vec<f64>,
    /// Per trial: (arousal, valence) latents, standard normal.
    pub latents: Vec<(f64, f64)>,
}

/// Where an EEG channel sits, for the effects.
#[derive(Debug, Clone, Copy)]
struct Site {
    /// Weight of the arousal effect on alpha (posterior).
    posterior: f64,
    /// +1 left frontal, -1 right frontal: sign of the valence effect on alpha.
    asymmetry: f64,
    /// Base alpha amplitude relative to the subject's alpha.
    alpha_weight: f64,
    /// Weight of the arousal effect on beta (fronto-central 1, elsewhere 0.6).
    beta_weight: f64,
    /// Weight of the valence effect on frontal alpha (Fp/AF/F 1, FC 0.5).
    frontal: f64,
    /// Weight of the valence effect on beta (lateral temporal 1, neighbours 0.5).
    temporal: f64,
    /// Fraction of vEOG (blinks) and hEOG (saccades) that leaks in.
    blink_leak: f64,
    saccade_leak: f64,
}

fn site(name: &str) -> Site {
    let posterior = match name {
        "P3" | "P7" | "PO3" | "O1" | "Oz" | "Pz" | "P4" | "P8" | "PO4" | "O2" => 1.0,
        "CP5" | "CP1" | "CP6" | "CP2" => 0.5,
        _ => 0.0,
    };
    let asymmetry = match name {
        "F3" => 1.0,
        "AF3" | "F7" | "FC5" => 0.7,
        "F4" => -1.0,
        "AF4" | "F8" | "FC6" => -0.7,
        _ => 0.0,
    };
    let alpha_weight = if posterior >= 1.0 {
        1.0
    } else if posterior > 0.0 {
        0.8
    } else if name.starts_with('C') {
        0.6
    } else if name.starts_with('T') {
        0.4
    } else {
        0.5
    };
    let beta_weight = if name.starts_with('F') || name.starts_with('C') || name.starts_with("AF") {
        1.0
    } else {
        0.6
    };
    let frontal = if name.starts_with("FC") {
        0.5
    } else if name.starts_with('F') || name.starts_with("AF") {
        1.0
    } else {
        0.0
    };
    let temporal = match name {
        "T7" | "T8" => 1.0,
        "FC5" | "FC6" | "CP5" | "CP6" | "P7" | "P8" | "F7" | "F8" => 0.7,
        _ => 0.0,
    };
    let blink_leak = match name {
        "Fp1" | "Fp2" => 0.4,
        "AF3" | "AF4" => 0.2,
        "F3" | "F4" | "F7" | "F8" | "Fz" => 0.08,
        _ => 0.0,
    };
    let saccade_leak = match name {
        "F7" => 0.15,
        "F8" => -0.15,
        "AF3" | "Fp1" => 0.05,
        "AF4" | "Fp2" => -0.05,
        _ => 0.0,
    };
    Site {
        posterior,
        asymmetry,
        alpha_weight,
        beta_weight,
        frontal,
        temporal,
        blink_leak,
        saccade_leak,
    }
}

/// A subject's traits.
#[derive(Debug, Clone)]
struct Traits {
    gain: [f64; CHANNELS],
    offset: [f64; CHANNELS],
    alpha_amp: f64,
    alpha_freq: f64,
    beta_amp: f64,
    /// Scales this subject's EEG responses to the latents.
    sensitivity: f64,
    /// Added to the (arousal, valence) ratings.
    rating_bias: (f64, f64),
    blink_rate: f64,
    blink_amp: f64,
    saccade_rate: f64,
    saccade_amp: f64,
    heart_hz: f64,
    breath_hz: f64,
    gsr_level: f64,
    temperature: f64,
}

/// Fixed constants of the model (µV, Hz, s).
const BACKGROUND_UV: f64 = 8.0;
const ALPHA_UV: f64 = 6.0;
const BETA_UV: f64 = 2.5;
const EOG_NOISE_UV: f64 = 4.0;
/// Log-amplitude change per unit latent, before `eeg_effect` and the subject's sensitivity.
const ALPHA_AROUSAL: f64 = -0.30;
const ALPHA_VALENCE_ASYMMETRY: f64 = -0.25;
/// Higher valence lowers frontal alpha overall (frontal activation).
const ALPHA_VALENCE_FRONTAL: f64 = -0.35;
/// Higher valence raises lateral-temporal beta (Zheng & Lu 2015, SEED).
const BETA_VALENCE: f64 = 0.5;
const BETA_AROUSAL: f64 = 0.25;
/// Log-amplitude SD of trial-to-trial alpha/beta changes unrelated to the latents.
const STATE_NOISE: f64 = 0.15;
/// Log-rate change per unit latent, before `eog_effect`.
const BLINK_AROUSAL: f64 = 0.35;
const BLINK_VALENCE: f64 = -0.30;
const SACCADE_AROUSAL: f64 = 0.30;
const SACCADE_VALENCE: f64 = 0.35;
const WARMUP: usize = 512;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

fn lognormal(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    (normal(rng) * sd).exp()
}

/// splitmix64: decorrelates the per-stream seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn stream(seed: u64, subject: u16, trial: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(seed) ^ mix((u64::from(subject) << 32) ^ trial)))
}

fn traits(cfg: &SynthConfig, subject: u16) -> Traits {
    let sv = cfg.subject_variability;
    let mut rng = stream(cfg.seed, subject, u64::from(u32::MAX) + 1);
    let mut gain = [1.0; CHANNELS];
    let mut offset = [0.0; CHANNELS];
    for c in 0..CHANNELS {
        gain[c] = lognormal(&mut rng, 0.2 * sv);
        offset[c] = normal(&mut rng) * if c < EEG { 2.0 } else { 10.0 } * sv;
    }
    Traits {
        gain,
        offset,
        alpha_amp: ALPHA_UV * lognormal(&mut rng, 0.25 * sv),
        alpha_freq: (10.0 + 0.8 * sv * normal(&mut rng)).clamp(8.5, 12.0),
        beta_amp: BETA_UV * lognormal(&mut rng, 0.2 * sv),
        sensitivity: lognormal(&mut rng, 0.25 * sv),
        rating_bias: (0.5 * sv * normal(&mut rng), 0.5 * sv * normal(&mut rng)),
        blink_rate: 0.3 * lognormal(&mut rng, 0.3 * sv),
        blink_amp: 150.0 * lognormal(&mut rng, 0.2 * sv),
        saccade_rate: 0.7 * lognormal(&mut rng, 0.3 * sv),
        saccade_amp: 40.0 * lognormal(&mut rng, 0.2 * sv),
        heart_hz: 1.1 + 0.15 * sv * normal(&mut rng),
        breath_hz: 0.25 + 0.04 * sv * normal(&mut rng),
        gsr_level: 2000.0 * lognormal(&mut rng, 0.4 * sv),
        temperature: 33.0 + sv * normal(&mut rng),
    }
}

fn rating(x: f64) -> f64 {
    x.clamp(1.0, 9.0)
}

/// Generates one subject (trials in parallel on the current rayon pool).
pub fn generate_subject(cfg: &SynthConfig, subject: u16) -> SyntheticSubject {
    let samples = cfg.samples();
    let tr = traits(cfg, subject);
    let per_trial = CHANNELS * samples;
    let mut data = vec![0.0f64; cfg.trials * per_trial];
    let pink = Pink::new(cfg.sample_rate, 4.0);
    let results: Vec<([f64; 4], (f64, f64))> = data
        .par_chunks_mut(per_trial.max(1))
        .enumerate()
        .map(|(t, out)| trial(cfg, &tr, &pink, subject, t, out))
        .collect();
    let labels = results.iter().flat_map(|(l, _)| *l).collect();
    let latents = results.iter().map(|(_, z)| *z).collect();
    SyntheticSubject {
        subject,
        data,
        labels,
        latents,
    }
}

/// Fills one trial (40 × samples) and returns its ratings and latents.
fn trial(
    cfg: &SynthConfig,
    tr: &Traits,
    pink: &Pink,
    subject: u16,
    t: usize,
    out: &mut [f64],
) -> ([f64; 4], (f64, f64)) {
    let mut rng = stream(cfg.seed, subject, t as u64);
    let fs = cfg.sample_rate;
    let samples = cfg.samples();
    let onset = cfg.baseline_samples().min(samples);

    // Latent state and self-ratings.
    let (a, v) = (normal(&mut rng), normal(&mut rng));
    let noise = cfg.label_noise;
    let valence = rating(5.0 + 2.0 * v + tr.rating_bias.1 + noise * normal(&mut rng));
    let arousal = rating(5.0 + 2.0 * a + tr.rating_bias.0 + noise * normal(&mut rng));
    let dominance = rating(5.0 + 1.0 * v - 0.5 * a + 1.2 * normal(&mut rng));
    let liking = rating(5.0 + 1.5 * v + 0.3 * a + 1.2 * normal(&mut rng));

    // Eye movements: rates change at stimulus onset.
    let oe = cfg.eog_effect;
    let blink_after = tr.blink_rate * (oe * (BLINK_AROUSAL * a + BLINK_VALENCE * v)).exp();
    let saccade_after = tr.saccade_rate * (oe * (SACCADE_AROUSAL * a + SACCADE_VALENCE * v)).exp();
    let blinks = poisson_times(
        &mut rng,
        samples,
        fs,
        onset,
        tr.blink_rate,
        blink_after,
        0.25,
    );
    let saccades = poisson_times(
        &mut rng,
        samples,
        fs,
        onset,
        tr.saccade_rate,
        saccade_after,
        0.1,
    );
    let mut blink = vec![0.0; samples];
    for &b in &blinks {
        let amp = tr.blink_amp * rng.gen_range(0.7..1.3);
        add_blink(&mut blink, b, amp, 0.1, fs);
    }
    let gaze = gaze_trace(&mut rng, &saccades, samples, tr.saccade_amp, 0.015, 2.0, fs);

    // EEG: a shared posterior alpha source plus each channel's own rhythms.
    let state_alpha = STATE_NOISE * normal(&mut rng);
    let state_beta = STATE_NOISE * normal(&mut rng);
    let alpha_proto = Resonator::new(tr.alpha_freq, 2.0, fs);
    let beta_proto = Resonator::new(20.0, 8.0, fs);
    let mut shared = alpha_proto.start(&mut rng, WARMUP);
    let shared_alpha: Vec<f64> = (0..samples).map(|_| shared.next(&mut rng)).collect();
    let ee = cfg.eeg_effect * tr.sensitivity;
    for (c, name) in DEAP_CHANNELS.iter().enumerate().take(EEG) {
        let s = site(name);
        let alpha_log = ee
            * (ALPHA_AROUSAL * s.posterior * a
                + (ALPHA_VALENCE_ASYMMETRY * s.asymmetry + ALPHA_VALENCE_FRONTAL * s.frontal) * v);
        let beta_log = ee * (BETA_AROUSAL * s.beta_weight * a + BETA_VALENCE * s.temporal * v);
        let alpha_base = tr.alpha_amp * s.alpha_weight * state_alpha.exp();
        let beta_base = tr.beta_amp * state_beta.exp();
        let gains = [
            (alpha_base, beta_base),
            (alpha_base * alpha_log.exp(), beta_base * beta_log.exp()),
        ];
        let mut bg = pink.start(&mut rng, WARMUP);
        let mut own = alpha_proto.start(&mut rng, WARMUP);
        let mut beta = beta_proto.start(&mut rng, WARMUP);
        let (g, off) = (tr.gain[c], tr.offset[c]);
        let row = &mut out[c * samples..(c + 1) * samples];
        for (n, x) in row.iter_mut().enumerate() {
            let (alpha_amp, beta_amp) = gains[usize::from(n >= onset)];
            let alpha = 0.6 * shared_alpha[n] + 0.8 * own.next(&mut rng);
            let eeg = BACKGROUND_UV * bg.next(&mut rng)
                + alpha_amp * alpha
                + beta_amp * beta.next(&mut rng);
            *x = g * eeg + off + s.blink_leak * blink[n] + s.saccade_leak * gaze[n];
        }
    }

    // EOG.
    for (c, eye) in [(HEOG, &gaze), (VEOG, &blink)] {
        let mut bg = pink.start(&mut rng, WARMUP);
        let (g, off) = (tr.gain[c], tr.offset[c]);
        for (n, x) in out[c * samples..(c + 1) * samples].iter_mut().enumerate() {
            *x = g * (eye[n] + EOG_NOISE_UV * bg.next(&mut rng)) + off;
        }
    }

    other_channels(cfg, tr, &mut rng, samples, &mut out[(VEOG + 1) * samples..]);
    ([valence, arousal, dominance, liking], (a, v))
}

/// Channels 35–40 (zEMG, tEMG, GSR, respiration, plethysmograph, temperature):
/// plausible shapes, no latent effects (the method does not use them).
fn other_channels(
    cfg: &SynthConfig,
    tr: &Traits,
    rng: &mut ChaCha8Rng,
    samples: usize,
    out: &mut [f64],
) {
    let fs = cfg.sample_rate;
    let tau = std::f64::consts::TAU;
    let (heart_phase, breath_phase) = (rng.gen::<f64>() * tau, rng.gen::<f64>() * tau);
    let mut gsr = 0.0f64;
    let drift = 0.02 * normal(rng);
    for (k, row) in out
        .chunks_exact_mut(samples.max(1))
        .enumerate()
        .take(CHANNELS - VEOG - 1)
    {
        let c = VEOG + 1 + k;
        let g = tr.gain[c];
        for (n, x) in row.iter_mut().enumerate() {
            let t = n as f64 / fs;
            *x = match k {
                0 | 1 => g * 5.0 * normal(rng),
                2 => {
                    gsr = 0.999 * gsr + 2.0 * normal(rng);
                    tr.gsr_level + g * gsr
                }
                3 => g * 400.0 * (tau * tr.breath_hz * t + breath_phase).sin() + 20.0 * normal(rng),
                4 => {
                    let p = tau * tr.heart_hz * t + heart_phase;
                    g * 1000.0 * (p.sin() + 0.4 * (2.0 * p + 0.7).sin()) + 10.0 * normal(rng)
                }
                _ => tr.temperature + drift * t + 0.005 * normal(rng),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            subjects: 1,
            trials: 16,
            seconds: 20.0,
            seed: 5,
            ..SynthConfig::default()
        }
    }

    /// Mean power of `x` in [lo, hi] Hz (Goertzel-style DFT over the bins).
    fn band_power(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
        let n = x.len();
        let (k0, k1) = (
            (lo * n as f64 / fs).ceil() as usize,
            (hi * n as f64 / fs).floor() as usize,
        );
        let mut total = 0.0;
        for k in k0..=k1 {
            let w = std::f64::consts::TAU * k as f64 / n as f64;
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in x.iter().enumerate() {
                re += v * (w * i as f64).cos();
                im -= v * (w * i as f64).sin();
            }
            total += re * re + im * im;
        }
        total / (k1 - k0 + 1) as f64
    }

    fn correlation(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    }

    fn channel<'a>(s: &'a SyntheticSubject, cfg: &SynthConfig, t: usize, name: &str) -> &'a [f64] {
        let c = DEAP_CHANNELS.iter().position(|n| *n == name).unwrap();
        let samples = cfg.samples();
        let start = (t * CHANNELS + c) * samples + cfg.baseline_samples();
        &s.data[start..(t * CHANNELS + c + 1) * samples]
    }

    #[test]
    fn eeg_band_power_follows_the_latents() {
        let cfg = small();
        let s = generate_subject(&cfg, 1);
        let (mut alpha, mut asym, mut arousal, mut valence) = (vec![], vec![], vec![], vec![]);
        for t in 0..cfg.trials {
            let post: f64 = ["O1", "O2", "Pz"]
                .iter()
                .map(|c| band_power(channel(&s, &cfg, t, c), 128.0, 9.0, 11.0).ln())
                .sum();
            alpha.push(post);
            let f3 = band_power(channel(&s, &cfg, t, "F3"), 128.0, 9.0, 11.0).ln();
            let f4 = band_power(channel(&s, &cfg, t, "F4"), 128.0, 9.0, 11.0).ln();
            asym.push(f4 - f3);
            arousal.push(s.latents[t].0);
            valence.push(s.latents[t].1);
        }
        let r_alpha = correlation(&alpha, &arousal);
        let r_asym = correlation(&asym, &valence);
        assert!(r_alpha < -0.7, "posterior alpha vs arousal r = {r_alpha}");
        assert!(
            r_asym > 0.6,
            "F4-F3 alpha asymmetry vs valence r = {r_asym}"
        );
    }

    #[test]
    fn ratings_follow_latents_with_noise() {
        let cfg = SynthConfig {
            trials: 200,
            seconds: 0.5,
            baseline_s: 0.0,
            ..small()
        };
        let s = generate_subject(&cfg, 2);
        let val: Vec<f64> = s.labels.chunks(4).map(|l| l[0]).collect();
        let aro: Vec<f64> = s.labels.chunks(4).map(|l| l[1]).collect();
        let (za, zv): (Vec<f64>, Vec<f64>) = s.latents.iter().copied().unzip();
        assert!(s.labels.iter().all(|&l| (1.0..=9.0).contains(&l)));
        let (ra, rv) = (correlation(&aro, &za), correlation(&val, &zv));
        // 2 points per SD latent vs 1 point of noise: r ≈ 0.85 before clamping/bias.
        assert!(ra > 0.75 && ra < 0.97, "{ra}");
        assert!(rv > 0.75 && rv < 0.97, "{rv}");
        let exact = generate_subject(
            &SynthConfig {
                label_noise: 0.0,
                ..cfg.clone()
            },
            2,
        );
        let aro0: Vec<f64> = exact.labels.chunks(4).map(|l| l[1]).collect();
        assert!(correlation(&aro0, &za) > 0.95);
    }

    #[test]
    fn blinks_leak_into_fp1_and_follow_arousal_weakly() {
        let cfg = SynthConfig {
            trials: 60,
            seconds: 30.0,
            eeg_effect: 0.0,
            ..small()
        };
        let s = generate_subject(&cfg, 3);
        let (mut leak, mut var, mut arousal) = (vec![], vec![], vec![]);
        for t in 0..cfg.trials {
            let veog = channel(&s, &cfg, t, "vEOG");
            leak.push(correlation(veog, channel(&s, &cfg, t, "Fp1")));
            var.push(veog.iter().map(|v| v * v).sum::<f64>().ln());
            arousal.push(s.latents[t].0);
        }
        let mean_leak = leak.iter().sum::<f64>() / leak.len() as f64;
        assert!(mean_leak > 0.3, "vEOG-Fp1 correlation {mean_leak}");
        let r = correlation(&var, &arousal);
        assert!(r > 0.1 && r < 0.8, "vEOG power vs arousal r = {r}");
    }

    #[test]
    fn subjects_do_not_depend_on_the_subject_count_and_seed_matters() {
        let cfg = SynthConfig {
            trials: 2,
            seconds: 1.0,
            ..small()
        };
        let a = generate_subject(&cfg, 2);
        let b = generate_subject(
            &SynthConfig {
                subjects: 9,
                ..cfg.clone()
            },
            2,
        );
        assert_eq!(a, b);
        let c = generate_subject(
            &SynthConfig {
                seed: 6,
                ..cfg.clone()
            },
            2,
        );
        assert_ne!(a.data, c.data);
        assert_eq!(a.data.len(), 2 * 40 * 512);
    }
}
