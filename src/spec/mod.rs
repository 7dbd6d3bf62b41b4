//! The pipeline file: parsing with positions, structure checks, interpolation,
//! command-line overrides.

pub(crate) mod diagnostic;
pub(crate) mod interpolate;
pub(crate) mod model;
mod parse;
pub(crate) mod resources;
pub(crate) mod span;
pub(crate) mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use diagnostic::{PipelineErrors, Reporter, SpecError};
pub(crate) use model::{Action, Override, Pipeline, Spanned, StageDef, Variation};
pub(crate) use resources::ExecutorKind;

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] PipelineErrors),
    #[error("{0}")]
    Usage(String),
}

/// A loaded file: the text (for error excerpts) and the pipeline.
pub(crate) struct Loaded {
    pub pipeline: Pipeline,
    pub reporter: Reporter,
}

/// The folder relative paths in `file` resolve against: the nearest ancestor holding
/// `.git` or `cache/`; else the parent of a `pipelines/` folder; else the file's folder.
pub(crate) fn project_root(file: &Path) -> PathBuf {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    for a in dir.ancestors() {
        if a.join(".git").exists() || a.join("cache").is_dir() {
            return a.to_path_buf();
        }
    }
    if dir.file_name().is_some_and(|n| n == "pipelines") {
        if let Some(parent) = dir.parent() {
            return parent.to_path_buf();
        }
    }
    dir
}

/// Read, parse and check a pipeline file's structure; apply `--set` overrides and
/// keep only `--variation` if given.
pub(crate) fn load(
    file: &Path,
    sets: &[String],
    variation: Option<&str>,
) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let name = file.display().to_string();
    let reporter = Reporter {
        name: name.clone(),
        text: Arc::from(text.as_str()),
    };
    let invalid = |errors: Vec<SpecError>| {
        LoadError::Invalid(PipelineErrors {
            file: name.clone(),
            errors,
        })
    };
    let (doc, spans) = yaml::parse(&text).map_err(|e| {
        invalid(vec![reporter
            .error(e.span, format!("invalid YAML: {}", e.message))
            .label("here")])
    })?;
    let mut cx = parse::Ctx {
        rep: &reporter,
        spans: &spans,
        errors: Vec::new(),
    };
    let pipeline = parse::pipeline(&mut cx, &doc, file, &project_root(file));
    if !cx.errors.is_empty() {
        return Err(invalid(cx.errors));
    }
    let mut pipeline = pipeline.ok_or_else(|| LoadError::Usage("empty pipeline".into()))?;
    let mut extra = Vec::new();
    for s in sets {
        let (path, value) = s.split_once('=').ok_or_else(|| {
            LoadError::Usage(format!(
                "--set {s:?}: expected STAGE.PARAM=VALUE or params.NAME=VALUE"
            ))
        })?;
        let (scope, key) = path.trim().split_once('.').ok_or_else(|| {
            LoadError::Usage(format!(
                "--set {s:?}: expected STAGE.PARAM=VALUE or params.NAME=VALUE"
            ))
        })?;
        let yaml = yaml::parse_scalar(value);
        let value = serde_json::to_value(&yaml)
            .map_err(|e| LoadError::Usage(format!("--set {s:?}: {e}")))?;
        extra.push(Override {
            scope: scope.into(),
            key: key.into(),
            value,
            span: None,
            origin: "--set".into(),
        });
    }
    for v in &mut pipeline.variations {
        v.overrides.extend(extra.iter().cloned());
    }
    if let Some(want) = variation {
        let names: Vec<&str> = pipeline
            .variations
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        if !names.contains(&want) {
            return Err(LoadError::Usage(format!(
                "--variation {want}: no such variation in {name}; {}",
                diagnostic::suggest(want, names.iter().copied())
            )));
        }
        pipeline.variations.retain(|v| v.name == want);
    }
    Ok(Loaded { pipeline, reporter })
}
