//! Failure injection (STYLE T8): the store goes down, Tessera answers 503 where it must and
//! keeps serving what it can from memory; the store comes back, so does everything else.

use crate::support::*;
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tessera::keyring::KeyId;
use tessera::store::{
    Change, EmbeddedStore, Error, Inserted, KeyRecord, KeyStore, Result, SameKey,
};

/// A real embedded store behind a switch that makes every operation fail as "unavailable",
/// as a lost database connection would. (A mock only in the sense of the switch: the data
/// path is the real backend.)
struct Flaky {
    inner: EmbeddedStore,
    down: AtomicBool,
    reads: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Unavailable("injected outage".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl KeyStore for Flaky {
    async fn insert_keys(
        &self,
        t: &str,
        r: Vec<KeyRecord>,
        same: SameKey,
    ) -> Result<Vec<Inserted>> {
        self.check()?;
        self.inner.insert_keys(t, r, same).await
    }
    async fn get_keys(&self, t: &str, k: &[KeyId]) -> Result<Vec<Option<KeyRecord>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.get_keys(t, k).await
    }
    async fn list_by_content(&self, t: &str, c: &str) -> Result<Vec<KeyRecord>> {
        self.check()?;
        self.inner.list_by_content(t, c).await
    }
    async fn revoke(&self, t: &str, k: KeyId, at: u64) -> Result<Option<KeyRecord>> {
        self.check()?;
        self.inner.revoke(t, k, at).await
    }
    async fn changes_since(&self, c: u64, l: usize) -> Result<Vec<Change>> {
        self.check()?;
        self.inner.changes_since(c, l).await
    }
    async fn change_cursor(&self) -> Result<u64> {
        self.check()?;
        self.inner.change_cursor().await
    }
    async fn meta_get(&self, n: &str) -> Result<Option<Vec<u8>>> {
        self.check()?;
        self.inner.meta_get(n).await
    }
    async fn meta_put_if_absent(&self, n: &str, v: Vec<u8>) -> Result<Vec<u8>> {
        self.check()?;
        self.inner.meta_put_if_absent(n, v).await
    }
    async fn ping(&self) -> Result<()> {
        self.check()?;
        self.inner.ping().await
    }
    // The embedded store counts uses in process: no I/O to fail.
    async fn record_token_use(&self, t: &str, j: &str, m: u32, e: u64) -> Result<Option<bool>> {
        self.inner.record_token_use(t, j, m, e).await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[tokio::test]
async fn store_outage_is_503_and_recovers() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let flaky = Arc::new(Flaky {
        inner: EmbeddedStore::open(&dir.path().join("data")).unwrap(),
        down: AtomicBool::new(false),
        reads: AtomicUsize::new(0),
    });
    let s = Server::start_in(dir, "", Some(flaky.clone())).await;
    let keys = s.create_keys("acme", "movie-1", &["SD", "HD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let sd = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]});
    let hd = json!({"kids": [b64kid(&kid_of(&keys, "HD"))]});

    // Keys are cached on creation: licences for them touch no store at all.
    let before = flaky.reads.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(s.clearkey(&token, sd.clone()).await.status, 200);
    }
    assert_eq!(
        flaky.reads.load(Ordering::SeqCst),
        before,
        "a cached key must not hit the store"
    );

    // Evict HD, take the store down.
    let acme = s.app().auth.tenant_index("acme").unwrap();
    s.app()
        .cache
        .invalidate(acme, &KeyId::parse(&kid_of(&keys, "HD")).unwrap());
    flaky.down.store(true, Ordering::SeqCst);
    let logs = Logs::default();
    let guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    let r = s.clearkey(&token, hd.clone()).await;
    drop(guard);
    assert_eq!((r.status, r.code().as_str()), (503, "store_unavailable"));
    assert!(
        !String::from_utf8_lossy(&r.body).contains("injected"),
        "internal detail must not leak"
    );
    // ... but the operator's log has it, once, with the request id the client saw.
    let log = logs.text();
    let id = r.header("x-request-id").unwrap();
    assert_eq!(log.matches("request failed").count(), 1, "{log}");
    assert!(
        log.contains(id) && log.contains("injected outage") && log.contains("store_unavailable"),
        "{log}"
    );
    assert!(!log.contains(&token), "tokens are never logged");
    assert_eq!(
        s.clearkey(&token, sd.clone()).await.status,
        200,
        "cached keys keep playing"
    );
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:write"],
            json!({"content_id": "m2", "tracks": ["SD"]}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (503, "store_unavailable"));
    // Every front door decides "store unavailable" the same way (503), whatever its wire
    // format: here a SOAP fault from PlayReady packaging.
    let packaging = s
        .call(
            "POST",
            &format!(
                "{}/playready/packaging/acme?token={}",
                s.internal,
                service_token("acme", &["keys:write", "keys:read"])
            ),
            &[],
            PACKAGING_REQUEST,
        )
        .await;
    let fault = String::from_utf8_lossy(&packaging.body).into_owned();
    assert_eq!(packaging.status, 503, "{fault}");
    assert!(
        fault.contains("soap:Server") && fault.contains("<code>store_unavailable</code>"),
        "{fault}"
    );
    assert_eq!(
        s.call("GET", &format!("{}/readyz", s.internal), &[], "")
            .await
            .status,
        503
    );
    assert_eq!(
        s.call("GET", &format!("{}/healthz", s.internal), &[], "")
            .await
            .status,
        200
    );
    assert!(
        s.metrics()
            .await
            .contains(r#"tessera_store_errors_total{backend="embedded",op="get_keys"} 1"#)
    );

    // Recovery.
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(s.clearkey(&token, hd).await.status, 200);
    assert_eq!(
        s.call("GET", &format!("{}/readyz", s.internal), &[], "")
            .await
            .status,
        200
    );
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:write"],
            json!({"content_id": "m2", "tracks": ["SD"]}),
        )
        .await;
    assert_eq!(r.status, 201);
}

/// Captures what the server logs during part of a test (current-thread runtime: the server's
/// tasks run on the test's thread, where the subscriber is installed).
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Two nodes over one store (as two Tessera processes over one database): a revocation made
/// on one reaches the other's cache through the change feed.
#[tokio::test]
async fn revocation_reaches_other_nodes_through_the_change_feed() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let shared: Arc<dyn KeyStore> =
        Arc::new(EmbeddedStore::open(&dir.path().join("data")).unwrap());
    let a = Server::start_in(dir.clone(), "", Some(shared.clone())).await;
    let b = Server::start_in(Arc::new(tempfile::tempdir().unwrap()), "", Some(shared)).await;
    let keys = a.create_keys("acme", "movie-1", &["SD"]).await;
    let kid = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let body = json!({"kids": [b64kid(&kid)]});
    // Both nodes have the key in their caches now.
    assert_eq!(a.clearkey(&token, body.clone()).await.status, 200);
    assert_eq!(b.clearkey(&token, body.clone()).await.status, 200);
    // Revoke on b; a learns it from the feed (change_poll_interval_ms = 50 in the test config).
    let r = b.revoke("acme", &kid).await;
    assert_eq!(r.status, 200);
    let mut refused = false;
    for _ in 0..100 {
        if a.clearkey(&token, body.clone()).await.status == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "node a kept releasing a key revoked on node b");
    assert_eq!(
        a.clearkey(&token, body).await.json()["reasons"][0]["reason"],
        "key_revoked"
    );
}

/// A node that learnt of a revocation on the change feed, then reads the key from a store
/// copy that has not caught up (a lagging replica: the PostgreSQL backend can read the feed
/// from the primary while key reads still go to the replica), refuses the key. The embedded
/// store never lags, so the feed's mark is put into the cache directly, as the poller would.
#[tokio::test]
async fn a_revocation_seen_on_the_feed_wins_over_a_store_copy_behind_it() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let kid = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let body = json!({"kids": [b64kid(&kid)]});
    assert_eq!(s.clearkey(&token, body.clone()).await.status, 200);
    let acme = s.app().auth.tenant_index("acme").unwrap();
    s.app()
        .cache
        .revoke(acme, &KeyId::parse(&kid).unwrap(), 1_000);
    // The store still says active; the mark wins, on every request.
    for _ in 0..2 {
        let r = s.clearkey(&token, body.clone()).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["reasons"][0]["reason"], "key_revoked");
    }
}

/// A PlayReady `AcquirePackagingData` request as Shaka Packager sends it.
const PACKAGING_REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquirePackagingData xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/AcquirePackagingData/v1.0"><ProtectionSystems><ProtectionSystemId>9A04F079-9840-4286-AB92-E65BE0885F95</ProtectionSystemId></ProtectionSystems><StreamProtectionRequests><StreamInformation><ProgramIdentifier>outage-program</ProgramIdentifier></StreamInformation></StreamProtectionRequests></challenge></AcquirePackagingData></soap:Body></soap:Envelope>"#;
