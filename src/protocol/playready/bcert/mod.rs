//! BCert certificates and chains (docs/playready.md §2.5, §2.6, §1.4): the
//! binary device-certificate format of PlayReady-style clients, parsed, verified up to the
//! operator's own P-256 roots, and built (for `tessera devices playready` and the
//! response-signing chain).
//!
//! A chain is `"CHAI" | version | length | flags | count | certificates…` (leaf first); a
//! certificate is `"CERT" | version | length | signed length | attributes…`, each attribute
//! `flags(u16) | tag(u16) | length(u32, header included) | payload`, all big-endian. The
//! signature attribute comes last and covers every byte before it; it carries the issuer's
//! public key, so a chain is checked link by link and its top must be signed by a root,
//! which never appears in the chain itself.
//!
//! Verification is pure (the caller passes the time). A verified chain is cached by the
//! SHA-256 of its bytes ([`Trust`]), as the Widevine-style chains are: a chain enters the
//! cache only after a challenge signed with its leaf key verified, and expiry and revocation
//! are re-checked on every request, cached or not.
//!
//! Files: `parse.rs` reads chains, `verify.rs` checks them up to a root and keeps the
//! operator's trust and revocation, `build.rs` writes certificates and chains.

mod build;
mod parse;
#[cfg(test)]
mod tests;
mod verify;

pub use build::{CertSpec, chain};
pub use parse::{parse_chain, split_chain};
pub use verify::{Device, Trust, TrustConfig, Verified, verify_chain};

use crate::crypto::ecc::Point;
use std::ops::Range;

/// Most certificates in a chain (§2.6).
pub const MAX_CHAIN: usize = 6;
/// Largest chain accepted, bytes (a real device chain is about 1.3 KB).
pub const MAX_CHAIN_BYTES: usize = 16 * 1024;
const MAX_KEYS: u32 = 8;
const MAX_LIST: u32 = 64;

/// Certificate types (BASIC `cert_type`).
pub mod cert_type {
    /// A client device.
    pub const DEVICE: u32 = 2;
    /// An issuer (model or intermediate).
    pub const ISSUER: u32 = 4;
    /// A licence server.
    pub const SERVER: u32 = 11;
}

/// Key usages.
pub mod usage {
    /// Signs challenges.
    pub const SIGN: u32 = 1;
    /// Receives content keys.
    pub const ENCRYPT_KEY: u32 = 2;
    /// Issues any certificate.
    pub const ISSUER_ALL: u32 = 4;
    /// Issues individualized certificates.
    pub const ISSUER_INDIV: u32 = 5;
    /// Issues device certificates (a model certificate's key).
    pub const ISSUER_DEVICE: u32 = 6;
    /// Signs licence responses.
    pub const SIGN_RESPONSE: u32 = 20;
}

/// Feature ids (FEATURE attribute).
pub mod feature {
    /// The device has a secure clock.
    pub const SECURE_CLOCK: u32 = 4;
    /// The device processes revocation lists.
    pub const SUPPORTS_CRLS: u32 = 9;
    /// PlayReady 3 features.
    pub const SUPPORTS_PR3_FEATURES: u32 = 13;
}

const TAG_BASIC: u16 = 0x0001;
const TAG_DEVICE: u16 = 0x0004;
const TAG_FEATURE: u16 = 0x0005;
const TAG_KEY: u16 = 0x0006;
const TAG_MANUFACTURER: u16 = 0x0007;
const TAG_SIGNATURE: u16 = 0x0008;
const FLAG_MUST_UNDERSTAND: u16 = 0x0001;
/// BASIC flags bit 0: an extended-data signature is present (not supported here).
const BASIC_EXTDATA: u32 = 1;
/// "Never expires".
pub const NEVER: u32 = 0xFFFF_FFFF;

/// Why a chain is refused. The codes name the failed check in faults and metrics.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not a BCert chain, or a length that does not add up.
    #[error("malformed certificate chain: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_CHAIN`] certificates, or none.
    #[error("a certificate chain has 1 to {MAX_CHAIN} certificates")]
    Length,
    /// Types, keys or usages do not form a valid chain.
    #[error("bad certificate chain: {0}")]
    Structure(&'static str),
    /// A signature in the chain does not verify.
    #[error("a signature in the certificate chain does not verify")]
    Signature,
    /// The top of the chain is not signed by a configured root.
    #[error("the certificate chain does not lead to a trusted root")]
    UntrustedRoot,
    /// A certificate has expired.
    #[error("a certificate in the chain has expired")]
    Expired,
    /// A certificate id or the model is revoked.
    #[error("the device is revoked ({0})")]
    Revoked(&'static str),
    /// The challenge is signed with a key that is not the device's SIGN key.
    #[error("the challenge is not signed by the device certificate's key")]
    KeyMismatch,
}

impl Error {
    /// Machine-readable code for faults and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed(_) | Error::Length | Error::Structure(_) => "device_chain_invalid",
            Error::Signature => "device_chain_signature",
            Error::UntrustedRoot => "device_chain_untrusted",
            Error::Expired => "device_certificate_expired",
            Error::Revoked(_) => "device_revoked",
            Error::KeyMismatch => "device_key_mismatch",
        }
    }
}

impl From<crate::protocol::wire::Truncated> for Error {
    fn from(_: crate::protocol::wire::Truncated) -> Self {
        Error::Malformed("truncated")
    }
}

/// The BASIC attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Basic {
    /// Certificate id.
    pub cert_id: [u8; 16],
    /// 150, 2000 or 3000.
    pub security_level: u32,
    /// Flags (bit 0: extended data present).
    pub flags: u32,
    /// [`cert_type`].
    pub cert_type: u32,
    /// SHA-256 of the certificate's first public key.
    pub key_digest: [u8; 32],
    /// Unix seconds, or [`NEVER`].
    pub expiration: u32,
    /// Client id.
    pub client_id: [u8; 16],
}

/// One key of the KEY attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertKey {
    /// `X‖Y`.
    pub key: Point,
    /// [`usage`] values.
    pub usages: Vec<u32>,
}

/// The MANUFACTURER attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manufacturer {
    /// Manufacturer name.
    pub name: String,
    /// Model name (revocation by model matches it).
    pub model_name: String,
    /// Model number.
    pub model_number: String,
}

/// A parsed certificate. `signed` is the range (within the chain's bytes) its signature
/// covers.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// BASIC.
    pub basic: Basic,
    /// KEY.
    pub keys: Vec<CertKey>,
    /// FEATURE ids.
    pub features: Vec<u32>,
    /// MANUFACTURER.
    pub manufacturer: Option<Manufacturer>,
    /// The signature, `r‖s`.
    pub signature: [u8; 64],
    /// The issuer's public key.
    pub issuer_key: Point,
    /// Bytes the signature covers.
    pub signed: Range<usize>,
    /// The whole certificate.
    pub range: Range<usize>,
}

impl Certificate {
    /// The first key carrying `usage`.
    pub fn key_with(&self, usage: u32) -> Option<&Point> {
        self.keys
            .iter()
            .find(|k| k.usages.contains(&usage))
            .map(|k| &k.key)
    }
}
