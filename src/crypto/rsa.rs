//! RSA for the Widevine-style protocol (drm-interop.md §1.3-1.5): RSASSA-PSS with SHA-1 and
//! a 20-byte salt (device chains, request signatures, service certificates), RSAES-OAEP with
//! SHA-1 (session-key wrapping, privacy-mode unwrapping), key generation for test devices.
//!
//! # Why OpenSSL here and ring elsewhere
//! ring has neither PSS-SHA1 nor OAEP; aws-lc-rs has OAEP but no PSS with SHA-1; the `rsa`
//! crate has both but is several times slower and carries RUSTSEC-2023-0071 (a timing side
//! channel in private-key operations, which privacy mode performs on attacker-supplied
//! data). The system OpenSSL 3 (Debian's `libssl3`, patched by the distribution) has every
//! operation, in constant-time code, and is as fast as aws-lc: `load-tests/floor` prints
//! every backend side by side (figures in `docs/architecture.md`). Keys are parsed once
//! (device chains are cached), and the PSS-SHA1 verification and OAEP-SHA1 encryption
//! contexts of a key are kept in a small pool and reused: OpenSSL 3 documents
//! `EVP_PKEY_verify` and `EVP_PKEY_encrypt` as callable repeatedly on one initialised
//! context, and setting one up (provider fetches, parameters) is a sizeable share of a
//! verification.

use super::Error;
use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::pkey::{PKey, Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Contexts kept per key and operation: enough for every worker thread to hold one.
const POOL_SIZE: usize = 16;

/// Initialised OpenSSL contexts of one key for one operation. A context is taken out for the
/// duration of one call (the lock is held only to pop and push), so calls never share one.
#[derive(Default)]
struct Pool(Mutex<Vec<PkeyCtx<Public>>>);

impl Pool {
    fn with<T>(
        &self,
        make: impl FnOnce() -> Result<PkeyCtx<Public>, openssl::error::ErrorStack>,
        op: impl FnOnce(&mut PkeyCtx<Public>) -> Result<T, openssl::error::ErrorStack>,
    ) -> Result<T, openssl::error::ErrorStack> {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut ctx = match taken {
            Some(c) => c,
            None => make()?,
        };
        let out = op(&mut ctx);
        // A context whose operation failed is dropped, not reused: its state is unknown.
        if out.is_ok() {
            let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_SIZE {
                pool.push(ctx);
            }
        }
        out
    }
}

/// PSS salt length of the Widevine-style protocol (the SHA-1 digest length).
const PSS_SALT_LEN: i32 = 20;
/// Smallest modulus accepted from a peer. Every Widevine-style device key is RSA-2048.
pub const MIN_BITS: u32 = 2048;
/// Largest modulus accepted from a peer: bounds the cost an attacker can make us pay.
pub const MAX_BITS: u32 = 4096;

/// Digest used with PSS (the chain's `hash_algorithm`; MGF1 uses the same digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PssHash {
    /// SHA-1 (the protocol's default).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl PssHash {
    fn md(self) -> MessageDigest {
        match self {
            PssHash::Sha1 => MessageDigest::sha1(),
            PssHash::Sha256 => MessageDigest::sha256(),
            PssHash::Sha384 => MessageDigest::sha384(),
        }
    }
}

/// An RSA public key, with its reusable operation contexts.
#[derive(Clone)]
pub struct RsaPublicKey(PKey<Public>, Arc<Pools>);

#[derive(Default)]
struct Pools {
    pss_sha1: Pool,
    oaep_sha1: Pool,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.0.bits())
    }
}

