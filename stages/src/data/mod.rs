//! Dataset readers and writers, synthetic data, ingestion to Parquet, windows, folds.

pub mod channels;
pub mod deap;
pub mod ingest_deap;
pub mod mat;
pub mod pickle;
pub mod synthetic_deap;
pub mod tables;
