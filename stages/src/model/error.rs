//! The one error type of the model code.

use std::path::PathBuf;

/// What can go wrong when building, running, saving or loading a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range or inconsistent (e.g. `heads` does not
    /// divide `dim`, or the temporal kernel is longer than the window).
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// An input tensor has the wrong shape for the network it is given to.
    #[error("input shape mismatch: {0}")]
    Shape(String),
    /// The device (allocation, kernel launch) failed.
    #[error("device error: {0}")]
    Device(String),
    /// Two parameter collections (or a collection and a parameter vector) do not match.
    #[error("parameter mismatch: {0}")]
    Params(String),
    /// A checkpoint file is missing, unreadable or does not fit the network.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
}

impl ModelError {
    /// Wraps a device error (`D::Err`, which is only `Debug` in general).
    pub fn device(e: impl std::fmt::Debug) -> Self {
        ModelError::Device(format!("{e:?}"))
    }

    pub(crate) fn checkpoint(path: &std::path::Path, msg: impl Into<String>) -> Self {
        ModelError::Checkpoint {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

impl From<ModelError> for crate::stage::StageError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Checkpoint { path, msg } => crate::stage::StageError::bad_file(path, msg),
            other => crate::stage::StageError::Model(other.to_string()),
        }
    }
}