impl RsaPublicKey {
    /// Parses a PKCS#1 `RSAPublicKey` (DER), the form DRM certificates carry, and checks
    /// the modulus size is within [`MIN_BITS`]..=[`MAX_BITS`].
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        let rsa = Rsa::public_key_from_der_pkcs1(der).map_err(|_| Error::Malformed)?;
        Self::checked(rsa)
    }

    /// Parses a PEM public key: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let rsa = Rsa::public_key_from_pem(pem)
            .or_else(|_| Rsa::public_key_from_pem_pkcs1(pem))
            .map_err(|_| Error::Malformed)?;
        Self::checked(rsa)
    }

    /// The RSA key of an X.509 certificate (DER), with its modulus size in bits. Keys outside
    /// [`MIN_BITS`]..=[`MAX_BITS`] are refused; [`RsaPublicKey::x509_bits`] tells a caller
    /// the size first so it can say why.
    pub fn from_x509_der(der: &[u8]) -> Result<(Self, u32), Error> {
        let cert = openssl::x509::X509::from_der(der).map_err(|_| Error::Malformed)?;
        let rsa = cert
            .public_key()
            .and_then(|k| k.rsa())
            .map_err(|_| Error::Malformed)?;
        let bits = rsa.n().num_bits().unsigned_abs();
        Ok((Self::checked(rsa)?, bits))
    }

    /// The modulus size of an X.509 certificate's RSA key (DER), without the size checks of
    /// [`RsaPublicKey::from_x509_der`], so a caller can say why a key is refused.
    pub fn x509_bits(der: &[u8]) -> Result<u32, Error> {
        let cert = openssl::x509::X509::from_der(der).map_err(|_| Error::Malformed)?;
        let rsa = cert
            .public_key()
            .and_then(|k| k.rsa())
            .map_err(|_| Error::Malformed)?;
        Ok(rsa.n().num_bits().unsigned_abs())
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.0.bits()
    }

    /// Parses a PKCS#1 or SPKI DER public key.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let rsa = Rsa::public_key_from_der(der)
            .or_else(|_| Rsa::public_key_from_der_pkcs1(der))
            .map_err(|_| Error::Malformed)?;
        Self::checked(rsa)
    }

    fn checked(rsa: Rsa<Public>) -> Result<Self, Error> {
        let bits = rsa.n().num_bits().unsigned_abs();
        if !(MIN_BITS..=MAX_BITS).contains(&bits) || rsa.e().num_bits() > 33 {
            return Err(Error::Malformed);
        }
        PKey::from_rsa(rsa)
            .map(|k| Self(k, Arc::default()))
            .map_err(|_| Error::Malformed)
    }

    /// PKCS#1 `RSAPublicKey` DER.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, Error> {
        self.0
            .rsa()
            .and_then(|r| r.public_key_to_der_pkcs1())
            .map_err(|_| Error::Malformed)
    }

    /// SPKI PEM (for operators' configuration files).
    pub fn to_pem(&self) -> Result<Vec<u8>, Error> {
        self.0.public_key_to_pem().map_err(|_| Error::Malformed)
    }

    /// Verifies an RSASSA-PSS signature (MGF1 with the same digest, salt 20).
    pub fn verify_pss(&self, hash: PssHash, msg: &[u8], sig: &[u8]) -> bool {
        // RFC 8017 §8.1.2 step 1: the signature is exactly k bytes. OpenSSL accepts a shorter
        // one whose leading zero bytes were dropped (for PGP); a wire format has one encoding.
        if sig.len() != self.0.size() {
            return false;
        }
        if hash == PssHash::Sha1 {
            // The per-request case (request signatures): a pooled context.
            let digest = openssl::sha::sha1(msg);
            let make = || {
                let mut c = PkeyCtx::new(&self.0)?;
                c.verify_init()?;
                c.set_rsa_padding(Padding::PKCS1_PSS)?;
                c.set_signature_md(Md::sha1())?;
                c.set_rsa_pss_saltlen(RsaPssSaltlen::custom(PSS_SALT_LEN))?;
                c.set_rsa_mgf1_md(Md::sha1())?;
                Ok(c)
            };
            // `verify` reports a bad signature as Ok(false) or as an error depending on
            // where it fails; both mean "does not verify".
            return self
                .1
                .pss_sha1
                .with(make, |c| c.verify(&digest, sig))
                .unwrap_or(false);
        }
        let run = || -> Result<bool, openssl::error::ErrorStack> {
            let mut v = Verifier::new(hash.md(), &self.0)?;
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(PSS_SALT_LEN))?;
            v.set_rsa_mgf1_md(hash.md())?;
            v.verify_oneshot(sig, msg)
        };
        run().unwrap_or(false)
    }

    /// RSAES-OAEP encryption with SHA-256 and MGF1-SHA-256, empty label (test clients of the
    /// FairPlay-style protocol; not on a hot path, so no context pool).
    pub fn encrypt_oaep_sha256(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut c = PkeyCtx::new(&self.0)?;
            c.encrypt_init()?;
            c.set_rsa_padding(Padding::PKCS1_OAEP)?;
            c.set_rsa_oaep_md(Md::sha256())?;
            c.set_rsa_mgf1_md(Md::sha256())?;
            let mut out = Vec::new();
            c.encrypt_to_vec(plaintext, &mut out)?;
            Ok(out)
        };
        run().map_err(|_| Error::Malformed)
    }

    /// RSAES-OAEP encryption with SHA-1 and MGF1-SHA-1, empty label.
    pub fn encrypt_oaep_sha1(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let make = || {
            let mut c = PkeyCtx::new(&self.0)?;
            c.encrypt_init()?;
            c.set_rsa_padding(Padding::PKCS1_OAEP)?;
            c.set_rsa_oaep_md(Md::sha1())?;
            c.set_rsa_mgf1_md(Md::sha1())?;
            Ok(c)
        };
        self.1
            .oaep_sha1
            .with(make, |c| {
                let mut out = Vec::with_capacity(self.0.size());
                c.encrypt_to_vec(plaintext, &mut out)?;
                Ok(out)
            })
            .map_err(|_| Error::Malformed)
    }
}

