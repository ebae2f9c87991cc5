//! JWS signatures for `jsonwebtoken`, on ring: the [`CryptoProvider`] Tessera installs, so
//! token signatures stay on the library the rest of this module uses. jsonwebtoken is built
//! without its own providers (`rust_crypto`, `aws_lc_rs`): this is the only one.
//!
//! jsonwebtoken never compares a key's family with the header's algorithm
//! (`decoding.rs`, `verify_signature_body`): each factory here does, so an RSA key's bytes can
//! never be used as an HMAC secret whatever a `Validation` says.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind, Result, new_error};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SigError, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};
use ring::{digest, hmac};

/// The provider; [`install`] makes it jsonwebtoken's process default.
pub static RING: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private,
        rsa_pub_components_from_public_key: rsa_components_from_public,
        ec_pub_components_from_private_key: ec_components_from_private,
        ed_pub_components_from_private_key: ed_component_from_private,
        compute_digest,
    },
};

/// Installs [`RING`] as jsonwebtoken's provider. Idempotent (every constructor of a
/// verifier or signer calls it, tests from many threads); an error only if another
/// provider was installed first.
pub fn install() -> std::result::Result<(), &'static str> {
    let _ = CryptoProvider::install_default(&RING);
    match CryptoProvider::try_get_default() {
        Some(p) if std::ptr::eq(p, &RING) => Ok(()),
        _ => Err("jsonwebtoken has another CryptoProvider installed"),
    }
}

fn err(kind: ErrorKind) -> JwtError {
    new_error(kind)
}

fn hmac_alg(alg: Algorithm) -> Option<hmac::Algorithm> {
    Some(match alg {
        Algorithm::HS256 => hmac::HMAC_SHA256,
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    })
}

fn rsa_params(alg: Algorithm) -> Option<&'static rs::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &rs::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &rs::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &rs::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &rs::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn rsa_padding(alg: Algorithm) -> Option<&'static dyn rs::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &rs::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &rs::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &rs::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &rs::RSA_PSS_SHA256,
        Algorithm::PS384 => &rs::RSA_PSS_SHA384,
        Algorithm::PS512 => &rs::RSA_PSS_SHA512,
        _ => return None,
    })
}

/// A prepared HMAC key with the algorithm and secret it was prepared from.
type PreparedHmac = (Algorithm, zeroize::Zeroizing<Vec<u8>>, hmac::Key);

thread_local! {
    /// The HMAC key this thread prepared last, with the secret it was prepared from. A
    /// server verifies token after token with the same tenant secret; jsonwebtoken's factory
    /// is a plain function that gets the secret's bytes each time, and preparing a key (two
    /// SHA-2 compressions for the pads) is a measurable share of a token's verification
    /// (`docs/architecture.md`). The secret is compared whole, in constant time, so a hit can
    /// only ever return the key of these very bytes; the copy is zeroized when replaced.
    static LAST_HMAC: std::cell::RefCell<Option<PreparedHmac>> =
        const { std::cell::RefCell::new(None) };
}

/// The prepared HMAC key of `secret`, from this thread's last one when it is the same.
fn hmac_key(alg: Algorithm, h: hmac::Algorithm, secret: &[u8]) -> hmac::Key {
    LAST_HMAC.with_borrow_mut(|last| {
        if let Some((a, s, key)) = last.as_ref()
            && *a == alg
            && super::ct_eq(s, secret)
        {
            return key.clone();
        }
        let key = hmac::Key::new(h, secret);
        *last = Some((alg, zeroize::Zeroizing::new(secret.to_vec()), key.clone()));
        key
    })
}

