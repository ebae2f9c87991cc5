//! The audit trail: an append-only JSON-lines record of every key creation, import, release
//! and revocation (`docs/operations.md`, "Audit trail"). Content security frameworks (MPAA/TPN,
//! CDSA) ask that every key release be attributable; this is that record.
//!
//! Records carry who (tenant, token subject and id, client address), what (KIDs, content id,
//! protocol) and when; never key bytes or tokens. Handlers hand records to a dedicated writer
//! thread over a bounded channel and *wait* when it is full (back-pressure rather than loss).
//!
//! Why a thread and not a tokio task: `tokio::fs` performs every write on the blocking pool,
//! and under load that meant a thread hand-off per batch, and the load test showed a large
//! share of the server's CPU going to context switches (`docs/architecture.md`). The
//! writer thread instead sleeps
//! [`BATCH_INTERVAL`] between batches while records keep arriving, so it wakes a few dozen
//! times a second however many licences are issued, and writes each batch with one `write`.

use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the writer lets records accumulate while busy.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(20);
/// Records queued before handlers wait.
const QUEUE: usize = 64 * 1024;

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
    pub kids: Vec<crate::keyring::KeyId>,
    /// Content id, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<&'a str>,
    /// Token `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// Token `jti`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<&'a str>,
    /// The device keys went to, when the protocol knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<&'a str>,
    /// Request id (also in the logs and the `x-request-id` response header).
    pub request_id: &'a str,
    /// Client address.
    pub client: std::net::SocketAddr,
}

impl Record<'_> {
    /// Appends the record as one JSON line. Hand-written because it runs once per licence
    /// and serde's generic path costs several times as much. Strings that need
    /// no escaping (the common case: ids, tenants, KIDs) are copied as they are; the rest go
    /// through serde_json's escaper. A unit test checks the output equals serde's.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"{\"ts_ms\":");
        out.extend_from_slice(num.format(self.ts_ms).as_bytes());
        out.extend_from_slice(b",\"event\":");
        json_str(out, self.event);
        out.extend_from_slice(b",\"tenant\":");
        json_str(out, self.tenant);
        out.extend_from_slice(b",\"protocol\":");
        json_str(out, self.protocol);
        out.extend_from_slice(b",\"kids\":[");
        for (i, kid) in self.kids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(kid.canonical().as_str().as_bytes());
            out.push(b'"');
        }
        out.push(b']');
        for (name, value) in [
            ("content_id", self.content_id),
            ("subject", self.subject),
            ("token_id", self.token_id),
            ("device", self.device),
        ] {
            if let Some(v) = value {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                json_str(out, v);
            }
        }
        out.extend_from_slice(b",\"request_id\":");
        json_str(out, self.request_id);
        out.extend_from_slice(b",\"client\":\"");
        match self.client {
            // The common case without the formatting machinery: a.b.c.d:port.
            std::net::SocketAddr::V4(a) => {
                for (i, octet) in a.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.extend_from_slice(num.format(octet).as_bytes());
                }
                out.push(b':');
                out.extend_from_slice(num.format(a.port()).as_bytes());
            }
            std::net::SocketAddr::V6(a) => {
                use std::io::Write as _;
                let _ = write!(out, "{a}");
            }
        }
        out.extend_from_slice(b"\"}\n");
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// What a handler reports; [`crate::app::App::audit`] adds who, where and when.
#[derive(Debug)]
pub struct Event<'a> {
    /// `key.release`, `key.create`, `key.import`, `key.revoke`, `key.read`.
    pub event: &'static str,
    /// Protocol (`clearkey`, `hls`, `keyapi`).
    pub protocol: &'static str,
    /// KIDs concerned.
    pub kids: Vec<crate::keyring::KeyId>,
    /// Content id, when one applies.
    pub content_id: Option<&'a str>,
    /// Token `sub`.
    pub subject: Option<&'a str>,
    /// Token `jti`.
    pub token_id: Option<&'a str>,
    /// The device keys went to (`playready:<certificate id>`), when the protocol knows it.
    pub device: Option<&'a str>,
}

