//! Signal generators for the synthetic DEAP data: 1/f background, narrow-band
//! oscillations, blink and saccade trains. All draw from a caller-supplied RNG, so a
//! trial's samples are a pure function of its seed.

use rand::Rng;
use rand_distr::StandardNormal;

fn normal<R: Rng>(rng: &mut R) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

/// Unit-variance 1/f ("pink") noise, high-passed like DEAP's 4–45 Hz band-pass.
/// Paul Kellett's refined pink filter (-3 dB/octave within 0.5 % above ~10 Hz at
/// 44.1 kHz; at 128 Hz its poles cover ~0.2–60 Hz) followed by a first-order high-pass.
pub(crate) struct Pink {
    b: [f64; 7],
    hp_prev_in: f64,
    hp_prev_out: f64,
    hp_coef: f64,
    scale: f64,
}

impl Pink {
    pub(crate) fn new(sample_rate: f64, highpass_hz: f64) -> Pink {
        let dt = 1.0 / sample_rate;
        let rc = 1.0 / (2.0 * std::f64::consts::PI * highpass_hz);
        let mut p = Pink {
            b: [0.0; 7],
            hp_prev_in: 0.0,
            hp_prev_out: 0.0,
            hp_coef: rc / (rc + dt),
            scale: 1.0,
        };
        // Normalise to unit variance: the output variance for unit white input is
        // the energy of the (linear) filter's impulse response.
        let mut energy = 0.0;
        let mut probe = Pink {
            scale: 1.0,
            ..p.clone_state()
        };
        energy += probe.filter(1.0).powi(2);
        for _ in 0..(sample_rate as usize * 200) {
            energy += probe.filter(0.0).powi(2);
        }
        p.scale = 1.0 / energy.sqrt();
        p
    }

    fn clone_state(&self) -> Pink {
        Pink {
            b: self.b,
            hp_prev_in: self.hp_prev_in,
            hp_prev_out: self.hp_prev_out,
            hp_coef: self.hp_coef,
            scale: self.scale,
        }
    }

    fn filter(&mut self, white: f64) -> f64 {
        let b = &mut self.b;
        b[0] = 0.99886 * b[0] + white * 0.0555179;
        b[1] = 0.99332 * b[1] + white * 0.0750759;
        b[2] = 0.96900 * b[2] + white * 0.1538520;
        b[3] = 0.86650 * b[3] + white * 0.3104856;
        b[4] = 0.55000 * b[4] + white * 0.5329522;
        b[5] = -0.7616 * b[5] - white * 0.0168980;
        let pink = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + white * 0.5362;
        b[6] = white * 0.115926;
        let out = self.hp_coef * (self.hp_prev_out + pink - self.hp_prev_in);
        self.hp_prev_in = pink;
        self.hp_prev_out = out;
        out * self.scale
    }

    /// A fresh, warmed-up copy (filter state drawn from `warmup` samples of noise).
    pub(crate) fn start<R: Rng>(&self, rng: &mut R, warmup: usize) -> Pink {
        let mut p = Pink {
            b: [0.0; 7],
            hp_prev_in: 0.0,
            hp_prev_out: 0.0,
            ..self.clone_state()
        };
        for _ in 0..warmup {
            p.next(rng);
        }
        p
    }

    pub(crate) fn next<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let w = normal(rng);
        self.filter(w)
    }
}

/// Unit-variance narrow-band noise around `freq` Hz: a second-order resonator
/// (AR(2) with poles at radius exp(-pi bw / fs)) driven by white noise.
#[derive(Clone)]
pub(crate) struct Resonator {
    a1: f64,
    a2: f64,
    scale: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    pub(crate) fn new(freq: f64, bandwidth: f64, sample_rate: f64) -> Resonator {
        let r = (-std::f64::consts::PI * bandwidth / sample_rate).exp();
        let a1 = 2.0 * r * (2.0 * std::f64::consts::PI * freq / sample_rate).cos();
        let a2 = -r * r;
        // Stationary variance of y = a1 y1 + a2 y2 + e for unit-variance e.
        let var = (1.0 - a2) / ((1.0 + a2) * ((1.0 - a2).powi(2) - a1 * a1));
        Resonator {
            a1,
            a2,
            scale: 1.0 / var.sqrt(),
            y1: 0.0,
            y2: 0.0,
        }
    }

    /// A fresh, warmed-up copy.
    pub(crate) fn start<R: Rng>(&self, rng: &mut R, warmup: usize) -> Resonator {
        let mut r = Resonator {
            y1: 0.0,
            y2: 0.0,
            ..self.clone()
        };
        for _ in 0..warmup {
            r.next(rng);
        }
        r
    }

