//! Encrypted content-key delivery (CPIX 2.3 §6.3 "Content key encryption"; the SPEKE v2
//! "Content key encryption" contract; `docs/protocols.md`, "SPEKE"). Pure: no clock, no
//! store.
//!
//! A fresh 32-byte document key (AES-256-CBC) and 64-byte MAC key (HMAC-SHA512) per
//! document, each RSA-OAEP (SHA-1, MGF1-SHA-1) wrapped to every recipient's certificate
//! key. Each content key travels as `iv ‖ AES-256-CBC(document key, iv, PKCS#7(key))`, its
//! `ValueMAC` the HMAC-SHA512 of that whole value.

use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::crypto::{self, HmacAlg, HmacKey, symmetric};
use zeroize::Zeroizing;

/// `DocumentKey@Algorithm` and the content keys' `EncryptionMethod`.
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
/// Key transport of the document and MAC keys.
pub const RSA_OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// `MACMethod@Algorithm`.
pub const HMAC_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512";

/// Smallest recipient key: SPEKE requires RSA-2048.
pub const MIN_RECIPIENT_BITS: u32 = 2048;

/// Errors of key delivery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The recipient certificate is unusable.
    #[error("DeliveryKey certificate: {0}")]
    Certificate(String),
    /// An encrypted key failed its MAC, or did not decrypt (one error for both).
    #[error("encrypted content key for {0} does not verify")]
    BadKey(String),
    /// A wrapped document or MAC key did not unwrap.
    #[error("document key does not unwrap with this private key")]
    Unwrap,
    /// A required element is missing or not base64.
    #[error("{0}")]
    Malformed(String),
    /// Random-number or cipher failure.
    #[error("crypto failure")]
    Crypto,
}

/// A recipient: the RSA key of its `DeliveryKey` certificate.
#[derive(Debug)]
pub struct Recipient(RsaPublicKey);

impl Recipient {
    /// Reads an X.509 certificate (DER); its key must be RSA of 2048 to 4096 bits.
    pub fn from_certificate(der: &[u8]) -> Result<Self, Error> {
        if let Ok(bits) = RsaPublicKey::x509_bits(der)
            && bits < MIN_RECIPIENT_BITS
        {
            return Err(Error::Certificate(format!(
                "RSA-{bits} is below the required RSA-{MIN_RECIPIENT_BITS}"
            )));
        }
        match RsaPublicKey::from_x509_der(der) {
            Ok((key, _)) => Ok(Self(key)),
            Err(_) => Err(Error::Certificate(format!(
                "not an X.509 certificate with an RSA key of {MIN_RECIPIENT_BITS} to {} bits",
                crate::crypto::rsa::MAX_BITS
            ))),
        }
    }
}

/// The per-document secrets.
pub struct DocumentKeys {
    document: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 64]>,
}

impl std::fmt::Debug for DocumentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocumentKeys(<redacted>)")
    }
}

/// The wrapped document and MAC keys for one recipient.
#[derive(Debug)]
pub struct Wrapped {
    /// RSA-OAEP(document key).
    pub document_key: Vec<u8>,
    /// RSA-OAEP(MAC key).
    pub mac_key: Vec<u8>,
}

/// One encrypted content key.
#[derive(Debug)]
pub struct Sealed {
    /// `iv ‖ ciphertext` (the `CipherValue`).
    pub cipher_value: Vec<u8>,
    /// HMAC-SHA512 of `cipher_value` (the `ValueMAC`).
    pub mac: Vec<u8>,
}

