//! The paper's published numbers (Zhang & Lu, Brain Sciences 2025) on the REAL DEAP
//! data set, EOG student. Shown beside our results, always labelled as the paper's,
//! never mixed with ours: ours come from whatever data the pipeline ran on.

/// (method, arousal acc, arousal F1, valence acc, valence F1), in percent.
pub(crate) const DEAP_TABLE: &[(&str, f64, f64, f64, f64)] = &[
    ("DeepConvNet", 54.70, 51.95, 66.45, 61.15),
    ("CNN+RNN", 54.17, 40.37, 67.97, 64.17),
    ("CGAN", 54.43, 48.82, 55.17, 35.66),
    ("EmotionNet", 56.06, 55.50, 69.18, 68.33),
    ("EmotionKD", 56.56, 56.18, 69.38, 68.63),
    ("HKD-MER", 58.75, 58.38, 69.73, 69.03),
    ("Proposed", 60.41, 61.01, 70.38, 70.16),
];

/// The ablation (section 4.5), real DEAP.
pub(crate) const ABLATION_TABLE: &[(&str, f64, f64, f64, f64)] = &[
    ("Variation 1 (Hinton-KD)", 54.68, 53.31, 68.91, 67.39),
    (
        "Variation 2 (+ fusion features)",
        55.89,
        53.60,
        69.70,
        68.41,
    ),
    (
        "Variation 3 (+ dynamic feedback)",
        56.15,
        54.49,
        69.21,
        69.41,
    ),
];

pub(crate) const SOURCE: &str = "Zhang & Lu, Multimodal Knowledge Distillation for Emotion Recognition, Brain Sci. 2025, 15(7), 707 — real DEAP, EOG student";

/// Every published row: the comparison with other methods, then the ablation.
pub(crate) fn rows() -> impl Iterator<Item = (&'static str, f64, f64, f64, f64)> {
    DEAP_TABLE.iter().chain(ABLATION_TABLE).copied()
}
