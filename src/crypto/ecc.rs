//! P-256 for the PlayReady-style protocol (docs/playready.md §2.4, §2.7): ElGamal encryption of
//! points, points from an X coordinate, and ECDSA-P256-SHA256 with raw `r‖s` signatures.
//!
//! Backends, chosen by measurement (single core of the 2-core CI machines, microseconds per
//! operation; `load-tests/floor` reprints them): OpenSSL 3 (`ecp_nistz256`) does
//! variable-base multiplication in 43, fixed-base in 7.2, point decompression in 15;
//! aws-lc-rs exposes no point arithmetic (its ECDH, the same multiplication plus key parsing,
//! takes 46) and the pure-Rust `p256` crate takes 352 / 107. ECDSA verification is ring's
//! (54.5; aws-lc 53, OpenSSL 62), signing too (17.6). So: point arithmetic through the safe
//! `openssl` crate (already linked for RSA, see [`super::rsa`]), signatures through ring,
//! and no `unsafe` here.
//!
//! Points travel as 64 bytes `X‖Y` (big-endian, 32 bytes each), the wire form of every
//! PlayReady structure. Every point that comes from outside is decoded with a curve check
//! (OpenSSL's `EC_POINT_oct2point` rejects points off the curve), so an invalid-curve point
//! cannot make the server's private key leak through ElGamal decryption.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, EcPointRef, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// A point as `X‖Y`, 32 bytes each, big-endian.
pub type Point = [u8; 64];

/// Errors of the P-256 module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not a point of P-256 (or the point at infinity).
    #[error("not a point on P-256")]
    NotOnCurve,
    /// A private key that is not a P-256 scalar, or a PEM that is not a P-256 key.
    #[error("not a P-256 key")]
    Key,
    /// The library failed (allocation, RNG).
    #[error("P-256 operation failed")]
    Internal,
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(_: openssl::error::ErrorStack) -> Self {
        Error::Internal
    }
}

fn group() -> &'static EcGroup {
    static GROUP: OnceLock<EcGroup> = OnceLock::new();
    GROUP.get_or_init(|| {
        // Invariant: every OpenSSL build Tessera supports has P-256.
        #[expect(clippy::expect_used, reason = "P-256 is always available")]
        EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256")
    })
}

fn decode(point: &Point, ctx: &mut BigNumContext) -> Result<EcPoint, Error> {
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..].copy_from_slice(point);
    let p = EcPoint::from_bytes(group(), &sec1, ctx).map_err(|_| Error::NotOnCurve)?;
    if p.is_infinity(group()) {
        return Err(Error::NotOnCurve);
    }
    Ok(p)
}

fn encode(point: &EcPointRef, ctx: &mut BigNumContext) -> Result<Point, Error> {
    if point.is_infinity(group()) {
        return Err(Error::NotOnCurve);
    }
    let bytes = point.to_bytes(group(), PointConversionForm::UNCOMPRESSED, ctx)?;
    bytes
        .get(1..65)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Internal)
}

/// A secret scalar in a `BigNum` that OpenSSL clears when it is freed.
fn secret_scalar(bytes: &[u8; 32]) -> Result<BigNum, Error> {
    let mut n = BigNum::new_secure()?;
    n.copy_from_slice(bytes)?;
    Ok(n)
}

/// Whether `point` is a valid P-256 point (not infinity).
pub fn is_point(point: &Point) -> bool {
    BigNumContext::new()
        .ok()
        .is_some_and(|mut ctx| decode(point, &mut ctx).is_ok())
}

/// The point whose X coordinate is `x` (either of the two, as PlayReady does not care which),
/// or `None` when `x³ − 3x + b` is not a square mod p (about half of all values).
pub fn point_from_x(x: &[u8; 32]) -> Result<Option<Point>, Error> {
    let mut ctx = BigNumContext::new()?;
    let mut sec1 = [0u8; 33];
    sec1[0] = 2;
    sec1[1..].copy_from_slice(x);
    match EcPoint::from_bytes(group(), &sec1, &mut ctx) {
        Ok(p) => Ok(Some(encode(&p, &mut ctx)?)),
        Err(_) => Ok(None),
    }
}

