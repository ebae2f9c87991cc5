//! Widevine-style licences. A Rust-built client (the protocol of drm-interop.md §1, written
//! out here independently of the server's handler) drives every refusal path, renewal and
//! release; pywidevine, the third-party client, drives the real-client path in
//! `pywidevine_*` tests (tests/interop/widevine_client.py).

use super::support::interop;
use super::support::*;
use prost::Message;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use tessera::crypto::symmetric::aes128_cbc_decrypt;
use tessera::crypto::{HmacAlg, HmacKey};
use tessera::keyring::KeyId;
use tessera::protocol::widevine::license::{SessionKeys, derive_keys};
use tessera::protocol::widevine::pb;
use tessera::protocol::widevine::pb::client_identification::client_capabilities::HdcpVersion;
use tessera::protocol::widevine::pb::license_request::ContentIdentification;
use tessera::protocol::widevine::pb::license_request::content_identification::{
    ContentIdVariant, ExistingLicense, WidevinePsshData,
};
use tessera::protocol::widevine::provision::{DeviceOptions, Root, TestDevice};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// One root for the tests of this file (RSA-3072 generation is the slow part), written out
/// as `tessera devices widevine --new-root` would.
fn root() -> &'static (tempfile::TempDir, Root) {
    static ROOT: OnceLock<(tempfile::TempDir, Root)> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root =
            Root::create_dir(&dir.path().join("root"), "tessera-test", now() as u64).unwrap();
        (dir, root)
    })
}

fn root_dir() -> PathBuf {
    root().0.path().join("root")
}

/// `[widevine]` trusting `dir`'s root, with its service certificate, plus `extra` lines.
fn widevine_toml(dir: &Path, extra: &str) -> String {
    format!(
        r#"
[widevine]
roots = ["{d}/root-public.pem"]
service_certificate_file = "{d}/service-cert.bin"
service_private_key_file = "{d}/service-key.pem"
{extra}
"#,
        d = dir.display()
    )
}

fn device(root: &Root, system_id: u32, max_hdcp: HdcpVersion, expires_at: u64) -> TestDevice {
    root.device(
        &DeviceOptions {
            system_id,
            max_hdcp,
            expires_at,
        },
        now() as u64,
    )
    .unwrap()
}

fn default_device() -> TestDevice {
    device(&root().1, 0x7E57, HdcpVersion::HdcpV22, 0)
}

fn kid_bytes(kid: &str) -> Vec<u8> {
    KeyId::parse(kid).unwrap().as_bytes().to_vec()
}

/// A signed licence request for `kids`: `(body, exact msg bytes)`.
fn challenge(dev: &TestDevice, kids: &[&str], offline: bool) -> (Vec<u8>, Vec<u8>) {
    let pssh = pb::WidevinePsshData {
        key_ids: kids.iter().map(|k| kid_bytes(k)).collect(),
        ..Default::default()
    }
    .encode_to_vec();
    let kind = if offline {
        pb::LicenseType::Offline
    } else {
        pb::LicenseType::Streaming
    };
    let request = pb::LicenseRequest {
        client_id: Some(pb::ClientIdentification::decode(&dev.client_id[..]).unwrap()),
        content_id: Some(ContentIdentification {
            content_id_variant: Some(ContentIdVariant::WidevinePsshData(WidevinePsshData {
                pssh_data: vec![pssh],
                license_type: Some(kind as i32),
                request_id: Some(b"request-0001".to_vec()),
            })),
        }),
        r#type: Some(pb::license_request::RequestType::New as i32),
        request_time: Some(now()),
        protocol_version: Some(pb::ProtocolVersion::Version21 as i32),
        key_control_nonce: Some(12345),
        ..Default::default()
    };
    let msg = request.encode_to_vec();
    let signature = dev.key.sign_pss_sha1(&msg).unwrap();
    (
        signed(
            pb::signed_message::MessageType::LicenseRequest,
            msg.clone(),
            signature,
        ),
        msg,
    )
}

fn signed(t: pb::signed_message::MessageType, msg: Vec<u8>, signature: Vec<u8>) -> Vec<u8> {
    pb::SignedMessage {
        r#type: Some(t as i32),
        msg: Some(msg),
        signature: Some(signature),
        ..Default::default()
    }
    .encode_to_vec()
}

