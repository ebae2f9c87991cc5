//! Messages of the Widevine-style common-encryption key API (`docs/protocols.md`,
//! "Widevine-style key API"): the JSON form of `SignedModularDrmRequest` /
//! `CommonEncryptionRequest` as Shaka Packager sends it, and the response it parses. Pure.
//!
//! The packager serialises protobuf to JSON with the proto field names (snake_case); its
//! response parser also takes lowerCamelCase, so requests are read with both spellings.

use crate::encoding::{b64_decode, b64_encode};
use serde::{Deserialize, Serialize};

/// Errors of the codec; each maps to a response status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not JSON of the documented shape, or a field is not valid base64.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Response status (`CommonEncryptionResponse.Status`); names are the wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub enum Status {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "SIGNATURE_FAILED")]
    SignatureFailed,
    #[serde(rename = "CONTENT_ID_MISSING")]
    ContentIdMissing,
    #[serde(rename = "POLICY_UNKNOWN")]
    PolicyUnknown,
    #[serde(rename = "TRACK_TYPE_MISSING")]
    TrackTypeMissing,
    #[serde(rename = "TRACK_TYPE_UNKNOWN")]
    TrackTypeUnknown,
    #[serde(rename = "MALFORMED_REQUEST")]
    MalformedRequest,
    #[serde(rename = "ACCESS_DENIED")]
    AccessDenied,
    #[serde(rename = "INTERNAL_ERROR")]
    InternalError,
    #[serde(rename = "INVALID_WIDEVINE_PSSH")]
    InvalidWidevinePssh,
    #[serde(rename = "TOO_MANY_CONTENT_SPECIFIERS")]
    TooManyContentSpecifiers,
    #[serde(rename = "ASSET_NOT_FOUND")]
    AssetNotFound,
    #[serde(rename = "ASSET_MISSING_KEY")]
    AssetMissingKey,
    #[serde(rename = "NO_REQUESTED_CRYPTO_PERIODS")]
    NoRequestedCryptoPeriods,
}

impl Status {
    /// The wire name (also the `code` label of refusal metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::SignatureFailed => "SIGNATURE_FAILED",
            Status::ContentIdMissing => "CONTENT_ID_MISSING",
            Status::PolicyUnknown => "POLICY_UNKNOWN",
            Status::TrackTypeMissing => "TRACK_TYPE_MISSING",
            Status::TrackTypeUnknown => "TRACK_TYPE_UNKNOWN",
            Status::MalformedRequest => "MALFORMED_REQUEST",
            Status::AccessDenied => "ACCESS_DENIED",
            Status::InternalError => "INTERNAL_ERROR",
            Status::InvalidWidevinePssh => "INVALID_WIDEVINE_PSSH",
            Status::TooManyContentSpecifiers => "TOO_MANY_CONTENT_SPECIFIERS",
            Status::AssetNotFound => "ASSET_NOT_FOUND",
            Status::AssetMissingKey => "ASSET_MISSING_KEY",
            Status::NoRequestedCryptoPeriods => "NO_REQUESTED_CRYPTO_PERIODS",
        }
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    request: Option<String>,
    signature: Option<String>,
    signer: Option<String>,
}

/// `SignedModularDrmRequest`: the exact signed bytes, decoded from `request`.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The inner request's JSON bytes, exactly as signed. Never re-serialised.
    pub request: Vec<u8>,
    /// The signature, when sent.
    pub signature: Option<Vec<u8>>,
    /// The signer name, when sent.
    pub signer: Option<String>,
}

/// Parses the outer envelope.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, Error> {
    let raw: RawEnvelope =
        serde_json::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))?;
    let request = raw
        .request
        .ok_or_else(|| Error::Malformed("no request field".into()))?;
    let request =
        b64_decode(&request).map_err(|_| Error::Malformed("request is not base64".into()))?;
    let signature = raw
        .signature
        .map(|s| b64_decode(&s))
        .transpose()
        .map_err(|_| Error::Malformed("signature is not base64".into()))?;
    Ok(Envelope {
        request,
        signature,
        signer: raw.signer.filter(|s| !s.is_empty()),
    })
}

#[derive(Deserialize)]
struct RawTrack {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(alias = "contentId")]
    content_id: Option<String>,
    policy: Option<String>,
    #[serde(default)]
    tracks: Vec<RawTrack>,
    #[serde(default, alias = "drmTypes")]
    drm_types: Vec<String>,
    #[serde(alias = "firstCryptoPeriodIndex")]
    first_crypto_period_index: Option<u32>,
    #[serde(alias = "cryptoPeriodCount")]
    crypto_period_count: Option<u32>,
    #[serde(alias = "cryptoPeriodSeconds")]
    crypto_period_seconds: Option<u32>,
    #[serde(alias = "psshData")]
    pssh_data: Option<String>,
    #[serde(alias = "protectionScheme")]
    protection_scheme: Option<String>,
}

