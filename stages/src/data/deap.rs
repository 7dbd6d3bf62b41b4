//! DEAP's preprocessed release: finding the subject files (`sNN.dat` in
//! `data_preprocessed_python`, `sNN.mat` in `data_preprocessed_matlab`), reading one
//! subject (pickle or MAT), validating shapes and values, and writing `sNN.dat` the way
//! the dataset ships them (for the synthetic stand-in).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::data::channels::DEAP_CHANNELS;
use crate::data::pickle::{self, writer::F64Array, Entry, PickleDict};
use crate::stage::{IoContext, StageError};

/// The columns of DEAP's `labels` array.
pub const LABEL_NAMES: [&str; 4] = ["valence", "arousal", "dominance", "liking"];
/// The method needs the channels up to vEOG (DEAP channel 34).
pub const MIN_CHANNELS: usize = 34;
/// DEAP's preprocessed sample rate (Hz).
pub const SAMPLE_RATE: f64 = 128.0;
/// Written into the Parquet metadata; bump when the readers' output changes.
pub const READER_VERSION: &str = "stages deap-reader 1";
/// Subfolders of DEAP's release.
pub const PYTHON_FOLDER: &str = "data_preprocessed_python";
pub const MATLAB_FOLDER: &str = "data_preprocessed_matlab";

pub const DOWNLOAD_HINT: &str = "DEAP is licensed to each researcher: request it at \
    https://www.eecs.qmul.ac.uk/mmv/datasets/deap/, download `data_preprocessed_python.zip`, \
    unzip it and set `path:` to the folder that holds s01.dat ... s32.dat (e.g. \
    data/deap/data_preprocessed_python); `data_preprocessed_matlab` works too. Or use the \
    built-in synthetic stand-in: `uses: synthetic-deap` and `needs: [that stage]`";

/// The two file formats of DEAP's release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `sNN.dat`: Python 2 cPickle of {'labels', 'data'}.
    Pickle,
    /// `sNN.mat`: MAT level 5 with `data` and `labels`.
    Mat,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pickle => "dat",
            Format::Mat => "mat",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Mat => "mat",
        }
    }
}

/// The `format` parameter: `auto` takes pickles when a folder has both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatChoice {
    Auto,
    Only(Format),
}

impl crate::params::ParamValue for FormatChoice {
    fn kind() -> crate::params::ParamKind {
        crate::params::ParamKind::choice(&["auto", "pickle", "mat"])
    }
    fn to_value(&self) -> serde_json::Value {
        serde_json::Value::from(match self {
            FormatChoice::Auto => "auto",
            FormatChoice::Only(f) => f.name(),
        })
    }
    fn from_value(v: &serde_json::Value) -> Result<Self, String> {
        match v.as_str() {
            Some("auto") => Ok(FormatChoice::Auto),
            Some("pickle") => Ok(FormatChoice::Only(Format::Pickle)),
            Some("mat") => Ok(FormatChoice::Only(Format::Mat)),
            _ => Err(format!("expected one of auto|pickle|mat, found {v}")),
        }
    }
}

/// What to do with NaN/inf samples (`on_nan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNan {
    /// Fail, naming subject, trial, channel and sample.
    Error,
    /// Replace non-finite samples with 0 (labels must still be finite).
    Zero,
    /// Leave out every trial with a non-finite sample or label.
    DropTrial,
}

crate::choice_param!(OnNan { Error => "error", Zero => "zero", DropTrial => "drop-trial" });

/// One subject's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFile {
    /// From the file name (`s07.dat` → 7).
    pub subject: u16,
    pub path: PathBuf,
    pub format: Format,
}

