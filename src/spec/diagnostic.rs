//! Errors in a pipeline file: message, position with a caret excerpt, and a hint.

use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

use super::span::Span;

/// One error in a pipeline file (or in a `--set` override, which has no position).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct SpecError {
    pub message: String,
    #[source_code]
    pub src: NamedSource<Arc<str>>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

/// Every error found in a pipeline file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}: {} error{} in the pipeline file", .errors.len(), if .errors.len() == 1 { "" } else { "s" })]
pub struct PipelineErrors {
    pub file: String,
    #[related]
    pub errors: Vec<SpecError>,
}

/// Builds [`SpecError`]s for one source file.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub name: String,
    pub text: Arc<str>,
}

impl Reporter {
    pub(crate) fn error(&self, span: Option<Span>, message: impl Into<String>) -> SpecError {
        SpecError {
            message: message.into(),
            src: NamedSource::new(self.name.clone(), self.text.clone()),
            span: span.map(Into::into),
            label: "here".into(),
            help: None,
        }
    }
}

impl SpecError {
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
    pub fn set_label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = label.into();
        self
    }
    pub fn set_help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// "did you mean `x`?" for the closest candidate, if any is close enough.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!("did you mean `{}`?", best.1))
}

/// A hint listing the valid names, or suggesting the closest one.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    did_you_mean(name, candidates.clone()).unwrap_or_else(|| {
        let all: Vec<&str> = candidates.into_iter().collect();
        if all.is_empty() {
            "there is none to choose from".into()
        } else {
            format!("expected one of: {}", all.join(", "))
        }
    })
}
