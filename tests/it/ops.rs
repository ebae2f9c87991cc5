//! Operations: metrics, health, readiness, CORS, request ids, the audit trail, timeouts.

use crate::support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn metrics_count_licences_and_requests() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD", "HD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let r = s
        .clearkey(
            &token,
            json!({"kids": [b64kid(&kid_of(&keys, "SD")), b64kid(&kid_of(&keys, "HD"))]}),
        )
        .await;
    assert_eq!(r.status, 200);
    s.clearkey("garbage", json!({})).await;
    let m = s.metrics().await;
    for line in [
        r#"tessera_licenses_issued_total{protocol="clearkey"} 1"#,
        r#"tessera_keys_released_total{protocol="clearkey"} 2"#,
        r#"tessera_http_requests_total{endpoint="clearkey_license",status_class="2xx"} 1"#,
        r#"tessera_http_requests_total{endpoint="clearkey_license",status_class="4xx"} 1"#,
        r#"tessera_http_requests_total{endpoint="keys_create",status_class="2xx"} 1"#,
        r#"tessera_auth_denials_total{reason="token_malformed"} 1"#,
        r#"tessera_keys_created_total{source="generated"} 2"#,
        "tessera_key_cache_hits_total 2",
        r#"tessera_http_request_duration_seconds_count{endpoint="clearkey_license"} 2"#,
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    assert!(m.contains(
        "tessera_store_operation_duration_seconds_bucket{backend=\"embedded\",op=\"insert_keys\""
    ));
}

