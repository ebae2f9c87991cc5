//! The service certificate and privacy mode (drm-interop.md §1.5): clients encrypt their
//! `ClientIdentification` to this certificate's key so that intermediaries never see the
//! device certificate.

use super::pb;
use crate::crypto::rsa::RsaPrivateKey;
use crate::crypto::symmetric::aes128_cbc_decrypt;
use prost::Message;

/// Why an encrypted client identification was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No service certificate is configured.
    #[error("privacy mode is not configured on this server")]
    NotConfigured,
    /// The client encrypted to another service certificate.
    #[error("the client identification is encrypted to an unknown service certificate")]
    UnknownCertificate,
    /// Unwrapping, decryption or decoding failed (one error for all: no oracle).
    #[error("the encrypted client identification cannot be decrypted")]
    Decrypt,
}

/// Why a service certificate and key cannot serve as this server's identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The certificate does not decode.
    #[error("the service certificate is not a SignedDrmCertificate")]
    NotACertificate,
    /// A certificate of another type.
    #[error("the service certificate is not of type SERVICE")]
    NotService,
    /// Key and certificate are not a pair.
    #[error("the service private key does not match the service certificate")]
    KeyMismatch,
}

/// This server's service certificate and its private key.
#[derive(Debug)]
pub struct ServiceIdentity {
    response: Vec<u8>,
    serial: Vec<u8>,
    provider_id: String,
    key: RsaPrivateKey,
}

impl ServiceIdentity {
    /// Pairs a serialized SERVICE `SignedDrmCertificate` with its private key (checked).
    pub fn new(cert: Vec<u8>, key: RsaPrivateKey) -> Result<Self, IdentityError> {
        let body = pb::SignedDrmCertificate::decode(&cert[..])
            .ok()
            .and_then(|s| s.drm_certificate)
            .and_then(|b| pb::DrmCertificate::decode(&b[..]).ok())
            .ok_or(IdentityError::NotACertificate)?;
        if body.r#type() != pb::drm_certificate::Type::Service {
            return Err(IdentityError::NotService);
        }
        let matches = key
            .public_key()
            .and_then(|k| k.to_pkcs1_der())
            .is_ok_and(|der| body.public_key.as_deref() == Some(&der[..]));
        if !matches {
            return Err(IdentityError::KeyMismatch);
        }
        let response = pb::SignedMessage {
            r#type: Some(pb::signed_message::MessageType::ServiceCertificate as i32),
            msg: Some(cert),
            ..Default::default()
        }
        .encode_to_vec();
        Ok(Self {
            response,
            serial: body.serial_number.unwrap_or_default(),
            provider_id: body.provider_id.unwrap_or_default(),
            key,
        })
    }

    /// The answer to a service-certificate request: `SignedMessage{SERVICE_CERTIFICATE}`.
    pub fn response(&self) -> &[u8] {
        &self.response
    }

    /// The provider id clients see.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// Decrypts a privacy-mode client identification.
    pub fn decrypt(
        &self,
        enc: &pb::EncryptedClientIdentification,
    ) -> Result<pb::ClientIdentification, Error> {
        if enc.service_certificate_serial_number.as_deref() != Some(&self.serial[..]) {
            return Err(Error::UnknownCertificate);
        }
        let privacy_key = self
            .key
            .decrypt_oaep_sha1(enc.encrypted_privacy_key.as_deref().unwrap_or_default())
            .map_err(|_| Error::Decrypt)?;
        let key: &[u8; 16] = privacy_key[..].try_into().map_err(|_| Error::Decrypt)?;
        let iv: &[u8; 16] = enc
            .encrypted_client_id_iv
            .as_deref()
            .unwrap_or_default()
            .try_into()
            .map_err(|_| Error::Decrypt)?;
        let clear = aes128_cbc_decrypt(
            key,
            iv,
            enc.encrypted_client_id.as_deref().unwrap_or_default(),
        )
        .map_err(|_| Error::Decrypt)?;
        pb::ClientIdentification::decode(&clear[..]).map_err(|_| Error::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::symmetric::aes128_cbc_encrypt;
    use crate::protocol::widevine::provision::Root;

    #[test]
    fn privacy_mode_round_trip_and_refusals() {
        let root = Root::generate(1).unwrap();
        let (key, cert) = root.service_certificate("acme", 1).unwrap();
        let other = RsaPrivateKey::generate(2048).unwrap();
        assert!(
            ServiceIdentity::new(cert.clone(), other).is_err(),
            "mismatched key"
        );
        let service = ServiceIdentity::new(cert.clone(), key).unwrap();
        assert_eq!(service.provider_id(), "acme");

        // The client side (drm-interop.md §1.5), from the certificate the server hands out.
        let answer = pb::SignedMessage::decode(service.response()).unwrap();
        let signed = pb::SignedDrmCertificate::decode(answer.msg.as_deref().unwrap()).unwrap();
        let body = pb::DrmCertificate::decode(signed.drm_certificate.as_deref().unwrap()).unwrap();
        let public =
            crate::crypto::rsa::RsaPublicKey::from_pkcs1_der(body.public_key.as_deref().unwrap())
                .unwrap();
        let client_id = pb::ClientIdentification {
            token: Some(b"chain".to_vec()),
            ..Default::default()
        };
        let (privacy_key, iv) = ([5u8; 16], [6u8; 16]);
        let enc = pb::EncryptedClientIdentification {
            provider_id: body.provider_id.clone(),
            service_certificate_serial_number: body.serial_number.clone(),
            encrypted_client_id: Some(aes128_cbc_encrypt(
                &privacy_key,
                &iv,
                &client_id.encode_to_vec(),
            )),
            encrypted_client_id_iv: Some(iv.to_vec()),
            encrypted_privacy_key: Some(public.encrypt_oaep_sha1(&privacy_key).unwrap()),
        };
        assert_eq!(service.decrypt(&enc).unwrap(), client_id);

        let mut wrong_serial = enc.clone();
        wrong_serial.service_certificate_serial_number = Some(vec![0; 16]);
        assert_eq!(
            service.decrypt(&wrong_serial).unwrap_err(),
            Error::UnknownCertificate
        );
        let mut bad_key = enc.clone();
        bad_key.encrypted_privacy_key.as_mut().unwrap()[10] ^= 1;
        assert_eq!(service.decrypt(&bad_key).unwrap_err(), Error::Decrypt);
        let mut bad_iv = enc;
        bad_iv.encrypted_client_id_iv = Some(vec![0; 15]);
        assert_eq!(service.decrypt(&bad_iv).unwrap_err(), Error::Decrypt);
    }
}