/// `CommonEncryptionRequest`, the fields Tessera uses.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// `content_id` bytes (encryption requests).
    pub content_id: Option<Vec<u8>>,
    /// Named policy; Tessera has none for packaging and accepts only the empty one.
    pub policy: String,
    /// Requested track labels, as sent.
    pub tracks: Vec<String>,
    /// Requested DRM types (`WIDEVINE`).
    pub drm_types: Vec<String>,
    /// First crypto period (rotation).
    pub first_period: Option<u32>,
    /// Number of crypto periods (rotation).
    pub period_count: Option<u32>,
    /// Crypto period length, seconds (rotation; informational).
    pub period_seconds: Option<u32>,
    /// `WidevinePsshData` (decryption requests).
    pub pssh_data: Option<Vec<u8>>,
    /// `CENC`, `CBCS`, `CBC1` or `CENS`.
    pub protection_scheme: Option<String>,
}

/// Parses the inner request (unknown fields are ignored, as the packager's own parser does).
pub fn parse_request(bytes: &[u8]) -> Result<KeyRequest, Error> {
    let raw: RawRequest =
        serde_json::from_slice(bytes).map_err(|e| Error::Malformed(e.to_string()))?;
    let b64 = |field: &str, v: Option<String>| {
        v.map(|s| b64_decode(&s))
            .transpose()
            .map_err(|_| Error::Malformed(format!("{field} is not base64")))
    };
    Ok(KeyRequest {
        content_id: b64("content_id", raw.content_id)?.filter(|c| !c.is_empty()),
        policy: raw.policy.unwrap_or_default(),
        tracks: raw
            .tracks
            .into_iter()
            .map(|t| t.kind.unwrap_or_default())
            .collect(),
        drm_types: raw.drm_types,
        first_period: raw.first_crypto_period_index,
        period_count: raw.crypto_period_count,
        period_seconds: raw.crypto_period_seconds,
        pssh_data: b64("pssh_data", raw.pssh_data)?,
        protection_scheme: raw.protection_scheme,
    })
}

/// One track of a response. `Debug` never shows the key.
pub struct Track<'a> {
    /// The label, as requested.
    pub label: &'a str,
    /// KID bytes.
    pub kid: [u8; 16],
    /// Key bytes.
    pub key: &'a [u8; 16],
    /// `WidevinePsshData` for this track's `pssh[0].data`.
    pub pssh_data: Vec<u8>,
    /// Crypto period (rotation responses).
    pub period: Option<u32>,
}

impl std::fmt::Debug for Track<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Track")
            .field("label", &self.label)
            .field("kid", &crate::encoding::hex_encode(&self.kid))
            .field("key", &"<redacted>")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct RawPssh {
    drm_type: &'static str,
    data: String,
}