#[tokio::test]
async fn health_and_readiness_follow_the_lifecycle() {
    let s = Server::start().await;
    let r = s
        .call("GET", &format!("{}/readyz", s.internal), &[], "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ready");
    s.app().phase.send_replace(tessera::app::Phase::Draining);
    let r = s
        .call("GET", &format!("{}/readyz", s.internal), &[], "")
        .await;
    assert_eq!(
        (r.status, r.json()["phase"].as_str()),
        (503, Some("draining"))
    );
    assert_eq!(
        s.call("GET", &format!("{}/healthz", s.internal), &[], "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cors_preflight_and_errors() {
    let s = Server::start().await;
    let url = format!("{}/clearkey/license", s.public);
    let pre = [
        ("origin", "https://player.acme.test"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    let r = s.call("OPTIONS", &url, &pre, "").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://player.acme.test")
    );
    let allowed = r.header("access-control-allow-headers").unwrap();
    assert!(
        allowed
            .split(',')
            .any(|h| h.trim().eq_ignore_ascii_case("authorization")),
        "{allowed}"
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let r = s
        .call(
            "OPTIONS",
            &url,
            &[
                ("origin", "https://evil.test"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("access-control-allow-origin").is_none());
    // Errors carry CORS headers, so the player can read the refusal.
    let r = s
        .call(
            "POST",
            &url,
            &[("origin", "https://player.acme.test")],
            "{}",
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://player.acme.test")
    );
    // Per tenant: globex's token from acme's origin gets no CORS grant.
    let keys = s.create_keys("globex", "g", &["SD"]).await;
    let t = player_token("globex", json!({"content_ids": ["g"]}));
    let auth = format!("Bearer {t}");
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]}).to_string();
    let r = s
        .call(
            "POST",
            &url,
            &[
                ("origin", "https://player.acme.test"),
                ("authorization", &auth),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
    let r = s
        .call(
            "POST",
            &url,
            &[
                ("origin", "https://player.globex.test"),
                ("authorization", &auth),
            ],
            body,
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://player.globex.test")
    );
    assert!(r.header("vary").unwrap().contains("Origin"));
}

#[tokio::test]
async fn request_ids_and_audit_trail() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let key_b64 = keys[0]["key"].as_str().unwrap().to_owned();
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let auth = format!("Bearer {token}");
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]}).to_string();
    let r = s
        .call(
            "POST",
            &format!("{}/clearkey/license", s.public),
            &[("authorization", &auth), ("x-request-id", "req-123")],
            body,
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("req-123"));
    let r = s
        .call(
            "GET",
            &format!("{}/healthz", s.internal),
            &[("x-request-id", "bad id with spaces")],
            "",
        )
        .await;
    assert_eq!(
        r.header("x-request-id").unwrap().len(),
        16,
        "unsafe ids are replaced"
    );
    let path = s.dir.path().join("audit.jsonl");
    let mut text = String::new();
    for _ in 0..40 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("key.release") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let release: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("key.release")).unwrap()).unwrap();
    assert_eq!(release["tenant"], "acme");
    assert_eq!(release["protocol"], "clearkey");
    assert_eq!(release["subject"], "viewer-1");
    assert_eq!(release["request_id"], "req-123");
    assert_eq!(release["kids"], json!([kid_of(&keys, "SD")]));
    assert!(text.contains("\"key.create\""));
    assert!(
        !text.contains(&key_b64) && !text.contains(&token),
        "the audit trail never holds keys or tokens"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn metrics_token_is_required_when_configured() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let text = base_toml(dir.path()).replace(
        "drain_timeout_secs = 2",
        "drain_timeout_secs = 2\nmetrics_token = \"scrape-secret\"",
    );
    let cfg = tessera::config::Config::from_toml(&text).unwrap();
    let app = tessera::app::App::build(cfg).await.unwrap();
    let running = tessera::service::start(app).await.unwrap();
    let url = format!("http://{}/metrics", running.internal_addr);
    let c = client();
    assert_eq!(call(&c, "GET", &url, &[], "").await.status, 401);
    assert_eq!(
        call(&c, "GET", &url, &[("authorization", "Bearer wrong")], "")
            .await
            .status,
        401
    );
    assert_eq!(
        call(
            &c,
            "GET",
            &url,
            &[("authorization", "Bearer scrape-secret")],
            ""
        )
        .await
        .status,
        200
    );
    running.shutdown().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let text = base_toml(dir.path()).replace(
        "drain_timeout_secs = 2",
        "drain_timeout_secs = 2\nheader_read_timeout_ms = 300",
    );
    let app = tessera::app::App::build(tessera::config::Config::from_toml(&text).unwrap())
        .await
        .unwrap();
    let running = tessera::service::start(app).await.unwrap();
    let mut conn = tokio::net::TcpStream::connect(running.public_addr)
        .await
        .unwrap();
    conn.write_all(b"POST /clearkey/license HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "connection with unfinished headers must be closed"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn audit_trail_is_complete_after_shutdown() {
    let mut s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]});
    for _ in 0..25 {
        assert_eq!(s.clearkey(&token, body.clone()).await.status, 200);
    }
    s.running.take().unwrap().shutdown().await;
    // No waiting: shutdown writes out and syncs the queue before it returns.
    let text = std::fs::read_to_string(s.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"key.release\""))
            .count(),
        25
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"key.create\""))
            .count(),
        1
    );
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

// See: review finding "no timeout on reading request bodies".
#[tokio::test]
async fn slow_bodies_are_cut_off() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let text = base_toml(dir.path()).replace(
        "drain_timeout_secs = 2",
        "drain_timeout_secs = 2\nbody_read_timeout_ms = 300",
    );
    let app = tessera::app::App::build(tessera::config::Config::from_toml(&text).unwrap())
        .await
        .unwrap();
    let running = tessera::service::start(app).await.unwrap();
    let token = player_token("acme", json!({"content_ids": ["m"]}));
    let mut conn = tokio::net::TcpStream::connect(running.public_addr)
        .await
        .unwrap();
    let head = format!(
        "POST /clearkey/license HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n{{\"kids\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"));
    running.shutdown().await;
}

// See: review finding "an empty metrics token leaves /metrics open".
#[tokio::test]
async fn an_empty_metrics_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = base_toml(dir.path()).replace(
        "drain_timeout_secs = 2",
        "drain_timeout_secs = 2\nmetrics_token = \"\"",
    );
    let err = tessera::app::App::build(tessera::config::Config::from_toml(&text).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must not be empty"));
}

