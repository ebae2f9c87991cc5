//! `POST /clearkey/license` (W3C EME §9.1).

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn licence_holds_exactly_the_requested_entitled_keys() {
    let s = Server::start().await;
    let keys = s
        .create_keys("acme", "movie-1", &["SD", "HD", "AUDIO"])
        .await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let kids: Vec<String> = ["SD", "HD", "AUDIO"]
        .iter()
        .map(|t| b64kid(&kid_of(&keys, t)))
        .collect();
    let r = s
        .clearkey(&token, json!({"kids": kids, "type": "temporary"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["type"], "temporary");
    let got = body["keys"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (i, t) in ["SD", "HD", "AUDIO"].iter().enumerate() {
        assert_eq!(got[i]["kty"], "oct");
        assert_eq!(got[i]["kid"], kids[i].as_str());
        let k = got[i]["k"].as_str().unwrap();
        assert!(
            !k.contains('=') && !k.contains('+') && !k.contains('/'),
            "base64url without padding: {k}"
        );
        assert_eq!(
            tessera::encoding::b64url_decode(k).unwrap(),
            key_of(&keys, t)
        );
    }
}

#[tokio::test]
async fn partial_entitlement_leaves_other_keys_out() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD", "HD"]).await;
    // Entitled to the SD key only, by KID; the player lists both (as a common PSSH does).
    let token = player_token("acme", json!({"kids": [kid_of(&keys, "SD")]}));
    let r = s
        .clearkey(
            &token,
            json!({"kids": [b64kid(&kid_of(&keys, "HD")), b64kid(&kid_of(&keys, "SD"))]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let got = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kid"], b64kid(&kid_of(&keys, "SD")).as_str());
}

#[tokio::test]
async fn nothing_entitled_is_403_naming_the_kids() {
    let s = Server::start().await;
    let movie2 = s.create_keys("acme", "movie-2", &["SD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let unknown = "AAECAwQFBgcICQoLDA0ODw";
    let other = b64kid(&kid_of(&movie2, "SD"));
    let r = s.clearkey(&token, json!({"kids": [other, unknown]})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "no_entitled_keys");
    let body = r.json();
    assert_eq!(body["kids"], json!([other, unknown]));
    assert_eq!(body["reasons"][0]["reason"], "not_entitled");
    assert_eq!(body["reasons"][1]["reason"], "key_not_found");
    assert!(!String::from_utf8_lossy(&r.body).contains(movie2[0]["key"].as_str().unwrap()));
}

#[tokio::test]
async fn kids_must_be_strict_base64url() {
    let s = Server::start().await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    for bad in [
        json!({"kids": ["AAECAwQFBgcICQoLDA0ODw=="]}),
        json!({"kids": ["AAECAwQFBgcICQoLDA0OD+"]}),
        json!({"kids": ["AAEC"]}),
        json!({"kids": []}),
        json!({"kids": ["AAECAwQFBgcICQoLDA0ODw"], "type": "forever"}),
        json!({"keys": 1}),
    ] {
        let r = s.clearkey(&token, bad.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "request_invalid"),
            "{bad}"
        );
    }
    let many: Vec<String> = (0..17u8)
        .map(|i| tessera::encoding::b64url_encode(&[i; 16]))
        .collect();
    assert_eq!(s.clearkey(&token, json!({"kids": many})).await.status, 400);
}

#[tokio::test]
async fn persistent_licences_follow_the_policy() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD"]).await;
    let kid = b64kid(&kid_of(&keys, "SD"));
    let req = json!({"kids": [kid], "type": "persistent-license"});
    let r = s
        .clearkey(
            &player_token("acme", json!({"content_ids": ["movie-1"]})),
            req.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "persistence_not_allowed")
    );
    let r = s
        .clearkey(
            &player_token(
                "acme",
                json!({"content_ids": ["movie-1"], "policy": "offline"}),
            ),
            req,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "persistent-license");
}

#[tokio::test]
async fn policy_tracks_and_security_levels_filter_keys() {
    let s = Server::start().await;
    let keys = s
        .create_keys("acme", "movie-1", &["SD", "HD", "AUDIO"])
        .await;
    let all: Vec<String> = ["SD", "HD", "AUDIO"]
        .iter()
        .map(|t| b64kid(&kid_of(&keys, t)))
        .collect();
    let released = |r: &Resp| -> Vec<String> {
        r.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    // Named policy: SD and AUDIO only.
    let r = s
        .clearkey(
            &player_token(
                "acme",
                json!({"content_ids": ["movie-1"], "policy": "sd-only"}),
            ),
            json!({"kids": all}),
        )
        .await;
    assert_eq!(released(&r), vec![all[0].clone(), all[2].clone()]);
    // HD needs HW_SECURE_ALL; ClearKey is a software client, so HD stays out.
    let r = s
        .clearkey(
            &player_token(
                "acme",
                json!({"content_ids": ["movie-1"], "policy": "hd-hardware"}),
            ),
            json!({"kids": all}),
        )
        .await;
    assert_eq!(released(&r), vec![all[0].clone(), all[2].clone()]);
    let r = s
        .clearkey(
            &player_token(
                "acme",
                json!({"content_ids": ["movie-1"], "policy": "hd-hardware"}),
            ),
            json!({"kids": [all[1]]}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reasons"][0]["reason"], "security_level_too_low");
    // Inline policy.
    let inline = json!({"content_ids": ["movie-1"], "policy": {"allowed_tracks": ["AUDIO"]}});
    let r = s
        .clearkey(&player_token("acme", inline), json!({"kids": all}))
        .await;
    assert_eq!(released(&r), vec![all[2].clone()]);
    // A policy that suspends playback releases nothing.
    let r = s
        .clearkey(
            &player_token(
                "acme",
                json!({"content_ids": ["movie-1"], "policy": {"can_play": false}}),
            ),
            json!({"kids": all}),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn revocation_takes_effect_immediately() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "movie-1", &["SD", "HD"]).await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let both = json!({"kids": [b64kid(&kid_of(&keys, "SD")), b64kid(&kid_of(&keys, "HD"))]});
    assert_eq!(
        s.clearkey(&token, both.clone()).await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = s
        .keyapi(
            "acme",
            "POST",
            &format!("/v1/keys/{}/revoke", kid_of(&keys, "HD")),
            &["keys:write"],
            json!(null),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s.clearkey(&token, both).await;
    assert_eq!(
        r.json()["keys"].as_array().unwrap().len(),
        1,
        "revoked HD key must be left out"
    );
    let r = s
        .clearkey(&token, json!({"kids": [b64kid(&kid_of(&keys, "HD"))]}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reasons"][0]["reason"], "key_revoked");
}

#[tokio::test]
async fn oversized_body_is_refused_before_parsing() {
    let s = Server::start().await;
    let token = player_token("acme", json!({"content_ids": ["movie-1"]}));
    let auth = format!("Bearer {token}");
    let big = format!("{{\"kids\":[\"{}\"]}}", "A".repeat(70 * 1024));
    let r = s
        .call(
            "POST",
            &format!("{}/clearkey/license", s.public),
            &[("authorization", &auth)],
            big,
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (413, "body_too_large"));
}

#[tokio::test]
async fn cross_tenant_keys_are_invisible() {
    let s = Server::start().await;
    let acme = s.create_keys("acme", "movie-1", &["SD"]).await;
    let kid = kid_of(&acme, "SD");
    // globex names acme's KID and acme's content id: neither unlocks anything.
    for ent in [json!({"kids": [kid]}), json!({"content_ids": ["movie-1"]})] {
        let r = s
            .clearkey(
                &player_token("globex", ent),
                json!({"kids": [b64kid(&kid)]}),
            )
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["reasons"][0]["reason"], "key_not_found");
    }
    // A globex-signed token claiming acme's issuer does not verify against acme's keys.
    let forged = signer("globex")
        .sign(&claims("acme", json!({"tessera": {"kids": [kid]}})))
        .unwrap();
    let r = s.clearkey(&forged, json!({"kids": [b64kid(&kid)]})).await;
    assert_eq!((r.status, r.code().as_str()), (401, "kid_unknown"));
    let forged = tessera::auth::mint::Signer::hmac(
        Some("acme-hs".into()),
        tessera::auth::jwt::Alg::HS256,
        GLOBEX_SECRET.as_bytes(),
    )
    .unwrap()
    .sign(&claims("acme", json!({"tessera": {"kids": [kid]}})))
    .unwrap();
    let r = s.clearkey(&forged, json!({"kids": [b64kid(&kid)]})).await;
    assert_eq!((r.status, r.code().as_str()), (401, "signature_invalid"));
    // And the key API of globex cannot read it.
    let r = s
        .keyapi(
            "globex",
            "GET",
            &format!("/v1/keys/{kid}"),
            &["keys:read"],
            json!(null),
        )
        .await;
    assert_eq!(r.status, 404);
    // The same content id in globex gets its own, different keys.
    let globex = s.create_keys("globex", "movie-1", &["SD"]).await;
    assert_ne!(kid_of(&globex, "SD"), kid);
}
