//! Token verification, the path every licence and key request takes, on arbitrary bytes:
//! the input as a token, and the input as the header and payload of tokens signed with real
//! HS256, ES256 and (rarely: RSA signing is slow) RS256 keys, so the fuzzer gets past the
//! signature into the claim checks and the entitlement parser. Any panic is a bug; every
//! input must end in `Ok` or an `auth::Error` whose code is one of `Error::CODES`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use tessera::auth::jwt::Alg;
use tessera::auth::mint::Signer;
use tessera::auth::replay::InMemoryReplayGuard;
use tessera::auth::{Authenticator, Error};
use tessera::config::{Config, SigningKeyConfig};

const ISS: &str = "https://idp.fuzz.test";
const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123";

fn vector(name: &str) -> String {
    format!("{}/../tests/vectors/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

static AUTH: LazyLock<Authenticator> = LazyLock::new(|| {
    let toml = format!(
        r#"
[limits]
max_token_bytes = 8192
[storage]
master_key = "0000000000000000000000000000000000000000000000000000000000000000"
[[tenants]]
id = "fuzz"
issuers = ["{ISS}"]
audiences = ["tessera"]
[[tenants.keys]]
kid = "hs"
algorithms = ["HS256"]
secret = "{SECRET}"
[[tenants.keys]]
kid = "rsa"
algorithms = ["RS256", "PS256"]
public_key_file = "{rsa}"
[[tenants.keys]]
kid = "ec"
algorithms = ["ES256"]
certificate_file = "{crt}"
"#,
        rsa = vector("rsa2048.pub.pem"),
        crt = vector("p256.crt"),
    );
    let cfg = Config::from_toml(&toml).expect("fuzz config");
    Authenticator::from_config(&cfg, Arc::new(InMemoryReplayGuard::new(4096))).expect("fuzz keys")
});

static SIGNERS: LazyLock<[Signer; 3]> = LazyLock::new(|| {
    let pkcs8 = |kid: &str, alg: &str, file: &str| {
        Signer::from_config(
            &SigningKeyConfig {
                kid: Some(kid.into()),
                algorithm: alg.into(),
                private_key_file: Some(vector(file).into()),
                ..Default::default()
            },
            true,
        )
        .expect("fuzz signer")
    };
    [
        Signer::hmac(Some("hs".into()), Alg::HS256, SECRET.as_bytes()).expect("hmac"),
        pkcs8("ec", "ES256", "p256.pem"),
        pkcs8("rsa", "RS256", "rsa2048.pem"),
    ]
});

fn check(token: &str) {
    match AUTH.verify(token) {
        Ok(v) => {
            assert_eq!(AUTH.tenant_id(v.tenant), "fuzz");
            let _ = AUTH.entitlement(v);
        }
        Err(e) => assert!(Error::CODES.contains(&e.code()), "{e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    // Structured: byte 0 picks the key; the rest is "header JSON 0xff payload JSON",
    // signed as it is.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (header, payload) = match rest.iter().position(|b| *b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256","kid":"hs"}"#[..], rest),
    };
    let signer = match pick % 64 {
        0 => &SIGNERS[2],
        p if p % 2 == 1 => &SIGNERS[1],
        _ => &SIGNERS[0],
    };
    if let Ok(token) = signer.sign_segments(header, payload) {
        check(&token);
    }
});
