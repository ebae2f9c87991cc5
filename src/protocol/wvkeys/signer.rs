//! Request signers of the Widevine-style key API (`docs/protocols.md`, "Widevine-style key
//! API", signature rules). A signer name selects a verification key per tenant:
//! - AES: `signature = AES-CBC(key, iv, PKCS#7(SHA-1(request)))`, the key length (16, 24 or
//!   32 bytes) picking AES-128/192/256. Verified by recomputing it and comparing in constant
//!   time.
//! - RSA: RSASSA-PSS with SHA-1, MGF1-SHA-1 and a 20-byte salt over the request bytes.

use crate::crypto::rsa::{PssHash, RsaPublicKey};
use crate::crypto::{ct_eq, sha1, symmetric};
use zeroize::Zeroizing;

/// A signer's verification key. `Debug` never shows the AES key.
pub enum Signer {
    /// Shared AES key and IV.
    Aes {
        /// 16, 24 or 32 bytes.
        key: Zeroizing<Vec<u8>>,
        /// CBC IV.
        iv: [u8; 16],
    },
    /// The signer's RSA public key.
    Rsa(RsaPublicKey),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Aes { key, .. } => write!(f, "Signer::Aes(AES-{}, <redacted>)", key.len() * 8),
            Signer::Rsa(k) => write!(f, "Signer::Rsa({k:?})"),
        }
    }
}

/// Why an AES signer's key or IV is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is not hex.
    #[error("aes key is not hex")]
    KeyHex,
    /// The key has another length than AES takes.
    #[error("aes key must be 16, 24 or 32 bytes")]
    KeyLength,
    /// The IV is not 16 bytes of hex.
    #[error("aes iv must be 16 bytes of hex")]
    Iv,
}

impl Signer {
    /// An AES signer from its key and IV (hex, as packagers take them on the command line).
    pub fn aes_from_hex(key_hex: &str, iv_hex: &str) -> Result<Self, Error> {
        let key = Zeroizing::new(crate::encoding::hex_decode(key_hex.trim()).ok_or(Error::KeyHex)?);
        if ![16, 24, 32].contains(&key.len()) {
            return Err(Error::KeyLength);
        }
        let iv: [u8; 16] = crate::encoding::hex_decode(iv_hex.trim())
            .and_then(|v| v.try_into().ok())
            .ok_or(Error::Iv)?;
        Ok(Signer::Aes { key, iv })
    }

    /// Checks `signature` over the exact `request` bytes.
    pub fn verify(&self, request: &[u8], signature: &[u8]) -> bool {
        match self {
            Signer::Aes { key, iv } => match symmetric::aes_cbc_encrypt(key, iv, &sha1(request)) {
                Ok(expected) => ct_eq(&expected, signature),
                Err(_) => false,
            },
            Signer::Rsa(public) => public.verify_pss(PssHash::Sha1, request, signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wvkeys::message::parse_envelope;

    #[test]
    fn aes_signature_of_the_real_packager_verifies() {
        // key = SHA-256("tessera signer key"), iv = SHA-256("tessera signer iv")[..16]; the
        // envelope is what Shaka Packager 3.8 sent with them (see message.rs).
        let signer = Signer::aes_from_hex(
            "1945151a95ef253c497b21735b76d5c4ec9a04be658b14e1d9a95000cf77bccd",
            "3bdb88dbb8488a2d3b209b9dcda876e1",
        )
        .unwrap();
        let env = parse_envelope(
            crate::protocol::wvkeys::message::tests_support::PACKAGER_ENVELOPE.as_bytes(),
        )
        .unwrap();
        let sig = env.signature.unwrap();
        assert_eq!(
            crate::encoding::hex_encode(&sig),
            "76e0af2ef01507ba468cc5cc5bcd4c2514023c6b252d3192473c64f28829ceae"
        );
        assert!(signer.verify(&env.request, &sig));
        let mut tampered = env.request.clone();
        tampered[5] ^= 1;
        assert!(!signer.verify(&tampered, &sig));
        assert!(!signer.verify(&env.request, &sig[..31]));
    }

    #[test]
    fn rsa_pss_sha1_signer() {
        let key = crate::crypto::rsa::RsaPrivateKey::generate(2048).unwrap();
        let signer = Signer::Rsa(key.public_key().unwrap());
        let sig = key.sign_pss_sha1(b"{\"content_id\":\"AA==\"}").unwrap();
        assert!(signer.verify(b"{\"content_id\":\"AA==\"}", &sig));
        assert!(!signer.verify(b"{\"content_id\":\"AB==\"}", &sig));
        assert!(format!("{signer:?}").starts_with("Signer::Rsa"));
    }

    #[test]
    fn aes_key_shapes() {
        assert!(Signer::aes_from_hex("00", "00").is_err());
        assert!(Signer::aes_from_hex(&"00".repeat(16), &"00".repeat(15)).is_err());
        let s = Signer::aes_from_hex(&"ab".repeat(16), &"00".repeat(16)).unwrap();
        assert_eq!(format!("{s:?}"), "Signer::Aes(AES-128, <redacted>)");
    }
}
