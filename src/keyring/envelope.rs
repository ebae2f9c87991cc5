//! Envelope encryption of content keys at rest.
//!
//! Master key (32 bytes, from a 0600 file or the environment) -> HKDF-SHA256 per tenant ->
//! AES-256-GCM key-encryption key (KEK). Each content key is sealed under its tenant's KEK with
//! associated data binding tenant, KID, content id, track and period, so a ciphertext copied
//! to another row, tenant or content fails to open (`docs/security.md`, "Keys at rest").

use super::{ContentKey, Error, KeyMeta};
use crate::crypto::{self, SealingKey};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const KEK_SALT: &[u8] = b"tessera/kek/v1";
const CHECK_INFO: &[u8] = b"tessera/master-key-check/v1";
const AAD_TAG: &[u8] = b"tessera/content-key/v1";
/// Plaintext of the master-key check record: opening it proves the configured master key is
/// the one the data directory was sealed with.
const CHECK_PLAINTEXT: &[u8] = b"tessera master key check";

/// The 32-byte root of all key-encryption keys. Zeroized on drop; `Debug` is redacted.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Parses the textual forms accepted in files and `TESSERA_MASTER_KEY`: 64 hex digits or
    /// standard base64 of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| Error::MasterKey("bad hex".into()))?
        } else {
            crate::encoding::b64_decode(text).map_err(|_| {
                Error::MasterKey("expected 64 hex digits or base64 of 32 bytes".into())
            })?
        };
        let bytes = Zeroizing::new(bytes);
        let arr: [u8; 32] = bytes[..]
            .try_into()
            .map_err(|_| Error::MasterKey(format!("expected 32 bytes, got {}", bytes.len())))?;
        Ok(Self::from_bytes(arr))
    }

    /// Draws a fresh master key (dev mode only).
    pub fn generate() -> Result<Self, Error> {
        crypto::random_array()
            .map(Self::from_bytes)
            .map_err(|_| Error::Rng)
    }

    /// The text form written to a dev-mode master key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Seals and opens content keys; owns the master key and the per-tenant KEKs derived from it.