/// ElGamal encryption of the point `m` to the public key `to` with a fresh random `k`:
/// `C1 = k·G`, `C2 = M + k·Q`, encoded `X(C1)‖Y(C1)‖X(C2)‖Y(C2)`.
pub fn elgamal_encrypt(to: &Point, m: &Point) -> Result<[u8; 128], Error> {
    let k = EccPrivateKey::generate()?;
    elgamal_encrypt_with(to, m, &k)
}

/// [`elgamal_encrypt`] with a given ephemeral key (the unit vectors need a fixed one).
pub fn elgamal_encrypt_with(to: &Point, m: &Point, k: &EccPrivateKey) -> Result<[u8; 128], Error> {
    let mut ctx = BigNumContext::new()?;
    let q = decode(to, &mut ctx)?;
    let m = decode(m, &mut ctx)?;
    let mut kq = EcPoint::new(group())?;
    kq.mul2(group(), &q, &k.scalar, &mut ctx)?;
    let mut c2 = EcPoint::new(group())?;
    c2.add(group(), &m, &kq, &mut ctx)?;
    let mut out = [0u8; 128];
    out[..64].copy_from_slice(&k.public);
    out[64..].copy_from_slice(&encode(&c2, &mut ctx)?);
    Ok(out)
}

/// Verifies an ECDSA-P256-SHA256 signature in the raw 64-byte `r‖s` form over `message`.
pub fn verify(public: &Point, message: &[u8], signature: &[u8]) -> bool {
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..].copy_from_slice(public);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &sec1[..])
        .verify(message, signature)
        .is_ok()
}

/// A P-256 private key. The scalar is zeroized on drop (`Zeroizing` bytes, and an OpenSSL
/// secure `BigNum`); `Debug` shows only the public key.
pub struct EccPrivateKey {
    d: Zeroizing<[u8; 32]>,
    scalar: BigNum,
    public: Point,
}

impl std::fmt::Debug for EccPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EccPrivateKey(public {}…, <redacted>)",
            crate::encoding::hex_encode(&self.public[..8])
        )
    }
}