/// Handle for emitting audit records.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    metrics: Option<Arc<crate::telemetry::Metrics>>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Audit {
    /// An audit handle that records nothing (audit disabled).
    pub fn disabled() -> Self {
        Self {
            tx: None,
            metrics: None,
            writer: Arc::default(),
        }
    }

    /// Opens `path` (append, mode 0600; `-` = stdout) and starts the writer thread.
    pub fn start(path: &Path, metrics: Arc<crate::telemetry::Metrics>) -> std::io::Result<Self> {
        let sink = if path == Path::new("-") {
            Sink::Stdout(std::io::stdout())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            use std::os::unix::fs::OpenOptionsExt;
            Sink::File(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?,
            )
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let m = metrics.clone();
        let shown = path.display().to_string();
        let handle = std::thread::Builder::new()
            .name("tessera-audit".into())
            .spawn(move || writer(sink, rx, &m, &shown))?;
        Ok(Self {
            tx: Some(tx),
            metrics: Some(metrics),
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    /// Records one event; waits if the writer is behind.
    pub async fn record(&self, rec: Record<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut line = Vec::with_capacity(384);
        rec.encode(&mut line);
        if tx.send(line).await.is_err()
            && let Some(m) = &self.metrics
        {
            m.audit_errors.inc();
        }
    }

    /// Writes out everything queued so far, syncs the file and stops the writer (shutdown,
    /// after the listeners have drained). Records sent afterwards count as audit errors.
    pub async fn close(&self) {
        let Some(tx) = &self.tx else { return };
        // An empty record is the writer's signal to flush, sync and stop.
        let _ = tx.send(Vec::new()).await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

enum Sink {
    File(std::fs::File),
    Stdout(std::io::Stdout),
}

impl Sink {
    fn write_batch(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(buf),
            Sink::Stdout(s) => s.write_all(buf).and_then(|()| s.flush()),
        }
    }

    fn sync(&mut self) {
        if let Sink::File(f) = self {
            let _ = f.sync_all();
        }
    }
}

fn writer(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Vec<u8>>,
    metrics: &crate::telemetry::Metrics,
    path: &str,
) {
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut closing = false;
    // Blocks only while idle; ends when every sender is gone, or on the close signal.
    while let Some(first) = rx.blocking_recv() {
        let mut n = 0u64;
        let mut pending = Some(first);
        loop {
            while let Some(rec) = pending.take().or_else(|| rx.try_recv().ok()) {
                // An empty record is the close signal.
                if rec.is_empty() {
                    closing = true;
                } else {
                    buf.extend_from_slice(&rec);
                    n += 1;
                }
            }
            if !buf.is_empty() {
                match sink.write_batch(&buf) {
                    Ok(()) => metrics.audit_records.inc_by(n),
                    Err(e) => {
                        metrics.audit_errors.inc_by(n);
                        tracing::error!(audit.path = path, error = %e, "audit write failed");
                    }
                }
            }
            buf.clear();
            n = 0;
            if closing {
                break;
            }
            // Let the next batch accumulate before looking again: checking for emptiness
            // right after a drain would nearly always find the queue empty under load and
            // send the thread back to a blocking wait, woken once per record (the load test
            // shows it as fewer licences per second).
            std::thread::sleep(BATCH_INTERVAL);
            if rx.is_empty() {
                break;
            }
        }
        if closing {
            break;
        }
    }
    sink.sync();
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyId;

    #[test]
    fn hand_encoding_equals_serde() {
        for (subject, token_id, content_id, client) in [
            (Some("viewer-1"), Some("abc"), None, "[::1]:4433"),
            (
                Some("quote\" back\\ nl\n tab\t ctl\u{1} del\u{7f} é"),
                None,
                Some("movie/1"),
                "10.0.0.255:80",
            ),
            (None, None, None, "127.0.0.1:65535"),
        ] {
            let rec = Record {
                ts_ms: 1_795_000_000_123,
                event: "key.release",
                tenant: "acme",
                protocol: "clearkey",
                kids: vec![KeyId::from_bytes([0xab; 16]), KeyId::from_bytes([1; 16])],
                content_id,
                subject,
                token_id,
                device: content_id.map(|_| "playready:00ff"),
                request_id: "req-1",
                client: client.parse().unwrap(),
            };
            let mut line = Vec::new();
            rec.encode(&mut line);
            assert_eq!(line.last(), Some(&b'\n'));
            let mine: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(mine, serde_json::to_value(&rec).unwrap());
        }
    }
}