pub struct Keyring {
    master: MasterKey,
    // Derivation is cheap but not free (two HMACs); tenants are few, so memoise. The lock is
    // held only for a map lookup or insert, never across an await (STYLE S2).
    keks: RwLock<HashMap<String, Arc<SealingKey>>>,
    kid_keys: RwLock<HashMap<String, Arc<crypto::HmacKey>>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    /// Builds a keyring over `master`.
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            keks: RwLock::default(),
            kid_keys: RwLock::default(),
        }
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        crypto::hkdf_sha256_32(&self.master.0[..], KEK_SALT, info)
    }

    fn kek(&self, tenant: &str) -> Arc<SealingKey> {
        if let Some(k) = self
            .keks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
        {
            return k.clone();
        }
        let mut info = b"kek/".to_vec();
        info.extend_from_slice(tenant.as_bytes());
        let key = Arc::new(SealingKey::new(&self.derive(&info)));
        self.keks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.to_owned())
            .or_insert(key)
            .clone()
    }

    /// A sealing key for Tessera's own state (not content keys), derived from the master key
    /// under `purpose` (e.g. `widevine/session`): distinct from every tenant KEK by its label.
    pub fn purpose_key(&self, purpose: &str) -> SealingKey {
        SealingKey::new(&self.purpose_secret(purpose))
    }

    /// The 32-byte secret behind [`Keyring::purpose_key`], for callers that derive further
    /// keys from it.
    pub fn purpose_secret(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut info = b"purpose/".to_vec();
        info.extend_from_slice(purpose.as_bytes());
        self.derive(&info)
    }

    /// Associated data: a length-prefixed encoding so no two field tuples share a byte string.
    fn aad(tenant: &str, meta: &KeyMeta) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96 + tenant.len() + meta.content_id.len());
        let mut field = |bytes: &[u8]| {
            aad.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            aad.extend_from_slice(bytes);
        };
        field(AAD_TAG);
        field(tenant.as_bytes());
        field(meta.kid.as_bytes());
        field(meta.content_id.as_bytes());
        field(meta.track.map_or("", |t| t.as_str()).as_bytes());
        field(&meta.period.map_or([0xff; 8], u64::to_be_bytes));
        aad
    }

    /// Seals `key` for storage under `tenant`, bound to `meta`'s identity fields.
    pub fn seal(&self, tenant: &str, meta: &KeyMeta, key: &ContentKey) -> Result<Vec<u8>, Error> {
        self.kek(tenant)
            .seal(&Self::aad(tenant, meta), key.expose())
            .map_err(|_| Error::Rng)
    }

    /// Opens a sealed key; fails if any bound field differs from when it was sealed.
    pub fn open(&self, tenant: &str, meta: &KeyMeta, sealed: &[u8]) -> Result<ContentKey, Error> {
        let plain = self
            .kek(tenant)
            .open(&Self::aad(tenant, meta), sealed)
            .map_err(|_| Error::Unseal)?;
        ContentKey::from_slice(&plain).map_err(|_| Error::Unseal)
    }

    /// Deterministic key id for a generated key: HMAC over (content id, track, period,
    /// generation) under a tenant-specific derived key. Two nodes generating the "same" key
    /// concurrently pick the same KID, so the store's insert-if-absent makes creation
    /// idempotent everywhere; the keyed HMAC keeps KIDs from revealing anything about the
    /// content id. `generation` counts the revoked keys of that (content, track, period), so a
    /// replacement for a revoked key gets a new KID.
    pub fn derive_kid(
        &self,
        tenant: &str,
        content_id: &str,
        track: &str,
        period: Option<u64>,
        generation: u32,
    ) -> super::KeyId {
        let key = {
            let cached = self
                .kid_keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(tenant)
                .cloned();
            match cached {
                Some(k) => k,
                None => {
                    let mut info = b"kid/".to_vec();
                    info.extend_from_slice(tenant.as_bytes());
                    let k = Arc::new(crypto::HmacKey::new(
                        crypto::HmacAlg::Sha256,
                        &self.derive(&info)[..],
                    ));
                    self.kid_keys
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(tenant.to_owned())
                        .or_insert(k)
                        .clone()
                }
            }
        };
        let mut msg = Vec::new();
        for part in [content_id.as_bytes(), track.as_bytes()] {
            msg.extend_from_slice(&(part.len() as u32).to_be_bytes());
            msg.extend_from_slice(part);
        }
        msg.extend_from_slice(&period.map_or([0xff; 8], u64::to_be_bytes));
        msg.extend_from_slice(&generation.to_be_bytes());
        let tag = key.sign(&msg);
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&tag[..16]);
        // Mark it as an RFC 9562 version-8 (custom) UUID so it reads as a well-formed UUID.
        kid[6] = (kid[6] & 0x0f) | 0x80;
        kid[8] = (kid[8] & 0x3f) | 0x80;
        super::KeyId::from_bytes(kid)
    }

    /// A sealed record proving which master key sealed a data directory.
    pub fn check_record(&self) -> Result<Vec<u8>, Error> {
        SealingKey::new(&self.derive(CHECK_INFO))
            .seal(CHECK_INFO, CHECK_PLAINTEXT)
            .map_err(|_| Error::Rng)
    }

    /// Verifies a record made by [`Keyring::check_record`].
    pub fn verify_check_record(&self, record: &[u8]) -> Result<(), Error> {
        let plain = SealingKey::new(&self.derive(CHECK_INFO))
            .open(CHECK_INFO, record)
            .map_err(|_| {
                Error::MasterKey(
                    "this data directory was sealed with a different master key".into(),
                )
            })?;
        if &plain[..] == CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(Error::MasterKey(
                "master key check record is corrupt".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{KeyId, KeyState, TrackType};
    use proptest::prelude::*;

    fn meta(kid: [u8; 16], content: &str) -> KeyMeta {
        KeyMeta {
            kid: KeyId::from_bytes(kid),
            content_id: content.into(),
            track: Some(TrackType::Hd),
            period: None,
            created_at: 1,
            state: KeyState::Active,
        }
    }

    #[test]
    fn sealed_key_is_bound_to_tenant_kid_and_content() {
        let ring = Keyring::new(MasterKey::from_bytes([1; 32]));
        let key = ContentKey::from_bytes([9; 16]);
        let m = meta([2; 16], "movie");
        let sealed = ring.seal("a", &m, &key).unwrap();
        assert_eq!(ring.open("a", &m, &sealed).unwrap(), key);
        assert!(
            ring.open("b", &m, &sealed).is_err(),
            "moved to another tenant"
        );
        assert!(
            ring.open("a", &meta([3; 16], "movie"), &sealed).is_err(),
            "moved to another kid"
        );
        assert!(
            ring.open("a", &meta([2; 16], "other"), &sealed).is_err(),
            "moved to other content"
        );
        let other = Keyring::new(MasterKey::from_bytes([2; 32]));
        assert!(other.open("a", &m, &sealed).is_err(), "wrong master key");
    }

    #[test]
    fn check_record_detects_wrong_master_key() {
        let a = Keyring::new(MasterKey::from_bytes([1; 32]));
        let b = Keyring::new(MasterKey::from_bytes([2; 32]));
        let rec = a.check_record().unwrap();
        a.verify_check_record(&rec).unwrap();
        assert!(b.verify_check_record(&rec).is_err());
    }

    #[test]
    fn master_key_text_forms() {
        let hex = "00".repeat(31) + "ff";
        assert!(MasterKey::parse(&hex).is_ok());
        assert!(MasterKey::parse(&crate::encoding::b64_encode(&[5; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&crate::encoding::b64_encode(&[5; 31])).is_err());
        assert_eq!(
            format!("{:?}", MasterKey::from_bytes([1; 32])),
            "MasterKey(<redacted>)"
        );
    }

    #[test]
    fn derived_kids_are_stable_and_distinct() {
        let ring = Keyring::new(MasterKey::from_bytes([1; 32]));
        let a = ring.derive_kid("t", "movie", "HD", None, 0);
        assert_eq!(a, ring.derive_kid("t", "movie", "HD", None, 0));
        assert_ne!(a, ring.derive_kid("t", "movie", "SD", None, 0));
        assert_ne!(a, ring.derive_kid("u", "movie", "HD", None, 0));
        assert_ne!(a, ring.derive_kid("t", "movie", "HD", Some(0), 0));
        assert_ne!(a, ring.derive_kid("t", "movie", "HD", None, 1));
    }

    proptest! {
        #[test]
        fn envelope_round_trips(master in any::<[u8; 32]>(), key in any::<[u8; 16]>(), kid in any::<[u8; 16]>(),
                                tenant in "[a-z]{1,8}", content in ".{0,16}") {
            let ring = Keyring::new(MasterKey::from_bytes(master));
            let m = meta(kid, &content);
            let sealed = ring.seal(&tenant, &m, &ContentKey::from_bytes(key)).unwrap();
            let opened = ring.open(&tenant, &m, &sealed).unwrap();
            prop_assert_eq!(opened.expose(), &key);
        }
    }
}
