//! `tracing` to standard error: `RUST_LOG` filters, `-v`/`-vv`, `--log-format json`.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Install the subscriber: level from `-q` / `-v` unless `RUST_LOG` says otherwise.
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(crate::commands::color_enabled())
            .try_init(),
    };
}
