//! The audit trail: an append-only JSON-lines record of every key creation, import, release
//! and revocation (`../shared/DESIGN.md`, "audit.rs"). Content security frameworks (MPAA/TPN,
//! CDSA) ask that every key release be attributable; this is that record.
//!
//! Records carry who (tenant, token subject and id, client address), what (KIDs, content id,
//! protocol) and when; never key bytes or tokens. Handlers hand records to a writer task over
//! a bounded channel and *wait* when it is full (back-pressure rather than loss); the writer
//! batches what is queued and flushes it to the operating system whenever the channel drains.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// `key.release`, `key.create`, `key.import`, `key.revoke`, `key.read`.
    pub event: &'static str,
    /// Tenant id.
    pub tenant: &'a str,
    /// Protocol (`clearkey`, `hls`, `keyapi`).
    pub protocol: &'static str,
    /// KIDs concerned, canonical form.
    pub kids: Vec<String>,
    /// Content id, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<&'a str>,
    /// Token `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// Token `jti`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<&'a str>,
    /// Request id (also in the logs and the `x-request-id` response header).
    pub request_id: &'a str,
    /// Client address.
    pub client: String,
}

/// What a handler reports; [`crate::app::App::audit`] adds who, where and when.
#[derive(Debug)]
pub struct Event<'a> {
    /// `key.release`, `key.create`, `key.import`, `key.revoke`, `key.read`.
    pub event: &'static str,
    /// Protocol (`clearkey`, `hls`, `keyapi`).
    pub protocol: &'static str,
    /// KIDs concerned, canonical form.
    pub kids: Vec<String>,
    /// Content id, when one applies.
    pub content_id: Option<&'a str>,
    /// Token `sub`.
    pub subject: Option<&'a str>,
    /// Token `jti`.
    pub token_id: Option<&'a str>,
}

/// Handle for emitting audit records.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    metrics: Option<Arc<crate::telemetry::Metrics>>,
}

impl Audit {
    /// An audit handle that records nothing (audit disabled).
    pub fn disabled() -> Self {
        Self {
            tx: None,
            metrics: None,
        }
    }

    /// Opens `path` (append, mode 0600; `-` = stdout) and starts the writer task.
    pub async fn start(
        path: &Path,
        metrics: Arc<crate::telemetry::Metrics>,
    ) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let sink: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = if path == Path::new("-") {
            Box::new(tokio::io::stdout())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await?;
            }
            let mut opts = tokio::fs::OpenOptions::new();
            opts.create(true).append(true).mode(0o600);
            Box::new(opts.open(path).await?)
        };
        let (tx, rx) = mpsc::channel(16 * 1024);
        let task = tokio::spawn(writer(sink, rx, metrics.clone(), path.to_owned()));
        Ok((
            Self {
                tx: Some(tx),
                metrics: Some(metrics),
            },
            task,
        ))
    }

    /// Records one event; waits if the writer is behind.
    pub async fn record(&self, rec: Record<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut line = match serde_json::to_vec(&rec) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        if tx.send(line).await.is_err()
            && let Some(m) = &self.metrics
        {
            m.audit_errors.inc();
        }
    }
}

async fn writer(
    mut sink: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    metrics: Arc<crate::telemetry::Metrics>,
    path: PathBuf,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(&first);
        let mut n = 1u64;
        // Batch whatever else is queued, then write and flush once.
        while let Ok(more) = rx.try_recv() {
            buf.extend_from_slice(&more);
            n += 1;
            if buf.len() > 1 << 20 {
                break;
            }
        }
        match async {
            sink.write_all(&buf).await?;
            sink.flush().await
        }
        .await
        {
            Ok(()) => metrics.audit_records.inc_by(n),
            Err(e) => {
                metrics.audit_errors.inc_by(n);
                tracing::error!(audit.path = %path.display(), error = %e, "audit write failed");
            }
        }
        buf.clear();
    }
    let _ = sink.flush().await;
    let _ = sink.shutdown().await;
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
