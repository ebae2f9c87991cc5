//! Narrow internal API over `ring`: the only module that names a cryptographic library.
//!
//! Everything Tessera needs for the core lives here: AES-256-GCM sealing (keys at rest), HKDF
//! (key-encryption keys), HMAC (deterministic key ids), the JWS signatures jsonwebtoken
//! computes through [`jws`], constant-time comparison and the system CSPRNG. Protocol modules add their primitives here too, so a change of
//! backend (aws-lc-rs for FIPS, say) touches one folder. ring is the default
//! because it is the fastest option measured here for what the core needs; [`rsa`] explains
//! why the Widevine-style RSA operations use OpenSSL, and [`symmetric`] holds AES-CBC/CMAC.

pub mod ecc;
pub mod jws;
pub mod rsa;
pub mod symmetric;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

/// Errors of the crypto module. Deliberately uninformative: which check failed inside an
/// AEAD open is nobody's business.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Authentication failed: wrong key, wrong AAD or tampered ciphertext.
    #[error("authenticated decryption failed")]
    Open,
    /// The sealed blob is shorter than its header or has an unknown version.
    #[error("sealed blob is malformed")]
    Malformed,
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

/// Version byte of the sealed-blob format below; bump it when the layout changes.
const SEAL_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// An AES-256-GCM key for sealing small secrets (content keys) with associated data.
///
/// Sealed layout: `version(1) || nonce(12) || ciphertext || tag(16)`. Nonces are random: a
/// tenant key seals far fewer than the 2^32 messages after which random 96-bit nonces become
/// a concern (NIST SP 800-38D §8.3).
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// Builds a key from 32 secret bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        // Invariant: AES_256_GCM takes exactly 32 bytes, which the type guarantees.
        #[expect(clippy::expect_used, reason = "key length is fixed by the type")]
        let unbound = UnboundKey::new(&aead::AES_256_GCM, bytes).expect("32-byte AES-256 key");
        Self(LessSafeKey::new(unbound))
    }

    /// Encrypts and authenticates `plaintext`, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.seal_with_nonce(random_array()?, aad, plaintext)
    }

    /// [`SealingKey::seal`] with a zero nonce: only for a key that seals exactly one message
    /// (derived per message from a random salt), where a nonce adds nothing and drawing one
    /// would cost a system call.
    pub fn seal_single_use(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.seal_with_nonce([0; NONCE_LEN], aad, plaintext)
    }

    fn seal_with_nonce(
        &self,
        nonce_bytes: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce_bytes);
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| Error::Open)?;
        out.extend_from_slice(&body);
        body.iter_mut().for_each(|b| *b = 0);
        Ok(out)
    }

    /// Authenticates and decrypts a blob made by [`SealingKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_V1 {
            return Err(Error::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| Error::Open)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// HKDF-SHA256 (RFC 5869) of `ikm` into a 32-byte output.
pub fn hkdf_sha256_32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    let info = [info];
    // Invariant: 32 bytes is far below HKDF-SHA256's 255*32 output limit, so expand and fill
    // cannot fail.
    #[expect(clippy::expect_used, reason = "output length is a valid HKDF length")]
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 with a 32-byte output");
    out
}

/// HMAC algorithms used by Tessera (JWT HS256/384/512).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacAlg {
    /// HMAC-SHA256
    Sha256,
    /// HMAC-SHA384
    Sha384,
    /// HMAC-SHA512
    Sha512,
}

impl HmacAlg {
    fn ring(self) -> hmac::Algorithm {
        match self {
            HmacAlg::Sha256 => hmac::HMAC_SHA256,
            HmacAlg::Sha384 => hmac::HMAC_SHA384,
            HmacAlg::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A prepared HMAC key. ring pre-computes the inner and outer pads once, so a key used on
/// every request (key-id derivation, Widevine-style session sealing) pays for them once.
#[derive(Clone)]
pub struct HmacKey(hmac::Key);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    /// Prepares `secret` for `alg`.
    pub fn new(alg: HmacAlg, secret: &[u8]) -> Self {
        Self(hmac::Key::new(alg.ring(), secret))
    }

    /// Computes the tag of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        hmac::sign(&self.0, msg).as_ref().to_vec()
    }

    /// Verifies `tag` over `msg` in constant time.
    pub fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, msg, tag).is_ok()
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // XOR-accumulate so the loop's timing does not depend on where the first difference is.
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Fills a buffer from the system CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Rng)
}

/// Fills a buffer from OpenSSL's DRBG (NIST SP 800-90A CTR_DRBG, per thread, seeded and
/// reseeded from the operating system). For per-licence values (session keys, IVs): the
/// system CSPRNG ([`fill_random`]) costs a `getrandom` system call per call, several times
/// per Widevine-style licence.
pub fn fill_random_fast(buf: &mut [u8]) -> Result<(), Error> {
    openssl::rand::rand_priv_bytes(buf).map_err(|_| Error::Rng)
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-1 digest, for protocols that mandate it (the Widevine-style key API's request
/// signature); never for anything Tessera chooses itself.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// Fills an array from the system CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| Error::Rng)?;
    Ok(out)
}

/// Public-key signature verification algorithms (JWS RS*, PS*, ES*, EdDSA).
pub mod signature {
    pub use ring::rand::SystemRandom;
    pub use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED, ED25519,
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256,
        RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384,
        RSA_PKCS1_SHA512, RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384,
        RSA_PSS_2048_8192_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512, RsaEncoding,
        RsaKeyPair, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey,
        VerificationAlgorithm,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn open_refuses_wrong_aad_key_and_tampering() {
        let key = SealingKey::new(&[7u8; 32]);
        let sealed = key.seal(b"tenant|kid", b"sixteen byte key").unwrap();
        assert_eq!(
            &key.open(b"tenant|kid", &sealed).unwrap()[..],
            b"sixteen byte key"
        );
        assert!(matches!(
            key.open(b"tenant|other", &sealed),
            Err(Error::Open)
        ));
        assert!(matches!(
            SealingKey::new(&[8u8; 32]).open(b"tenant|kid", &sealed),
            Err(Error::Open)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            key.open(b"tenant|kid", &tampered),
            Err(Error::Open)
        ));
        assert!(matches!(
            key.open(b"x", &sealed[..10]),
            Err(Error::Malformed)
        ));
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1_prefix() {
        // RFC 5869 A.1: IKM 0x0b*22, salt 0x00..0x0c, info 0xf0..0xf9; OKM's first 32 bytes.
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm = hkdf_sha256_32(&[0x0b; 22], &salt, &info);
        assert_eq!(
            okm[..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn seal_open_round_trips(key in any::<[u8; 32]>(), aad in proptest::collection::vec(any::<u8>(), 0..64),
                                 msg in proptest::collection::vec(any::<u8>(), 0..64)) {
            let k = SealingKey::new(&key);
            let sealed = k.seal(&aad, &msg).unwrap();
            prop_assert_eq!(&k.open(&aad, &sealed).unwrap()[..], &msg[..]);
        }
    }
}
