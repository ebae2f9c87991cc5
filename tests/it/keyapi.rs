//! The REST key API on the internal listener.

use crate::support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn create_get_list_revoke() {
    let s = Server::start().await;
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            json!({"content_id": "movie-1", "tracks": ["SD", "HD", "AUDIO"]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 3);
    for k in &keys {
        let kid = k["kid"].as_str().unwrap();
        // Canonical form: lowercase hyphenated UUID.
        assert_eq!(kid.len(), 36);
        assert_eq!(kid, kid.to_lowercase());
        assert_eq!(
            tessera::encoding::b64_decode(k["key"].as_str().unwrap())
                .unwrap()
                .len(),
            16
        );
        assert_eq!(
            (k["content_id"].as_str(), k["state"].as_str()),
            (Some("movie-1"), Some("active"))
        );
    }
    let sd = kid_of(&keys, "SD");
    // Either KID spelling finds the key; the answer is canonical.
    for spelling in [sd.clone(), sd.replace('-', ""), sd.to_uppercase()] {
        let r = s
            .keyapi(
                "acme",
                "GET",
                &format!("/v1/keys/{spelling}"),
                &["keys:read"],
                json!(null),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["keys"][0]["kid"], sd.as_str());
        assert_eq!(r.json()["keys"][0]["key"], keys[0]["key"]);
    }
    let r = s
        .keyapi(
            "acme",
            "GET",
            "/v1/keys?content_id=movie-1",
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!(r.json()["keys"].as_array().unwrap().len(), 3);
    let r = s
        .keyapi(
            "acme",
            "GET",
            "/v1/keys?content_id=nothing",
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!(r.json()["keys"], json!([]));
    // Idempotent: the same request returns the same keys, 200 not 201.
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            json!({"content_id": "movie-1", "tracks": ["HD", "SD"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(kid_of(r.json()["keys"].as_array().unwrap(), "SD"), sd);
    assert_eq!(r.json()["keys"][1]["key"], keys[0]["key"]);
    // Revoke: state change, idempotent, key material not echoed.
    let r = s.revoke("acme", &sd).await;
    assert_eq!(r.status, 200);
    let v = &r.json()["keys"][0];
    assert_eq!(v["state"], "revoked");
    assert!(v["revoked_at"].as_u64().is_some());
    assert!(v.get("key").is_none());
    let r = s.revoke("acme", &sd).await;
    assert_eq!(r.status, 200);
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys/00000000000000000000000000000000/revoke",
            &["keys:read", "keys:write"],
            json!(null),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "key_not_found"));
}

#[tokio::test]
async fn key_periods_for_rotation() {
    let s = Server::start().await;
    let body =
        json!({"content_id": "live-1", "tracks": ["SD", "HD"], "period": 10, "period_count": 3});
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body,
        )
        .await;
    assert_eq!(r.status, 201);
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 6);
    let periods: Vec<u64> = keys.iter().map(|k| k["period"].as_u64().unwrap()).collect();
    assert_eq!(periods, vec![10, 10, 11, 11, 12, 12]);
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.dedup();
    assert_eq!(kids.len(), 6);
}

#[tokio::test]
async fn import_is_idempotent_and_detects_conflicts() {
    let s = Server::start().await;
    let kid = "0123456789abcdef0123456789abcdef";
    let body = |key: &str, content: &str| json!({"content_id": content, "keys": [{"kid": kid, "key": key, "track": "HD"}]});
    let key = "AAECAwQFBgcICQoLDA0ODw==";
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body(key, "movie-9"),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json()["keys"][0]["kid"],
        "01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(r.json()["keys"][0]["key"], key);
    assert_eq!(
        s.keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body(key, "movie-9")
        )
        .await
        .status,
        200
    );
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body("/////////////////////w==", "movie-9"),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "key_conflict"));
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body(key, "movie-10"),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "key_conflict"));
    // The imported key is what a player gets.
    let token = player_token("acme", json!({"kids": [kid]}));
    let r = s.clearkey(&token, json!({"kids": [b64kid(kid)]})).await;
    assert_eq!(r.json()["keys"][0]["k"], "AAECAwQFBgcICQoLDA0ODw");
}

