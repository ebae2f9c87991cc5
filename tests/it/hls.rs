//! `GET /hls/key/{kid}` (HLS AES-128 / SAMPLE-AES key delivery).

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn key_by_header_or_query_token() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "show-1", &["HD"]).await;
    let kid = kid_of(&keys, "HD");
    let token = player_token("acme", json!({"content_ids": ["show-1"]}));
    let url = format!("{}/hls/key/{kid}", s.public);
    let r = s
        .call(
            "GET",
            &url,
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body.to_vec(), key_of(&keys, "HD"));
    // Players that cannot set headers put the token in the query; the 32-hex KID form works too.
    let hex = kid.replace('-', "").to_uppercase();
    let r = s
        .call(
            "GET",
            &format!("{}/hls/key/{hex}?token={token}", s.public),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 16);
}

#[tokio::test]
async fn refusals_are_problem_json() {
    let s = Server::start().await;
    let keys = s.create_keys("acme", "show-1", &["HD", "SD"]).await;
    let hd = kid_of(&keys, "HD");
    let url = format!("{}/hls/key/{hd}", s.public);
    let r = s.call("GET", &url, &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_missing"));
    let other = player_token("acme", json!({"content_ids": ["show-2"]}));
    let r = s
        .call("GET", &format!("{url}?token={other}"), &[], "")
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "no_entitled_keys"));
    let ok = player_token("acme", json!({"content_ids": ["show-1"]}));
    let r = s
        .call(
            "GET",
            &format!(
                "{}/hls/key/00000000-0000-0000-0000-000000000000?token={ok}",
                s.public
            ),
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "key_not_found"));
    let r = s
        .call(
            "GET",
            &format!("{}/hls/key/not-a-kid?token={ok}", s.public),
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "request_invalid"));
    s.revoke("acme", &hd).await;
    let r = s.call("GET", &format!("{url}?token={ok}"), &[], "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reasons"][0]["reason"], "key_revoked");
    let expired = signer("acme")
        .sign(&claims(
            "acme",
            json!({"exp": now() - 60, "tessera": {"content_ids": ["show-1"]}}),
        ))
        .unwrap();
    let r = s
        .call(
            "GET",
            &format!(
                "{}/hls/key/{}?token={expired}",
                s.public,
                kid_of(&keys, "SD")
            ),
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "token_expired"));
}
