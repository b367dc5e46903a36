//! Logging: JSON lines (or human-readable lines) filtered by `RUST_LOG` or the
//! configured level.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ServerSettings};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(settings: &ServerSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format() {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
