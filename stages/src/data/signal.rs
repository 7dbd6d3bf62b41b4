//! Signal processing for ingestion: anti-aliased rational resampling and a
//! zero-phase Butterworth high-pass.
//!
//! The resampler is `scipy.signal.resample_poly` with its defaults (the reference
//! implementation most EEG code uses; the tests compare against its output): for a
//! ratio `up/down` in lowest terms, a linear-phase low-pass FIR of `2·10·max(up,
//! down) + 1` taps, cut-off at the lower of the two Nyquist frequencies
//! (`1/max(up, down)` of the up-sampled Nyquist), Kaiser window β = 5, gain `up`;
//! the signal is conceptually up-sampled by zero insertion, filtered and decimated,
//! computed polyphase (only the taps that meet non-zero input). Output sample `j`
//! lies at input time `j·down/up` (zero delay), and the signal is taken as zero
//! outside its ends, so callers keep a margin at both ends and cut it off.
//! For 256 → 128 Hz (41 taps; response measured with `scipy.signal.freqz`): flat
//! within 0.1 dB to 55 Hz, −6 dB at the new Nyquist (64 Hz), below −54 dB from
//! 76 Hz up. What folds back therefore lands above 52 Hz, or is attenuated by more
//! than 54 dB, leaving the EEG bands (< 45 Hz) clean.
//!
//! The small DSP here is hand-written because the crates that offer it either pull
//! a large dependency tree for two filters or do not match scipy's reference design.

/// Largest `up` or `down` factor accepted (the filter grows with it).
const MAX_FACTOR: usize = 1000;
/// Kaiser window β of scipy's default `('kaiser', 5.0)`.
const KAISER_BETA: f64 = 5.0;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// `scipy.signal.firwin(numtaps, cutoff, window=('kaiser', beta))`: low-pass,
/// `cutoff` relative to Nyquist, scaled to unit gain at DC.
fn firwin_kaiser(numtaps: usize, cutoff: f64, beta: f64) -> Vec<f64> {
    let alpha = 0.5 * (numtaps as f64 - 1.0);
    let i0b = bessel_i0(beta);
    let mut h: Vec<f64> = (0..numtaps)
        .map(|n| {
            let m = n as f64 - alpha;
            let r = if numtaps > 1 {
                2.0 * n as f64 / (numtaps as f64 - 1.0) - 1.0
            } else {
                0.0
            };
            let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0b;
            cutoff * sinc(cutoff * m) * w
        })
        .collect();
    let sum: f64 = h.iter().sum();
    for v in &mut h {
        *v /= sum;
    }
    h
}

/// Resamples by a rational factor `up/down` (see the module doc).
#[derive(Debug, Clone)]
pub struct Resampler {
    up: usize,
    down: usize,
    half_len: usize,
    taps: Vec<f64>,
}

impl Resampler {
    /// From `from_hz` to `to_hz`; both must be whole numbers of Hz.
    pub fn new(from_hz: f64, to_hz: f64) -> Result<Self, String> {
        let whole = |r: f64| {
            (r.is_finite() && r >= 1.0 && (r - r.round()).abs() < 1e-9).then(|| r.round() as usize)
        };
        let (Some(from), Some(to)) = (whole(from_hz), whole(to_hz)) else {
            return Err(format!("cannot resample {from_hz} Hz to {to_hz} Hz: both rates must be whole numbers of Hz"));
        };
        let g = gcd(from, to);
        Resampler::with_factors(to / g, from / g).ok_or_else(|| {
            format!(
                "cannot resample {from} Hz to {to} Hz: the ratio {}/{} is too fine",
                to / g,
                from / g
            )
        })
    }

