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
            let v = auth.verify(black_box(&token), now).unwrap();
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

criterion_group!(benches, jwt, clearkey, keyring);
criterion_main!(benches);