/// The subject files of a DEAP folder: `path` itself, or its `data_preprocessed_python`
/// (or `_matlab`) subfolder. Errors say what to download and where to put it.
pub fn locate(
    path: &Path,
    choice: FormatChoice,
) -> Result<(PathBuf, Vec<SubjectFile>), StageError> {
    if !path.exists() {
        return Err(StageError::Data(format!(
            "the DEAP folder {} does not exist. {DOWNLOAD_HINT}",
            path.display()
        )));
    }
    if !path.is_dir() {
        return Err(StageError::Data(format!(
            "{} is a file, not a folder: `path` must name the folder that holds the sNN.dat files. {DOWNLOAD_HINT}",
            path.display()
        )));
    }
    let candidates = [
        path.to_path_buf(),
        path.join(PYTHON_FOLDER),
        path.join(MATLAB_FOLDER),
    ];
    let formats: &[Format] = match choice {
        FormatChoice::Auto => &[Format::Pickle, Format::Mat],
        FormatChoice::Only(Format::Pickle) => &[Format::Pickle],
        FormatChoice::Only(Format::Mat) => &[Format::Mat],
    };
    for &format in formats {
        for dir in candidates.iter().filter(|d| d.is_dir()) {
            let files = list_subject_files(dir, format)?;
            if !files.is_empty() {
                return Ok((dir.clone(), files));
            }
        }
    }
    let wanted = match choice {
        FormatChoice::Only(Format::Mat) => "s01.mat ... s32.mat",
        FormatChoice::Only(Format::Pickle) => "s01.dat ... s32.dat",
        FormatChoice::Auto => "s01.dat ... s32.dat or s01.mat ... s32.mat",
    };
    Err(StageError::Data(format!(
        "no DEAP subject files ({wanted}) in {} or its {PYTHON_FOLDER}/ or {MATLAB_FOLDER}/ subfolder. {DOWNLOAD_HINT}",
        path.display()
    )))
}

/// The `sNN.<ext>` files of `dir`, sorted by subject.
pub fn list_subject_files(dir: &Path, format: Format) -> Result<Vec<SubjectFile>, StageError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(subject) = name
            .to_str()
            .and_then(|n| subject_number(n, format.extension()))
        else {
            continue;
        };
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        if let Some(other) = files.iter().find(|f: &&SubjectFile| f.subject == subject) {
            return Err(StageError::Data(format!(
                "{} and {} are both subject {subject}",
                other.path.display(),
                path.display()
            )));
        }
        files.push(SubjectFile {
            subject,
            path,
            format,
        });
    }
    files.sort_by_key(|f| f.subject);
    Ok(files)
}

/// `s07.dat` → 7 (subject numbers 1–65535; extension case-insensitive).
fn subject_number(name: &str, extension: &str) -> Option<u16> {
    let (stem, ext) = name.rsplit_once('.')?;
    if !ext.eq_ignore_ascii_case(extension) {
        return None;
    }
    let digits = stem.strip_prefix('s')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|&n| n > 0)
}

/// One subject's recordings and ratings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectData {
    pub subject: u16,
    pub channels: usize,
    pub samples: usize,
    /// Kept trials × channels × samples, row-major.
    pub data: Vec<f32>,
    /// Per kept trial: valence, arousal, dominance, liking.
    pub labels: Vec<[f32; 4]>,
    /// DEAP trial numbers (1-based position in the file) of the kept trials.
    pub trial_numbers: Vec<u16>,
    /// Trial numbers left out by `on_nan: drop-trial`.
    pub dropped: Vec<u16>,
    /// Size of the file read.
    pub bytes: u64,
}

impl SubjectData {
    pub fn trials(&self) -> usize {
        self.trial_numbers.len()
    }

    /// The samples of kept trial `row` (not the trial number), channel `channel`.
    pub fn channel(&self, row: usize, channel: usize) -> &[f32] {
        let start = (row * self.channels + channel) * self.samples;
        &self.data[start..start + self.samples]
    }
}

/// Reads and validates one subject file.
pub fn read_subject(file: &SubjectFile, on_nan: OnNan) -> Result<SubjectData, StageError> {
    read_subject_into(file, on_nan, Vec::new())
}