impl EccPrivateKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        loop {
            let d: [u8; 32] = super::random_array().map_err(|_| Error::Internal)?;
            let d = Zeroizing::new(d);
            match Self::from_scalar(&d) {
                Ok(k) => return Ok(k),
                // 0 or ≥ n: about 2^-32 likely; draw again.
                Err(Error::Key) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The key with scalar `d` (big-endian), which must be in `[1, n)`.
    pub fn from_scalar(d: &[u8; 32]) -> Result<Self, Error> {
        let mut ctx = BigNumContext::new()?;
        let scalar = secret_scalar(d)?;
        let mut order = BigNum::new()?;
        group().order(&mut order, &mut ctx)?;
        if scalar.num_bits() == 0 || scalar >= order {
            return Err(Error::Key);
        }
        let mut p = EcPoint::new(group())?;
        p.mul_generator2(group(), &scalar, &mut ctx)?;
        let public = encode(&p, &mut ctx)?;
        Ok(Self {
            d: Zeroizing::new(*d),
            scalar,
            public,
        })
    }

    /// A PEM private key (SEC1 `EC PRIVATE KEY` or PKCS#8) on P-256.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| Error::Key)?;
        let ec = key.ec_key().map_err(|_| Error::Key)?;
        if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(Error::Key);
        }
        let d = Zeroizing::new(ec.private_key().to_vec_padded(32).map_err(|_| Error::Key)?);
        let d: &[u8; 32] = d.as_slice().try_into().map_err(|_| Error::Key)?;
        Self::from_scalar(d)
    }

    /// PKCS#8 PEM of the key (for `tessera devices` and the committed dev keys).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, Error> {
        let mut ctx = BigNumContext::new()?;
        let public = decode(&self.public, &mut ctx)?;
        let ec = EcKey::from_private_components(group(), &self.scalar, &public)?;
        let pem = PKey::from_ec_key(ec)?.private_key_to_pem_pkcs8()?;
        String::from_utf8(pem)
            .map(Zeroizing::new)
            .map_err(|_| Error::Internal)
    }

    /// The public key, `X‖Y`.
    pub fn public(&self) -> &Point {
        &self.public
    }

    /// The scalar, big-endian (the `.prd` device format stores it).
    pub fn scalar(&self) -> &[u8; 32] {
        &self.d
    }

    /// ElGamal decryption of `X(C1)‖Y(C1)‖X(C2)‖Y(C2)`: `M = C2 − d·C1`. Both points are
    /// curve-checked first.
    pub fn elgamal_decrypt(&self, ciphertext: &[u8; 128]) -> Result<Zeroizing<Point>, Error> {
        let mut ctx = BigNumContext::new()?;
        let (c1, c2) = ciphertext.split_at(64);
        let c1 = decode(c1.try_into().map_err(|_| Error::Internal)?, &mut ctx)?;
        let c2 = decode(c2.try_into().map_err(|_| Error::Internal)?, &mut ctx)?;
        let mut s = EcPoint::new(group())?;
        s.mul2(group(), &c1, &self.scalar, &mut ctx)?;
        s.invert2(group(), &mut ctx)?;
        let mut m = EcPoint::new(group())?;
        m.add(group(), &c2, &s, &mut ctx)?;
        Ok(Zeroizing::new(encode(&m, &mut ctx)?))
    }

    /// A signer for this key (ECDSA-P256-SHA256, raw `r‖s`, random `k`).
    pub fn signer(&self) -> Result<Signer, Error> {
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..].copy_from_slice(&self.public);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            self.d.as_slice(),
            &sec1,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| Error::Key)?;
        Ok(Signer(pair))
    }
}

/// The public key of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) on P-256.
pub fn public_from_pem(pem: &[u8]) -> Result<Point, Error> {
    let key = PKey::public_key_from_pem(pem).map_err(|_| Error::Key)?;
    let ec = key.ec_key().map_err(|_| Error::Key)?;
    if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        return Err(Error::Key);
    }
    let mut ctx = BigNumContext::new()?;
    encode(ec.public_key(), &mut ctx)
}

/// The PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of a point.
pub fn public_to_pem(public: &Point) -> Result<String, Error> {
    let mut ctx = BigNumContext::new()?;
    let p = decode(public, &mut ctx)?;
    let ec = EcKey::from_public_key(group(), &p)?;
    String::from_utf8(ec.public_key_to_pem()?).map_err(|_| Error::Internal)
}