#[tokio::test]
async fn scopes_are_enforced() {
    let s = Server::start().await;
    let create = json!({"content_id": "m", "tracks": ["SD"]});
    let r = s
        .keyapi("acme", "POST", "/v1/keys", &["keys:read"], create.clone())
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "insufficient_scope"));
    assert_eq!(
        s.keyapi("acme", "POST", "/v1/keys", &["admin"], create.clone())
            .await
            .status,
        201
    );
    let r = s
        .keyapi(
            "acme",
            "GET",
            "/v1/keys?content_id=m",
            &["keys:write"],
            json!(null),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "insufficient_scope"));
    // A player's entitlement token is no service token.
    let player = player_token("acme", json!({"content_ids": ["m"]}));
    let r = s
        .call(
            "GET",
            &format!("{}/v1/keys?content_id=m", s.internal),
            &[("authorization", &format!("Bearer {player}"))],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "insufficient_scope"));
    let r = s
        .call(
            "POST",
            &format!("{}/v1/keys", s.internal),
            &[],
            create.to_string(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_missing"));
    // ... and a service token is no entitlement.
    let r = s
        .clearkey(
            &service_token("acme", &["admin"]),
            json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"]}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "entitlement_missing"));
}

#[tokio::test]
async fn bad_requests_are_400_problems() {
    let s = Server::start().await;
    for body in [
        json!({"content_id": "m", "tracks": ["XHD"]}),
        json!({"content_id": "m", "tracks": ["SD"], "surprise": true}),
        json!({"content_id": "", "tracks": ["SD"]}),
        json!({"content_id": "m"}),
        json!({"content_id": "m", "keys": [{"kid": "nope", "key": "AAECAwQFBgcICQoLDA0ODw=="}]}),
        json!({"content_id": "m", "keys": [{"kid": "0123456789abcdef0123456789abcdef", "key": "AAECAw=="}]}),
    ] {
        let r = s
            .keyapi("acme", "POST", "/v1/keys", &["keys:write"], body.clone())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "request_invalid"),
            "{body}"
        );
    }
    let r = s
        .keyapi("acme", "GET", "/v1/keys/zzz", &["keys:read"], json!(null))
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .keyapi("acme", "GET", "/v1/keys", &["keys:read"], json!(null))
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .keyapi(
            "acme",
            "GET",
            "/v1/keys/00000000-0000-0000-0000-000000000001",
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "key_not_found"));
}

#[tokio::test]
async fn listeners_are_separate() {
    let s = Server::start().await;
    let svc = format!("Bearer {}", service_token("acme", &["admin"]));
    let r = s
        .call(
            "GET",
            &format!("{}/v1/keys?content_id=m", s.public),
            &[("authorization", &svc)],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    assert_eq!(
        s.call("GET", &format!("{}/metrics", s.public), &[], "")
            .await
            .status,
        404
    );
    assert_eq!(
        s.call(
            "POST",
            &format!("{}/clearkey/license", s.internal),
            &[],
            "{}"
        )
        .await
        .status,
        404
    );
    let r = s
        .call("GET", &format!("{}/clearkey/license", s.public), &[], "")
        .await;
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    assert_eq!(r.header("allow"), Some("POST"));
}

// See: review finding "a keys:write token can read existing key material".
#[tokio::test]
async fn key_material_needs_keys_read() {
    let s = Server::start().await;
    let body = json!({"content_id": "m", "tracks": ["SD"]});
    let r = s
        .keyapi("acme", "POST", "/v1/keys", &["keys:write"], body.clone())
        .await;
    assert_eq!(r.status, 201);
    assert!(
        r.json()["keys"][0].get("key").is_none(),
        "write-only tokens get no key material"
    );
    assert!(r.json()["keys"][0]["kid"].is_string());
    let r = s
        .keyapi("acme", "POST", "/v1/keys", &["keys:write"], body.clone())
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["keys"][0].get("key").is_none(),
        "nor by replaying a create"
    );
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body,
        )
        .await;
    assert!(r.json()["keys"][0]["key"].is_string());
}

// See: review finding "a revoked key cannot be replaced, and create returns it again".
#[tokio::test]
async fn a_revoked_key_is_replaced_never_reissued() {
    let s = Server::start().await;
    let body = json!({"content_id": "m", "tracks": ["HD"]});
    let first = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body.clone(),
        )
        .await
        .json();
    let old_kid = first["keys"][0]["kid"].as_str().unwrap().to_owned();
    let r = s.revoke("acme", &old_kid).await;
    assert_eq!(r.status, 200);
    // The revoked key's material is gone from every interface.
    let r = s
        .keyapi(
            "acme",
            "GET",
            &format!("/v1/keys/{old_kid}"),
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["keys"][0]["state"].as_str()),
        (200, Some("revoked"))
    );
    assert!(r.json()["keys"][0].get("key").is_none());
    // Asking again for (m, HD) creates a replacement with a new KID and new key.
    let r = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    let new = &r.json()["keys"][0];
    assert_ne!(new["kid"].as_str().unwrap(), old_kid);
    assert_ne!(new["key"], first["keys"][0]["key"]);
    assert_eq!(new["state"], "active");
    // ... and the replacement is itself idempotent.
    let again = s
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            body,
        )
        .await;
    assert_eq!(
        (again.status, &again.json()["keys"][0]["kid"]),
        (200, &new["kid"])
    );
    let listed = s
        .keyapi(
            "acme",
            "GET",
            "/v1/keys?content_id=m",
            &["keys:read"],
            json!(null),
        )
        .await
        .json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
}