impl DocumentKeys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self, Error> {
        let mut document = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 64]);
        crypto::fill_random(&mut document[..]).map_err(|_| Error::Crypto)?;
        crypto::fill_random(&mut mac[..]).map_err(|_| Error::Crypto)?;
        Ok(Self { document, mac })
    }

    /// Both keys wrapped to `recipient`.
    pub fn wrap(&self, recipient: &Recipient) -> Result<Wrapped, Error> {
        Ok(Wrapped {
            document_key: recipient
                .0
                .encrypt_oaep_sha1(&self.document[..])
                .map_err(|_| Error::Crypto)?,
            mac_key: recipient
                .0
                .encrypt_oaep_sha1(&self.mac[..])
                .map_err(|_| Error::Crypto)?,
        })
    }

    /// Encrypts and MACs one content key.
    pub fn seal(&self, key: &[u8; 16]) -> Result<Sealed, Error> {
        let mut iv = [0u8; 16];
        crypto::fill_random_fast(&mut iv).map_err(|_| Error::Crypto)?;
        let mut cipher_value = iv.to_vec();
        cipher_value.extend(
            symmetric::aes_cbc_encrypt(&self.document[..], &iv, key).map_err(|_| Error::Crypto)?,
        );
        let mac = HmacKey::new(HmacAlg::Sha512, &self.mac[..]).sign(&cipher_value);
        Ok(Sealed { cipher_value, mac })
    }

    /// Unwraps a recipient's keys with its private key (the consuming side).
    pub fn unwrap(private: &RsaPrivateKey, wrapped: &Wrapped) -> Result<Self, Error> {
        let document = private
            .decrypt_oaep_sha1(&wrapped.document_key)
            .map_err(|_| Error::Unwrap)?;
        let mac = private
            .decrypt_oaep_sha1(&wrapped.mac_key)
            .map_err(|_| Error::Unwrap)?;
        Ok(Self {
            document: Zeroizing::new(document[..].try_into().map_err(|_| Error::Unwrap)?),
            mac: Zeroizing::new(mac[..].try_into().map_err(|_| Error::Unwrap)?),
        })
    }

    /// Verifies the MAC (constant time) and decrypts one content key. Accepts the
    /// unpadded 16-byte ciphertext older encryptors wrote as well as PKCS#7.
    pub fn open(&self, sealed: &Sealed, kid: &str) -> Result<Zeroizing<[u8; 16]>, Error> {
        let bad = || Error::BadKey(kid.to_owned());
        if !HmacKey::new(HmacAlg::Sha512, &self.mac[..]).verify(&sealed.cipher_value, &sealed.mac) {
            return Err(bad());
        }
        let (iv, ct) = sealed
            .cipher_value
            .split_first_chunk::<16>()
            .ok_or_else(bad)?;
        let padded = match ct.len() {
            16 => false,
            32 => true,
            _ => return Err(bad()),
        };
        let key: Zeroizing<Vec<u8>> =
            symmetric::aes256_cbc_decrypt(&self.document, iv, ct, padded).map_err(|_| bad())?;
        Ok(Zeroizing::new(key[..].try_into().map_err(|_| bad())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let private = RsaPrivateKey::generate(2048).unwrap();
        let keys = DocumentKeys::generate().unwrap();
        let recipient = Recipient(private.public_key().unwrap());
        let wrapped = keys.wrap(&recipient).unwrap();
        let sealed = keys.seal(&[7; 16]).unwrap();
        assert_eq!(sealed.cipher_value.len(), 48);
        assert_eq!(sealed.mac.len(), 64);
        let opened = DocumentKeys::unwrap(&private, &wrapped).unwrap();
        assert_eq!(*opened.open(&sealed, "k").unwrap(), [7; 16]);
        let mut bad = Sealed {
            cipher_value: sealed.cipher_value.clone(),
            mac: sealed.mac.clone(),
        };
        bad.cipher_value[20] ^= 1;
        assert_eq!(opened.open(&bad, "k"), Err(Error::BadKey("k".into())));
        bad.cipher_value = sealed.cipher_value.clone();
        bad.mac[0] ^= 1;
        assert!(opened.open(&bad, "k").is_err());
        assert!(format!("{keys:?}").contains("redacted"));
    }
}
