//! Widevine-style licence construction (drm-interop.md §1.4): the AES-CMAC key derivation,
//! session-key wrapping, content-key encryption and the HMAC-SHA256 signature. Pure: the
//! caller passes the time, the keys and the policy; randomness comes from the CSPRNG.

use super::pb;
use super::pb::license::KeyContainer;
use super::pb::license::key_container::KeyType;
use crate::crypto::rsa::RsaPublicKey;
use crate::crypto::symmetric::{aes128_cbc_encrypt, aes128_cmac_many};
use crate::crypto::{self, HmacAlg, HmacKey};
use crate::keyring::{ContentKey, KeyId};
use prost::Message;
use zeroize::Zeroizing;

/// Errors while building a licence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CSPRNG or the session-key wrap failed.
    #[error("licence crypto failed: {0}")]
    Crypto(#[from] crypto::Error),
}

/// Keys derived from a session key and the request (SP 800-108 counter mode, AES-CMAC PRF).
pub struct SessionKeys {
    /// Encrypts content keys and the signing-key container.
    pub enc: Zeroizing<[u8; 16]>,
    /// Signs licences (server to client).
    pub mac_server: Zeroizing<[u8; 32]>,
    /// Signs renewal and release requests (client to server).
    pub mac_client: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

/// Derives the session keys. `msg` is the exact `SignedMessage.msg` of the request.
pub fn derive_keys(session_key: &[u8; 16], msg: &[u8]) -> SessionKeys {
    // The five CMAC inputs: [counter] || label || 0x00 || msg || BE32(output bits).
    let input = |counter: u8, label: &[u8], bits: u32| {
        let mut v = Vec::with_capacity(1 + label.len() + 1 + msg.len() + 4);
        v.push(counter);
        v.extend_from_slice(label);
        v.push(0);
        v.extend_from_slice(msg);
        v.extend_from_slice(&bits.to_be_bytes());
        v
    };
    let enc = input(1, b"ENCRYPTION", 128);
    let mac: [Vec<u8>; 4] = std::array::from_fn(|i| input(i as u8 + 1, b"AUTHENTICATION", 512));
    let [e, s1, s2, c1, c2] =
        aes128_cmac_many(session_key, [&enc, &mac[0], &mac[1], &mac[2], &mac[3]]);
    let mut keys = SessionKeys {
        enc: Zeroizing::new(e),
        mac_server: Zeroizing::new([0; 32]),
        mac_client: Zeroizing::new([0; 32]),
    };
    keys.mac_server[..16].copy_from_slice(&s1);
    keys.mac_server[16..].copy_from_slice(&s2);
    keys.mac_client[..16].copy_from_slice(&c1);
    keys.mac_client[16..].copy_from_slice(&c2);
    keys
}

/// One content key to put in a licence, with its per-key requirements.
#[derive(Debug)]
pub struct KeyEntry<'a> {
    /// The KID (big-endian UUID bytes on the wire).
    pub kid: KeyId,
    /// The key.
    pub key: &'a ContentKey,
    /// `KeyContainer.level`.
    pub level: pb::license::key_container::SecurityLevel,
    /// `KeyContainer.required_protection` (None when no output protection is required).
    pub required_protection: Option<pb::OutputProtection>,
    /// `KeyContainer.track_label` (the track type).
    pub track_label: Option<&'static str>,
}

/// Everything a licence carries besides the keys.
#[derive(Debug)]
pub struct Params {
    /// `License.id`.
    pub id: pb::LicenseIdentification,
    /// `License.policy`.
    pub policy: pb::license::Policy,
    /// `License.license_start_time`.
    pub start_time: i64,
    /// `License.protection_scheme` (echoed from the PSSH data).
    pub protection_scheme: Option<u32>,
}

