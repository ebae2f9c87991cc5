//! `[telemetry]` and `[audit]`: logs and the audit trail.

use serde::Deserialize;
use std::path::PathBuf;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `plain` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter directive (`info`, `tessera=debug,hyper=warn`).
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Plain,
            log_level: "info".into(),
        }
    }
}

/// `[audit]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Write the audit trail (key creation, import, release, revocation).
    pub enabled: bool,
    /// JSON-lines file; default `<data_dir>/audit.jsonl`; `-` for standard output.
    pub path: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
        }
    }
}
