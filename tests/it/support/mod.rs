//! Test support: a real Tessera (the library's `service::start`, the same code `tessera serve`
//! runs) on ephemeral loopback ports, an HTTP client, and token helpers. The third-party
//! tools the tests drive have their own modules: `pg` (throwaway PostgreSQL clusters),
//! `interop` (the Python venvs of the interop clients) and `browser` (Chromium and the npm
//! packages of the browser test).

pub mod browser;
pub mod interop;
pub mod pg;

/// How to get a missing third-party piece: the tests install nothing themselves.
pub const RUN_SETUP: &str = "run tests/setup.sh (the README's test command does)";

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tessera::app::App;
use tessera::auth::jwt::Alg;
use tessera::auth::mint::Signer;
use tessera::config::Config;
use tessera::service::Running;
use tessera::store::KeyStore;

pub const ACME_SECRET: &str = "acme-test-secret-0123456789abcdef0123456789abcdef0123456789abcdef";
pub const GLOBEX_SECRET: &str = "globex-test-secret-0123456789abcdef0123456789abcdef0123456789abcd";
pub const ACME_ISS: &str = "https://idp.acme.test";
pub const GLOBEX_ISS: &str = "https://idp.globex.test";
pub const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The base configuration: two HS256 tenants with policies and CORS origins.
pub fn base_toml(dir: &Path) -> String {
    format!(
        r#"
[server]
public_addr = "127.0.0.1:0"
internal_addr = "127.0.0.1:0"
drain_timeout_secs = 2

[storage]
data_dir = "{data}"
master_key = "{MASTER}"
change_poll_interval_ms = 50

[audit]
path = "{audit}"

[limits]
max_kids_per_request = 16
max_token_bytes = 4096

[[tenants]]
id = "acme"
issuers = ["{ACME_ISS}"]
audiences = ["tessera"]
leeway_secs = 5
cors_allowed_origins = ["https://player.acme.test"]

[[tenants.keys]]
kid = "acme-hs"
algorithms = ["HS256"]
secret = "{ACME_SECRET}"

[tenants.policies.sd-only]
allowed_tracks = ["SD", "AUDIO"]

[tenants.policies.offline]
can_persist = true

[tenants.policies.hd-hardware]
track_security_level = {{ HD = "HW_SECURE_ALL" }}

[[tenants]]
id = "globex"
issuers = ["{GLOBEX_ISS}"]
audiences = ["tessera"]
cors_allowed_origins = ["https://player.globex.test"]

[[tenants.keys]]
kid = "globex-hs"
algorithms = ["HS256"]
secret = "{GLOBEX_SECRET}"
"#,
        data = dir.join("data").display(),
        audit = dir.join("audit.jsonl").display(),
    )
}

pub struct Server {
    pub running: Option<Running>,
    pub public: String,
    pub internal: String,
    pub dir: Arc<tempfile::TempDir>,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The problem `code` of an error response.
    pub fn code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "status {}",
            self.status
        );
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

