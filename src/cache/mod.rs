//! The content-addressed cache: keys, objects, manifests, locks, stat cache.

pub(crate) mod canonical;
pub(crate) mod hash;
pub(crate) mod key;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod refs;
pub(crate) mod stat_cache;
pub(crate) mod store;

pub(crate) use manifest::Manifest;
pub(crate) use store::{Cache, CacheError, Validity};
