//! Prometheus metrics: one [`Metrics`] value owning its registry (no global statics, STYLE
//! O3), `tessera_` namespace, bounded labels only (`endpoint`, `status_class`, `protocol`,
//! `reason`, `op`, `result`).
//!
//! Label sets are resolved once at startup into plain counters, so recording on the hot path
//! is an atomic add, not a hash lookup under a lock.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};
use std::collections::HashMap;

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Latency buckets, seconds: 50 us .. 5 s (a cached licence takes far less than a
/// millisecond; a store write or an RSA-heavy licence, milliseconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

struct EndpointMetrics {
    by_class: [IntCounter; 5],
    latency: Histogram,
}

/// All of Tessera's metrics.
pub struct Metrics {
    registry: Registry,
    endpoints: Vec<EndpointMetrics>,
    licenses: HashMap<&'static str, IntCounter>,
    keys_released: HashMap<&'static str, IntCounter>,
    denials: HashMap<&'static str, IntCounter>,
    /// `tessera_packaging_responses_total{protocol, status}`.
    pub packaging: IntCounterVec,
    /// Keys created, by source (`generated`, `imported`).
    pub keys_created: IntCounterVec,
    /// Keys revoked.
    pub keys_revoked: IntCounter,
    /// Opened-key cache hits.
    pub cache_hits: IntCounter,
    /// Opened-key cache misses (each one a store read).
    pub cache_misses: IntCounter,
    /// Keys currently cached.
    pub cache_size: IntGauge,
    /// Store operation latency, by `backend` and `op`.
    pub store_latency: HistogramVec,
    /// Store operation errors, by `backend` and `op`.
    pub store_errors: IntCounterVec,
    /// Seconds since the change feed was last read successfully (the bound on how stale
    /// this node's view of revocations made elsewhere can be).
    pub change_feed_age: prometheus::Gauge,
    /// Times this node fell behind the change feed's retention and dropped its cached keys.
    pub change_feed_resets: IntCounter,
    /// JWKS fetches, by `result` (`ok`, `error`).
    pub jwks_fetches: IntCounterVec,
    /// Audit records written.
    pub audit_records: IntCounter,
    /// Audit write failures.
    pub audit_errors: IntCounter,
    /// Open connections.
    pub connections: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Invariant: every name below is registered exactly once, so registration cannot clash.
    #[expect(clippy::expect_used, reason = "metric names are unique constants")]
    r.register(Box::new(c.clone())).expect("unique metric name");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    #[expect(clippy::expect_used, reason = "constant, valid metric definition")]
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help).namespace("tessera"), labels)
            .expect("valid metric"),
    )
}