    /// Up-sample by `up`, down-sample by `down` (reduced to lowest terms).
    pub fn with_factors(up: usize, down: usize) -> Option<Self> {
        if up == 0 || down == 0 {
            return None;
        }
        let g = gcd(up, down);
        let (up, down) = (up / g, down / g);
        if up > MAX_FACTOR || down > MAX_FACTOR {
            return None;
        }
        let max_rate = up.max(down);
        let half_len = 10 * max_rate;
        let mut taps = firwin_kaiser(2 * half_len + 1, 1.0 / max_rate as f64, KAISER_BETA);
        for t in &mut taps {
            *t *= up as f64;
        }
        Some(Resampler {
            up,
            down,
            half_len,
            taps,
        })
    }

    /// `(up, down)` in lowest terms.
    pub fn factors(&self) -> (usize, usize) {
        (self.up, self.down)
    }

    /// Output length for `n` input samples: `ceil(n · up / down)`.
    pub fn output_len(&self, n: usize) -> usize {
        (n * self.up).div_ceil(self.down)
    }

    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        if self.up == 1 && self.down == 1 {
            return x.to_vec();
        }
        let n_out = self.output_len(x.len());
        let last_tap = self.taps.len() - 1;
        (0..n_out)
            .map(|j| {
                // y[j] = Σ_i h[j·down + half_len − i·up] · x[i]
                let n = j * self.down + self.half_len;
                let i_min = n.saturating_sub(last_tap).div_ceil(self.up);
                let i_max = (n / self.up).min(x.len().saturating_sub(1));
                let mut acc = 0.0f64;
                if let Some(xs) = x.get(i_min..=i_max) {
                    for (d, &v) in xs.iter().enumerate() {
                        acc += self.taps[n - (i_min + d) * self.up] * f64::from(v);
                    }
                }
                acc as f32
            })
            .collect()
    }
}

/// A second-order IIR section `b0 + b1 z⁻¹ + b2 z⁻² / 1 + a1 z⁻¹ + a2 z⁻²`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Biquad {
    pub b: [f64; 3],
    pub a: [f64; 3],
}

impl Biquad {
    /// 2nd-order Butterworth high-pass at `cutoff_hz` for sampling rate `fs`
    /// (bilinear transform with pre-warping: `scipy.signal.butter(2, cutoff,
    /// 'highpass', fs=fs)`).
    pub fn butter_highpass(cutoff_hz: f64, fs: f64) -> Result<Self, String> {
        if !(cutoff_hz > 0.0 && cutoff_hz < fs / 2.0) {
            return Err(format!(
                "high-pass cut-off {cutoff_hz} Hz must lie between 0 and {} Hz",
                fs / 2.0
            ));
        }
        let k = (std::f64::consts::PI * cutoff_hz / fs).tan();
        let s2 = std::f64::consts::SQRT_2;
        let norm = 1.0 + s2 * k + k * k;
        let b0 = 1.0 / norm;
        Ok(Biquad {
            b: [b0, -2.0 * b0, b0],
            a: [
                1.0,
                2.0 * (k * k - 1.0) / norm,
                (1.0 - s2 * k + k * k) / norm,
            ],
        })
    }

