//! Micro-benchmarks of each step of the licence hot path and of key sealing (STYLE B1), so a
//! regression shows up per step, not only as a lower licences/s in `load-tests/run.sh`.
//!
//! `cargo bench --bench hot_path`

#![expect(
    clippy::unwrap_used,
    reason = "benchmark set-up: a failure aborts the run"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use tessera::auth::Authenticator;
use tessera::auth::jwt::Alg;
use tessera::auth::mint::Signer;
use tessera::auth::replay::InMemoryReplayGuard;
use tessera::config::{Config, DEV_AUDIENCE, DEV_DEMO_SECRET, DEV_ISSUER};
use tessera::keyring::{ContentKey, KeyId, KeyMeta, KeyState, Keyring, MasterKey, TrackType};
use tessera::protocol::clearkey::message::{self, SessionType};

fn jwt(c: &mut Criterion) {
    let cfg = Config::dev();
    let auth = Authenticator::from_config(&cfg, Arc::new(InMemoryReplayGuard::new(16))).unwrap();
    let signer = Signer::hmac(
        Some("demo-hs256".into()),
        Alg::HS256,
        DEV_DEMO_SECRET.trim().as_bytes(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = signer
        .sign(&serde_json::json!({
            "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "viewer-1", "jti": "0123456789abcdef0123456789abcdef",
            "iat": now, "nbf": now, "exp": now + 3600, "tessera": {"content_ids": ["movie-1"]}
        }))
        .unwrap();
    c.bench_function("jwt_hs256_verify_and_entitle", |b| {
        b.iter(|| {
            let v = auth.verify(black_box(&token)).unwrap();
            black_box(auth.entitlement(v).unwrap())
        })
    });
    // As a server sees them: every token different (its own jti), 64 KiB of tokens cycled.
    let tokens: Vec<String> = (0..256)
        .map(|i| {
            signer
                .sign(&serde_json::json!({
                    "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": format!("viewer-{i}"),
                    "jti": format!("{i:032x}"), "iat": now, "nbf": now, "exp": now + 3600,
                    "tessera": {"content_ids": ["movie-1"]}
                }))
                .unwrap()
        })
        .collect();
    let mut next = 0;
    c.bench_function("jwt_hs256_verify_and_entitle_distinct_tokens", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            let v = auth.verify(black_box(&tokens[next])).unwrap();
            black_box(auth.entitlement(v).unwrap())
        })
    });
}

fn clearkey(c: &mut Criterion) {
    let kids: Vec<String> = (0..3u8)
        .map(|i| tessera::encoding::b64url_encode(&[i; 16]))
        .collect();
    let body = serde_json::json!({"kids": kids, "type": "temporary"}).to_string();
    c.bench_function("clearkey_parse_3_kids", |b| {
        b.iter(|| message::parse(black_box(body.as_bytes()), 128).unwrap())
    });
    let keys: Vec<(KeyId, ContentKey)> = (0..3u8)
        .map(|i| (KeyId::from_bytes([i; 16]), ContentKey::from_bytes([i; 16])))
        .collect();
    c.bench_function("clearkey_encode_3_keys", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(300);
            message::encode(
                keys.iter().map(|(k, v)| (k, v)),
                SessionType::Temporary,
                &mut out,
            );
            black_box(out)
        })
    });
}

fn keyring(c: &mut Criterion) {
    let ring = Keyring::new(MasterKey::from_bytes([7; 32]));
    let meta = KeyMeta {
        kid: KeyId::from_bytes([1; 16]),
        content_id: "movie-1".into(),
        track: Some(TrackType::Hd),
        period: None,
        created_at: 0,
        state: KeyState::Active,
    };
    let key = ContentKey::from_bytes([9; 16]);
    let sealed = ring.seal("demo", &meta, &key).unwrap();
    c.bench_function("key_seal_aes256gcm", |b| {
        b.iter(|| ring.seal("demo", black_box(&meta), &key).unwrap())
    });
    c.bench_function("key_open_aes256gcm", |b| {
        b.iter(|| ring.open("demo", black_box(&meta), &sealed).unwrap())
    });
    c.bench_function("kid_canonical", |b| {
        b.iter(|| black_box(meta.kid).canonical())
    });
}