    pub(crate) fn next<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let y = self.a1 * self.y1 + self.a2 * self.y2 + normal(rng);
        self.y2 = self.y1;
        self.y1 = y;
        y * self.scale
    }
}

/// Times (in samples) of a Poisson process: rate `rate(n)` events per second
/// (piecewise: `before` up to sample `switch`, then `after`), at least `refractory`
/// samples apart.
pub(crate) fn poisson_times<R: Rng>(
    rng: &mut R,
    samples: usize,
    sample_rate: f64,
    switch: usize,
    before: f64,
    after: f64,
    refractory: f64,
) -> Vec<usize> {
    let mut times = Vec::new();
    let mut t = 0.0f64; // seconds
    let switch_s = switch as f64 / sample_rate;
    loop {
        let rate = if t < switch_s { before } else { after };
        if rate <= 0.0 {
            if t < switch_s {
                t = switch_s;
                continue;
            }
            return times;
        }
        let gap: f64 = -(1.0 - rng.gen::<f64>()).ln() / rate;
        t += refractory + gap;
        let n = (t * sample_rate) as usize;
        if n >= samples {
            return times;
        }
        times.push(n);
    }
}

/// Adds a blink at sample `at`: a gamma-shaped bump peaking `peak_s` after onset
/// with height `amplitude`, into `out`.
pub(crate) fn add_blink(out: &mut [f64], at: usize, amplitude: f64, peak_s: f64, sample_rate: f64) {
    let len = (peak_s * 8.0 * sample_rate) as usize;
    for (k, o) in out.iter_mut().skip(at).take(len).enumerate() {
        let x = k as f64 / (peak_s * sample_rate);
        *o += amplitude * x * x * (2.0 * (1.0 - x)).exp();
    }
}

/// A horizontal gaze trace: at each saccade time the gaze jumps to a new position
/// (standard normal, in units of `amplitude`), reached through a first-order lag of
/// `ramp_s`; the trace is then high-passed with time constant `hp_s` (AC-coupled
/// recording).
pub(crate) fn gaze_trace<R: Rng>(
    rng: &mut R,
    saccades: &[usize],
    samples: usize,
    amplitude: f64,
    ramp_s: f64,
    hp_s: f64,
    sample_rate: f64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(samples);
    let ramp = (-1.0 / (ramp_s * sample_rate)).exp();
    let hp = (-1.0 / (hp_s * sample_rate)).exp();
    let (mut target, mut level, mut slow) = (0.0f64, 0.0f64, 0.0f64);
    let mut next = saccades.iter().peekable();
    for n in 0..samples {
        while next.peek().is_some_and(|&&t| t <= n) {
            next.next();
            target = normal(rng) * amplitude;
        }
        level = target + (level - target) * ramp;
        slow = level + (slow - level) * hp;
        out.push(level - slow);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn variance(x: &[f64]) -> f64 {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64
    }

    #[test]
    fn generators_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut pink = Pink::new(128.0, 4.0).start(&mut rng, 512);
        let x: Vec<f64> = (0..40_000).map(|_| pink.next(&mut rng)).collect();
        assert!(
            (variance(&x) - 1.0).abs() < 0.1,
            "pink variance {}",
            variance(&x)
        );
        let mut alpha = Resonator::new(10.0, 2.0, 128.0).start(&mut rng, 512);
        let x: Vec<f64> = (0..40_000).map(|_| alpha.next(&mut rng)).collect();
        assert!(
            (variance(&x) - 1.0).abs() < 0.1,
            "resonator variance {}",
            variance(&x)
        );
    }

    #[test]
    fn poisson_rate_changes_at_switch() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let t = poisson_times(&mut rng, 128 * 2000, 128.0, 128 * 1000, 0.2, 1.0, 0.0);
        let before = t.iter().filter(|&&n| n < 128 * 1000).count();
        let after = t.len() - before;
        assert!((150..250).contains(&before), "{before}");
        assert!((900..1100).contains(&after), "{after}");
    }

    #[test]
    fn blink_peaks_at_amplitude() {
        let mut x = vec![0.0; 200];
        add_blink(&mut x, 10, 100.0, 0.1, 128.0);
        let (i, max) = x
            .iter()
            .enumerate()
            .fold((0, 0.0f64), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        assert!((max - 100.0).abs() < 1.0, "{max}");
        assert!((i as i64 - (10 + 13)).abs() <= 1, "{i}");
    }
}
