//! Dataset readers and writers, synthetic data, ingestion to Parquet, windows, folds.

pub(crate) mod bdf;
pub mod channels;
pub(crate) mod columns;
pub mod deap;
pub mod folds;
pub mod ingest_deap;
pub mod ingest_mahnob;
pub(crate) mod mahnob;
pub(crate) mod mat;
pub(crate) mod pickle;
pub(crate) mod recordings_writer;
pub mod signal;
pub mod synthetic_deap;
pub mod synthetic_mahnob;
pub mod tables;
pub mod windows;

/// Provenance of a data folder: the synthetic generators leave this file next to the
/// files they write; ingestion records its generator in the recordings' metadata
/// (`generated_by`), and the key travels to the windows table and the training
/// stages' `metrics.json`, so a report can tell generated data from recordings.
pub mod provenance {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde_json::{json, Value};

    use crate::stage::{IoContext, StageError};

    /// The marker file a generator writes into the folder it fills.
    pub const GENERATOR_FILE: &str = "GENERATED_BY.json";
    /// The metadata key of the recordings and windows tables.
    pub const KEY: &str = "generated_by";

    /// Mark `dir` as written by the stage `generator` from `seed`.
    pub fn mark(dir: &Path, generator: &str, seed: u64) -> Result<(), StageError> {
        let path = dir.join(GENERATOR_FILE);
        let text = json!({ "generator": generator, "seed": seed }).to_string();
        std::fs::write(&path, text).at(&path)
    }

    /// The generator that filled `dir`, or "" for a folder no generator marked
    /// (recorded data). An unreadable marker is treated as no marker.
    pub fn generator_of(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(GENERATOR_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| {
                v.get("generator")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// How a table names the folder it was read from: the folder itself when the
    /// pipeline gave it (`from_path_param`: `path:`, part of the cache key), otherwise the upstream
    /// stage whose output it is — never a cache path, which differs between caches
    /// and would make the same instance write different bytes in each.
    pub fn source_label(ctx: &crate::Context, from_path_param: bool, folder: &Path) -> String {
        if from_path_param {
            return folder.display().to_string();
        }
        ctx.inputs
            .iter()
            .find_map(|i| {
                let rel = folder.strip_prefix(&i.dir).ok()?;
                let rel = rel.display().to_string();
                Some(if rel.is_empty() {
                    format!("output of stage `{}`", i.stage)
                } else {
                    format!("output of stage `{}`: {rel}", i.stage)
                })
            })
            .unwrap_or_else(|| folder.display().to_string())
    }

    /// The file-level key/value metadata of a Parquet file.
    pub fn parquet_metadata(path: &Path) -> Result<BTreeMap<String, String>, StageError> {
        let file = std::fs::File::open(path).at(path)?;
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| StageError::bad_file(path, format!("reading Parquet: {e}")))?;
        use parquet::file::reader::FileReader;
        Ok(reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
            .collect())
    }
}