/// Builds the `License` and its `SignedMessage`. `wrapped_session_key` is present in answers
/// to NEW requests (the client unwraps it with its device key); renewals and releases are
/// signed with the session's keys and carry none. A SIGNING container (the MAC keys for
/// renewals) goes in with every new licence: real CDMs need it, and it is encrypted like a
/// content key.
pub fn build(
    params: Params,
    keys: &[KeyEntry<'_>],
    session: &SessionKeys,
    wrapped_session_key: Option<Vec<u8>>,
) -> Result<Vec<u8>, Error> {
    let mut containers = Vec::with_capacity(keys.len() + 1);
    // Every IV of the licence in one draw.
    let mut ivs = vec![[0u8; 16]; keys.len() + 1];
    crypto::fill_random_fast(ivs.as_flattened_mut())?;
    for (entry, iv) in keys.iter().zip(&ivs) {
        containers.push(KeyContainer {
            id: Some(entry.kid.as_bytes().to_vec()),
            iv: Some(iv.to_vec()),
            key: Some(aes128_cbc_encrypt(&session.enc, iv, entry.key.expose())),
            r#type: Some(KeyType::Content as i32),
            level: Some(entry.level as i32),
            required_protection: entry.required_protection,
            track_label: entry.track_label.map(str::to_owned),
            ..Default::default()
        });
    }
    if wrapped_session_key.is_some() {
        let iv = ivs[keys.len()];
        let mut both = Zeroizing::new([0u8; 64]);
        both[..32].copy_from_slice(&session.mac_server[..]);
        both[32..].copy_from_slice(&session.mac_client[..]);
        containers.push(KeyContainer {
            iv: Some(iv.to_vec()),
            key: Some(aes128_cbc_encrypt(&session.enc, &iv, &both[..])),
            r#type: Some(KeyType::Signing as i32),
            ..Default::default()
        });
    }
    let license = pb::License {
        id: Some(params.id),
        policy: Some(params.policy),
        key: containers,
        license_start_time: Some(params.start_time),
        protection_scheme: params.protection_scheme,
        ..Default::default()
    };
    Ok(sign(
        pb::signed_message::MessageType::License,
        license.encode_to_vec(),
        session,
        wrapped_session_key,
    ))
}

fn sign(
    r#type: pb::signed_message::MessageType,
    msg: Vec<u8>,
    session: &SessionKeys,
    session_key: Option<Vec<u8>>,
) -> Vec<u8> {
    let signature = HmacKey::new(HmacAlg::Sha256, &session.mac_server[..]).sign(&msg);
    pb::SignedMessage {
        r#type: Some(r#type as i32),
        msg: Some(msg),
        signature: Some(signature),
        session_key,
        ..Default::default()
    }
    .encode_to_vec()
}

/// A fresh session key and its RSA-OAEP-SHA1 wrap under the device's key.
pub fn new_session_key(
    device_key: &RsaPublicKey,
) -> Result<(Zeroizing<[u8; 16]>, Vec<u8>), crypto::Error> {
    let mut key = Zeroizing::new([0u8; 16]);
    crypto::fill_random_fast(&mut key[..])?;
    let wrapped = device_key.encrypt_oaep_sha1(&key[..])?;
    Ok((key, wrapped))
}

/// Verifies a renewal or release request's signature: HMAC-SHA256 under the client MAC key
/// of the licence's session, over the exact `msg` bytes (constant time).
pub fn verify_client_signature(mac_client: &[u8; 32], msg: &[u8], signature: &[u8]) -> bool {
    HmacKey::new(HmacAlg::Sha256, mac_client).verify(msg, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rsa::RsaPrivateKey;
    use crate::crypto::symmetric::aes128_cbc_decrypt;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The vector of drm-interop.md §1.4, checked there against pywidevine's `derive_keys`.
    #[test]
    fn kdf_matches_the_interop_vector() {
        let session: [u8; 16] = std::array::from_fn(|i| i as u8);
        let keys = derive_keys(&session, b"test-license-request");
        assert_eq!(hex(&keys.enc[..]), "f6b2a36c4cf376e1bb0d02b069db8429");
        assert_eq!(
            hex(&keys.mac_server[..]),
            "569c9fea9a005889eeba4f522e681c9f74730cc83381d2384d0fa996942eec48"
        );
        assert_eq!(
            hex(&keys.mac_client[..]),
            "6edee8cd022e0f55ec0d422221b058da45ea96789977e7efa224f123f343b353"
        );
    }

    /// Fixed vectors for signing and key wrapping, continuing the KDF vector above; the
    /// expected values were computed with Python's `hmac` and pycryptodome's AES-CBC, an
    /// independent implementation.
    #[test]
    fn signature_and_key_wrap_match_fixed_vectors() {
        let session: [u8; 16] = std::array::from_fn(|i| i as u8);
        let keys = derive_keys(&session, b"test-license-request");
        let signed = sign(
            pb::signed_message::MessageType::License,
            b"tessera-license-bytes".to_vec(),
            &keys,
            None,
        );
        let signed = pb::SignedMessage::decode(&signed[..]).unwrap();
        assert_eq!(
            hex(signed.signature.as_deref().unwrap()),
            "ce73cea933b75e6cc396f1d8f2fc12df122bbe0d0872e5e5dbab809d0114bf7a"
        );
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            hex(&aes128_cbc_encrypt(&keys.enc, &iv, &[0x42; 16])),
            "c6769936bc755bf826d3cd13b91654ff2e842c0ce90d654a8626c4e555ce6871"
        );
    }

    /// What a client does with the licence: unwrap, derive, check the HMAC, decrypt.
    #[test]
    fn a_client_recovers_the_keys_and_detects_tampering() {
        let device = RsaPrivateKey::generate(2048).unwrap();
        let (session_key, wrapped) = new_session_key(&device.public_key().unwrap()).unwrap();
        let request_msg = b"the exact request bytes";
        let keys = derive_keys(&session_key, request_msg);
        let content = ContentKey::from_bytes([0x42; 16]);
        let kid = KeyId::from_bytes([9; 16]);
        let out = build(
            Params {
                id: pb::LicenseIdentification {
                    request_id: Some(b"rid".to_vec()),
                    ..Default::default()
                },
                policy: pb::license::Policy::default(),
                start_time: 1,
                protection_scheme: None,
            },
            &[KeyEntry {
                kid,
                key: &content,
                level: pb::license::key_container::SecurityLevel::SwSecureCrypto,
                required_protection: None,
                track_label: Some("SD"),
            }],
            &keys,
            Some(wrapped),
        )
        .unwrap();

        // Client side, from the wire bytes only.
        let signed = pb::SignedMessage::decode(&out[..]).unwrap();
        assert_eq!(signed.encode_to_vec(), out, "outer message is canonical");
        let session = device
            .decrypt_oaep_sha1(signed.session_key.as_deref().unwrap())
            .unwrap();
        let client = derive_keys(&session[..].try_into().unwrap(), request_msg);
        let msg = signed.msg.unwrap();
        assert!(
            HmacKey::new(HmacAlg::Sha256, &client.mac_server[..])
                .verify(&msg, signed.signature.as_deref().unwrap())
        );
        let license = pb::License::decode(&msg[..]).unwrap();
        assert_eq!(license.key.len(), 2);
        let c = &license.key[0];
        assert_eq!(c.id.as_deref(), Some(&[9u8; 16][..]));
        let iv: [u8; 16] = c.iv.as_deref().unwrap().try_into().unwrap();
        let key = aes128_cbc_decrypt(&client.enc, &iv, c.key.as_deref().unwrap()).unwrap();
        assert_eq!(&key[..], &[0x42; 16]);
        let s = &license.key[1];
        assert_eq!(s.r#type, Some(KeyType::Signing as i32));
        assert_eq!(s.key.as_ref().unwrap().len(), 80);

        let mut tampered = msg.clone();
        tampered[3] ^= 1;
        assert!(
            !HmacKey::new(HmacAlg::Sha256, &client.mac_server[..])
                .verify(&tampered, signed.signature.as_deref().unwrap())
        );
        assert!(verify_client_signature(
            &client.mac_client,
            b"renewal",
            &HmacKey::new(HmacAlg::Sha256, &keys.mac_client[..]).sign(b"renewal")
        ));
    }
}
