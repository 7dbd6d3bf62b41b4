//! Channel names: DEAP's 40 channels, the method's EEG and EOG sets.

/// DEAP's `data_preprocessed_python` channel order (1-based in the docs).
pub const DEAP_CHANNELS: [&str; 40] = [
    "Fp1",
    "AF3",
    "F3",
    "F7",
    "FC5",
    "FC1",
    "C3",
    "T7",
    "CP5",
    "CP1",
    "P3",
    "P7",
    "PO3",
    "O1",
    "Oz",
    "Pz",
    "Fp2",
    "AF4",
    "Fz",
    "F4",
    "F8",
    "FC6",
    "FC2",
    "Cz",
    "C4",
    "T8",
    "CP6",
    "CP2",
    "P4",
    "P8",
    "PO4",
    "O2",
    "hEOG",
    "vEOG",
    "zEMG",
    "tEMG",
    "GSR",
    "Respiration",
    "Plethysmograph",
    "Temperature",
];

/// The 32 EEG channels of the 10-20 montage DEAP and MAHNOB-HCI share.
pub const EEG_32: [&str; 32] = [
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4",
    "P8", "PO4", "O2",
];

/// The method's 28 EEG channels: the 32 minus the midline Fz, Cz, Pz, Oz, left
/// hemisphere first, then right.
pub const METHOD_EEG: [&str; 28] = [
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Fp2", "AF4", "F4", "F8", "FC6", "FC2", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
];

/// The method's EOG channels (DEAP channels 33 and 34).
pub const METHOD_EOG: [&str; 2] = ["hEOG", "vEOG"];

/// Whether `name` is one of the 32 EEG channel names (case-insensitive).
pub fn is_eeg(name: &str) -> bool {
    EEG_32.iter().any(|c| c.eq_ignore_ascii_case(name))
}
