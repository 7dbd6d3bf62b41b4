//! Binary classification metrics (positive class = high = 1), in percent, and the
//! mean ± std aggregation over folds the paper reports.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Counts of a binary confusion matrix; rows = true class, columns = predicted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// true low, predicted low
    pub tn: u64,
    /// true low, predicted high
    pub fp: u64,
    /// true high, predicted low
    pub fn_: u64,
    /// true high, predicted high
    pub tp: u64,
}

impl Confusion {
    /// From labels and predictions (both 0/1; anything non-zero counts as 1).
    pub fn from_pairs(y: &[u8], pred: &[u8]) -> Confusion {
        let mut c = Confusion::default();
        for (&t, &p) in y.iter().zip(pred) {
            match (t != 0, p != 0) {
                (false, false) => c.tn += 1,
                (false, true) => c.fp += 1,
                (true, false) => c.fn_ += 1,
                (true, true) => c.tp += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tn + self.fp + self.fn_ + self.tp
    }

    /// Accuracy in percent (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        pct(self.tp + self.tn, self.total())
    }

    /// F1 of the positive (high) class in percent. When the class is neither
    /// present nor predicted (tp + fp + fn = 0) it is 0, as scikit-learn's
    /// `zero_division=0`.
    pub fn f1_high(&self) -> f64 {
        f1(self.tp, self.fp, self.fn_)
    }

    /// F1 of the low class in percent.
    pub fn f1_low(&self) -> f64 {
        f1(self.tn, self.fn_, self.fp)
    }

    /// Unweighted mean of the two per-class F1 scores.
    pub fn macro_f1(&self) -> f64 {
        (self.f1_high() + self.f1_low()) / 2.0
    }

    /// `[[tn, fp], [fn, tp]]`.
    pub fn matrix(&self) -> [[u64; 2]; 2] {
        [[self.tn, self.fp], [self.fn_, self.tp]]
    }

    /// The metrics a training stage reports, as JSON.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("accuracy".into(), Value::from(self.accuracy()));
        m.insert("f1".into(), Value::from(self.f1_high()));
        m.insert("macro_f1".into(), Value::from(self.macro_f1()));
        m.insert("n".into(), Value::from(self.total()));
        m.insert(
            "confusion".into(),
            serde_json::to_value(self.matrix()).expect("a matrix of integers serialises"),
        );
        m
    }
}

fn pct(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        100.0 * num as f64 / den as f64
    }
}

fn f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    pct(2 * tp, 2 * tp + fp + fn_)
}

/// The predicted class from the probability of high: high when `p_high > 0.5`
/// (the argmax of two logits, ties going to low as `argmax` picks the first).
pub fn predict(p_high: f32) -> u8 {
    u8::from(p_high > 0.5)
}

/// Mean and population standard deviation (ddof = 0, as `numpy.std`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

pub fn mean_std(values: &[f64]) -> MeanStd {
    let n = values.len();
    if n == 0 {
        return MeanStd {
            mean: f64::NAN,
            std: f64::NAN,
            n,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    MeanStd {
        mean,
        std: var.sqrt(),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_binary_metrics() {
        // y:    1 1 1 0 0 0 0 1
        // pred: 1 0 1 0 1 0 0 1   → tp 3, fn 1, fp 1, tn 3
        let c = Confusion::from_pairs(&[1, 1, 1, 0, 0, 0, 0, 1], &[1, 0, 1, 0, 1, 0, 0, 1]);
        assert_eq!(
            c,
            Confusion {
                tn: 3,
                fp: 1,
                fn_: 1,
                tp: 3
            }
        );
        assert_eq!(c.accuracy(), 75.0);
        // F1 = 2·3 / (2·3 + 1 + 1) = 0.75
        assert_eq!(c.f1_high(), 75.0);
        assert_eq!(c.macro_f1(), 75.0);

        // y: 1 1 1 1 0 0, pred: 1 1 1 0 1 1 → tp 3, fn 1, fp 2, tn 0
        let c = Confusion::from_pairs(&[1, 1, 1, 1, 0, 0], &[1, 1, 1, 0, 1, 1]);
        assert!((c.accuracy() - 50.0).abs() < 1e-12);
        // F1 high = 6 / (6 + 2 + 1) = 66.67 %; F1 low = 0 / (0 + 1 + 2) = 0
        assert!((c.f1_high() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(c.f1_low(), 0.0);
        assert!((c.macro_f1() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(c.matrix(), [[0, 2], [1, 3]]);
    }

    #[test]
    fn degenerate_cases() {
        let c = Confusion::from_pairs(&[0, 0], &[0, 0]);
        assert_eq!(c.f1_high(), 0.0);
        assert_eq!(c.f1_low(), 100.0);
        assert_eq!(c.accuracy(), 100.0);
        assert_eq!(Confusion::default().accuracy(), 0.0);
        assert_eq!(predict(0.5), 0);
        assert_eq!(predict(0.5001), 1);
    }

    #[test]
    fn mean_and_population_std() {
        let m = mean_std(&[60.0, 70.0, 80.0, 70.0]);
        assert_eq!(m.mean, 70.0);
        // deviations 10, 0, 10, 0 → var = 200/4 = 50
        assert!((m.std - 50f64.sqrt()).abs() < 1e-12);
        assert!(mean_std(&[]).mean.is_nan());
    }
}