/// An RSA private key. `Debug` never shows it; OpenSSL clears its memory on free.
pub struct RsaPrivateKey(PKey<Private>);

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPrivateKey({} bits, <redacted>)", self.0.bits())
    }
}

impl RsaPrivateKey {
    /// Generates a key (e = 65537).
    pub fn generate(bits: u32) -> Result<Self, Error> {
        Rsa::generate(bits)
            .and_then(PKey::from_rsa)
            .map(Self)
            .map_err(|_| Error::Rng)
    }

    /// Parses a PEM private key: PKCS#8 or PKCS#1.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| Error::Malformed)?;
        let rsa = key.rsa().map_err(|_| Error::Malformed)?;
        let bits = rsa.n().num_bits().unsigned_abs();
        if !(MIN_BITS..=8192).contains(&bits) || !rsa.check_key().unwrap_or(false) {
            return Err(Error::Malformed);
        }
        Ok(Self(key))
    }

    /// Parses a PEM private key of any size from 1024 bits (FairPlay v1 credentials are
    /// RSA-1024: the size is the protocol's, checked by the caller).
    pub fn from_pem_any_size(pem: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| Error::Malformed)?;
        let rsa = key.rsa().map_err(|_| Error::Malformed)?;
        if rsa.n().num_bits() < 1024 || !rsa.check_key().unwrap_or(false) {
            return Err(Error::Malformed);
        }
        Ok(Self(key))
    }

    /// SPKI DER of the public half (to match a key with a certificate).
    pub fn public_key_der(&self) -> Result<Vec<u8>, Error> {
        self.0.public_key_to_der().map_err(|_| Error::Malformed)
    }

    /// Parses a DER private key: PKCS#1 `RSAPrivateKey` (a `.wvd` file's) or PKCS#8.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_der(der).map_err(|_| Error::Malformed)?;
        key.rsa().map_err(|_| Error::Malformed)?;
        Ok(Self(key))
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0
            .private_key_to_pem_pkcs8()
            .map(Zeroizing::new)
            .map_err(|_| Error::Malformed)
    }

    /// PKCS#1 `RSAPrivateKey` DER (the form a `.wvd` device file holds).
    pub fn to_pkcs1_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0
            .rsa()
            .and_then(|r| r.private_key_to_der())
            .map(Zeroizing::new)
            .map_err(|_| Error::Malformed)
    }

    /// The public half.
    pub fn public_key(&self) -> Result<RsaPublicKey, Error> {
        let rsa = self.0.rsa().map_err(|_| Error::Malformed)?;
        let public = Rsa::from_public_components(
            rsa.n().to_owned().map_err(|_| Error::Malformed)?,
            rsa.e().to_owned().map_err(|_| Error::Malformed)?,
        )
        .map_err(|_| Error::Malformed)?;
        PKey::from_rsa(public)
            .map(|k| RsaPublicKey(k, Arc::default()))
            .map_err(|_| Error::Malformed)
    }

    /// RSASSA-PSS signature with SHA-1, MGF1-SHA-1 and a 20-byte salt.
    pub fn sign_pss_sha1(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut s = Signer::new(MessageDigest::sha1(), &self.0)?;
            s.set_rsa_padding(Padding::PKCS1_PSS)?;
            s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(PSS_SALT_LEN))?;
            s.set_rsa_mgf1_md(MessageDigest::sha1())?;
            s.sign_oneshot_to_vec(msg)
        };
        run().map_err(|_| Error::Malformed)
    }

    /// RSAES-OAEP decryption with SHA-1 and MGF1-SHA-1. Every failure is the same error
    /// (no padding oracle: OpenSSL's OAEP decoding is constant-time and we add no detail).
    pub fn decrypt_oaep_sha1(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.decrypt_oaep(MessageDigest::sha1(), ciphertext)
    }

    /// RSAES-OAEP decryption with SHA-256 and MGF1-SHA-256, empty label; one error for every
    /// failure, as [`RsaPrivateKey::decrypt_oaep_sha1`].
    pub fn decrypt_oaep_sha256(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.decrypt_oaep(MessageDigest::sha256(), ciphertext)
    }

    fn decrypt_oaep(
        &self,
        md: MessageDigest,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let run = || -> Result<Zeroizing<Vec<u8>>, openssl::error::ErrorStack> {
            let mut d = Decrypter::new(&self.0)?;
            d.set_rsa_padding(Padding::PKCS1_OAEP)?;
            d.set_rsa_oaep_md(md)?;
            d.set_rsa_mgf1_md(md)?;
            let mut out = Zeroizing::new(vec![0u8; d.decrypt_len(ciphertext)?]);
            let n = d.decrypt(ciphertext, &mut out)?;
            out.truncate(n);
            Ok(out)
        };
        run().map_err(|_| Error::Open)
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.0.bits()
    }
}

