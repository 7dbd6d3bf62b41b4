//! All YAML parsing lives here, and the rest of the engine sees YAML values only
//! through [`Value`]: swapping serde_yaml for a maintained fork with the same value
//! type touches this file only.
//!
//! serde_yaml (the user's choice) gives the values, but it keeps no positions once a
//! document parsed, so semantic errors ("no stage named `teachr`") could not point at
//! the file. `saphyr-parser` (a maintained YAML 1.2 event parser) reads the same text
//! a second time and records, for every mapping key and value, where it stands: the
//! [`SpanIndex`]. The two parses agree on structure for every document serde_yaml
//! accepts, so the positions are exact, not guessed from the text.

use std::collections::HashMap;

/// A parsed YAML value (serde_yaml's).
pub(crate) type Value = serde_yaml::Value;

use saphyr_parser::{Event, Parser};

use super::span::{LineIndex, Span};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the document: `stages.teacher.with.lr` is
/// `[Key(stages), Key(teacher), Key(with), Key(lr)]`.
pub(crate) type YamlPath = Vec<Seg>;

/// Where each key and value of a document is.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpanIndex {
    keys: HashMap<YamlPath, Span>,
    values: HashMap<YamlPath, Span>,
}

impl SpanIndex {
    /// The span of the key at `path` (falls back to the value, then to the parent).
    pub(crate) fn key(&self, path: &[Seg]) -> Option<Span> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
    /// The span of the value at `path` (falls back to the closest ancestor).
    pub(crate) fn value(&self, path: &[Seg]) -> Option<Span> {
        let mut p = path;
        loop {
            if let Some(s) = self.values.get(p) {
                return Some(*s);
            }
            if p.is_empty() {
                return None;
            }
            p = &p[..p.len() - 1];
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub span: Option<Span>,
}

/// Parse a document into a value and the positions of its parts.
pub(crate) fn parse(text: &str) -> Result<(serde_yaml::Value, SpanIndex), SyntaxError> {
    let lines = LineIndex::new(text);
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let span = e
            .location()
            .map(|l| lines.span_at(l.line(), l.column().saturating_sub(1), 1));
        SyntaxError {
            message: strip_location(&e.to_string()),
            span,
        }
    })?;
    let spans = index_spans(text, &lines).map_err(|message| SyntaxError {
        message,
        span: None,
    })?;
    Ok((value, spans))
}

/// Parse a scalar the way it would be read inside a document (`--set k=v`).
pub(crate) fn parse_scalar(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap_or_else(|_| serde_yaml::Value::String(text.to_string()))
}

fn strip_location(msg: &str) -> String {
    // serde_yaml appends " at line L column C"; we show positions ourselves.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

enum Frame {
    Map {
        path: YamlPath,
        start: Span,
        pending_key: Option<String>,
    },
    Seq {
        path: YamlPath,
        start: Span,
        next: usize,
    },
}

fn index_spans(text: &str, lines: &LineIndex) -> Result<SpanIndex, String> {
    let mut index = SpanIndex::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let to_span = |s: &saphyr_parser::Span| {
        let start = lines.offset(s.start.line(), s.start.col());
        let end = lines.offset(s.end.line(), s.end.col()).max(start);
        Span::new(start, end - start)
    };
    while let Some(ev) = parser.next_event() {
        let (event, raw_span) = ev.map_err(|e| e.to_string())?;
        let span = to_span(&raw_span);
        match event {
            Event::Scalar(value, ..) => {
                // A scalar is either a key (in a map expecting one) or a value.
                if let Some(Frame::Map {
                    path, pending_key, ..
                }) = stack.last_mut()
                {
                    if pending_key.is_none() {
                        let mut p = path.clone();
                        p.push(Seg::Key(value.to_string()));
                        index.keys.insert(p, span);
                        *pending_key = Some(value.to_string());
                        continue;
                    }
                }
                let p = value_path(&mut stack);
                index.values.insert(p, span);
            }
            Event::Alias(_) => {
                let p = value_path(&mut stack);
                index.values.insert(p, span);
            }
            Event::MappingStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Map {
                    path,
                    start: span,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Seq {
                    path,
                    start: span,
                    next: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (path, start) = match stack.pop() {
                    Some(Frame::Map { path, start, .. }) | Some(Frame::Seq { path, start, .. }) => {
                        (path, start)
                    }
                    None => continue,
                };
                let end = span.offset + span.len;
                let whole = Span::new(start.offset, end.saturating_sub(start.offset).max(1));
                index.values.insert(path, whole);
                // the collection was a value of its parent: advance the parent
                value_path(&mut stack);
            }
            _ => {}
        }
    }
    Ok(index)
}

/// The path the next value in the current container will have (without consuming).
fn child_path(stack: &[Frame]) -> YamlPath {
    match stack.last() {
        None => Vec::new(),
        Some(Frame::Map {
            path, pending_key, ..
        }) => {
            let mut p = path.clone();
            // a collection used as a key is not something we support; index it under ""
            p.push(Seg::Key(pending_key.clone().unwrap_or_default()));
            p
        }
        Some(Frame::Seq { path, next, .. }) => {
            let mut p = path.clone();
            p.push(Seg::Index(*next));
            p
        }
    }
}

/// The path of the value just completed, advancing the container's state.
fn value_path(stack: &mut [Frame]) -> YamlPath {
    let p = child_path(stack);
    match stack.last_mut() {
        Some(Frame::Map { pending_key, .. }) => *pending_key = None,
        Some(Frame::Seq { next, .. }) => *next += 1,
        None => {}
    }
    p
}