#[derive(Serialize)]
struct RawTrackOut {
    #[serde(rename = "type")]
    kind: String,
    key_id: String,
    key: String,
    pssh: [RawPssh; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    crypto_period_index: Option<u32>,
}

#[derive(Serialize)]
struct RawResponse {
    status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tracks: Vec<RawTrackOut>,
}

/// Encodes `{"response": base64(CommonEncryptionResponse JSON)}`. The intermediate copies of
/// the key bytes (the inner JSON and its base64) are zeroized once encoded.
pub fn encode_response(status: Status, tracks: &[Track<'_>]) -> Vec<u8> {
    let mut inner = RawResponse {
        status,
        tracks: tracks
            .iter()
            .map(|t| RawTrackOut {
                kind: t.label.to_owned(),
                key_id: b64_encode(&t.kid),
                key: b64_encode(t.key),
                pssh: [RawPssh {
                    drm_type: "WIDEVINE",
                    data: b64_encode(&t.pssh_data),
                }],
                crypto_period_index: t.period,
            })
            .collect(),
    };
    // Sized up front so the buffer holding key bytes is never reallocated (a reallocation
    // would free an unwiped copy). Plain strings and integers: serialisation cannot fail.
    let estimate = 64
        + tracks
            .iter()
            .map(|t| 160 + t.pssh_data.len() * 2)
            .sum::<usize>();
    let mut json = zeroize::Zeroizing::new(Vec::with_capacity(estimate));
    let _ = serde_json::to_writer(&mut *json, &inner);
    for t in &mut inner.tracks {
        zeroize::Zeroize::zeroize(&mut t.key);
    }
    let b64 = zeroize::Zeroizing::new(b64_encode(&json));
    // The body itself belongs to the HTTP layer once sent, as every licence does.
    let mut out = Vec::with_capacity(b64.len() + 64);
    out.extend_from_slice(b"{\"response\":\"");
    out.extend_from_slice(b64.as_bytes());
    out.push(b'"');
    // A refusal also names its status in clear beside `response`: the packager logs a
    // refused body whole, and an operator should not have to decode base64 to read it. Only
    // refusals: an answer the packager acts on stays exactly the documented shape.
    if status != Status::Ok {
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    out
}

/// Captured traffic shared by the module's tests.
#[cfg(test)]
pub(crate) mod tests_support {
    /// The envelope the real packager (3.8) sent with `--signer tessera_test`; its signature
    /// is checked in `signer.rs`.
    pub(crate) const PACKAGER_ENVELOPE: &str = r#"{"request":"eyJjb250ZW50X2lkIjoiZEdWemMyVnlZUzFqYkdsd0xURT0iLCJwb2xpY3kiOiIiLCJ0cmFja3MiOlt7InR5cGUiOiJTRCJ9LHsidHlwZSI6IkhEIn0seyJ0eXBlIjoiVUhEMSJ9LHsidHlwZSI6IlVIRDIifSx7InR5cGUiOiJBVURJTyJ9XSwiZHJtX3R5cGVzIjpbIldJREVWSU5FIl0sInByb3RlY3Rpb25fc2NoZW1lIjoiQ0VOQyJ9","signature":"duCvLvAVB7pGjMXMW81MJRQCPGslLTGSRzxk8ogpzq4=","signer":"tessera_test"}"#;
}

#[cfg(test)]
mod tests {
    use super::tests_support::PACKAGER_ENVELOPE;
    use super::*;

    #[test]
    fn parses_what_the_packager_sends() {
        let env = parse_envelope(PACKAGER_ENVELOPE.as_bytes()).unwrap();
        assert_eq!(env.signer.as_deref(), Some("tessera_test"));
        assert_eq!(env.request.len(), 189);
        let req = parse_request(&env.request).unwrap();
        assert_eq!(req.content_id.as_deref(), Some(&b"tessera-clip-1"[..]));
        assert_eq!(req.tracks, ["SD", "HD", "UHD1", "UHD2", "AUDIO"]);
        assert_eq!(req.protection_scheme.as_deref(), Some("CENC"));
        assert_eq!(req.first_period, None);
        // Rotation fields, camelCase accepted too.
        let r = parse_request(
            br#"{"contentId":"AQIDBA==","tracks":[{"type":"SD"}],"firstCryptoPeriodIndex":3,"crypto_period_count":10,"video_feature":"HDR"}"#,
        )
        .unwrap();
        assert_eq!((r.first_period, r.period_count), (Some(3), Some(10)));
    }

    #[test]
    fn malformed_inputs() {
        for body in [
            &b"not json"[..],
            br#"{"signature":"AA=="}"#,
            br#"{"request":"!!!"}"#,
            br#"{"request":"e30=","signature":"***"}"#,
        ] {
            assert!(
                parse_envelope(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_request(br#"{"content_id":"%%"}"#).is_err());
        assert!(parse_request(br#"{"tracks":"SD"}"#).is_err());
    }

    #[test]
    fn response_shape() {
        let key = [9u8; 16];
        let body = encode_response(
            Status::Ok,
            &[Track {
                label: "SD",
                kid: [1; 16],
                key: &key,
                pssh_data: vec![0x12, 0x10],
                period: Some(4),
            }],
        );
        let outer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let inner = b64_decode(outer["response"].as_str().unwrap()).unwrap();
        let inner: serde_json::Value = serde_json::from_slice(&inner).unwrap();
        assert_eq!(inner["status"], "OK");
        assert_eq!(inner["tracks"][0]["type"], "SD");
        assert_eq!(inner["tracks"][0]["crypto_period_index"], 4);
        assert_eq!(inner["tracks"][0]["pssh"][0]["data"], "EhA=");
        let refused = encode_response(Status::SignatureFailed, &[]);
        let outer: serde_json::Value = serde_json::from_slice(&refused).unwrap();
        let inner = b64_decode(outer["response"].as_str().unwrap()).unwrap();
        assert_eq!(inner, br#"{"status":"SIGNATURE_FAILED"}"#);
        assert_eq!(outer["status"], "SIGNATURE_FAILED");
    }
}
