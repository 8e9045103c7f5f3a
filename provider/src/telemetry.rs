//! Logging setup: `tracing-subscriber` with an env filter (`RUST_LOG`, default `info`) and
//! either human-readable text or one JSON object per line (`--log-format json`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::args::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// which keeps tests that start several controllers in one process simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _already_set = match format {
        LogFormat::Text => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json()).try_init(),
    };
}