#[tokio::test]
async fn public_listener_serves_tls() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let vectors = format!("{}/tests/vectors/tls", env!("CARGO_MANIFEST_DIR"));
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    // Git keeps no file modes; Tessera refuses key files others can read.
    let key = dir.path().join("server.key");
    std::fs::copy(format!("{vectors}/server.key"), &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tls = format!(
        "drain_timeout_secs = 2\npublic_tls = {{ cert_file = \"{vectors}/server.crt\", key_file = \"{}\" }}",
        key.display()
    );
    let text = base_toml(dir.path()).replace("drain_timeout_secs = 2", &tls);
    let app = tessera::app::App::build(tessera::config::Config::from_toml(&text).unwrap())
        .await
        .unwrap();
    let running = tessera::service::start(app).await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(format!("{vectors}/ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls_config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config)
        .https_only()
        .enable_http1()
        .build();
    let tls_client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);

    // Keys through the (plaintext) internal listener, the licence over TLS.
    let plain = client();
    let svc = format!(
        "Bearer {}",
        service_token("acme", &["keys:read", "keys:write"])
    );
    let r = call(
        &plain,
        "POST",
        &format!("http://{}/v1/keys", running.internal_addr),
        &[("authorization", &svc)],
        json!({"content_id": "m", "tracks": ["SD"]}).to_string(),
    )
    .await;
    let keys = r.json()["keys"].as_array().unwrap().clone();
    let token = format!(
        "Bearer {}",
        player_token("acme", json!({"content_ids": ["m"]}))
    );
    let port = running.public_addr.port();
    let req = http::Request::post(format!("https://localhost:{port}/clearkey/license"))
        .header("authorization", &token)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json!({"kids": [b64kid(&kid_of(&keys, "SD"))]}).to_string(),
        )))
        .unwrap();
    let resp = tls_client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    // Plain HTTP to the TLS listener gets no licence.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.request(
            http::Request::post(format!("http://127.0.0.1:{port}/clearkey/license"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert!(r.is_err() || r.unwrap().status() != 200);
    running.shutdown().await;
}

#[tokio::test]
async fn in_flight_requests_finish_during_drain() {
    let mut s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]}).to_string();
    let (first, rest) = body.split_at(5);
    let running = s.running.take().unwrap();
    let public = running.public_addr;
    let mut conn = tokio::net::TcpStream::connect(public).await.unwrap();
    let head = format!(
        "POST /clearkey/license HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let app = running.app.clone();
    let drain = tokio::spawn(running.shutdown());
    // Polled, not slept on: the shutdown task may start late on a loaded machine.
    for _ in 0..250 {
        if *app.phase.borrow() == tessera::app::Phase::Draining {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(*app.phase.borrow(), tessera::app::Phase::Draining);
    assert!(
        !drain.is_finished(),
        "shutdown waits for the in-flight request"
    );
    assert!(
        tokio::net::TcpStream::connect(public).await.is_err(),
        "no new connections while draining"
    );
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_wait() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let text = base_toml(dir.path()).replace(
        "drain_timeout_secs = 2",
        "drain_timeout_secs = 2\nmax_connections = 1",
    );
    let app = tessera::app::App::build(tessera::config::Config::from_toml(&text).unwrap())
        .await
        .unwrap();
    let running = tessera::service::start(app).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(running.internal_addr)
        .await
        .unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 1024];
    assert!(first.read(&mut buf).await.unwrap() > 0);
    // `first` stays open (keep-alive) and holds the only slot: the second waits in the backlog.
    let mut second = tokio::net::TcpStream::connect(running.internal_addr)
        .await
        .unwrap();
    second.write_all(request).await.unwrap();
    let waited =
        tokio::time::timeout(std::time::Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(waited.is_err(), "no answer while the limit is reached");
    drop(first);
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), second.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    running.shutdown().await;
}
