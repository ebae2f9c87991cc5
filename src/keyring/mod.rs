//! Content keys and key ids: typed values, sealing at rest, and the hot cache.
//!
//! A content key is `(tenant, kid, key, content_id, track, period, created_at, state)`
//! (`docs/architecture.md`, "Keys and storage"). Plaintext key bytes exist only inside
//! [`ContentKey`], which zeroizes on drop and never prints.

mod cache;
mod envelope;

pub use cache::{CachedKey, KeyCache};
pub use envelope::{Keyring, MasterKey};

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// Errors of the keyring module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key id was neither a UUID nor 32 hexadecimal digits.
    #[error("key id must be a UUID or 32 hexadecimal digits")]
    BadKeyId,
    /// A content key was not exactly 16 bytes.
    #[error("content key must be 16 bytes")]
    BadKeyLength,
    /// A sealed key failed to open: wrong master key, or a record moved between tenants/kids.
    #[error("sealed key failed to open (wrong master key or tampered record)")]
    Unseal,
    /// The master key is unusable.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

/// A 16-byte key id (KID), as carried in PSSH boxes, `cenc:default_KID` and licences.
///
/// Accepted as a UUID (`8-4-4-4-12`, any case) or 32 hex digits; always written in the
/// canonical form, a lowercase hyphenated UUID, which is how DASH manifests spell
/// `cenc:default_KID`. Byte order is the big-endian order of the text (as CENC uses it;
/// PlayReady's little-endian GUID form is a codec detail of that protocol).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the UUID or 32-hex-digit form.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let b = text.as_bytes();
        let hex: [u8; 32] = match b.len() {
            32 => b.try_into().map_err(|_| Error::BadKeyId)?,
            36 => {
                if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                    return Err(Error::BadKeyId);
                }
                let mut out = [0u8; 32];
                let mut n = 0;
                for (i, &c) in b.iter().enumerate() {
                    if ![8, 13, 18, 23].contains(&i) {
                        out[n] = c;
                        n += 1;
                    }
                }
                out
            }
            _ => return Err(Error::BadKeyId),
        };
        let mut bytes = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(bytes))
    }
}

fn nibble(c: u8) -> Result<u8, Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::BadKeyId),
    }
}

/// The canonical text of a [`KeyId`], on the stack.
#[derive(Clone, Copy)]
pub struct CanonicalKid([u8; 36]);

impl CanonicalKid {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Invariant: built only from ASCII hex digits and '-'.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl KeyId {
    /// The canonical form without allocating or going through `fmt` (KIDs are written on
    /// every licence's audit record, so this is on the hot path).
    pub fn canonical(&self) -> CanonicalKid {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut j = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                j += 1;
            }
            out[j] = HEX[usize::from(b >> 4)];
            out[j + 1] = HEX[usize::from(b & 0x0f)];
            j += 2;
        }
        CanonicalKid(out)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical().as_str())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl std::str::FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.canonical().as_str())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A 128-bit content key (AES-128, as CENC and HLS AES-128 use). Zeroized on drop; its
/// `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey(Zeroizing<[u8; 16]>);

impl ContentKey {
    /// Wraps 16 key bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies a slice that must be 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::BadKeyLength)?;
        Ok(Self::from_bytes(arr))
    }

    /// Draws a fresh key from the system CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        crate::crypto::random_array()
            .map(Self::from_bytes)
            .map_err(|_| Error::Rng)
    }

    /// The key bytes. Callers must not copy them into anything that is logged or outlives
    /// the response being built.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

/// Track types, as SPEKE and the Widevine-style key API name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrackType {
    /// Standard-definition video.
    #[serde(rename = "SD")]
    Sd,
    /// High-definition video.
    #[serde(rename = "HD")]
    Hd,
    /// UHD video, first tier (up to 4K).
    #[serde(rename = "UHD1")]
    Uhd1,
    /// UHD video, second tier (above 4K).
    #[serde(rename = "UHD2")]
    Uhd2,
    /// Audio.
    #[serde(rename = "AUDIO")]
    Audio,
}

impl TrackType {
    /// Every track type, in a stable order.
    pub const ALL: [TrackType; 5] = [Self::Sd, Self::Hd, Self::Uhd1, Self::Uhd2, Self::Audio];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sd => "SD",
            Self::Hd => "HD",
            Self::Uhd1 => "UHD1",
            Self::Uhd2 => "UHD2",
            Self::Audio => "AUDIO",
        }
    }

    /// Parses the wire name (case-insensitive; `UHD` is taken as `UHD1`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "SD" => Self::Sd,
            "HD" => Self::Hd,
            "UHD" | "UHD1" => Self::Uhd1,
            "UHD2" => Self::Uhd2,
            "AUDIO" => Self::Audio,
            _ => return None,
        })
    }
}

/// Lifecycle state of a key. Keys are immutable; revocation is the one state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum KeyState {
    /// The key may be released under policy.
    Active,
    /// The key is never released again.
    Revoked {
        /// Unix seconds of the revocation.
        at: u64,
    },
}

/// Everything about a key except the key bytes. Not secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMeta {
    /// The key id.
    pub kid: KeyId,
    /// The content (asset) id the key belongs to.
    pub content_id: String,
    /// The track type the key protects, if known.
    pub track: Option<TrackType>,
    /// The crypto period index (key rotation), if any.
    pub period: Option<u64>,
    /// Unix seconds of creation.
    pub created_at: u64,
    /// Active or revoked.
    #[serde(flatten)]
    pub state: KeyState,
}

impl KeyMeta {
    /// True unless revoked.
    pub fn is_active(&self) -> bool {
        matches!(self.state, KeyState::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kid_forms() {
        let a = KeyId::parse("0123456789abcdef0123456789ABCDEF").unwrap();
        let b = KeyId::parse("01234567-89AB-cdef-0123-456789abcdef").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
            "01234567-89ab-cdef-0123_456789abcdef",
            "0123456789-ab-cdef-0123-456789abcdef",
            "{01234567-89ab-cdef-0123-456789abcdef}",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn content_key_debug_is_redacted() {
        let k = ContentKey::from_bytes([0x42; 16]);
        assert_eq!(format!("{k:?}"), "ContentKey(<redacted>)");
        assert!(ContentKey::from_slice(&[1; 15]).is_err());
    }

    proptest! {
        #[test]
        fn kid_round_trips(bytes in any::<[u8; 16]>()) {
            let kid = KeyId::from_bytes(bytes);
            let canonical = kid.to_string();
            prop_assert_eq!(KeyId::parse(&canonical).unwrap(), kid);
            prop_assert_eq!(KeyId::parse(&canonical.replace('-', "")).unwrap(), kid);
            prop_assert_eq!(KeyId::parse(&canonical.to_uppercase()).unwrap(), kid);
        }

        #[test]
        fn kid_parse_never_panics(text in ".{0,40}") {
            let _ = KeyId::parse(&text);
        }
    }
}
