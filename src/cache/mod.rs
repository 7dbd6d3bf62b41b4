//! The content-addressed cache: keys, objects, manifests, locks, stat cache.

pub mod canonical;
pub mod hash;
pub mod key;
pub mod lock;
pub mod manifest;
pub mod refs;
pub mod stat_cache;
pub mod store;

pub use manifest::Manifest;
pub use store::{Cache, CacheError, Validity};
