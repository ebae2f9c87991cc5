//! Token verification: every refusal the security model lists, every algorithm family, JWKS
//! rotation.

use crate::support::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tessera::auth::jwt::Alg;
use tessera::auth::mint::Signer;
use tessera::encoding::b64url_encode;

const MULTI_ISS: &str = "https://idp.multi.test";
const SVC_ONLY_SECRET: &str = "service-only-secret-0123456789abcdef0123456789abcdef0123456789ab";

fn vector(name: &str) -> String {
    format!("{}/tests/vectors/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn multi_tenant_toml() -> String {
    let ed_pem = std::fs::read_to_string(vector("ed25519.pub.pem")).unwrap();
    format!(
        r#"
[[tenants]]
id = "multi"
issuers = ["{MULTI_ISS}"]
audiences = ["tessera"]

[[tenants.keys]]
kid = "rsa"
algorithms = ["RS256", "PS256"]
public_key_file = "{rsa}"

[[tenants.keys]]
kid = "ec-cert"
algorithms = ["ES256"]
certificate_file = "{crt}"

[[tenants.keys]]
kid = "ed"
algorithms = ["EdDSA"]
public_key_pem = """{ed_pem}"""

[[tenants.keys]]
kid = "svc-only"
algorithms = ["HS256"]
purpose = "service"
secret = "{SVC_ONLY_SECRET}"
"#,
        rsa = vector("rsa2048.pub.pem"),
        crt = vector("p256.crt"),
    )
}

fn pkcs8_signer(kid: &str, alg: Alg, file: &str) -> Signer {
    let cfg = tessera::config::SigningKeyConfig {
        kid: Some(kid.into()),
        algorithm: tessera::auth::jwt::alg_name(alg),
        private_key_file: Some(vector(file).into()),
        ..Default::default()
    };
    Signer::from_config(&cfg, true).unwrap()
}

fn multi_claims(content: &str) -> Value {
    json!({"iss": MULTI_ISS, "aud": "tessera", "exp": now() + 600, "tessera": {"content_ids": [content]}})
}

#[tokio::test]
async fn asymmetric_algorithms_verify() {
    let s = Server::start_with(&multi_tenant_toml(), None).await;
    let keys = s.create_keys("acme", "x", &["SD"]).await; // acme's: not visible to multi
    let _ = keys;
    // Keys for the multi tenant, through its service key.
    let svc = Signer::hmac(
        Some("svc-only".into()),
        Alg::HS256,
        SVC_ONLY_SECRET.as_bytes(),
    )
    .unwrap()
    .sign(&json!({"iss": MULTI_ISS, "aud": "tessera", "exp": now() + 600, "scope": "keys:write"}))
    .unwrap();
    let r = s
        .call(
            "POST",
            &format!("{}/v1/keys", s.internal),
            &[("authorization", &format!("Bearer {svc}"))],
            json!({"content_id": "film", "tracks": ["SD"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let kid = b64kid(r.json()["keys"][0]["kid"].as_str().unwrap());
    for (signer, name) in [
        (pkcs8_signer("rsa", Alg::RS256, "rsa2048.pem"), "RS256"),
        (pkcs8_signer("rsa", Alg::PS256, "rsa2048.pem"), "PS256"),
        (
            pkcs8_signer("ec-cert", Alg::ES256, "p256.pem"),
            "ES256 (X.509 certificate)",
        ),
        (pkcs8_signer("ed", Alg::EdDSA, "ed25519.pem"), "EdDSA"),
    ] {
        let token = signer.sign(&multi_claims("film")).unwrap();
        let r = s.clearkey(&token, json!({"kids": [kid]})).await;
        assert_eq!(
            r.status,
            200,
            "{name}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // RS256 signature presented as PS256 (same key, other pinned algorithm) fails.
    let t = pkcs8_signer("rsa", Alg::RS256, "rsa2048.pem")
        .sign(&multi_claims("film"))
        .unwrap();
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[0] = b64url_encode(br#"{"alg":"PS256","kid":"rsa"}"#);
    let r = s.clearkey(&parts.join("."), json!({"kids": [kid]})).await;
    assert_eq!((r.status, r.code().as_str()), (401, "signature_invalid"));
    // A service-only key cannot sign entitlements.
    let t = Signer::hmac(
        Some("svc-only".into()),
        Alg::HS256,
        SVC_ONLY_SECRET.as_bytes(),
    )
    .unwrap()
    .sign(&multi_claims("film"))
    .unwrap();
    let r = s.clearkey(&t, json!({"kids": [kid]})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "token_purpose"));
}

#[tokio::test]
async fn algorithm_confusion_and_none_are_refused() {
    let s = Server::start_with(&multi_tenant_toml(), None).await;
    let body = json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"]});
    // HS256 "signed" with the RSA public key's PEM text as the HMAC secret.
    let pem = std::fs::read(vector("rsa2048.pub.pem")).unwrap();
    let t = Signer::hmac(Some("rsa".into()), Alg::HS256, &pem)
        .unwrap()
        .sign(&multi_claims("film"))
        .unwrap();
    let r = s.clearkey(&t, body.clone()).await;
    assert_eq!((r.status, r.code().as_str()), (401, "alg_not_allowed"));
    // alg none, with and without a signature part.
    let payload = b64url_encode(multi_claims("film").to_string().as_bytes());
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","kid":"rsa"}"#] {
        let t = format!("{}.{payload}.", b64url_encode(header.as_bytes()));
        let r = s.clearkey(&t, body.clone()).await;
        assert_eq!((r.status, r.code().as_str()), (401, "alg_none"));
    }
    let t = format!("{}.{payload}.", b64url_encode(br#"{"alg":"HS1024"}"#));
    assert_eq!(s.clearkey(&t, body).await.code(), "alg_unsupported");
}

#[tokio::test]
async fn every_claim_check_has_its_own_code() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]});
    let ent = json!({"content_ids": ["movie-1"]});
    let sign = |extra: Value| {
        let mut e = extra;
        if e.get("tessera").is_none() {
            e["tessera"] = ent.clone();
        }
        signer("acme").sign(&claims("acme", e)).unwrap()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (sign(json!({"exp": now() - 60})), 401, "token_expired"),
        (sign(json!({"exp": null})), 401, "exp_missing"),
        (
            sign(json!({"nbf": now() + 600})),
            401,
            "token_not_yet_valid",
        ),
        (
            sign(json!({"iss": "https://idp.unknown.test"})),
            401,
            "issuer_unknown",
        ),
        (sign(json!({"iss": null})), 401, "issuer_unknown"),
        (
            sign(json!({"aud": "someone-else"})),
            401,
            "audience_invalid",
        ),
        (sign(json!({"aud": null})), 401, "audience_invalid"),
        (
            Signer::hmac(Some("nope".into()), Alg::HS256, ACME_SECRET.as_bytes())
                .unwrap()
                .sign(&claims("acme", json!({"tessera": ent})))
                .unwrap(),
            401,
            "kid_unknown",
        ),
        (sign(json!({"x": "A".repeat(5000)})), 401, "token_too_large"),
        ("not.a.token".into(), 401, "token_malformed"),
        ("a.b".into(), 401, "token_malformed"),
        (
            sign(json!({"tessera": {"kids": ["zz"]}})),
            401,
            "token_malformed",
        ),
        (
            sign(json!({"tessera": {"content_ids": ["movie-1"], "policy": "no-such-policy"}})),
            401,
            "policy_invalid",
        ),
        (
            sign(json!({"tessera": {"content_ids": ["movie-1"], "policy": {"can_renew": true}}})),
            401,
            "policy_invalid",
        ),
        (
            sign(
                json!({"tessera": {"content_ids": ["movie-1"], "policy": {"allowed_tracks": ["XHD"]}}}),
            ),
            401,
            "policy_invalid",
        ),
        (
            sign(json!({"tessera": {"content_ids": ["movie-1"], "surprise": 1}})),
            401,
            "token_malformed",
        ),
        (
            sign(json!({"tessera": {"content_ids": ["movie-1"], "max_uses": 1}, "jti": null})),
            401,
            "token_malformed",
        ),
    ];
    for (token, status, code) in cases {
        let r = s.clearkey(&token, body.clone()).await;
        assert_eq!((r.status, r.code().as_str()), (status, code));
        assert_eq!(r.header("www-authenticate").is_some(), status == 401);
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains(&token) && !text.contains(ACME_SECRET),
            "problem leaks the token or secret"
        );
    }
    // The entitlement claim is read only after the signature verifies: a forged token with a
    // junk claim is refused for its signature, not for its claim.
    let junk = sign(json!({"tessera": {"surprise": 1, "policy": {"bogus": true}}}));
    // Change the signature's last character to another with zero trailing bits, so it still
    // decodes (canonically) but no longer verifies.
    let last = if junk.ends_with('A') { 'Q' } else { 'A' };
    let forged = format!("{}{last}", &junk[..junk.len() - 1]);
    assert_eq!(
        s.clearkey(&forged, body.clone()).await.code(),
        "signature_invalid"
    );
    // Tampered payload, original signature.
    let good = sign(json!({}));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64url_encode(
        claims("acme", json!({"tessera": {"content_ids": ["movie-2"]}}))
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        s.clearkey(&parts.join("."), body.clone()).await.code(),
        "signature_invalid"
    );
    // Within the leeway (5 s) an expired token still passes.
    assert_eq!(
        s.clearkey(&sign(json!({"exp": now() - 2})), body.clone())
            .await
            .status,
        200
    );
    // Denials are counted by reason.
    let m = s.metrics().await;
    assert!(
        m.contains(r#"tessera_auth_denials_total{reason="token_expired"} 1"#),
        "{m}"
    );
    assert!(m.contains(r#"tessera_auth_denials_total{reason="alg_none"} 0"#));
}

#[tokio::test]
async fn max_uses_prevents_replay() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let body = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]});
    let token = signer("acme")
        .sign(&claims(
            "acme",
            json!({"jti": "once-twice", "tessera": {"content_ids": ["movie-1"], "max_uses": 2}}),
        ))
        .unwrap();
    assert_eq!(s.clearkey(&token, body.clone()).await.status, 200);
    assert_eq!(s.clearkey(&token, body.clone()).await.status, 200);
    let r = s.clearkey(&token, body.clone()).await;
    assert_eq!((r.status, r.code().as_str()), (403, "token_replayed"));
    // The same jti in another tenant is another token.
    let other = signer("globex")
        .sign(&claims(
            "globex",
            json!({"jti": "once-twice", "tessera": {"content_ids": ["movie-1"], "max_uses": 1}}),
        ))
        .unwrap();
    assert_eq!(s.clearkey(&other, body).await.code(), "no_entitled_keys");
}

/// A JWKS endpoint on loopback whose document the test can rotate.
async fn jwks_server(doc: Arc<Mutex<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let doc = doc.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = doc.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body)),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

fn ed25519(kid: &str) -> (Signer, Value) {
    use tessera::crypto::signature::{Ed25519KeyPair, KeyPair, SystemRandom};
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": b64url_encode(pair.public_key().as_ref())});
    (
        Signer::pkcs8(Some(kid.into()), Alg::EdDSA, doc.as_ref()).unwrap(),
        jwk,
    )
}

#[tokio::test]
async fn jwks_keys_rotate_by_kid() {
    let (k1, jwk1) = ed25519("k1");
    let (k2, jwk2) = ed25519("k2");
    let doc = Arc::new(Mutex::new(json!({"keys": [jwk1]}).to_string()));
    let url = jwks_server(doc.clone()).await;
    let extra = format!(
        r#"
[[tenants]]
id = "idp"
issuers = ["https://idp.jwks.test"]
audiences = ["tessera"]
[[tenants.keys]]
algorithms = ["EdDSA", "RS256"]
jwks_url = "{url}"
jwks_refresh_secs = 3600
[[tenants.keys]]
kid = "svc"
algorithms = ["HS256"]
purpose = "service"
secret = "{SVC_ONLY_SECRET}"
"#
    );
    let s = Server::start_with(&extra, None).await;
    // The JWKS loads in the background; readiness waits for it.
    let mut ready = false;
    for _ in 0..50 {
        if s.call("GET", &format!("{}/readyz", s.internal), &[], "")
            .await
            .status
            == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "JWKS never loaded");
    let svc = Signer::hmac(Some("svc".into()), Alg::HS256, SVC_ONLY_SECRET.as_bytes())
        .unwrap()
        .sign(&json!({"iss": "https://idp.jwks.test", "aud": "tessera", "exp": now() + 600, "scope": "keys:write"}))
        .unwrap();
    let r = s
        .call(
            "POST",
            &format!("{}/v1/keys", s.internal),
            &[("authorization", &format!("Bearer {svc}"))],
            json!({"content_id": "c", "tracks": ["HD"]}).to_string(),
        )
        .await;
    let kid = b64kid(r.json()["keys"][0]["kid"].as_str().unwrap());
    let body = json!({"kids": [kid]});
    let ent = |signer: &Signer| {
        signer.sign(&json!({"iss": "https://idp.jwks.test", "aud": "tessera", "exp": now() + 600, "tessera": {"content_ids": ["c"]}})).unwrap()
    };
    assert_eq!(s.clearkey(&ent(&k1), body.clone()).await.status, 200);
    // The IdP rotates to k2: a token with the new kid triggers one refetch and verifies.
    *doc.lock().unwrap() = json!({"keys": [jwk2]}).to_string();
    let r = s.clearkey(&ent(&k2), body.clone()).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    // k1 is gone from the set now.
    assert_eq!(
        s.clearkey(&ent(&k1), body.clone()).await.code(),
        "kid_unknown"
    );
    // One scheduled fetch at start, one refetch for k2; the k1 refusal just now could not
    // refetch again within 10 s, and neither can another unknown kid.
    let (k3, _) = ed25519("k3");
    assert_eq!(s.clearkey(&ent(&k3), body).await.code(), "kid_unknown");
    let m = s.metrics().await;
    assert!(
        m.contains(r#"tessera_jwks_fetches_total{result="ok"} 2"#),
        "{m}"
    );
}

// See: review finding "one-time tokens are used up by requests that then fail".
#[tokio::test]
async fn failed_requests_do_not_spend_max_uses() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let token = signer("acme")
        .sign(&claims(
            "acme",
            json!({"jti": "single", "tessera": {"content_ids": ["movie-1"], "max_uses": 1}}),
        ))
        .unwrap();
    assert_eq!(
        s.clearkey(&token, json!({"kids": ["bad"]})).await.status,
        400
    );
    assert_eq!(
        s.clearkey(&token, json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"]}))
            .await
            .status,
        403
    );
    let good = json!({"kids": [b64kid(&kid_of(&keys, "SD"))]});
    assert_eq!(
        s.clearkey(&token, good.clone()).await.status,
        200,
        "the one use is still there"
    );
    assert_eq!(s.clearkey(&token, good).await.code(), "token_replayed");
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    // Nothing listens on port 9 of loopback: the key set never loads.
    let extra = r#"
[[tenants]]
id = "idp"
issuers = ["https://idp.down.test"]
audiences = ["tessera"]
[[tenants.keys]]
algorithms = ["EdDSA"]
jwks_url = "http://127.0.0.1:9/jwks.json"
"#;
    let s = Server::start_with(extra, None).await;
    let (signer, _) = ed25519("k1");
    let token = signer
        .sign(&json!({"iss": "https://idp.down.test", "aud": "tessera", "exp": now() + 600, "tessera": {"content_ids": ["c"]}}))
        .unwrap();
    let r = s
        .clearkey(&token, json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"]}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (503, "auth_unavailable"));
    let r = s
        .call("GET", &format!("{}/readyz", s.internal), &[], "")
        .await;
    assert_eq!(
        (r.status, r.json()["jwks"].as_str()),
        (503, Some("not_loaded"))
    );
    // Other tenants are unaffected.
    assert_eq!(
        s.clearkey(
            &player_token("acme", json!({"content_ids": ["c"]})),
            json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"]})
        )
        .await
        .code(),
        "no_entitled_keys"
    );
}
