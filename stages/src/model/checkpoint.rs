//! Safetensors checkpoints of any [`ParamTree`] collection.
//!
//! Tensor names are the dotted parameter paths; the header metadata holds the
//! network kind, its configuration as JSON and the element type, so a network can be
//! rebuilt from the file alone.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::device::{Float, NetDevice};
use super::error::ModelError;
use super::param_tree::{ParamPath, ParamTree, ParamTreeExt};

/// Metadata keys.
pub(crate) const KEY_NETWORK: &str = "network";
pub(crate) const KEY_CONFIG: &str = "config";
pub(crate) const KEY_DTYPE: &str = "dtype";

/// Saves every tensor of `model` (trainable and buffers) with `network` and `config`
/// in the metadata.
pub(crate) fn save<E: Float, D: NetDevice<E>, M: ParamTree<E, D>>(
    model: &M,
    path: &Path,
    network: &str,
    config: &impl Serialize,
) -> Result<(), ModelError> {
    let config = serde_json::to_string(config)
        .map_err(|e| ModelError::checkpoint(path, format!("config: {e}")))?;
    let tensors = model.tensors();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let bytes = t
                .tensor
                .to_vec()
                .into_iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (t.name.clone(), t.tensor.dims(), bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(name, dims, bytes)| {
            TensorView::new(E::safe_dtype(), dims.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::checkpoint(path, format!("{name}: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = HashMap::from([
        (KEY_NETWORK.to_string(), network.to_string()),
        (KEY_CONFIG.to_string(), config),
        (KEY_DTYPE.to_string(), format!("{:?}", E::safe_dtype())),
    ]);
    let bytes = safetensors::serialize(views, &Some(meta))
        .map_err(|e| ModelError::checkpoint(path, format!("cannot serialise: {e:?}")))?;
    let bytes = sorted_header(bytes).map_err(|e| ModelError::checkpoint(path, e))?;
    std::fs::write(path, bytes)
        .map_err(|e| ModelError::checkpoint(path, format!("cannot write: {e}")))
}

/// Rewrites the JSON header of a serialised safetensors buffer with its object keys
/// sorted. safetensors 0.3 writes the `__metadata__` map in `HashMap` order, which
/// changes from run to run, so the same weights gave different file bytes (and
/// different content digests in the cache). Same keys and values, same length.
fn sorted_header(mut bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or("no header")?;
    let n = usize::try_from(u64::from_le_bytes(head)).map_err(|_| "header too long")?;
    let header = bytes.get(8..8 + n).ok_or("truncated header")?;
    let value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    let mut sorted = serde_json::to_vec(&sort(value)).map_err(|e| format!("bad header: {e}"))?;
    if sorted.len() > n {
        return Err(format!(
            "sorted header is {} bytes, the original {n}",
            sorted.len()
        ));
    }
    sorted.resize(n, b' ');
    bytes[8..8 + n].copy_from_slice(&sorted);
    Ok(bytes)
}

/// The header metadata of a checkpoint.
pub(crate) fn read_metadata(path: &Path) -> Result<HashMap<String, String>, ModelError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ModelError::checkpoint(path, format!("cannot read: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| ModelError::checkpoint(path, format!("not a safetensors file: {e:?}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// The configuration stored by [`save`], checking that the file holds a `network`.
pub(crate) fn read_config<C: DeserializeOwned>(
    path: &Path,
    network: &str,
) -> Result<C, ModelError> {
    let meta = read_metadata(path)?;
    match meta.get(KEY_NETWORK) {
        Some(n) if n == network => {}
        Some(n) => {
            return Err(ModelError::checkpoint(
                path,
                format!("holds a {n}, not a {network}"),
            ))
        }
        None => {
            return Err(ModelError::checkpoint(
                path,
                "no `network` entry in the metadata",
            ))
        }
    }
    let cfg = meta
        .get(KEY_CONFIG)
        .ok_or_else(|| ModelError::checkpoint(path, "no `config` entry in the metadata"))?;
    serde_json::from_str(cfg).map_err(|e| ModelError::checkpoint(path, format!("bad config: {e}")))
}

/// Overwrites every tensor of `model` with the file's tensor of the same name. Names,
/// shapes and element type must match exactly, with no tensor missing or extra.
pub(crate) fn load_into<E: Float, D: NetDevice<E>, M: ParamTree<E, D>>(
    model: &mut M,
    path: &Path,
) -> Result<(), ModelError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ModelError::checkpoint(path, format!("cannot read: {e}")))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| ModelError::checkpoint(path, format!("not a safetensors file: {e:?}")))?;
    let width = size_of::<E>();
    let mut seen = 0usize;
    let mut err: Option<String> = None;
    model.visit_mut(&mut ParamPath::default(), &mut |name, _, mut t| {
        if err.is_some() {
            return;
        }
        let view = match file.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                err = Some(format!("tensor `{name}` is missing"));
                return;
            }
        };
        seen += 1;
        if view.dtype() != E::safe_dtype() {
            err = Some(format!(
                "tensor `{name}` is {:?}, expected {:?}",
                view.dtype(),
                E::safe_dtype()
            ));
            return;
        }
        if view.shape() != t.dims().as_slice() {
            err = Some(format!(
                "tensor `{name}` has shape {:?}, expected {:?}",
                view.shape(),
                t.dims()
            ));
            return;
        }
        let values: Vec<E> = view
            .data()
            .chunks_exact(width)
            .map(|c| E::from_le_bytes(c, 0))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            err = Some(format!("tensor `{name}` holds NaN or infinite values"));
            return;
        }
        t.copy_from_slice(&values);
    });
    if let Some(e) = err {
        return Err(ModelError::checkpoint(path, e));
    }
    if seen != file.len() {
        let expected: Vec<String> = model.tensors().into_iter().map(|t| t.name).collect();
        let extra: Vec<&String> = file
            .names()
            .into_iter()
            .filter(|n| !expected.contains(n))
            .collect();
        return Err(ModelError::checkpoint(
            path,
            format!("unexpected tensors {extra:?}"),
        ));
    }
    Ok(())
}