/// The Widevine-style licence, step by step, on the pieces the handler calls (no HTTP, no
/// store): what a warm licence costs besides the token and the transport.
fn widevine(c: &mut Criterion) {
    use prost::Message;
    use tessera::protocol::widevine::pb::license_request::ContentIdentification;
    use tessera::protocol::widevine::pb::license_request::content_identification::{
        ContentIdVariant, WidevinePsshData,
    };
    use tessera::protocol::widevine::{device, license, message, pb, provision};
    let root = provision::Root::generate(1).unwrap();
    let dev = root
        .device(
            &provision::DeviceOptions {
                system_id: 7,
                max_hdcp: pb::client_identification::client_capabilities::HdcpVersion::HdcpV22,
                expires_at: 0,
            },
            1,
        )
        .unwrap();
    let kids: Vec<KeyId> = (1..=3u8).map(|b| KeyId::from_bytes([b; 16])).collect();
    let request = pb::LicenseRequest {
        client_id: Some(pb::ClientIdentification::decode(&dev.client_id[..]).unwrap()),
        content_id: Some(ContentIdentification {
            content_id_variant: Some(ContentIdVariant::WidevinePsshData(WidevinePsshData {
                pssh_data: vec![
                    pb::WidevinePsshData {
                        key_ids: kids.iter().map(|k| k.as_bytes().to_vec()).collect(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                ],
                license_type: Some(1),
                request_id: Some(vec![1; 16]),
            })),
        }),
        r#type: Some(1),
        ..Default::default()
    };
    let msg = request.encode_to_vec();
    let body = pb::SignedMessage {
        r#type: Some(1),
        signature: Some(dev.key.sign_pss_sha1(&msg).unwrap()),
        msg: Some(msg.clone()),
        ..Default::default()
    }
    .encode_to_vec();
    let trust = device::Trust::new(
        device::TrustConfig {
            roots: vec![root.key.public_key().unwrap()],
            revoked_serials: Default::default(),
            revoked_system_ids: Default::default(),
            levels: Default::default(),
            default_level: tessera::license::policy::SecurityLevel::SwSecureDecode,
        },
        16,
    );
    let parsed = || match message::parse(&body).unwrap() {
        message::Incoming::License(r) => r,
        message::Incoming::ServiceCertificateRequest => unreachable!(),
    };
    let r = parsed();
    let client = r.request.client_id.clone().unwrap();
    let verified = trust.verify(&client, 2).unwrap();
    trust.remember(&verified);
    let device = verified.device.clone();
    let keys: Vec<ContentKey> = (1..=3u8).map(|b| ContentKey::from_bytes([b; 16])).collect();
    let (session_key, wrapped) = license::new_session_key(&device.key).unwrap();
    let session = license::derive_keys(&session_key, &msg);

    let mut g = c.benchmark_group("widevine");
    g.bench_function("parse request + kids", |b| {
        b.iter(|| {
            let r = parsed();
            black_box(message::content(&r.request, 16).unwrap());
        })
    });
    g.bench_function("device chain (cached)", |b| {
        b.iter(|| black_box(trust.verify(&client, 2).unwrap()))
    });
    g.bench_function("request signature (PSS-SHA1)", |b| {
        b.iter(|| {
            assert!(device.key.verify_pss(
                tessera::crypto::rsa::PssHash::Sha1,
                black_box(&r.msg),
                &r.signature
            ))
        })
    });
    g.bench_function("session key (OAEP-SHA1)", |b| {
        b.iter(|| black_box(license::new_session_key(&device.key).unwrap()))
    });
    g.bench_function("kdf", |b| {
        b.iter(|| black_box(license::derive_keys(&session_key, black_box(&msg))))
    });
    g.bench_function("build + sign licence (3 keys)", |b| {
        b.iter(|| {
            let entries: Vec<_> = kids
                .iter()
                .zip(&keys)
                .map(|(kid, key)| license::KeyEntry {
                    kid: *kid,
                    key,
                    level: pb::license::key_container::SecurityLevel::SwSecureDecode,
                    required_protection: None,
                    track_label: Some("SD"),
                })
                .collect();
            black_box(
                license::build(
                    license::Params {
                        id: pb::LicenseIdentification {
                            request_id: Some(vec![1; 16]),
                            session_id: Some(vec![2; 200]),
                            ..Default::default()
                        },
                        policy: pb::license::Policy::default(),
                        start_time: 1,
                        protection_scheme: None,
                    },
                    &entries,
                    &session,
                    Some(wrapped.clone()),
                )
                .unwrap(),
            )
        })
    });
    g.finish();
}

/// One audit record, as every licence writes it.
fn audit(c: &mut Criterion) {
    let kids = vec![KeyId::from_bytes([0xab; 16]), KeyId::from_bytes([1; 16])];
    let mut out = Vec::with_capacity(512);
    c.bench_function("audit_record_encode", |b| {
        b.iter(|| {
            out.clear();
            tessera::audit::Record {
                ts_ms: 1_795_000_000_123,
                event: "key.release",
                tenant: "demo",
                protocol: "clearkey",
                kids: kids.clone(),
                content_id: None,
                subject: Some("viewer-42"),
                token_id: Some("0123456789abcdef0123456789abcdef"),
                device: None,
                request_id: "5e2f3c1a00000001",
                client: "127.0.0.1:51234".parse().unwrap(),
            }
            .encode(black_box(&mut out));
            black_box(out.len())
        })
    });
}

criterion_group!(benches, jwt, clearkey, keyring, widevine, audit);
criterion_main!(benches);