impl Metrics {
    /// Registers every metric. `endpoints`, `protocols` and `reasons` are the complete label
    /// value sets, known at compile time.
    pub fn new(
        endpoints: &[&'static str],
        protocols: &[&'static str],
        reasons: &[&'static str],
    ) -> Self {
        let r = Registry::new();
        let requests = counter_vec(
            &r,
            "http_requests_total",
            "HTTP requests by endpoint and status class.",
            &["endpoint", "status_class"],
        );
        #[expect(clippy::expect_used, reason = "constant, valid metric definitions")]
        let latency = reg(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by endpoint.",
                )
                .namespace("tessera")
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["endpoint"],
            )
            .expect("valid metric"),
        );
        let endpoints = endpoints
            .iter()
            .map(|e| EndpointMetrics {
                by_class: STATUS_CLASSES.map(|c| requests.with_label_values(&[e, c])),
                latency: latency.with_label_values(&[e]),
            })
            .collect();
        let licenses = counter_vec(
            &r,
            "licenses_issued_total",
            "Licences issued, by protocol.",
            &["protocol"],
        );
        let released = counter_vec(
            &r,
            "keys_released_total",
            "Content keys released in licences, by protocol.",
            &["protocol"],
        );
        let denials = counter_vec(
            &r,
            "auth_denials_total",
            "Requests refused by authentication or authorisation, by reason.",
            &["reason"],
        );
        #[expect(clippy::expect_used, reason = "constant, valid metric definitions")]
        let m = Self {
            endpoints,
            licenses: protocols
                .iter()
                .map(|p| (*p, licenses.with_label_values(&[p])))
                .collect(),
            keys_released: protocols
                .iter()
                .map(|p| (*p, released.with_label_values(&[p])))
                .collect(),
            denials: reasons
                .iter()
                .map(|p| (*p, denials.with_label_values(&[p])))
                .collect(),
            packaging: counter_vec(
                &r,
                "packaging_responses_total",
                "Answers to packagers (Widevine-style key API, PlayReady packaging, SPEKE), by protocol and status.",
                &["protocol", "status"],
            ),
            keys_created: counter_vec(
                &r,
                "keys_created_total",
                "Content keys created, by source.",
                &["source"],
            ),
            keys_revoked: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new("keys_revoked_total", "Content keys revoked.").namespace("tessera"),
                )
                .expect("valid"),
            ),
            cache_hits: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new("key_cache_hits_total", "Opened-key cache hits.")
                        .namespace("tessera"),
                )
                .expect("valid"),
            ),
            cache_misses: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new("key_cache_misses_total", "Opened-key cache misses.")
                        .namespace("tessera"),
                )
                .expect("valid"),
            ),
            cache_size: reg(
                &r,
                IntGauge::with_opts(
                    Opts::new("key_cache_entries", "Opened keys held in memory.")
                        .namespace("tessera"),
                )
                .expect("valid"),
            ),
            store_latency: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "store_operation_duration_seconds",
                        "Key store operation latency, by backend and operation.",
                    )
                    .namespace("tessera")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["backend", "op"],
                )
                .expect("valid"),
            ),
            store_errors: counter_vec(
                &r,
                "store_errors_total",
                "Key store operation errors, by backend and operation.",
                &["backend", "op"],
            ),
            change_feed_age: reg(
                &r,
                prometheus::Gauge::with_opts(
                    Opts::new(
                        "change_feed_age_seconds",
                        "Seconds since the change feed (revocations from every node) was last read.",
                    )
                    .namespace("tessera"),
                )
                .expect("valid"),
            ),
            change_feed_resets: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new(
                        "change_feed_resets_total",
                        "Times the change feed did not continue from this node's cursor (pruned past it, or a failover to a database behind it); its cached keys were dropped.",
                    )
                    .namespace("tessera"),
                )
                .expect("valid"),
            ),
            jwks_fetches: counter_vec(
                &r,
                "jwks_fetches_total",
                "JWKS fetches, by result.",
                &["result"],
            ),
            audit_records: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new("audit_records_total", "Audit records written.").namespace("tessera"),
                )
                .expect("valid"),
            ),
            audit_errors: reg(
                &r,
                IntCounter::with_opts(
                    Opts::new(
                        "audit_errors_total",
                        "Audit records that could not be written.",
                    )
                    .namespace("tessera"),
                )
                .expect("valid"),
            ),
            connections: reg(
                &r,
                IntGauge::with_opts(
                    Opts::new("open_connections", "Open client connections.").namespace("tessera"),
                )
                .expect("valid"),
            ),
            registry: r,
        };
        let info = IntCounterVec::new(
            Opts::new("build_info", "Build information.").namespace("tessera"),
            &["version"],
        );
        if let Ok(info) = info {
            reg(&m.registry, info.clone())
                .with_label_values(&[env!("CARGO_PKG_VERSION")])
                .inc();
        }
        m
    }

    /// Records one finished HTTP request.
    pub fn request(&self, endpoint: usize, status: u16, seconds: f64) {
        if let Some(e) = self.endpoints.get(endpoint) {
            let class = usize::from(status / 100).clamp(1, 5) - 1;
            e.by_class[class].inc();
            e.latency.observe(seconds);
        }
    }

    /// Records one licence with `keys` keys for `protocol`.
    pub fn license(&self, protocol: &str, keys: usize) {
        if let Some(c) = self.licenses.get(protocol) {
            c.inc();
        }
        if let Some(c) = self.keys_released.get(protocol) {
            c.inc_by(keys as u64);
        }
    }

    /// Records an authentication/authorisation denial.
    pub fn denial(&self, reason: &str) {
        if let Some(c) = self.denials.get(reason) {
            c.inc();
        }
    }

    /// Registers a backend's own collectors (store metrics that only it knows).
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(c) {
            tracing::warn!(error = %e, "a store metric could not be registered");
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