/// A self-signed X.509 certificate (DER) for `key`: test credentials for protocols that
/// carry certificates (CPIX delivery keys, FairPlay-style credentials).
#[cfg(test)]
pub(crate) fn self_signed_certificate(key: &RsaPrivateKey) -> Vec<u8> {
    use openssl::{asn1::Asn1Time, x509::X509};
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Tessera test certificate")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key.0).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key.0, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss_and_oaep_round_trip_and_refuse_tampering() {
        let key = RsaPrivateKey::generate(2048).unwrap();
        let public = key.public_key().unwrap();
        let der = public.to_pkcs1_der().unwrap();
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        let public = RsaPublicKey::from_pkcs1_der(&der).unwrap();

        let sig = key.sign_pss_sha1(b"message").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(public.verify_pss(PssHash::Sha1, b"message", &sig));
        assert!(!public.verify_pss(PssHash::Sha1, b"messagf", &sig));
        assert!(!public.verify_pss(PssHash::Sha256, b"message", &sig));
        // Cut at the end: a signature whose first byte is zero (1 in ~185 keys) is the same
        // number without it, refused only by the length check.
        assert!(!public.verify_pss(PssHash::Sha1, b"message", &sig[..sig.len() - 1]));
        // A signature that does start with a zero byte (PSS is randomised: about 1 in 128 to
        // 256 signatures) verifies whole and is refused without that byte.
        let zero_first = (0..10_000)
            .map(|_| key.sign_pss_sha1(b"message").unwrap())
            .find(|s| s[0] == 0)
            .unwrap();
        assert!(public.verify_pss(PssHash::Sha1, b"message", &zero_first));
        assert!(!public.verify_pss(PssHash::Sha1, b"message", &zero_first[1..]));
        // Pooled contexts stay good after failures, and across threads.
        assert!(public.verify_pss(PssHash::Sha1, b"message", &sig));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..25 {
                        assert!(public.verify_pss(PssHash::Sha1, b"message", &sig));
                        assert!(!public.verify_pss(PssHash::Sha1, &[i], &sig));
                        let ct = public.encrypt_oaep_sha1(&[i; 16]).unwrap();
                        assert_eq!(&key.decrypt_oaep_sha1(&ct).unwrap()[..], &[i; 16]);
                    }
                });
            }
        });

        let ct = public.encrypt_oaep_sha1(&[7u8; 16]).unwrap();
        assert_eq!(&key.decrypt_oaep_sha1(&ct).unwrap()[..], &[7u8; 16]);
        let mut bad = ct.clone();
        bad[100] ^= 1;
        assert!(matches!(key.decrypt_oaep_sha1(&bad), Err(Error::Open)));
        // A short ciphertext (the last byte cut: another number; cutting the first byte would
        // be the same number whenever it is zero, about one run in 256).
        assert!(matches!(
            key.decrypt_oaep_sha1(&ct[..ct.len() - 1]),
            Err(Error::Open)
        ));

        let pem = key.to_pem().unwrap();
        let again = RsaPrivateKey::from_pem(&pem).unwrap();
        assert!(public.verify_pss(PssHash::Sha1, b"x", &again.sign_pss_sha1(b"x").unwrap()));
    }

    #[test]
    fn small_and_garbage_keys_are_refused() {
        let small = Rsa::generate(1024)
            .unwrap()
            .public_key_to_der_pkcs1()
            .unwrap();
        assert!(RsaPublicKey::from_pkcs1_der(&small).is_err());
        assert!(RsaPublicKey::from_pkcs1_der(b"\x30\x03\x02\x01\x01").is_err());
        assert!(RsaPublicKey::from_pkcs1_der(b"").is_err());
    }
}
