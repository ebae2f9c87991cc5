//! SPEKE v2 against a real CPIX client: `tests/interop/speke_client.py`, built on the PyPI
//! `cpix` package (installed by tests/setup.sh), builds the requests AWS-style encryptors send,
//! parses Tessera's answers and decrypts encrypted key delivery with its own private key.

use super::support::interop;
use super::support::*;
use serde_json::{Value, json};
use std::process::Command;

fn speke_url(server: &Server) -> String {
    format!("{}/speke/v2", server.internal)
}

/// Runs the client; returns its JSON report.
async fn client(args: Vec<String>) -> Value {
    let mut cmd = Command::new(interop::speke_python());
    cmd.arg(interop::script("speke_client.py")).args(&args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "speke_client.py {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn args(server: &Server, token: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--url".to_owned(),
        speke_url(server),
        "--token".into(),
        token.to_owned(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// The key the REST key API holds for `kid`, hex.
async fn stored_key(server: &Server, tenant: &str, kid: &str) -> Option<String> {
    let token = service_token(tenant, &["keys:read"]);
    let resp = server
        .call(
            "GET",
            &format!("{}/v1/keys/{kid}", server.internal),
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    if resp.status != 200 {
        return None;
    }
    let key = resp.json()["keys"][0]["key"].as_str()?.to_owned();
    Some(tessera::encoding::hex_encode(
        &tessera::encoding::b64_decode(&key).unwrap(),
    ))
}

fn packager_token(tenant: &str) -> String {
    service_token(tenant, &["keys:write", "keys:read"])
}

#[tokio::test(flavor = "multi_thread")]
async fn cpix_client_gets_keys_and_signalling_clear_and_encrypted() {
    let server = Server::start().await;
    let token = packager_token("acme");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("request.xml");
    let report = client(args(
        &server,
        &token,
        &[
            "--content-id",
            "speke-movie-1",
            "--keys",
            "2",
            "--track-types",
            "SD,AUDIO",
            "--scheme",
            "cbcs",
            "--systems",
            "widevine,playready,fairplay,clearkey-aes128",
            "--smooth",
            "--periods",
            "1",
            "--save-request",
            saved.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["headers"]["x-speke-version"], "2.0");
    assert!(
        report["headers"]["x-speke-user-agent"]
            .as_str()
            .unwrap()
            .starts_with("tessera/")
    );
    assert_eq!(report["parsed_by_cpix"], true, "{report}");
    assert_eq!(report["cpix_lxml_agree"], true, "{report}");
    assert_eq!(report["plain_value_prefixed"], true);
    let keys = report["keys"].as_object().unwrap();
    assert_eq!(keys.len(), 2, "{report}");
    // The keys are the ones Tessera stored, under the encryptor's KIDs.
    for (kid, key) in keys {
        assert_eq!(
            stored_key(&server, "acme", kid).await.as_deref(),
            key.as_str(),
            "{kid}"
        );
    }
    for d in report["drm"].as_array().unwrap() {
        let kid = d["kid"].as_str().unwrap();
        match d["system_id"].as_str().unwrap() {
            "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" => {
                assert_eq!(d["pssh_box"]["ok"], true, "{d}");
                let ids: Vec<&str> = d["pssh_box"]["widevine_pssh_data"]["key_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                assert_eq!(ids.len(), 1);
                assert_eq!(ids[0].replace('-', ""), kid.replace('-', ""), "{d}");
                assert_eq!(d["cpd_pssh_matches"], true, "{d}");
            }
            "9a04f079-9840-4286-ab92-e65be0885f95" => {
                let kids = d["pssh_box"]["playready_object"]["kids"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{d}"));
                assert_eq!(
                    kids[0].as_str().unwrap().replace('-', ""),
                    kid.replace('-', ""),
                    "{d}"
                );
                assert_eq!(d["cpd_pssh_matches"], true, "{d}");
                assert!(d["smooth"].is_string(), "{d}");
            }
            "94ce86fb-07ff-4f43-adb8-93d2fa968ca2" => {
                assert!(d["pssh_b64"].is_null());
                let media = d["hls"]["media"].as_str().unwrap();
                assert_eq!(
                    media,
                    format!(
                        r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#
                    )
                );
                assert_eq!(
                    d["hls"]["master"].as_str().unwrap(),
                    media.replace("#EXT-X-KEY", "#EXT-X-SESSION-KEY")
                );
            }
            "3ea8778f-7742-4bf9-b18b-e834b2acbd47" => {
                let media = d["hls"]["media"].as_str().unwrap();
                assert!(
                    media.starts_with(&format!(
                        r#"#EXT-X-KEY:METHOD=AES-128,URI="{}/hls/key/{kid}""#,
                        server.public
                    )),
                    "{media}"
                );
            }
            other => panic!("unexpected system {other}"),
        }
    }
    assert_eq!(report["echo"]["usage_rules"], json!(["SD", "AUDIO"]));

    // The same request again (a retry, another node): the same keys.
    let again = client(args(
        &server,
        &token,
        &["--raw-body", saved.to_str().unwrap()],
    ))
    .await;
    assert_eq!(again["keys"], report["keys"]);

    // A player licensed for the content gets the same key over Clear Key.
    let (kid, key) = keys.iter().next().unwrap();
    let player = player_token("acme", json!({"content_ids": ["speke-movie-1"]}));
    let lic = server
        .clearkey(&player, json!({"kids": [b64kid(kid)], "type": "temporary"}))
        .await;
    assert_eq!(lic.status, 200);
    let k = lic.json()["keys"][0]["k"].as_str().unwrap().to_owned();
    assert_eq!(
        tessera::encoding::hex_encode(&tessera::encoding::b64url_decode(&k).unwrap()),
        key.as_str().unwrap()
    );

    // Encrypted delivery: the client decrypts with its own private key after checking MACs.
    let enc = client(args(
        &server,
        &token,
        &[
            "--content-id",
            "speke-movie-2",
            "--keys",
            "2",
            "--track-types",
            "VIDEO,AUDIO",
            "--scheme",
            "cenc",
            "--systems",
            "widevine,playready,common",
            "--encrypted",
        ],
    ))
    .await;
    assert_eq!(enc["status"], 200, "{enc}");
    assert_eq!(enc["parsed_by_cpix"], true, "{enc}");
    let macs = enc["mac_ok"].as_object().unwrap();
    assert_eq!(macs.len(), 2);
    assert!(macs.values().all(|v| v == true), "{enc}");
    for (kid, key) in enc["keys"].as_object().unwrap() {
        assert_eq!(
            stored_key(&server, "acme", kid).await.as_deref(),
            key.as_str()
        );
    }
    assert!(
        enc["key_forms"]
            .as_object()
            .unwrap()
            .values()
            .all(|f| f == "encrypted")
    );

    // SPEKE 2.1 with CPIX 2.4: periods with start/end, multiVariant echoed as sent.
    let v21 = client(args(
        &server,
        &token,
        &[
            "--speke-version",
            "2.1",
            "--content-id",
            "speke-live-1",
            "--keys",
            "2",
            "--track-types",
            "VIDEO,AUDIO",
            "--scheme",
            "cbcs",
            "--systems",
            "widevine,fairplay",
            "--periods",
            "1",
            "--first-period-index",
            "7",
            "--period-start",
            "2026-11-23T18:00:00Z",
            "--playlist-name",
            "multiVariant",
        ],
    ))
    .await;
    assert_eq!(v21["status"], 200, "{v21}");
    assert_eq!(v21["headers"]["x-speke-version"], "2.1");
    let playlists = v21["echo"]["playlist_attrs"].as_array().unwrap();
    assert!(playlists.iter().any(|p| p == "multiVariant"), "{v21}");
    assert!(!playlists.iter().any(|p| p == "master"), "{v21}");
    assert_eq!(v21["keys"].as_object().unwrap().len(), 2);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"tessera_packaging_responses_total{protocol="speke",status="OK"} 4"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn speke_refusals_name_the_problem_and_store_nothing() {
    let server = Server::start().await;
    let token = packager_token("acme");
    let base = [
        "--keys",
        "2",
        "--track-types",
        "SD,HD",
        "--scheme",
        "cenc",
        "--systems",
        "widevine",
    ];
    let cases: Vec<(&str, Vec<&str>, u16, &str)> = vec![
        (
            "neg-1",
            vec!["--header", "X-Speke-Version:"],
            422,
            "Unsupported SPEKE version",
        ),
        (
            "neg-2",
            vec!["--header", "X-Speke-Version:1.0"],
            422,
            "Unsupported SPEKE version",
        ),
        (
            "neg-3",
            vec!["--omit-content-id"],
            422,
            "Missing CPIX@contentId",
        ),
        (
            "neg-4",
            vec!["--cpix-version", "4.0"],
            422,
            "Unsupported CPIX@version",
        ),
        (
            "neg-5",
            vec!["--cpix-version", "none"],
            422,
            "Missing CPIX@version",
        ),
        (
            "neg-6",
            vec!["--scheme", "cenc,cbcs"],
            422,
            "Non compliant ContentKey@commonEncryptionScheme combination",
        ),
        (
            "neg-7",
            vec!["--scheme", "none"],
            422,
            "Missing ContentKey@commonEncryptionScheme for KID",
        ),
        (
            "neg-8",
            vec!["--systems", "80a6be7e-1448-4c37-9e70-d5aebe04c8d2"],
            422,
            "Unsupported DRMSystem@systemId",
        ),
        (
            "neg-9",
            vec!["--systems", "fairplay"],
            422,
            "requires commonEncryptionScheme cbcs",
        ),
        (
            "neg-10",
            vec!["--no-filters"],
            422,
            "needs a VideoFilter or an AudioFilter",
        ),
        (
            "neg-11",
            vec!["--track-types", "SD,ALL"],
            422,
            "cannot be combined",
        ),
        (
            "neg-12",
            vec!["--encrypted", "--cert-bits", "1024"],
            422,
            "below the required RSA-2048",
        ),
    ];
    for (content, extra, status, text) in cases {
        let mut a = base.to_vec();
        a.extend(["--content-id", content]);
        // Later flags win over the base ones.
        a.extend(extra.iter().copied());
        let r = client(args(&server, &token, &a)).await;
        assert_eq!(r["status"], status, "{content}: {r}");
        let body = r["body_text"].as_str().unwrap_or_default();
        assert!(body.contains(text), "{content}: {text:?} not in {body:?}");
        let list = server
            .call(
                "GET",
                &format!("{}/v1/keys?content_id={content}", server.internal),
                &[(
                    "authorization",
                    &format!("Bearer {}", service_token("acme", &["keys:read"])),
                )],
                "",
            )
            .await;
        assert_eq!(list.json()["keys"], json!([]), "{content} stored keys");
    }

    // Authorisation: no token, a token that cannot read keys, Basic with the token works.
    let mut a = args(&server, "", &base);
    a.drain(2..4);
    a.extend(["--content-id".into(), "auth-1".into()]);
    assert_eq!(client(a).await["status"], 401);
    let weak = service_token("acme", &["keys:write"]);
    let r = client(args(
        &server,
        &weak,
        &[&base[..], &["--content-id", "auth-2"]].concat(),
    ))
    .await;
    assert_eq!(r["status"], 403);
    let basic = tessera::encoding::b64_encode(format!("encoder:{token}").as_bytes());
    let mut a = args(
        &server,
        "",
        &[&base[..], &["--content-id", "auth-3"]].concat(),
    );
    a.drain(2..4);
    a.extend(["--header".into(), format!("Authorization:Basic {basic}")]);
    assert_eq!(client(a).await["status"], 200);

    // A KID that belongs to another content id, or to nobody in this tenant once revoked.
    let kid = "5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    // One named KID (so no --keys), one key for every track.
    let own = |content: &'static str| {
        args(
            &server,
            &token,
            &[
                "--scheme",
                "cenc",
                "--systems",
                "widevine",
                "--kid",
                kid,
                "--track-types",
                "ALL",
                "--content-id",
                content,
            ],
        )
    };
    let r = client(own("owner-1")).await;
    assert_eq!(r["status"], 200, "{r}");
    let r = client(own("owner-2")).await;
    assert_eq!(r["status"], 409, "{r}");
    assert!(
        r["body_text"]
            .as_str()
            .unwrap()
            .contains("another content id")
    );
    assert_eq!(server.revoke("acme", kid).await.status, 200);
    let r = client(own("owner-1")).await;
    assert_eq!(r["status"], 409, "{r}");
    assert!(r["body_text"].as_str().unwrap().contains("revoked"));

    // Unsafe or oversized XML, before any key work.
    let post = |body: String| {
        let server = &server;
        let token = token.clone();
        async move {
            server
                .call(
                    "POST",
                    &speke_url(server),
                    &[
                        ("authorization", &format!("Bearer {token}")),
                        ("x-speke-version", "2.0"),
                        ("content-type", "application/xml"),
                    ],
                    body,
                )
                .await
        }
    };
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" contentId="&lol2;" version="2.3"/>"#;
    let r = post(laughs.to_owned()).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-speke-user-agent")
            .map(|v| v.starts_with("tessera/")),
        Some(true)
    );
    let r = post(format!(
        "<a>{}</a>",
        "<b>".repeat(100) + &"</b>".repeat(100)
    ))
    .await;
    assert_eq!(r.status, 400);
    let auth = format!("Bearer {token}");
    let status = status_for_declared_length(
        &server.internal,
        "/speke/v2",
        &[("authorization", &auth), ("x-speke-version", "2.0")],
        2 << 20,
    )
    .await;
    assert_eq!(status, 413);
    let r = post(String::new()).await;
    assert_eq!(r.status, 400);
}
