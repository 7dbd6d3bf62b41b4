//! Dataset readers and writers, synthetic data, ingestion to Parquet, windows, folds.

pub mod channels;
pub mod tables;