/// What a CDM does with a licence: unwrap, derive, check the HMAC, decrypt every container.
fn open_license(
    dev: &TestDevice,
    msg: &[u8],
    body: &[u8],
) -> (pb::License, Vec<(String, Vec<u8>)>, SessionKeys) {
    let signed = pb::SignedMessage::decode(body).unwrap();
    assert_eq!(
        signed.r#type,
        Some(pb::signed_message::MessageType::License as i32)
    );
    let session_key = dev
        .key
        .decrypt_oaep_sha1(signed.session_key.as_deref().unwrap())
        .unwrap();
    let keys = derive_keys(&session_key[..].try_into().unwrap(), msg);
    let lic_bytes = signed.msg.unwrap();
    assert!(
        HmacKey::new(HmacAlg::Sha256, &keys.mac_server[..])
            .verify(&lic_bytes, signed.signature.as_deref().unwrap()),
        "licence HMAC"
    );
    let license = pb::License::decode(&lic_bytes[..]).unwrap();
    let mut content = Vec::new();
    for c in &license.key {
        let iv: [u8; 16] = c.iv.as_deref().unwrap().try_into().unwrap();
        let clear = aes128_cbc_decrypt(&keys.enc, &iv, c.key.as_deref().unwrap()).unwrap();
        if c.r#type == Some(pb::license::key_container::KeyType::Content as i32) {
            let kid = KeyId::from_bytes(c.id.as_deref().unwrap().try_into().unwrap());
            content.push((kid.canonical().as_str().to_owned(), clear.to_vec()));
        } else {
            assert_eq!(clear.len(), 64, "signing container holds both MAC keys");
            assert_eq!(&clear[..32], &keys.mac_server[..]);
        }
    }
    (license, content, keys)
}

async fn post(server: &Server, token: Option<&str>, body: Vec<u8>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/octet-stream")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    server
        .call(
            "POST",
            &format!("{}/widevine/license", server.public),
            &headers,
            body,
        )
        .await
}

