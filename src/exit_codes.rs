//! Exit codes of `pipe` (documented in the README).

/// Everything asked for succeeded.
pub const OK: i32 = 0;
/// At least one stage instance failed (others may have completed and are cached).
pub const STAGE_FAILED: i32 = 1;
/// Bad command line or pipeline file: nothing ran.
pub const USAGE: i32 = 2;
/// The cache could not be used (not writable, disk full, I/O error) or is damaged
/// (`pipe verify` found corrupt entries).
pub const CACHE: i32 = 3;
/// `pipe diff` found a regression beyond tolerance.
pub const REGRESSION: i32 = 4;
/// Interrupted by SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C): running
/// instances were cancelled, completed ones are cached.
pub const INTERRUPTED: i32 = 130;
/// A bug in pipe itself.
pub const INTERNAL: i32 = 101;
