//! Reading the columns of the Parquet tables the stages exchange, with errors that
//! name the file and the column: a missing column, missing values, a wrong type.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, UInt16Type, UInt8Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::stage::StageError;

pub(crate) fn open_parquet(
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<File>, StageError> {
    let file = File::open(path).map_err(|e| StageError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| StageError::bad_file(path, format!("not a readable Parquet file: {e}")))
}

pub(crate) fn column<'a>(
    path: &Path,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a ArrayRef, StageError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| StageError::bad_file(path, format!("missing column `{name}`")))?;
    if col.null_count() > 0 {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` has missing values"),
        ));
    }
    Ok(col)
}

fn cast_to(path: &Path, col: &ArrayRef, name: &str, to: &DataType) -> Result<ArrayRef, StageError> {
    if !col.data_type().is_integer() {
        return Err(StageError::bad_file(
            path,
            format!(
                "column `{name}` has type {}, expected {to}",
                col.data_type()
            ),
        ));
    }
    let cast = arrow::compute::cast(col, to)
        .map_err(|e| StageError::bad_file(path, format!("column `{name}`: {e}")))?;
    if cast.null_count() > 0 {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` has values outside {to}"),
        ));
    }
    Ok(cast)
}

pub(crate) fn u16_column(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
) -> Result<Vec<u16>, StageError> {
    let col = cast_to(path, column(path, batch, name)?, name, &DataType::UInt16)?;
    Ok(col.as_primitive::<UInt16Type>().values().to_vec())
}

pub(crate) fn u8_column(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
) -> Result<Vec<u8>, StageError> {
    let col = cast_to(path, column(path, batch, name)?, name, &DataType::UInt8)?;
    let v = col.as_primitive::<UInt8Type>().values().to_vec();
    if let Some(bad) = v.iter().find(|&&x| x > 1) {
        return Err(StageError::bad_file(
            path,
            format!("column `{name}` must hold binary labels 0/1, found {bad}"),
        ));
    }
    Ok(v)
}

pub(crate) fn string_column(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
) -> Result<Vec<String>, StageError> {
    let col = column(path, batch, name)?;
    let strings: Vec<String> = match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        other => {
            return Err(StageError::bad_file(
                path,
                format!("column `{name}` has type {other}, expected a string"),
            ))
        }
    };
    Ok(strings)
}