/// [`read_subject`], decoding the samples into `buffer` (e.g. the `data` of the
/// subject read before, already written): reading file after file into the same
/// buffers spares faulting in fresh pages for each (~50 MB for a DEAP subject).
pub fn read_subject_into(
    file: &SubjectFile,
    on_nan: OnNan,
    buffer: Vec<f32>,
) -> Result<SubjectData, StageError> {
    let path = &file.path;
    let bytes = std::fs::metadata(path).at(path)?.len();
    let ((data_shape, data, labels_shape, labels), data_finite) = match file.format {
        Format::Pickle => read_pickle_arrays(path, buffer)?,
        Format::Mat => {
            let arrays = crate::data::mat::read_mat_arrays(path)?;
            let finite = pickle::all_finite(&arrays.1);
            (arrays, finite)
        }
    };
    let (trials, channels, samples) = check_shapes(path, &data_shape, &labels_shape)?;
    debug_assert_eq!(data.len(), trials * channels * samples);
    let mut subject = SubjectData {
        subject: file.subject,
        channels,
        samples,
        data,
        labels: labels
            .chunks_exact(4)
            .map(|l| [l[0], l[1], l[2], l[3]])
            .collect(),
        trial_numbers: (1..=trials as u16).collect(),
        dropped: Vec::new(),
        bytes,
    };
    if !data_finite || !pickle::all_finite(subject.labels.as_flattened()) {
        apply_on_nan(path, &mut subject, on_nan)?;
    }
    Ok(subject)
}

type Arrays = (Vec<usize>, Vec<f32>, Vec<usize>, Vec<f32>);

/// `data` and `labels` of a DEAP pickle, shapes checked before the data is converted,
/// and whether every value of `data` is finite.
fn read_pickle_arrays(path: &Path, mut data: Vec<f32>) -> Result<(Arrays, bool), StageError> {
    let file = File::open(path).at(path)?;
    let bad = |e: pickle::PickleError| {
        StageError::bad_file(path, format!("not a readable DEAP pickle: {e}"))
    };
    let mut dict: PickleDict<File> = pickle::load_dict(file).map_err(bad)?;
    let shape_of = |key: &str| -> Result<Vec<usize>, StageError> {
        match dict.get(key) {
            Some(Entry::Array(a)) => Ok(a.shape.clone()),
            Some(Entry::Other(kind)) => Err(StageError::bad_file(
                path,
                format!("`{key}` is a {kind}, expected a numpy array"),
            )),
            None => Err(StageError::bad_file(
                path,
                format!(
                    "no `{key}` key (found {}): DEAP files hold a dict with `data` and `labels`",
                    quoted_keys(&dict.keys())
                ),
            )),
        }
    };
    let labels_shape = shape_of("labels")?;
    let data_shape = shape_of("data")?;
    check_shapes(path, &data_shape, &labels_shape)?;
    let labels = dict.read_f32("labels").map_err(bad)?;
    let finite = dict.read_f32_into("data", &mut data).map_err(bad)?;
    Ok(((data_shape, data, labels_shape, labels), finite))
}

