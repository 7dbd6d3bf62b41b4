//! The pipeline file after structural checks: every part typed and positioned.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::Value;
use stages::{Backend, Stage};

use super::span::Span;

/// A value with the place it came from (`None`: from the command line).
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Option<Span>,
}

impl<T> Spanned<T> {
    pub(crate) fn new(value: T, span: Option<Span>) -> Self {
        Spanned { value, span }
    }
}

/// What a stage does.
#[derive(Clone)]
pub(crate) enum Action {
    /// A built-in stage (`uses:`).
    Uses(&'static dyn Stage),
    /// A shell command (`run:`).
    Run(String),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Uses(s) => write!(f, "uses {}", s.name()),
            Action::Run(c) => write!(f, "run {c:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StageDef {
    pub name: String,
    pub name_span: Option<Span>,
    pub action: Action,
    /// Where the `run:` command is written.
    pub run_span: Option<Span>,
    pub needs: Vec<Spanned<String>>,
    pub with: IndexMap<String, Spanned<Value>>,
    /// Where each `with:` key is written (for "unknown parameter" errors).
    pub with_keys: std::collections::HashMap<String, Span>,
    pub matrix: IndexMap<String, Spanned<Value>>,
    /// `run:` stages: files or folders read (relative to the project root).
    pub deps: Vec<Spanned<String>>,
    /// `run:` stages: files or folders written, relative to the stage's output folder.
    pub outs: Vec<Spanned<String>>,
    pub backend: Backend,
    /// `resources:` as written (the stage's defaults fill the rest).
    pub resources: super::resources::ResourceOverrides,
}

/// One override: `student.kl: 0.2`, `params.seed: 3`.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    /// `params` or a stage name.
    pub scope: String,
    pub key: String,
    pub value: Value,
    /// Where it was written (variation entry), `None` for `--set`.
    pub span: Option<Span>,
    /// For messages: `variation v2` or `--set`.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Variation {
    pub name: String,
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub name: String,
    pub description: String,
    /// The file as given on the command line.
    pub file: PathBuf,
    /// Relative paths in the file resolve against this folder.
    pub root: PathBuf,
    pub params: IndexMap<String, Spanned<Value>>,
    pub stages: IndexMap<String, StageDef>,
    /// Always at least one (`default` when the file has none).
    pub variations: Vec<Variation>,
    /// `executor:` in the file (`--executor` overrides it).
    pub executor: Option<super::resources::ExecutorKind>,
}