fn reasons(resp: &Resp) -> Vec<(String, String)> {
    resp.json()["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kid"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_licence_holds_exactly_the_entitled_keys() {
    let server = Server::start_with(&widevine_toml(&root_dir(), ""), None).await;
    let keys = server
        .create_keys("acme", "film", &["SD", "HD", "AUDIO"])
        .await;
    let (sd, hd, audio) = (
        kid_of(&keys, "SD"),
        kid_of(&keys, "HD"),
        kid_of(&keys, "AUDIO"),
    );
    let dev = default_device();

    let token = player_token("acme", json!({"kids": [sd, audio]}));
    let (body, msg) = challenge(&dev, &[&sd, &hd, &audio], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
    let (license, content, _) = open_license(&dev, &msg, &resp.body);
    assert_eq!(
        content,
        vec![
            (sd.clone(), key_of(&keys, "SD")),
            (audio.clone(), key_of(&keys, "AUDIO"))
        ]
    );
    let id = license.id.unwrap();
    assert_eq!(id.request_id.as_deref(), Some(&b"request-0001"[..]));
    assert_eq!(id.r#type, Some(pb::LicenseType::Streaming as i32));
    let policy = license.policy.unwrap();
    assert_eq!(
        (policy.can_play, policy.can_persist, policy.can_renew),
        (Some(true), Some(false), Some(false))
    );
    assert_eq!(license.key.len(), 3, "two content keys and the signing key");
    let labels: Vec<_> = license
        .key
        .iter()
        .filter_map(|k| k.track_label.clone())
        .collect();
    assert_eq!(labels, ["SD", "AUDIO"]);

    // Only keys the token does not cover: refused, naming each KID and why.
    let (body, _) = challenge(&dev, &[&hd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!((resp.status, resp.code()), (403, "no_entitled_keys".into()));
    assert_eq!(reasons(&resp), vec![(hd.clone(), "not_entitled".into())]);

    // By content id, another tenant's token sees nothing of acme's keys.
    let (body, _) = challenge(&dev, &[&sd], false);
    let globex = player_token("globex", json!({"content_ids": ["film"]}));
    let resp = post(&server, Some(&globex), body).await;
    assert_eq!(reasons(&resp), vec![(sd.clone(), "key_not_found".into())]);

    // The audit trail and metrics saw exactly one release of two keys.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tessera_licenses_issued_total{protocol=\"widevine\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_keys_released_total{protocol=\"widevine\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn untrusted_revoked_expired_and_tampered_devices_are_refused() {
    let foreign = Root::generate(now() as u64).unwrap();
    let revoked = default_device();
    let other_model = device(&root().1, 4242, HdcpVersion::HdcpV22, 0);
    let extra = format!(
        "revoked_serials = [\"{}\"]\nrevoked_system_ids = [4242]",
        tessera::encoding::hex_encode(&revoked.serial)
    );
    let server = Server::start_with(&widevine_toml(&root_dir(), &extra), None).await;
    let keys = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"kids": [sd]}));

    let cases: Vec<(&str, TestDevice)> = vec![
        (
            "device_chain_untrusted",
            device(&foreign, 0x7E57, HdcpVersion::HdcpV22, 0),
        ),
        ("device_revoked", revoked),
        ("device_revoked", other_model),
        (
            "device_certificate_expired",
            device(&root().1, 0x7E57, HdcpVersion::HdcpV22, now() as u64 - 1),
        ),
    ];
    for (code, dev) in &cases {
        let (body, _) = challenge(dev, &[&sd], false);
        let resp = post(&server, Some(&token), body).await;
        assert_eq!((resp.status, resp.code()), (403, code.to_string()));
    }

    // A valid device whose request was altered after signing.
    let dev = default_device();
    let (body, msg) = challenge(&dev, &[&sd], false);
    let mut tampered = pb::SignedMessage::decode(&body[..]).unwrap();
    let mut m = msg.clone();
    *m.last_mut().unwrap() ^= 1;
    tampered.msg = Some(m);
    let resp = post(&server, Some(&token), tampered.encode_to_vec()).await;
    assert_eq!(
        (resp.status, resp.code()),
        (403, "request_signature_invalid".into())
    );

    // Certificates altered after signing: the device's (its model's signature breaks) and the
    // model's (the root's signature breaks, so the chain no longer leads to a trusted root).
    for (alter_model, code) in [
        (false, "device_chain_signature"),
        (true, "device_chain_untrusted"),
    ] {
        let mut client = pb::ClientIdentification::decode(&dev.client_id[..]).unwrap();
        let mut leaf = pb::SignedDrmCertificate::decode(client.token.as_deref().unwrap()).unwrap();
        let mut model = *leaf.signer.take().unwrap();
        let target = if alter_model {
            &mut model.drm_certificate
        } else {
            &mut leaf.drm_certificate
        };
        let mut cert = pb::DrmCertificate::decode(target.as_deref().unwrap()).unwrap();
        cert.creation_time_seconds = Some(1);
        *target = Some(cert.encode_to_vec());
        leaf.signer = Some(Box::new(model));
        client.token = Some(leaf.encode_to_vec());
        let forged = TestDevice {
            key: tessera::crypto::rsa::RsaPrivateKey::from_pem(&dev.key.to_pem().unwrap()).unwrap(),
            client_id: client.encode_to_vec(),
            serial: dev.serial.clone(),
            wvd: Vec::new(),
        };
        let (body, _) = challenge(&forged, &[&sd], false);
        let resp = post(&server, Some(&token), body).await;
        assert_eq!((resp.status, resp.code()), (403, code.to_string()));
    }

    // A keybox client (no device certificate).
    let mut keybox = pb::ClientIdentification::decode(&dev.client_id[..]).unwrap();
    keybox.r#type = Some(pb::client_identification::TokenType::Keybox as i32);
    let kb = TestDevice {
        key: tessera::crypto::rsa::RsaPrivateKey::from_pem(&dev.key.to_pem().unwrap()).unwrap(),
        client_id: keybox.encode_to_vec(),
        serial: Vec::new(),
        wvd: Vec::new(),
    };
    let (body, _) = challenge(&kb, &[&sd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(
        (resp.status, resp.code()),
        (403, "device_certificate_missing".into())
    );

    let metrics = server.metrics().await;
    for (code, n) in [
        ("device_chain_untrusted", 2),
        ("device_revoked", 2),
        ("device_certificate_expired", 1),
        ("request_signature_invalid", 1),
        ("device_chain_signature", 1),
        ("device_certificate_missing", 1),
    ] {
        let line = format!("tessera_auth_denials_total{{reason=\"{code}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(
        metrics.contains("tessera_licenses_issued_total{protocol=\"widevine\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn security_level_hdcp_and_persistence_follow_the_policy() {
    let server = Server::start_with(&widevine_toml(&root_dir(), ""), None).await;
    let keys = server.create_keys("acme", "film", &["SD", "HD"]).await;
    let (sd, hd) = (kid_of(&keys, "SD"), kid_of(&keys, "HD"));

    // HD needs HDCP 2.2; a device reporting HDCP 1 gets SD only.
    let weak = device(&root().1, 0x7E57, HdcpVersion::HdcpV1, 0);
    let token = player_token(
        "acme",
        json!({"content_ids": ["film"], "policy": {"hdcp": {"HD": "V2.2"}}}),
    );
    let (body, msg) = challenge(&weak, &[&sd, &hd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    let (_, content, _) = open_license(&weak, &msg, &resp.body);
    assert_eq!(
        content.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![sd.clone()]
    );
    let (body, _) = challenge(&weak, &[&hd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(
        reasons(&resp),
        vec![(hd.clone(), "output_protection_unsupported".into())]
    );

    // A device with HDCP 2.2 gets both, HD carrying the requirement for the CDM to enforce.
    let dev = default_device();
    let (body, msg) = challenge(&dev, &[&sd, &hd], false);
    let resp = post(&server, Some(&token), body).await;
    let (license, content, _) = open_license(&dev, &msg, &resp.body);
    assert_eq!(content.len(), 2);
    let hd_container = license
        .key
        .iter()
        .find(|k| k.track_label.as_deref() == Some("HD"))
        .unwrap();
    assert_eq!(
        hd_container.required_protection.unwrap().hdcp,
        Some(pb::output_protection::Hdcp::V22 as i32)
    );

    // HD needs HW_SECURE_ALL; an unlisted model is a software CDM.
    let token = player_token(
        "acme",
        json!({"content_ids": ["film"], "policy": "hd-hardware"}),
    );
    let (body, _) = challenge(&dev, &[&hd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(
        reasons(&resp),
        vec![(hd.clone(), "security_level_too_low".into())]
    );

    // OFFLINE needs a policy that persists.
    let (body, _) = challenge(&dev, &[&sd], true);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(
        (resp.status, resp.code()),
        (403, "persistence_not_allowed".into())
    );
    let offline = player_token(
        "acme",
        json!({"content_ids": ["film"], "policy": "offline"}),
    );
    let (body, msg) = challenge(&dev, &[&sd], true);
    let resp = post(&server, Some(&offline), body).await;
    let (license, _, _) = open_license(&dev, &msg, &resp.body);
    assert_eq!(license.policy.unwrap().can_persist, Some(true));
    assert_eq!(
        license.id.unwrap().r#type,
        Some(pb::LicenseType::Offline as i32)
    );
    drop(server);

    // The same device listed as a hardware model gets HD.
    let hw = widevine_toml(
        &root_dir(),
        "[[widevine.models]]\nsystem_id = 32343\nsecurity_level = \"HW_SECURE_ALL\"",
    );
    let server = Server::start_with(&hw, None).await;
    let keys = server.create_keys("acme", "film", &["HD"]).await;
    let hd = kid_of(&keys, "HD");
    let (body, msg) = challenge(&dev, &[&hd], false);
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    let (license, _, _) = open_license(&dev, &msg, &resp.body);
    assert_eq!(
        license.key[0].level,
        Some(pb::license::key_container::SecurityLevel::HwSecureAll as i32)
    );
}

/// A renewal or release of `license`, signed with the client MAC key.
fn follow_up(
    license: &pb::License,
    keys: &SessionKeys,
    t: pb::license_request::RequestType,
    forge: bool,
) -> Vec<u8> {
    let request = pb::LicenseRequest {
        content_id: Some(ContentIdentification {
            content_id_variant: Some(ContentIdVariant::ExistingLicense(ExistingLicense {
                license_id: license.id.clone(),
                seconds_since_started: Some(30),
                ..Default::default()
            })),
        }),
        r#type: Some(t as i32),
        request_time: Some(now()),
        ..Default::default()
    };
    let msg = request.encode_to_vec();
    let key = if forge { [0u8; 32] } else { *keys.mac_client };
    let sig = HmacKey::new(HmacAlg::Sha256, &key).sign(&msg);
    signed(pb::signed_message::MessageType::LicenseRequest, msg, sig)
}

#[tokio::test]
async fn renewal_and_release_are_signed_by_the_session_and_rechecked() {
    let mut server = Server::start_with(&widevine_toml(&root_dir(), ""), None).await;
    let keys_view = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys_view, "SD");
    let dev = default_device();
    let renewable = json!({"kids": [sd], "policy": {"can_renew": true, "renewal_interval_secs": 120,
        "renewal_url": "https://licences.acme.test/widevine/license"}});
    let token = player_token("acme", renewable.clone());
    let (body, msg) = challenge(&dev, &[&sd], false);
    let resp = post(&server, Some(&token), body).await;
    let (license, _, keys) = open_license(&dev, &msg, &resp.body);
    let policy = license.policy.clone().unwrap();
    assert_eq!(policy.can_renew, Some(true));
    assert_eq!(policy.renewal_delay_seconds, Some(120));
    assert_eq!(
        policy.renewal_server_url.as_deref(),
        Some("https://licences.acme.test/widevine/license")
    );

    let renewal = pb::license_request::RequestType::Renewal;
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    let answer = pb::SignedMessage::decode(&resp.body[..]).unwrap();
    let msg = answer.msg.unwrap();
    assert!(
        HmacKey::new(HmacAlg::Sha256, &keys.mac_server[..])
            .verify(&msg, answer.signature.as_deref().unwrap())
    );
    assert!(answer.session_key.is_none());
    let renewed = pb::License::decode(&msg[..]).unwrap();
    assert_eq!(renewed.id.as_ref().unwrap().version, Some(1));
    assert!(renewed.key.is_empty());
    assert_eq!(renewed.policy.unwrap().can_renew, Some(true));

    // Not signed by the session: refused.
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, true),
    )
    .await;
    assert_eq!((resp.status, resp.code()), (403, "license_unknown".into()));
    // Another tenant's token cannot renew it.
    let globex = player_token("globex", json!({"kids": [sd]}));
    let resp = post(
        &server,
        Some(&globex),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!(resp.code(), "license_unknown");
    // A policy without renewal.
    let plain = player_token("acme", json!({"kids": [sd]}));
    let resp = post(
        &server,
        Some(&plain),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!(resp.code(), "renewal_not_allowed");
    // A revoked key is not renewed.
    assert_eq!(server.revoke("acme", &sd).await.status, 200);
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!(reasons(&resp), vec![(sd.clone(), "key_revoked".into())]);
    // Release is acknowledged, signed by the session.
    let release = pb::license_request::RequestType::Release;
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, release, false),
    )
    .await;
    assert_eq!(resp.status, 200);
    let answer = pb::SignedMessage::decode(&resp.body[..]).unwrap();
    assert!(HmacKey::new(HmacAlg::Sha256, &keys.mac_server[..]).verify(
        answer.msg.as_deref().unwrap(),
        answer.signature.as_deref().unwrap()
    ));

    // The audit trail has the release of the key, one renewal, and the release, with the
    // token's subject; never a key.
    server.running.take().unwrap().shutdown().await;
    let audit = std::fs::read_to_string(server.dir.path().join("audit.jsonl")).unwrap();
    let events: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["protocol"] == "widevine")
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["key.release", "license.renew", "license.release"],
        "{audit}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["tenant"] == "acme" && e["subject"] == "viewer-1")
    );
    let key_b64 = tessera::encoding::b64_encode(&key_of(&keys_view, "SD"));
    assert!(!audit.contains(&key_b64), "no key bytes in the audit trail");
}

#[tokio::test]
async fn service_certificate_malformed_input_and_unconfigured() {
    let server = Server::start_with(&widevine_toml(&root_dir(), ""), None).await;
    // The service certificate is public: answered without a token.
    let resp = post(&server, None, vec![0x08, 0x04]).await;
    assert_eq!(resp.status, 200);
    let answer = pb::SignedMessage::decode(&resp.body[..]).unwrap();
    assert_eq!(
        answer.r#type,
        Some(pb::signed_message::MessageType::ServiceCertificate as i32)
    );
    let cert = std::fs::read(root_dir().join("service-cert.bin")).unwrap();
    assert_eq!(answer.msg.as_deref(), Some(&cert[..]));

    // Anything else needs a token, and a big anonymous body is not buffered.
    let dev = default_device();
    let (body, _) = challenge(&dev, &["00112233445566778899aabbccddeeff"], false);
    let resp = post(&server, None, body.clone()).await;
    assert_eq!((resp.status, resp.code()), (401, "token_missing".into()));
    let token = player_token("acme", json!({"content_ids": ["x"]}));
    for garbage in [
        vec![0xff; 40],
        b"not protobuf at all".to_vec(),
        vec![0x08, 0x02],
        Vec::new(),
    ] {
        let resp = post(&server, Some(&token), garbage).await;
        assert_eq!((resp.status, resp.code()), (400, "request_invalid".into()));
    }
    let expired = signer("acme")
        .sign(&claims(
            "acme",
            json!({"exp": now() - 600, "tessera": {"content_ids": ["x"]}}),
        ))
        .unwrap();
    let resp = post(&server, Some(&expired), body).await;
    assert_eq!((resp.status, resp.code()), (401, "token_expired".into()));
    drop(server);

    let plain = Server::start().await;
    let resp = post(&plain, Some(&token), vec![0x08, 0x04]).await;
    assert_eq!(
        (resp.status, resp.code()),
        (404, "protocol_not_configured".into())
    );
}

// ---------------------------------------------------------------------------------------
// pywidevine, the third-party client.

/// `tessera devices widevine` with `args`; returns its JSON summary.
fn tessera_devices(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["devices", "widevine"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the pywidevine driver; returns its JSON report.
async fn pywidevine(
    server: &Server,
    wvd: &Path,
    token: &str,
    kids: &[&str],
    extra: &[&str],
) -> Value {
    let python = interop::python();
    let mut cmd = Command::new(python);
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/widevine_client.py"
    ))
    .arg("--wvd")
    .arg(wvd)
    .args([
        "--url",
        &format!("{}/widevine/license", server.public),
        "--token",
        token,
    ]);
    for k in kids {
        cmd.args(["--kid", k]);
    }
    cmd.args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn hex_kid(kid: &str) -> String {
    tessera::encoding::hex_encode(&kid_bytes(kid))
}

#[tokio::test]
async fn pywidevine_gets_exactly_the_entitled_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let wvd = dir.path().join("device.wvd");
    let summary = tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        wvd.to_str().unwrap(),
        "--system-id",
        "4660",
    ]);
    assert_eq!(summary["system_id"], 4660);
    let server = Server::start_with(&widevine_toml(&root, ""), None).await;
    let keys = server
        .create_keys("acme", "film", &["SD", "HD", "AUDIO"])
        .await;
    let (sd, hd, audio) = (
        kid_of(&keys, "SD"),
        kid_of(&keys, "HD"),
        kid_of(&keys, "AUDIO"),
    );
    let expect = |kids: &[&str]| -> Vec<Value> {
        kids.iter()
            .map(|k| {
                let track = keys.iter().find(|x| x["kid"] == *k).unwrap()["track"].as_str().unwrap();
                json!({"kid": hex_kid(k), "key": tessera::encoding::hex_encode(&key_of(&keys, track))})
            })
            .collect()
    };
    let token = player_token("acme", json!({"kids": [sd, audio]}));
    let root_cert = root.join("root-cert.bin");
    for extra in [
        vec![],
        vec!["--privacy", "--root-cert", root_cert.to_str().unwrap()],
    ] {
        let r = pywidevine(&server, &wvd, &token, &[&sd, &hd, &audio], &extra).await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["keys"], json!(expect(&[&sd, &audio])), "{r}");
        if !extra.is_empty() {
            assert_eq!(r["provider_id"], "tessera");
        }
    }
    let offline = player_token(
        "acme",
        json!({"content_ids": ["film"], "policy": "offline"}),
    );
    let r = pywidevine(
        &server,
        &wvd,
        &offline,
        &[&hd],
        &["--license-type", "OFFLINE"],
    )
    .await;
    assert_eq!(r["keys"], json!(expect(&[&hd])), "{r}");
}

#[tokio::test]
async fn pywidevine_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let good = dir.path().join("good.wvd");
    let revoked = dir.path().join("revoked.wvd");
    let foreign = dir.path().join("foreign.wvd");
    tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        good.to_str().unwrap(),
    ]);
    let summary = tessera_devices(&[
        "--root",
        root.to_str().unwrap(),
        "--out",
        revoked.to_str().unwrap(),
    ]);
    tessera_devices(&[
        "--new-root",
        dir.path().join("other").to_str().unwrap(),
        "--out",
        foreign.to_str().unwrap(),
    ]);
    let extra = format!(
        "revoked_serials = [\"{}\"]",
        summary["serial"].as_str().unwrap()
    );
    let server = Server::start_with(&widevine_toml(&root, &extra), None).await;
    let keys = server.create_keys("acme", "film", &["SD", "HD"]).await;
    let (sd, hd) = (kid_of(&keys, "SD"), kid_of(&keys, "HD"));
    let token = player_token("acme", json!({"kids": [sd]}));
    let code = |r: &Value| -> (i64, String) {
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        (
            r["status"].as_i64().unwrap(),
            body["code"].as_str().unwrap().to_owned(),
        )
    };
    let r = pywidevine(&server, &foreign, &token, &[&sd], &[]).await;
    assert_eq!(code(&r), (403, "device_chain_untrusted".into()));
    let r = pywidevine(&server, &revoked, &token, &[&sd], &[]).await;
    assert_eq!(code(&r), (403, "device_revoked".into()));
    let r = pywidevine(&server, &good, &token, &[&sd], &["--tamper"]).await;
    assert_eq!(code(&r), (403, "request_signature_invalid".into()));
    let r = pywidevine(&server, &good, &token, &[&hd], &[]).await;
    assert_eq!(code(&r), (403, "no_entitled_keys".into()));
    let expired = signer("acme")
        .sign(&claims(
            "acme",
            json!({"exp": now() - 600, "tessera": {"kids": [sd]}}),
        ))
        .unwrap();
    let r = pywidevine(&server, &good, &expired, &[&sd], &[]).await;
    assert_eq!(code(&r), (401, "token_expired".into()));
    // And the good device, same server, same token: the refusals above were about them.
    let r = pywidevine(&server, &good, &token, &[&sd], &[]).await;
    assert_eq!(r["status"], 200, "{r}");
}

#[test]
fn check_config_refuses_bad_widevine_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "roots = [\"/nonexistent/root-public.pem\"]".to_owned(),
            "/nonexistent/root-public.pem",
        ),
        (
            format!(
                "roots = [\"{}/root-public.pem\"]\nservice_certificate_file = \"{0}/service-cert.bin\"",
                root_dir().display()
            ),
            "go together",
        ),
        (
            format!("roots = [\"{}/root-cert.bin\"]", root_dir().display()),
            "not a PEM RSA public key",
        ),
        (
            format!(
                "roots = [\"{}/root-public.pem\"]\nrevoked_serials = [\"zz\"]",
                root_dir().display()
            ),
            "not hex",
        ),
    ];
    for (i, (widevine, expect)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(
            &path,
            format!("{}\n[widevine]\n{widevine}\n", base_toml(dir.path())),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{stderr}");
        assert!(stderr.contains(expect), "{expect:?} in {stderr}");
    }
    // The service key file must be private.
    let key = root_dir().join("service-key.pem");
    let shared = dir.path().join("shared-key.pem");
    std::fs::copy(&key, &shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("shared.toml");
    let widevine = format!(
        "roots = [\"{d}/root-public.pem\"]\nservice_certificate_file = \"{d}/service-cert.bin\"\nservice_private_key_file = \"{}\"",
        shared.display(),
        d = root_dir().display()
    );
    std::fs::write(
        &path,
        format!("{}\n[widevine]\n{widevine}\n", base_toml(dir.path())),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn renewal_rechecks_the_device_and_the_licence_age() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let dev = default_device();
    let mut server = Server::start_in(dir.clone(), &widevine_toml(&root_dir(), ""), None).await;
    let keys = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token(
        "acme",
        json!({"kids": [sd], "policy": {"can_renew": true, "renewal_interval_secs": 60}}),
    );
    let (body, msg) = challenge(&dev, &[&sd], false);
    let resp = post(&server, Some(&token), body).await;
    let (license, _, keys) = open_license(&dev, &msg, &resp.body);
    let renewal = pb::license_request::RequestType::Renewal;
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    server.running.take().unwrap().shutdown().await;

    // The same data (same master key), the device now revoked: its renewals stop.
    let revoked = format!(
        "revoked_serials = [\"{}\"]",
        tessera::encoding::hex_encode(&dev.serial)
    );
    let mut server =
        Server::start_in(dir.clone(), &widevine_toml(&root_dir(), &revoked), None).await;
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!((resp.status, resp.code()), (403, "device_revoked".into()));
    server.running.take().unwrap().shutdown().await;

    // Not revoked, but the licence is older than session_max_age_secs.
    let aged = "session_max_age_secs = 0";
    let server = Server::start_in(dir, &widevine_toml(&root_dir(), aged), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = post(
        &server,
        Some(&token),
        follow_up(&license, &keys, renewal, false),
    )
    .await;
    assert_eq!((resp.status, resp.code()), (403, "license_too_old".into()));
}

#[tokio::test]
async fn privacy_mode_refusals_and_missing_request_id() {
    let server = Server::start_with(&widevine_toml(&root_dir(), ""), None).await;
    let keys = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"kids": [sd]}));
    let dev = default_device();

    // An expired token does not stop the (public) service certificate.
    let expired = signer("acme")
        .sign(&claims(
            "acme",
            json!({"exp": now() - 600, "tessera": {"kids": [sd]}}),
        ))
        .unwrap();
    let resp = post(&server, Some(&expired), vec![0x08, 0x04]).await;
    assert_eq!(resp.status, 200);
    let answer = pb::SignedMessage::decode(&resp.body[..]).unwrap();
    let signed_cert = pb::SignedDrmCertificate::decode(answer.msg.as_deref().unwrap()).unwrap();
    let cert = pb::DrmCertificate::decode(signed_cert.drm_certificate.as_deref().unwrap()).unwrap();
    let service_key =
        tessera::crypto::rsa::RsaPublicKey::from_pkcs1_der(cert.public_key.as_deref().unwrap())
            .unwrap();

    // A request whose client id is encrypted as `f` makes it.
    let send = |f: &dyn Fn(&mut pb::EncryptedClientIdentification)| {
        let (privacy_key, iv) = ([3u8; 16], [4u8; 16]);
        let mut enc = pb::EncryptedClientIdentification {
            provider_id: cert.provider_id.clone(),
            service_certificate_serial_number: cert.serial_number.clone(),
            encrypted_client_id: Some(tessera::crypto::symmetric::aes128_cbc_encrypt(
                &privacy_key,
                &iv,
                &dev.client_id,
            )),
            encrypted_client_id_iv: Some(iv.to_vec()),
            encrypted_privacy_key: Some(service_key.encrypt_oaep_sha1(&privacy_key).unwrap()),
        };
        f(&mut enc);
        let (body, _) = challenge(&dev, &[&sd], false);
        let mut signed = pb::SignedMessage::decode(&body[..]).unwrap();
        let mut request = pb::LicenseRequest::decode(signed.msg.as_deref().unwrap()).unwrap();
        request.client_id = None;
        request.encrypted_client_id = Some(enc);
        let msg = request.encode_to_vec();
        signed.signature = Some(dev.key.sign_pss_sha1(&msg).unwrap());
        signed.msg = Some(msg.clone());
        (signed.encode_to_vec(), msg)
    };
    let (body, msg) = send(&|_| {});
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    let (_, content, _) = open_license(&dev, &msg, &resp.body);
    assert_eq!(content, vec![(sd.clone(), key_of(&keys, "SD"))]);

    let (body, _) = send(&|e| e.service_certificate_serial_number = Some(vec![9; 16]));
    let resp = post(&server, Some(&token), body).await;
    assert_eq!(
        (resp.status, resp.code()),
        (400, "service_certificate_unknown".into())
    );
    for garble in [
        &(|e: &mut pb::EncryptedClientIdentification| {
            e.encrypted_privacy_key.as_mut().unwrap()[7] ^= 1
        }) as &dyn Fn(&mut pb::EncryptedClientIdentification),
        &|e| e.encrypted_client_id_iv = Some(vec![0; 8]),
        // In the second-to-last block: CBC carries the flip into the padding byte, which
        // then never reads as valid padding (flipping the last byte itself leaves valid
        // padding about once in 256 and a decodable message some of those times).
        &|e| {
            let c = e.encrypted_client_id.as_mut().unwrap();
            let n = c.len();
            c[n - 17] ^= 1;
        },
    ] {
        let (body, _) = send(garble);
        let resp = post(&server, Some(&token), body).await;
        assert_eq!(
            (resp.status, resp.code()),
            (400, "client_id_undecryptable".into())
        );
    }

    // A request without a request_id: the client could not use the licence.
    let (body, _) = challenge(&dev, &[&sd], false);
    let mut signed = pb::SignedMessage::decode(&body[..]).unwrap();
    let mut request = pb::LicenseRequest::decode(signed.msg.as_deref().unwrap()).unwrap();
    if let Some(ContentIdVariant::WidevinePsshData(p)) = request
        .content_id
        .as_mut()
        .and_then(|c| c.content_id_variant.as_mut())
    {
        p.request_id = None;
    }
    let msg = request.encode_to_vec();
    signed.signature = Some(dev.key.sign_pss_sha1(&msg).unwrap());
    signed.msg = Some(msg);
    let resp = post(&server, Some(&token), signed.encode_to_vec()).await;
    assert_eq!((resp.status, resp.code()), (400, "request_invalid".into()));
    assert!(
        resp.json()["detail"]
            .as_str()
            .unwrap()
            .contains("request_id")
    );
}