/// A public key ready for one verification. jsonwebtoken's factory is a plain function
/// pointer that must return an owned verifier, so the key material is copied (EC and
/// Ed25519 inline, without a heap allocation) and an HMAC key comes from [`hmac_key`].
enum Public {
    Hmac(hmac::Key),
    RsaDer(&'static rs::RsaParameters, Vec<u8>),
    RsaNe(&'static rs::RsaParameters, Vec<u8>, Vec<u8>),
    Ec(&'static rs::EcdsaVerificationAlgorithm, [u8; 97], usize),
    Ed([u8; 32]),
}

struct RingVerifier {
    alg: Algorithm,
    key: Public,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), SigError> {
        let ok = match &self.key {
            // Constant time (ring compares the tag with `constant_time::verify_slices_are_equal`).
            Public::Hmac(k) => hmac::verify(k, msg, sig).is_ok(),
            Public::RsaDer(p, der) => rs::UnparsedPublicKey::new(*p, der).verify(msg, sig).is_ok(),
            Public::RsaNe(p, n, e) => rs::RsaPublicKeyComponents { n, e }
                .verify(p, msg, sig)
                .is_ok(),
            Public::Ec(a, point, len) => rs::UnparsedPublicKey::new(*a, &point[..*len])
                .verify(msg, sig)
                .is_ok(),
            Public::Ed(k) => rs::UnparsedPublicKey::new(&rs::ED25519, k)
                .verify(msg, sig)
                .is_ok(),
        };
        if ok { Ok(()) } else { Err(SigError::new()) }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != alg.family() {
        return Err(err(ErrorKind::InvalidKeyFormat));
    }
    let alg = *alg;
    let public = if let Some(h) = hmac_alg(alg) {
        Public::Hmac(hmac_key(alg, h, key.try_get_as_bytes()?))
    } else if let Some(p) = rsa_params(alg) {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => Public::RsaDer(p, der.clone()),
            DecodingKeyKind::RsaModulusExponent { n, e } => Public::RsaNe(p, n.clone(), e.clone()),
        }
    } else {
        let bytes = key.try_get_as_bytes()?;
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let (a, len): (&'static rs::EcdsaVerificationAlgorithm, usize) =
                    if alg == Algorithm::ES256 {
                        (&rs::ECDSA_P256_SHA256_FIXED, 65)
                    } else {
                        (&rs::ECDSA_P384_SHA384_FIXED, 97)
                    };
                if bytes.len() != len {
                    return Err(err(ErrorKind::InvalidEcdsaKey));
                }
                let mut point = [0u8; 97];
                point[..len].copy_from_slice(bytes);
                Public::Ec(a, point, len)
            }
            Algorithm::EdDSA => Public::Ed(
                bytes
                    .try_into()
                    .map_err(|_| err(ErrorKind::InvalidEddsaKey))?,
            ),
            _ => return Err(err(ErrorKind::UnsupportedAlgorithm)),
        }
    };
    Ok(Box::new(RingVerifier { alg, key: public }))
}

enum Private {
    Hmac(hmac::Key),
    Rsa(rs::RsaKeyPair, &'static dyn rs::RsaEncoding),
    Ecdsa(rs::EcdsaKeyPair),
    Ed(rs::Ed25519KeyPair),
}

struct RingSigner {
    alg: Algorithm,
    key: Private,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SigError> {
        let rng = SystemRandom::new();
        match &self.key {
            Private::Hmac(k) => Ok(hmac::sign(k, msg).as_ref().to_vec()),
            Private::Rsa(k, padding) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(*padding, &rng, msg, &mut out)
                    .map_err(|_| SigError::new())?;
                Ok(out)
            }
            Private::Ecdsa(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigError::new()),
            Private::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// An RSA key pair from PKCS#8 (what `tessera token` reads), or PKCS#1 `RSAPrivateKey`.
fn rsa_pair(der: &[u8]) -> Result<rs::RsaKeyPair> {
    rs::RsaKeyPair::from_pkcs8(der)
        .or_else(|_| rs::RsaKeyPair::from_der(der))
        .map_err(|e| err(ErrorKind::InvalidRsaKey(e.to_string())))
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if key.family() != alg.family() {
        return Err(err(ErrorKind::InvalidKeyFormat));
    }
    let (alg, der) = (*alg, key.as_bytes());
    let private = if let Some(h) = hmac_alg(alg) {
        Private::Hmac(hmac::Key::new(h, der))
    } else if let Some(padding) = rsa_padding(alg) {
        Private::Rsa(rsa_pair(der)?, padding)
    } else {
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let a = if alg == Algorithm::ES256 {
                    &rs::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &rs::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                Private::Ecdsa(
                    rs::EcdsaKeyPair::from_pkcs8(a, der, &SystemRandom::new())
                        .map_err(|_| err(ErrorKind::InvalidEcdsaKey))?,
                )
            }
            // maybe_unchecked: OpenSSL writes v1 PKCS#8 without the public key.
            Algorithm::EdDSA => Private::Ed(
                rs::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| err(ErrorKind::InvalidEddsaKey))?,
            ),
            _ => return Err(err(ErrorKind::UnsupportedAlgorithm)),
        }
    };
    Ok(Box::new(RingSigner { alg, key: private }))
}

/// Parses a signing key now, so a bad one is refused when it is configured, not when the
/// first token is signed.
pub fn check_signing_key(alg: Algorithm, key: &EncodingKey) -> std::result::Result<(), JwtError> {
    new_signer(&alg, key).map(drop)
}

// KeyUtils: only `Jwk::from_encoding_key`, `from_decoding_key` and `thumbprint` use these;
// Tessera calls none of them, but none may panic.

fn rsa_components_from_private(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let c = rs::RsaPublicKeyComponents::<Vec<u8>>::from(rsa_pair(der)?.public());
    Ok((c.n, c.e))
}

fn rsa_components_from_public(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    // ring exposes no parser for an `RSAPublicKey` DER.
    Err(err(ErrorKind::Provider(
        "RSA public-key components are not available from ring".into(),
    )))
}

fn ec_components_from_private(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (a, curve, n) = match alg {
        Algorithm::ES256 => (
            &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &rs::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(err(ErrorKind::InvalidEcdsaKey)),
    };
    let pair = rs::EcdsaKeyPair::from_pkcs8(a, der, &SystemRandom::new())
        .map_err(|_| err(ErrorKind::InvalidEcdsaKey))?;
    let p = pair.public_key().as_ref();
    if p.len() != 1 + 2 * n || p[0] != 4 {
        return Err(err(ErrorKind::InvalidEcdsaKey));
    }
    Ok((curve, p[1..1 + n].to_vec(), p[1 + n..].to_vec()))
}

fn ed_component_from_private(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(err(ErrorKind::InvalidEddsaKey));
    }
    let pair = rs::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|_| err(ErrorKind::InvalidEddsaKey))?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn compute_digest(data: &[u8], h: ThumbprintHash) -> Result<Vec<u8>> {
    let a = match h {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(err(ErrorKind::UnsupportedAlgorithm)),
    };
    Ok(digest::digest(a, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_serves_another_family() {
        install().unwrap();
        install().unwrap();
        let rsa = DecodingKey::from_rsa_der(&[0x30, 0x00]);
        assert!(new_verifier(&Algorithm::HS256, &rsa).is_err());
        let secret = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        assert!(new_verifier(&Algorithm::RS256, &secret).is_err());
        assert!(new_verifier(&Algorithm::HS256, &secret).is_ok());
        let p256 = DecodingKey::from_ec_der(&[4; 65]);
        assert!(
            new_verifier(&Algorithm::ES384, &p256).is_err(),
            "a P-256 point is not a P-384 key"
        );
    }

    #[test]
    fn the_reused_hmac_key_is_always_the_secret_s_own() {
        install().unwrap();
        let a = b"0123456789abcdef0123456789abcdef";
        let b = b"0123456789abcdef0123456789abcdeF";
        let sign = |secret: &[u8]| {
            new_signer(
                &Algorithm::HS256,
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap()
            .try_sign(b"msg")
            .unwrap()
        };
        let (sig_a, sig_b) = (sign(a), sign(b));
        for _ in 0..3 {
            for (secret, own, other) in [(a, &sig_a, &sig_b), (b, &sig_b, &sig_a)] {
                let v = new_verifier(
                    &Algorithm::HS256,
                    &DecodingKey::from_secret(secret).unwrap(),
                )
                .unwrap();
                assert!(v.verify(b"msg", own).is_ok());
                assert!(v.verify(b"msg", other).is_err());
            }
            // Same secret, another algorithm: never the HS256 key.
            let v = new_verifier(
                &Algorithm::HS384,
                &DecodingKey::from_secret(&[7; 48]).unwrap(),
            );
            assert!(v.unwrap().verify(b"msg", &sig_a).is_err());
        }
    }

    #[test]
    fn hmac_signatures_round_trip() {
        install().unwrap();
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let sig = new_signer(&Algorithm::HS256, &key)
            .unwrap()
            .try_sign(b"msg")
            .unwrap();
        let dec = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let v = new_verifier(&Algorithm::HS256, &dec).unwrap();
        assert!(v.verify(b"msg", &sig).is_ok());
        assert!(v.verify(b"msh", &sig).is_err());
    }
}
