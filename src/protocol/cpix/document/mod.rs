//! SPEKE v2.0 / v2.1 request documents (CPIX 2.3 / 2.4) and their responses
//! (`docs/protocols.md`, "SPEKE"; the AWS SPEKE v2 API, constraints and encryption
//! contract; DASH-IF CPIX 2.3 §5). Pure: the document in, the filled document out.
//!
//! The response is the request with values filled in: every element and attribute the
//! encryptor sent is kept, `ContentKey/Data` is added, and each `DRMSystem` gets exactly the
//! signalling children it asked for (children that do not apply to the system are
//! removed). Elements are matched by namespace URI, never by prefix.
//!
//! Files: `request.rs` parses and validates a request, `response.rs` fills it in,
//! `systems.rs` writes each `DRMSystem`'s signalling, `encrypted.rs` opens documents whose
//! keys were encrypted to Tessera (the consuming side of encrypted delivery).

mod encrypted;
mod request;
mod response;
mod systems;
#[cfg(test)]
mod tests;

pub use encrypted::open_encrypted;
pub use request::parse;
pub use response::respond;

use super::delivery::{self, Recipient};
use crate::keyring::KeyId;
use crate::protocol::signalling::Scheme;
use crate::xml::{self, Element};

/// CPIX namespace.
pub const NS_CPIX: &str = "urn:dashif:org:cpix";
/// PSKC namespace (key containers).
pub const NS_PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// XML Encryption namespace.
pub const NS_ENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML Signature namespace.
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Most `DeliveryData` recipients in one request (SPEKE uses one; each costs RSA work).
pub const MAX_RECIPIENTS: usize = 4;

/// DRM system ids Tessera signals.
pub mod system {
    /// Widevine.
    pub const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
    /// PlayReady.
    pub const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
    /// FairPlay.
    pub const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";
    /// HLS AES-128 ("ClearKey AES-128" in AWS's list).
    pub const AES128: &str = "3ea8778f-7742-4bf9-b18b-e834b2acbd47";
    /// W3C common PSSH (Clear Key).
    pub const COMMON: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
}

/// Errors of the SPEKE contract; the message is what SPEKE clients log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `X-Speke-Version` missing or not 2.0 / 2.1.
    #[error("Unsupported SPEKE version")]
    SpekeVersion,
    /// Not XML, or unsafe XML.
    #[error("{0}")]
    Xml(#[from] xml::Error),
    /// No `CPIX@contentId`.
    #[error("Missing CPIX@contentId")]
    MissingContentId,
    /// No `CPIX@version`.
    #[error("Missing CPIX@version")]
    MissingVersion,
    /// `CPIX@version` does not pair with `X-Speke-Version`.
    #[error("Unsupported CPIX@version")]
    CpixVersion,
    /// A content key without a scheme.
    #[error("Missing ContentKey@commonEncryptionScheme for KID {0}")]
    MissingScheme(String),
    /// Content keys with different schemes.
    #[error("Non compliant ContentKey@commonEncryptionScheme combination")]
    MixedSchemes,
    /// Any other violation of the contract.
    #[error("{0}")]
    Invalid(String),
    /// Key delivery problems (certificate, crypto).
    #[error(transparent)]
    Delivery(#[from] delivery::Error),
}

impl Error {
    /// True for a malformed body (HTTP 400) rather than a contract violation (422).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Error::Xml(_))
    }

    /// True for Tessera's own failure (random numbers, a cipher), not the request's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Delivery(delivery::Error::Crypto))
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// SPEKE version, from `X-Speke-Version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// SPEKE 2.0, CPIX 2.3.
    V2_0,
    /// SPEKE 2.1, CPIX 2.4.
    V2_1,
}

impl Version {
    /// Parses the header value.
    pub fn parse(header: Option<&str>) -> Result<Self, Error> {
        match header.map(str::trim) {
            Some("2.0") => Ok(Version::V2_0),
            Some("2.1") => Ok(Version::V2_1),
            _ => Err(Error::SpekeVersion),
        }
    }

    /// The header value to echo.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2_0 => "2.0",
            Version::V2_1 => "2.1",
        }
    }

    fn cpix(self) -> &'static str {
        match self {
            Version::V2_0 => "2.3",
            Version::V2_1 => "2.4",
        }
    }
}

/// A requested key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// KID.
    pub kid: KeyId,
    /// Track type of its usage rule, if any.
    pub track_type: Option<String>,
    /// Period index of its usage rule's `KeyPeriodFilter`, if any.
    pub period: Option<u64>,
    /// The request has an empty `explicitIV`: the encryptor asks Tessera for the IV.
    pub wants_iv: bool,
}

/// A validated request: the tree to fill, and what it asks for.
#[derive(Debug)]
pub struct Request {
    tree: Element,
    /// SPEKE version.
    pub version: Version,
    /// `CPIX@contentId`.
    pub content_id: String,
    /// Keys, in document order.
    pub keys: Vec<KeyRequest>,
    /// The one encryption scheme of every key (`None` for HLS AES-128 in 2.1).
    pub scheme: Option<Scheme>,
    /// Each `DeliveryData`'s certificate key, read once at parse time.
    recipients: Vec<Recipient>,
}

fn parse_kid(text: Option<&str>, what: &str) -> Result<KeyId, Error> {
    let text = text.ok_or_else(|| invalid(format!("Missing {what}@kid")))?;
    KeyId::parse(text).map_err(|_| invalid(format!("{what}@kid {text:?} is not a UUID")))
}

/// What the signalling needs besides the keys.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// `provider` in Widevine PSSH data.
    pub widevine_provider: &'a str,
    /// Base URL of the public listener (licence and key URLs).
    pub public_url: &'a str,
}

/// A content key recovered from an encrypted document.
pub type OpenedKey = (KeyId, zeroize::Zeroizing<[u8; 16]>);