/// An ECDSA-P256-SHA256 signing key (ring's; precomputed, shareable).
pub struct Signer(EcdsaKeyPair);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// Signs `message`: 64 bytes `r‖s`.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], Error> {
        let sig = self
            .0
            .sign(&ring::rand::SystemRandom::new(), message)
            .map_err(|_| Error::Internal)?;
        sig.as_ref().try_into().map_err(|_| Error::Internal)
    }

    /// The public key, `X‖Y`.
    pub fn public(&self) -> Point {
        let mut p = [0u8; 64];
        // ring's public key is the 65-byte SEC1 uncompressed form.
        p.copy_from_slice(&self.0.public_key().as_ref()[1..]);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::hex_decode;

    fn arr<const N: usize>(hex: &str) -> [u8; N] {
        hex_decode(&hex.replace(' ', ""))
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// The deterministic vector of docs/playready.md §2.4 (checked there against pyplayready's
    /// own decryption): d = 0x11…11, k = 0x22…22, X(M) = CI‖CK.
    #[test]
    fn elgamal_vector() {
        let d = EccPrivateKey::from_scalar(&[0x11; 32]).unwrap();
        let q: Point = arr(
            "0217e617f0b6443928278f96999e69a23a4f2c152bdf6d6cdf66e5b80282d4ed \
             194a7debcb97712d2dda3ca85aa8765a56f45fc758599652f2897c65306e5794",
        );
        assert_eq!(d.public(), &q);
        let x: [u8; 32] = arr("a0a0a0a0a0a0a0a0a0a0a0a0a0a0a000 000102030405060708090a0b0c0d0e0f");
        let expected: [u8; 128] = arr(
            "d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf3 \
             50185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285 \
             8d50050ef1954a2c5a3ad8765a346309fe92c352970f83ded07af1fea6da6a25 \
             5ecd421b8e2a82417ef559a80ed22d276ea1dfd8822f988368270b4ace36df39",
        );
        let k = EccPrivateKey::from_scalar(&[0x22; 32]).unwrap();
        // The vector's M is one of the two points with this X; find which by decrypting.
        let m = d.elgamal_decrypt(&expected).unwrap();
        assert_eq!(&m[..32], &x);
        assert_eq!(elgamal_encrypt_with(&q, &m, &k).unwrap(), expected);
        // Random k: still decrypts to M.
        let ct = elgamal_encrypt(&q, &m).unwrap();
        assert_ne!(ct, expected);
        assert_eq!(*d.elgamal_decrypt(&ct).unwrap(), *m);
    }

    #[test]
    fn points_are_checked() {
        let mut ct = [0u8; 128];
        let d = EccPrivateKey::generate().unwrap();
        assert_eq!(d.elgamal_decrypt(&ct).unwrap_err(), Error::NotOnCurve);
        // A valid C2 with C1 off the curve (an invalid-curve attack) is refused.
        ct[..64].copy_from_slice(d.public());
        ct[63] ^= 1;
        ct[64..].copy_from_slice(d.public());
        assert_eq!(d.elgamal_decrypt(&ct).unwrap_err(), Error::NotOnCurve);
        assert!(is_point(d.public()));
        assert!(!is_point(&[0; 64]));
    }

    #[test]
    fn point_from_x_finds_about_half() {
        let mut found = 0;
        for i in 0u8..64 {
            let mut x = [0x5a; 32];
            x[0] = i;
            if let Some(p) = point_from_x(&x).unwrap() {
                assert_eq!(&p[..32], &x);
                assert!(is_point(&p));
                found += 1;
            }
        }
        assert!((16..=48).contains(&found), "{found}");
        // p itself is not a field element.
        assert_eq!(point_from_x(&[0xff; 32]).unwrap(), None);
    }

    #[test]
    fn sign_verify_and_pem() {
        let k = EccPrivateKey::generate().unwrap();
        let s = k.signer().unwrap();
        assert_eq!(&s.public(), k.public());
        let sig = s.sign(b"signed info").unwrap();
        assert!(verify(k.public(), b"signed info", &sig));
        assert!(!verify(k.public(), b"signed infO", &sig));
        assert!(!verify(k.public(), b"signed info", &sig[..63]));
        let pem = k.to_pem().unwrap();
        let back = EccPrivateKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(back.scalar(), k.scalar());
        let public = public_to_pem(k.public()).unwrap();
        assert_eq!(&public_from_pem(public.as_bytes()).unwrap(), k.public());
        assert!(!format!("{k:?}").contains(&crate::encoding::hex_encode(k.scalar())));
        assert_eq!(
            EccPrivateKey::from_scalar(&[0; 32]).unwrap_err(),
            Error::Key
        );
        assert_eq!(
            EccPrivateKey::from_scalar(&[0xff; 32]).unwrap_err(),
            Error::Key
        );
    }
}