// See: review finding "a key-import conflict returns 409 after part of the batch is saved".
#[tokio::test]
async fn a_conflicting_import_writes_nothing() {
    let s = Server::start().await;
    let existing = "0123456789abcdef0123456789abcdef";
    let fresh = "fedcba9876543210fedcba9876543210";
    let one =
        json!({"content_id": "m", "keys": [{"kid": existing, "key": "AAECAwQFBgcICQoLDA0ODw=="}]});
    assert_eq!(
        s.keyapi("acme", "POST", "/v1/keys", &["keys:write"], one)
            .await
            .status,
        201
    );
    let batch = json!({"content_id": "m", "keys": [
        {"kid": fresh, "key": "AAECAwQFBgcICQoLDA0ODw=="},
        {"kid": existing, "key": "/////////////////////w=="}
    ]});
    let r = s
        .keyapi("acme", "POST", "/v1/keys", &["keys:write"], batch)
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "key_conflict"));
    let r = s
        .keyapi(
            "acme",
            "GET",
            &format!("/v1/keys/{fresh}"),
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!(r.status, 404, "nothing of the refused batch was stored");
}

/// A packager that fetches keys through the REST API gets the signalling it writes into its
/// output, consistent with the key: Widevine and common PSSH naming the KID, a PlayReady
/// Object whose checksum matches the key.
#[tokio::test]
async fn keys_come_with_their_signalling() {
    use tessera::keyring::KeyId;
    use tessera::protocol::playready::header::{checksum, guid_le};
    let s = Server::start().await;
    let keys = s.create_keys("acme", "signalled-1", &["HD"]).await;
    let kid = KeyId::parse(keys[0]["kid"].as_str().unwrap()).unwrap();
    let key: [u8; 16] = key_of(&keys, "HD").try_into().unwrap();
    let sig = &keys[0]["signalling"];
    assert_eq!(sig["scheme"], "cenc");
    let b64 = |v: &Value| tessera::encoding::b64_decode(v.as_str().unwrap()).unwrap();
    let wv = b64(&sig["widevine_pssh"]);
    assert_eq!(&wv[4..8], b"pssh");
    assert!(wv.windows(16).any(|w| w == kid.as_bytes()));
    let common = b64(&sig["common_pssh"]);
    assert_eq!((common[8], &common[32..48]), (1, &kid.as_bytes()[..]));
    let pro = b64(&sig["playready_pro"]);
    let header = String::from_utf16(
        &pro[10..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let enc = tessera::encoding::b64_encode;
    assert!(
        header.contains(&format!(r#"VALUE="{}""#, enc(&guid_le(&kid)))),
        "{header}"
    );
    assert!(
        header.contains(&format!(r#"CHECKSUM="{}""#, enc(&checksum(&kid, &key)))),
        "{header}"
    );
    assert!(b64(&sig["playready_pssh"]).ends_with(&pro));
    assert_eq!(sig["fairplay_uri"], format!("skd://{kid}"));
    assert!(
        sig["fairplay_hls_key"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid}""#
            ))
    );
    // cbcs: AESCBC, no checksum; a bad scheme is a 400.
    let r = s
        .keyapi(
            "acme",
            "GET",
            &format!("/v1/keys/{kid}?scheme=cbcs"),
            &["keys:read"],
            Value::Null,
        )
        .await;
    let sig = &r.json()["keys"][0]["signalling"];
    assert_eq!(sig["scheme"], "cbcs");
    let pro = b64(&sig["playready_pro"]);
    let utf16: Vec<u16> = pro[10..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let header = String::from_utf16(&utf16).unwrap();
    assert!(
        header.contains(r#"ALGID="AESCBC""#) && !header.contains("CHECKSUM"),
        "{header}"
    );
    let r = s
        .keyapi(
            "acme",
            "GET",
            &format!("/v1/keys/{kid}?scheme=rot13"),
            &["keys:read"],
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 400);
    // Revoked keys carry no signalling: nothing should be packaged with them.
    assert_eq!(s.revoke("acme", &kid.to_string()).await.status, 200);
    let r = s
        .keyapi(
            "acme",
            "GET",
            &format!("/v1/keys/{kid}"),
            &["keys:read"],
            Value::Null,
        )
        .await;
    assert!(r.json()["keys"][0].get("signalling").is_none());
}
