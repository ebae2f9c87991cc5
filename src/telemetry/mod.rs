//! Logs and metrics (`docs/operations.md`).

pub mod metrics;

pub use metrics::Metrics;

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filter directive does not parse.
    #[error("bad log filter {filter:?}: {message}")]
    Filter {
        /// The directive.
        filter: String,
        /// The parser's message.
        message: String,
    },
    /// A global subscriber is already installed.
    #[error("cannot install logger: {0}")]
    Install(String),
}

/// Installs the global tracing subscriber. Never logs keys, tokens or bodies: nothing in the
/// code passes them to a log macro (STYLE O2), and this layer adds none.
pub fn init(format: LogFormat, filter: &str) -> Result<(), Error> {
    let filter = EnvFilter::try_new(filter).map_err(|e| Error::Filter {
        filter: filter.to_owned(),
        message: e.to_string(),
    })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    result.map_err(|e| Error::Install(e.to_string()))
}