    /// Filter in place (direct form II transposed, zero initial state).
    fn run<'a>(&self, x: impl Iterator<Item = &'a mut f32>) {
        let [b0, b1, b2] = self.b;
        let [_, a1, a2] = self.a;
        let (mut z1, mut z2) = (0.0f64, 0.0f64);
        for v in x {
            let xin = f64::from(*v);
            let y = b0 * xin + z1;
            z1 = b1 * xin - a1 * y + z2;
            z2 = b2 * xin - a2 * y;
            *v = y as f32;
        }
    }

    /// Zero-phase filtering: forward, then backward. Each pass starts from the
    /// steady state of a constant input equal to the first sample (for a high-pass:
    /// that constant is subtracted first), which removes the large start-up step a
    /// DC offset would cause. Edges still carry a short transient: keep margins.
    pub fn filtfilt_highpass(&self, x: &mut [f32]) {
        for pass in 0..2 {
            if pass == 1 {
                x.reverse();
            }
            if let Some(&first) = x.first() {
                for v in x.iter_mut() {
                    *v -= first;
                }
            }
            self.run(x.iter_mut());
        }
        x.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Reference {
        input: Vec<f64>,
        resample_poly: Vec<PolyCase>,
        butter_highpass_order2: Vec<ButterCase>,
    }
    #[derive(serde::Deserialize)]
    struct PolyCase {
        up: usize,
        down: usize,
        output: Vec<f64>,
    }
    #[derive(serde::Deserialize)]
    struct ButterCase {
        cutoff_hz: f64,
        fs: f64,
        b: Vec<f64>,
        a: Vec<f64>,
    }

    fn reference() -> Reference {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mahnob/dsp_reference.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn resampler_matches_scipy_resample_poly() {
        let r = reference();
        let x: Vec<f32> = r.input.iter().map(|&v| v as f32).collect();
        for case in &r.resample_poly {
            let rs = Resampler::with_factors(case.up, case.down).unwrap();
            let y = rs.apply(&x);
            assert_eq!(y.len(), case.output.len(), "{}/{}", case.up, case.down);
            for (k, (a, b)) in y.iter().zip(&case.output).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-4,
                    "{}/{} [{k}]: {a} vs {b}",
                    case.up,
                    case.down
                );
            }
        }
    }

    #[test]
    fn resampler_from_rates() {
        assert_eq!(Resampler::new(256.0, 128.0).unwrap().factors(), (1, 2));
        assert_eq!(Resampler::new(512.0, 128.0).unwrap().factors(), (1, 4));
        assert_eq!(Resampler::new(128.0, 128.0).unwrap().factors(), (1, 1));
        assert!(Resampler::new(256.5, 128.0).is_err());
        assert!(Resampler::new(100_003.0, 128.0).is_err());
        assert_eq!(Resampler::new(256.0, 128.0).unwrap().output_len(5), 3);
        assert!(Resampler::new(256.0, 128.0).unwrap().apply(&[]).is_empty());
    }

    /// A tone above the new Nyquist is removed, one well below it passes.
    #[test]
    fn decimation_is_anti_aliased() {
        let rs = Resampler::new(256.0, 128.0).unwrap();
        let tone = |f: f64| -> Vec<f32> {
            (0..2560)
                .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / 256.0).sin() as f32)
                .collect()
        };
        let rms = |v: &[f32]| {
            (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let pass = rs.apply(&tone(10.0));
        let stop = rs.apply(&tone(100.0)); // would alias to 28 Hz
        assert!((rms(&pass[100..1180]) - 0.5f64.sqrt()).abs() < 0.01);
        assert!(rms(&stop[100..1180]) < 0.01, "{}", rms(&stop[100..1180]));
    }

    #[test]
    fn butterworth_matches_scipy() {
        for case in reference().butter_highpass_order2 {
            let q = Biquad::butter_highpass(case.cutoff_hz, case.fs).unwrap();
            for k in 0..3 {
                assert!(
                    (q.b[k] - case.b[k]).abs() < 1e-12,
                    "{:?} vs {:?}",
                    q.b,
                    case.b
                );
                assert!(
                    (q.a[k] - case.a[k]).abs() < 1e-12,
                    "{:?} vs {:?}",
                    q.a,
                    case.a
                );
            }
        }
        assert!(Biquad::butter_highpass(0.0, 256.0).is_err());
        assert!(Biquad::butter_highpass(200.0, 256.0).is_err());
    }

    #[test]
    fn highpass_removes_offset_and_keeps_alpha() {
        let q = Biquad::butter_highpass(0.5, 256.0).unwrap();
        let mut x: Vec<f32> = (0..256 * 20)
            .map(|i| 20_000.0 + 10.0 * (2.0 * std::f32::consts::PI * 10.0 * i as f32 / 256.0).sin())
            .collect();
        q.filtfilt_highpass(&mut x);
        let mid = &x[256 * 5..256 * 15];
        let mean = mid.iter().sum::<f32>() / mid.len() as f32;
        let peak = mid.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((peak - 10.0).abs() < 0.1, "{peak}");
    }
}
