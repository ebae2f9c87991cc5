//! Unit tests of BCert chains: the documented layout, refusals, trust and revocation.

use super::*;
use crate::crypto::ecc::EccPrivateKey;
use crate::license::policy::SecurityLevel;

pub(crate) fn issuer(id: u8, key: &EccPrivateKey, usage: u32, level: u32) -> CertSpec {
    CertSpec {
        cert_id: [id; 16],
        security_level: level,
        cert_type: cert_type::ISSUER,
        client_id: [0; 16],
        expiration: NEVER,
        keys: vec![CertKey {
            key: *key.public(),
            usages: vec![usage],
        }],
        features: None,
        manufacturer: Some(Manufacturer {
            name: "Tessera".into(),
            model_name: "model-a".into(),
            model_number: "1".into(),
        }),
    }
}

struct Fixture {
    root: EccPrivateKey,
    chain: Vec<u8>,
    sign: EccPrivateKey,
    encrypt: EccPrivateKey,
}

fn fixture(level: u32, expiration: u32) -> Fixture {
    fixture_named(level, expiration, "model-a")
}

fn fixture_named(level: u32, expiration: u32, leaf_model: &str) -> Fixture {
    let root = EccPrivateKey::generate().unwrap();
    let inter = EccPrivateKey::generate().unwrap();
    let group = EccPrivateKey::generate().unwrap();
    let sign = EccPrivateKey::generate().unwrap();
    let encrypt = EccPrivateKey::generate().unwrap();
    let leaf = CertSpec {
        cert_id: [3; 16],
        security_level: level,
        cert_type: cert_type::DEVICE,
        client_id: [9; 16],
        expiration,
        keys: vec![
            CertKey {
                key: *sign.public(),
                usages: vec![usage::SIGN],
            },
            CertKey {
                key: *encrypt.public(),
                usages: vec![usage::ENCRYPT_KEY],
            },
        ],
        features: Some(vec![
            feature::SECURE_CLOCK,
            feature::SUPPORTS_CRLS,
            feature::SUPPORTS_PR3_FEATURES,
        ]),
        manufacturer: Some(Manufacturer {
            name: "Tessera".into(),
            model_name: leaf_model.into(),
            model_number: "1".into(),
        }),
    };
    let chain = chain(&[
        leaf.build(&group).unwrap(),
        issuer(2, &group, usage::ISSUER_DEVICE, 2000)
            .build(&inter)
            .unwrap(),
        issuer(1, &inter, usage::ISSUER_ALL, 3000)
            .build(&root)
            .unwrap(),
    ]);
    Fixture {
        root,
        chain,
        sign,
        encrypt,
    }
}

#[test]
fn builds_the_documented_layout_and_verifies() {
    let f = fixture(2000, NEVER);
    let certs = parse_chain(&f.chain).unwrap();
    assert_eq!(certs.len(), 3);
    // §2.5: a device leaf is 364 signed bytes, 508 in all, with this manufacturer.
    let leaf_len = certs[0].signed.end + 144 - certs[0].signed.start;
    // Header, BASIC 88, DEVICE 20, FEATURE 24, KEY 172, MANUFACTURER 44: §2.5's 364
    // signed bytes (508 in all) for a leaf, 240 for an issuer.
    assert_eq!(certs[0].signed.len(), 16 + 88 + 20 + 24 + 172 + 44);
    assert_eq!(certs[0].signed.len(), 364);
    assert_eq!(leaf_len, 508);
    assert_eq!(certs[1].signed.len(), 240);
    assert_eq!(split_chain(&f.chain).unwrap().len(), 3);
    let d = verify_chain(&f.chain, &[*f.root.public()], cert_type::DEVICE, None).unwrap();
    assert_eq!(&d.sign_key, f.sign.public());
    assert_eq!(&d.encrypt_key, f.encrypt.public());
    assert_eq!(d.security_level, 2000);
    // SL2000 includes hardened software: never more than software decode.
    assert_eq!(d.level(), SecurityLevel::SwSecureDecode);
    assert_eq!(d.cert_ids, vec![[3; 16], [2; 16], [1; 16]]);
    assert_eq!(d.model.as_deref(), Some("model-a"));
    // The chain rebuilt from its parts is the same bytes.
    assert_eq!(chain(&split_chain(&f.chain).unwrap()), f.chain);
}

