//! DEAP's `data_preprocessed_matlab/sNN.mat`: MAT level 5 (elements possibly
//! zlib-compressed), read with the `matfile` crate. MATLAB stores arrays column-major;
//! they are returned row-major (C order) as `f32`.

use std::path::Path;

use matfile::{MatFile, NumericData};

use crate::data::pickle::fortran_to_c;
use crate::stage::{IoContext, StageError};

/// `(data shape, data, labels shape, labels)`, row-major `f32`.
pub(crate) type MatArrays = (Vec<usize>, Vec<f32>, Vec<usize>, Vec<f32>);

/// Reads `data` and `labels` of a DEAP `.mat` file.
pub(crate) fn read_mat_arrays(path: &Path) -> Result<MatArrays, StageError> {
    let bytes = std::fs::read(path).at(path)?;
    if bytes.starts_with(b"MATLAB 7.3 MAT-file") {
        return Err(StageError::bad_file(
            path,
            "a MATLAB v7.3 (HDF5) file; only MAT level 5 is read (DEAP's release is level 5; \
             re-save with `save(..., '-v7')`)",
        ));
    }
    // matfile can panic on some malformed inputs (e.g. an overflowing dimension
    // product); a corrupt user file must give an error, not a crash.
    let parsed = std::panic::catch_unwind(|| MatFile::parse(bytes.as_slice()));
    let mat = match parsed {
        Ok(Ok(mat)) => mat,
        Ok(Err(e)) => {
            return Err(StageError::bad_file(
                path,
                format!("not a readable MAT level-5 file: {e}"),
            ));
        }
        Err(_) => {
            return Err(StageError::bad_file(
                path,
                "not a readable MAT level-5 file (corrupt)",
            ))
        }
    };
    let (data_shape, data) = array(path, &mat, "data")?;
    let (labels_shape, labels) = array(path, &mat, "labels")?;
    Ok((data_shape, data, labels_shape, labels))
}

fn array(path: &Path, mat: &MatFile, name: &str) -> Result<(Vec<usize>, Vec<f32>), StageError> {
    let Some(array) = mat.find_by_name(name) else {
        let found: Vec<String> = mat
            .arrays()
            .iter()
            .map(|a| format!("`{}`", a.name()))
            .collect();
        return Err(StageError::bad_file(
            path,
            format!(
                "no numeric array `{name}` (found {}): DEAP files hold `data` and `labels`",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ),
        ));
    };
    let shape = array.size().clone();
    let column_major: Vec<f32> = match array.data() {
        NumericData::Double { real, imag: None } => real.iter().map(|&v| v as f32).collect(),
        NumericData::Single { real, imag: None } => real.clone(),
        NumericData::Double { .. } | NumericData::Single { .. } => {
            return Err(StageError::bad_file(path, format!("`{name}` is complex")));
        }
        _ => {
            return Err(StageError::bad_file(
                path,
                format!("`{name}` is an integer array: only double and single are read"),
            ));
        }
    };
    if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(column_major.len()) {
        return Err(StageError::bad_file(
            path,
            format!("`{name}`: size {shape:?} does not match its data"),
        ));
    }
    Ok((shape.clone(), fortran_to_c(&column_major, &shape)))
}