fn quoted_keys(keys: &[&str]) -> String {
    if keys.is_empty() {
        return "no keys".into();
    }
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (trials, channels, samples) after checking `data` is trials × channels × samples
/// with MIN_CHANNELS..=40 channels and `labels` trials × 4.
pub fn check_shapes(
    path: &Path,
    data: &[usize],
    labels: &[usize],
) -> Result<(usize, usize, usize), StageError> {
    let bad = |m: String| Err(StageError::bad_file(path, m));
    let &[trials, channels, samples] = data else {
        return bad(format!(
            "`data` has shape {data:?}; DEAP's is (trials, 40 channels, samples)"
        ));
    };
    if !(MIN_CHANNELS..=DEAP_CHANNELS.len()).contains(&channels) {
        return bad(format!(
            "`data` has {channels} channels (shape {data:?}); DEAP files have 40 and the method needs \
             at least the first {MIN_CHANNELS} (32 EEG, hEOG, vEOG)"
        ));
    }
    if trials == 0 || samples == 0 {
        return bad(format!("`data` is empty (shape {data:?})"));
    }
    if trials > usize::from(u16::MAX) {
        return bad(format!(
            "`data` has {trials} trials (at most 65535 are read)"
        ));
    }
    if labels != [trials, LABEL_NAMES.len()] {
        return bad(format!(
            "`labels` has shape {labels:?}, expected ({trials}, 4) (valence, arousal, dominance, liking \
             for each of the {trials} trials in `data`)"
        ));
    }
    Ok((trials, channels, samples))
}

fn apply_on_nan(path: &Path, s: &mut SubjectData, on_nan: OnNan) -> Result<(), StageError> {
    if pickle::all_finite(&s.data) && pickle::all_finite(s.labels.as_flattened()) {
        return Ok(());
    }
    let per_trial = s.channels * s.samples;
    let mut keep = vec![true; s.trials()];
    for (row, ratings) in s.labels.iter().enumerate() {
        if let Some(k) = ratings.iter().position(|v| !v.is_finite()) {
            if on_nan != OnNan::DropTrial {
                return Err(StageError::bad_file(
                    path,
                    format!(
                        "subject {} trial {}: the {} rating is {} (set `on_nan: drop-trial` to leave such trials out)",
                        s.subject, s.trial_numbers[row], LABEL_NAMES[k], ratings[k]
                    ),
                ));
            }
            keep[row] = false;
        }
    }
    for (row, trial) in s.data.chunks_exact_mut(per_trial).enumerate() {
        let Some(i) = trial.iter().position(|v| !v.is_finite()) else {
            continue;
        };
        match on_nan {
            OnNan::Error => {
                let (c, k) = (i / s.samples, i % s.samples);
                return Err(StageError::bad_file(
                    path,
                    format!(
                        "subject {} trial {} channel {} ({}) sample {} is {}; fix the file or set \
                         `on_nan: zero` or `on_nan: drop-trial`",
                        s.subject,
                        s.trial_numbers[row],
                        c + 1,
                        DEAP_CHANNELS[c],
                        k,
                        trial[i]
                    ),
                ));
            }
            OnNan::Zero => trial
                .iter_mut()
                .filter(|v| !v.is_finite())
                .for_each(|v| *v = 0.0),
            OnNan::DropTrial => keep[row] = false,
        }
    }
    if keep.iter().all(|&k| k) {
        return Ok(());
    }
    let mut data = Vec::with_capacity(s.data.len());
    let (mut labels, mut numbers) = (Vec::new(), Vec::new());
    for (row, &k) in keep.iter().enumerate() {
        if k {
            data.extend_from_slice(&s.data[row * per_trial..(row + 1) * per_trial]);
            labels.push(s.labels[row]);
            numbers.push(s.trial_numbers[row]);
        } else {
            s.dropped.push(s.trial_numbers[row]);
        }
    }
    s.data = data;
    s.labels = labels;
    s.trial_numbers = numbers;
    Ok(())
}

/// Writes `sNN.dat` as DEAP ships it: a Python 2 cPickle (protocol 2) of
/// `{'labels': float64 (trials, 4), 'data': float64 (trials, channels, samples)}`.
pub fn write_subject_pickle(
    path: &Path,
    shape: [usize; 3],
    data: &[f64],
    labels: &[f64],
) -> Result<(), StageError> {
    let file = File::create(path).at(path)?;
    let labels_shape = [shape[0], LABEL_NAMES.len()];
    pickle::writer::write_py2_dict(
        BufWriter::with_capacity(1 << 20, file),
        &[
            (
                "labels",
                F64Array {
                    shape: &labels_shape,
                    values: labels,
                },
            ),
            (
                "data",
                F64Array {
                    shape: &shape,
                    values: data,
                },
            ),
        ],
    )
    .at(path)
}

/// blake3 over the files' names, sizes and content digests (the source digest
/// written into `recordings.parquet`).
pub fn digest_files(files: &[SubjectFile]) -> Result<String, StageError> {
    let mut all = blake3::Hasher::new();
    for f in files {
        let mut h = blake3::Hasher::new();
        h.update_mmap_rayon(&f.path).at(&f.path)?;
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        all.update(name.as_bytes());
        all.update(&[0]);
        all.update(&h.count().to_le_bytes());
        all.update(h.finalize().as_bytes());
    }
    Ok(all.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_numbers_from_names() {
        assert_eq!(subject_number("s01.dat", "dat"), Some(1));
        assert_eq!(subject_number("s32.DAT", "dat"), Some(32));
        assert_eq!(subject_number("s7.mat", "mat"), Some(7));
        assert_eq!(subject_number("s01.mat", "dat"), None);
        assert_eq!(subject_number("s00.dat", "dat"), None);
        assert_eq!(subject_number("x01.dat", "dat"), None);
        assert_eq!(subject_number("s.dat", "dat"), None);
        assert_eq!(subject_number("s99999.dat", "dat"), None);
        assert_eq!(subject_number("s01.dat.bak", "dat"), None);
    }

    #[test]
    fn shapes_are_checked() {
        let p = Path::new("s01.dat");
        assert_eq!(check_shapes(p, &[2, 40, 10], &[2, 4]).unwrap(), (2, 40, 10));
        assert!(check_shapes(p, &[2, 40], &[2, 4]).is_err());
        assert!(check_shapes(p, &[2, 33, 10], &[2, 4]).is_err());
        assert!(check_shapes(p, &[2, 41, 10], &[2, 4]).is_err());
        assert!(check_shapes(p, &[2, 40, 10], &[3, 4]).is_err());
        assert!(check_shapes(p, &[2, 40, 10], &[2, 3]).is_err());
        assert!(check_shapes(p, &[0, 40, 10], &[0, 4]).is_err());
    }

    fn subject_with(data: Vec<f32>, labels: Vec<[f32; 4]>) -> SubjectData {
        let trials = labels.len();
        SubjectData {
            subject: 3,
            channels: 34,
            samples: 2,
            data,
            labels,
            trial_numbers: (1..=trials as u16).collect(),
            dropped: Vec::new(),
            bytes: 0,
        }
    }

    #[test]
    fn on_nan_policies() {
        let mut data = vec![1.0f32; 2 * 34 * 2];
        data[34 * 2 + 5] = f32::NAN; // trial 2, channel 3 (F3), sample 1
        let labels = vec![[5.0; 4], [6.0; 4]];
        let p = Path::new("s03.dat");

        let err = apply_on_nan(
            p,
            &mut subject_with(data.clone(), labels.clone()),
            OnNan::Error,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("subject 3 trial 2 channel 3 (F3) sample 1 is NaN"),
            "{err}"
        );

        let mut s = subject_with(data.clone(), labels.clone());
        apply_on_nan(p, &mut s, OnNan::Zero).unwrap();
        assert_eq!(s.data[34 * 2 + 5], 0.0);
        assert_eq!(s.trials(), 2);

        let mut s = subject_with(data.clone(), labels.clone());
        apply_on_nan(p, &mut s, OnNan::DropTrial).unwrap();
        assert_eq!(
            (s.trial_numbers.clone(), s.dropped.clone()),
            (vec![1], vec![2])
        );
        assert_eq!(s.data.len(), 34 * 2);
        assert_eq!(s.labels, vec![[5.0; 4]]);

        let bad_labels = vec![[5.0; 4], [6.0, f32::INFINITY, 1.0, 1.0]];
        let err = apply_on_nan(
            p,
            &mut subject_with(vec![1.0; 2 * 34 * 2], bad_labels.clone()),
            OnNan::Zero,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("trial 2: the arousal rating is inf"), "{err}");
        let mut s = subject_with(vec![1.0; 2 * 34 * 2], bad_labels);
        apply_on_nan(p, &mut s, OnNan::DropTrial).unwrap();
        assert_eq!(s.dropped, vec![2]);
    }
}