pub async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Resp {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with("", None).await
    }

    /// Starts with extra TOML appended to the base config, over an optional custom store.
    pub async fn start_with(extra: &str, store: Option<Arc<dyn KeyStore>>) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, extra, store).await
    }

    pub async fn start_in(
        dir: Arc<tempfile::TempDir>,
        extra: &str,
        store: Option<Arc<dyn KeyStore>>,
    ) -> Self {
        let text = format!("{}\n{extra}", base_toml(dir.path()));
        Self::start_toml(dir, &text, store).await
    }

    /// Starts with a whole configuration text.
    pub async fn start_toml(
        dir: Arc<tempfile::TempDir>,
        text: &str,
        store: Option<Arc<dyn KeyStore>>,
    ) -> Self {
        let cfg = Config::from_toml(text).unwrap();
        cfg.validate().unwrap();
        let app = match store {
            Some(s) => App::build_with_store(cfg, s).await.unwrap(),
            None => App::build(cfg).await.unwrap(),
        };
        let running = tessera::service::start(app).await.unwrap();
        Self {
            public: format!("http://{}", running.public_addr),
            internal: format!("http://{}", running.internal_addr),
            running: Some(running),
            dir,
            client: client(),
        }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.running.as_ref().unwrap().app
    }

    pub async fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        call(&self.client, method, url, headers, body).await
    }

    /// `POST /clearkey/license` with a bearer token.
    pub async fn clearkey(&self, token: &str, body: Value) -> Resp {
        let auth = format!("Bearer {token}");
        self.call(
            "POST",
            &format!("{}/clearkey/license", self.public),
            &[("authorization", &auth)],
            body.to_string(),
        )
        .await
    }

    /// Creates keys through the key API as `tenant`; returns the key views.
    pub async fn create_keys(&self, tenant: &str, content_id: &str, tracks: &[&str]) -> Vec<Value> {
        let resp = self
            .keyapi(
                tenant,
                "POST",
                "/v1/keys",
                &["keys:read", "keys:write"],
                json!({"content_id": content_id, "tracks": tracks}),
            )
            .await;
        assert!(
            resp.status == 201 || resp.status == 200,
            "create failed: {} {:?}",
            resp.status,
            resp.body
        );
        resp.json()["keys"].as_array().unwrap().clone()
    }

    pub async fn keyapi(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        scopes: &[&str],
        body: Value,
    ) -> Resp {
        let token = service_token(tenant, scopes);
        let auth = format!("Bearer {token}");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.call(
            method,
            &format!("{}{path}", self.internal),
            &[("authorization", &auth)],
            body,
        )
        .await
    }

    /// `POST /v1/keys/{kid}/revoke` as `tenant` with `keys:write`.
    pub async fn revoke(&self, tenant: &str, kid: &str) -> Resp {
        self.keyapi(
            tenant,
            "POST",
            &format!("/v1/keys/{kid}/revoke"),
            &["keys:write"],
            serde_json::Value::Null,
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let r = self
            .call("GET", &format!("{}/metrics", self.internal), &[], "")
            .await;
        assert_eq!(r.status, 200);
        String::from_utf8(r.body.to_vec()).unwrap()
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn signer(tenant: &str) -> Signer {
    match tenant {
        "acme" => Signer::hmac(Some("acme-hs".into()), Alg::HS256, ACME_SECRET.as_bytes()).unwrap(),
        "globex" => Signer::hmac(
            Some("globex-hs".into()),
            Alg::HS256,
            GLOBEX_SECRET.as_bytes(),
        )
        .unwrap(),
        other => panic!("no signer for {other}"),
    }
}

pub fn issuer(tenant: &str) -> &'static str {
    if tenant == "acme" {
        ACME_ISS
    } else {
        GLOBEX_ISS
    }
}

/// Standard valid claims for `tenant` merged with `extra`.
pub fn claims(tenant: &str, extra: Value) -> Value {
    let mut c = json!({"iss": issuer(tenant), "aud": "tessera", "sub": "viewer-1", "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// An entitlement token of `tenant` with this `tessera` claim.
pub fn player_token(tenant: &str, tessera: Value) -> String {
    signer(tenant)
        .sign(&claims(tenant, json!({"tessera": tessera})))
        .unwrap()
}

pub fn service_token(tenant: &str, scopes: &[&str]) -> String {
    signer(tenant)
        .sign(&claims(
            tenant,
            json!({"scope": scopes.join(" "), "sub": "packager"}),
        ))
        .unwrap()
}

/// A KID (canonical UUID) as a ClearKey base64url KID.
pub fn b64kid(kid: &str) -> String {
    let k = tessera::keyring::KeyId::parse(kid).unwrap();
    tessera::encoding::b64url_encode(k.as_bytes())
}

pub fn kid_of(keys: &[Value], track: &str) -> String {
    keys.iter().find(|k| k["track"] == track).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn key_of(keys: &[Value], track: &str) -> Vec<u8> {
    tessera::encoding::b64_decode(
        keys.iter().find(|k| k["track"] == track).unwrap()["key"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// Sends only the head of a POST declaring a `Content-Length` of `len` and returns the
/// response status: a body cap must refuse on the header alone, without reading the body
/// (sending a real oversized body races the server closing the connection).
pub async fn status_for_declared_length(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    len: usize,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}