#[test]
fn refusals() {
    let f = fixture(2000, NEVER);
    let roots = [*f.root.public()];
    let other = [*EccPrivateKey::generate().unwrap().public()];
    assert_eq!(
        verify_chain(&f.chain, &other, cert_type::DEVICE, None).unwrap_err(),
        Error::UntrustedRoot
    );
    assert!(matches!(
        verify_chain(&f.chain, &roots, cert_type::SERVER, None).unwrap_err(),
        Error::Structure(_)
    ));
    // Any flipped byte in a signed part breaks a signature or the structure.
    for at in [30, 100, 400, 600, 900] {
        let mut bad = f.chain.clone();
        bad[at] ^= 0x40;
        assert!(
            verify_chain(&bad, &roots, cert_type::DEVICE, None).is_err(),
            "{at}"
        );
    }
    // Truncation and trailing bytes.
    assert!(parse_chain(&f.chain[..f.chain.len() - 1]).is_err());
    let mut long = f.chain.clone();
    long.push(0);
    assert!(parse_chain(&long).is_err());
    // A leaf claiming more than its model: refused.
    let g = fixture(3000, NEVER);
    assert!(matches!(
        verify_chain(&g.chain, &[*g.root.public()], cert_type::DEVICE, None).unwrap_err(),
        Error::Structure(_)
    ));
}

/// The model name is the model certificate's: a holder of the model key who writes
/// another name into a leaf is still revoked with the model.
#[test]
fn model_revocation_reads_the_model_certificate() {
    let f = fixture_named(2000, NEVER, "innocent");
    let t = Trust::new(
        TrustConfig {
            roots: vec![*f.root.public()],
            revoked_models: ["model-a".to_owned()].into(),
            ..Default::default()
        },
        2,
    );
    assert_eq!(
        t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
        Error::Revoked("model")
    );
}

#[test]
fn signing_key_duplicates_and_off_curve_keys() {
    let f = fixture(2000, NEVER);
    let roots = [*f.root.public()];
    // The challenge's key must be the leaf's SIGN key (the ENCRYPT_KEY is not).
    assert_eq!(
        verify_chain(
            &f.chain,
            &roots,
            cert_type::DEVICE,
            Some(f.encrypt.public())
        )
        .unwrap_err(),
        Error::KeyMismatch
    );
    let t = Trust::new(
        TrustConfig {
            roots: roots.to_vec(),
            ..Default::default()
        },
        2,
    );
    let v = t.verify(&f.chain, f.sign.public(), 1).unwrap();
    t.remember(&v);
    // Also from the cache.
    assert_eq!(
        t.verify(&f.chain, f.encrypt.public(), 1).unwrap_err(),
        Error::KeyMismatch
    );
    // A leaf with an off-curve key or a duplicate attribute, validly signed by its
    // model: refused as malformed before any signature is checked.
    let group = EccPrivateKey::generate().unwrap();
    let mut spec = issuer(5, &group, usage::ISSUER_DEVICE, 2000);
    spec.keys[0].key[63] ^= 1;
    let bad = spec.build(&group).unwrap();
    assert!(matches!(
        verify_chain(&chain(&[bad]), &[*group.public()], cert_type::ISSUER, None),
        Err(Error::Structure(_))
    ));
    let good = issuer(5, &group, usage::ISSUER_DEVICE, 2000)
        .build(&group)
        .unwrap();
    // Duplicate the BASIC attribute (88 bytes after the 16-byte header), fixing the
    // length fields: the parser refuses it whatever the signature.
    let mut dup = good[..16 + 88].to_vec();
    dup.extend_from_slice(&good[16..16 + 88]);
    dup.extend_from_slice(&good[16 + 88..]);
    let total = dup.len() as u32;
    let signed = u32::from_be_bytes(good[12..16].try_into().unwrap()) + 88;
    dup[8..12].copy_from_slice(&total.to_be_bytes());
    dup[12..16].copy_from_slice(&signed.to_be_bytes());
    assert_eq!(
        parse_chain(&chain(&[dup])).unwrap_err(),
        Error::Malformed("a duplicate attribute")
    );
}

#[test]
fn trust_expiry_revocation_and_cache() {
    let f = fixture(150, 2_000_000_000);
    let mut cfg = TrustConfig {
        roots: vec![*f.root.public()],
        ..Default::default()
    };
    let t = Trust::new(
        TrustConfig {
            roots: cfg.roots.clone(),
            ..Default::default()
        },
        2,
    );
    let v = t.verify(&f.chain, f.sign.public(), 1_000).unwrap();
    assert!(!v.cached());
    t.remember(&v);
    assert!(t.verify(&f.chain, f.sign.public(), 1_000).unwrap().cached());
    assert_eq!(
        t.verify(&f.chain, f.sign.public(), 2_000_000_000)
            .unwrap_err(),
        Error::Expired
    );
    cfg.revoked_cert_ids.insert([2; 16]);
    let t = Trust::new(cfg, 2);
    assert_eq!(
        t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
        Error::Revoked("certificate id")
    );
    let t = Trust::new(
        TrustConfig {
            roots: vec![*f.root.public()],
            revoked_models: ["model-a".to_owned()].into(),
            ..Default::default()
        },
        2,
    );
    assert_eq!(
        t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
        Error::Revoked("model")
    );
}
