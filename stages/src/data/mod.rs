//! Dataset readers and writers, synthetic data, ingestion to Parquet, windows, folds.

pub mod bdf;
pub mod channels;
pub mod deap;
pub mod folds;
pub mod ingest_deap;
pub mod ingest_mahnob;
pub mod mahnob;
pub mod mat;
pub mod pickle;
pub mod recordings_writer;
pub mod signal;
pub mod synthetic_deap;
pub mod synthetic_mahnob;
pub mod tables;
#[cfg(test)]
pub(crate) mod test_util;
pub mod windows;
