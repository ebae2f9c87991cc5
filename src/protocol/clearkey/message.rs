//! ClearKey licence request and response JSON (EME §9.1.3, §9.1.4). Pure codec.
//!
//! KIDs and keys are base64url *without* padding, strictly on input and exactly on output
//! (see `crate::encoding`). A request must list at least one KID; duplicates are folded.

use crate::encoding::{b64url_decode, b64url_encode};
use crate::keyring::{ContentKey, KeyId};
use serde::Deserialize;

/// Errors of the ClearKey codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The body is not the JSON object EME defines.
    #[error("licence request is not valid JSON of the EME ClearKey form")]
    Json,
    /// `kids` is empty.
    #[error("licence request lists no kids")]
    NoKids,
    /// More KIDs than allowed.
    #[error("licence request lists more than {0} kids")]
    TooManyKids(usize),
    /// A KID is not base64url (no padding) of 16 bytes.
    #[error("kid {0:?} is not unpadded base64url of 16 bytes")]
    BadKid(String),
    /// `type` is neither `temporary` nor `persistent-license`.
    #[error("type must be \"temporary\" or \"persistent-license\"")]
    BadType,
}

/// EME session types a ClearKey licence can be for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionType {
    /// `temporary`
    Temporary,
    /// `persistent-license`
    PersistentLicense,
}

impl SessionType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Temporary => "temporary",
            SessionType::PersistentLicense => "persistent-license",
        }
    }
}

/// A parsed licence request.
#[derive(Debug, PartialEq, Eq)]
pub struct LicenseRequest {
    /// Requested KIDs, in order, without duplicates.
    pub kids: Vec<KeyId>,
    /// Session type (default `temporary`).
    pub session_type: SessionType,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    kids: Vec<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    session_type: Option<std::borrow::Cow<'a, str>>,
}

/// Parses a licence request body.
pub fn parse(body: &[u8], max_kids: usize) -> Result<LicenseRequest, Error> {
    let raw: Raw<'_> = serde_json::from_slice(body).map_err(|_| Error::Json)?;
    if raw.kids.is_empty() {
        return Err(Error::NoKids);
    }
    if raw.kids.len() > max_kids {
        return Err(Error::TooManyKids(max_kids));
    }
    let mut kids = Vec::with_capacity(raw.kids.len());
    for k in &raw.kids {
        let bytes = b64url_decode(k).map_err(|_| Error::BadKid(k.to_string()))?;
        let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::BadKid(k.to_string()))?;
        let kid = KeyId::from_bytes(arr);
        if !kids.contains(&kid) {
            kids.push(kid);
        }
    }
    let session_type = match raw.session_type.as_deref() {
        None | Some("temporary") => SessionType::Temporary,
        Some("persistent-license") => SessionType::PersistentLicense,
        Some(_) => return Err(Error::BadType),
    };
    Ok(LicenseRequest { kids, session_type })
}

/// Encodes the licence (a JWK set, EME §9.1.4) into `out`. Written by hand: the shape is
/// fixed, and every value is base64url or a constant, so nothing needs JSON escaping.
pub fn encode<'k>(
    keys: impl IntoIterator<Item = (&'k KeyId, &'k ContentKey)>,
    session: SessionType,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"keys\":[");
    for (i, (kid, key)) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"kty\":\"oct\",\"kid\":\"");
        out.extend_from_slice(b64url_encode(kid.as_bytes()).as_bytes());
        out.extend_from_slice(b"\",\"k\":\"");
        out.extend_from_slice(b64url_encode(key.expose()).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"],\"type\":\"");
    out.extend_from_slice(session.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The base64url spelling of a KID, as a player sent it (for problem bodies).
pub fn kid_b64url(kid: &KeyId) -> String {
    b64url_encode(kid.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_eme_example_shape() {
        let r = parse(
            br#"{"kids":["AAECAwQFBgcICQoLDA0ODw","AAECAwQFBgcICQoLDA0ODw"],"type":"temporary"}"#,
            8,
        )
        .unwrap();
        assert_eq!(
            r.kids,
            vec![KeyId::from_bytes([
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
            ])]
        );
        assert_eq!(r.session_type, SessionType::Temporary);
        assert_eq!(
            parse(br#"{"kids":["AAECAwQFBgcICQoLDA0ODw"]}"#, 8)
                .unwrap()
                .session_type,
            SessionType::Temporary
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"not json", 8), Err(Error::Json));
        assert_eq!(parse(br#"{"kids":[]}"#, 8), Err(Error::NoKids));
        assert_eq!(parse(br#"{"type":"temporary"}"#, 8), Err(Error::Json));
        assert!(matches!(
            parse(br#"{"kids":["AAECAwQFBgcICQoLDA0ODw=="]}"#, 8),
            Err(Error::BadKid(_))
        ));
        assert!(matches!(
            parse(br#"{"kids":["AAECAwQFBgcICQoLDA0O"]}"#, 8),
            Err(Error::BadKid(_))
        ));
        assert!(matches!(
            parse(br#"{"kids":["AAECAwQFBgcICQoLDA0OD+"]}"#, 8),
            Err(Error::BadKid(_))
        ));
        assert_eq!(
            parse(br#"{"kids":["AAECAwQFBgcICQoLDA0ODw"],"type":"x"}"#, 8),
            Err(Error::BadType)
        );
        assert_eq!(
            parse(
                br#"{"kids":["AAECAwQFBgcICQoLDA0ODw","AQECAwQFBgcICQoLDA0ODw"]}"#,
                1
            ),
            Err(Error::TooManyKids(1))
        );
    }

    #[test]
    fn encodes_exactly() {
        let kid = KeyId::from_bytes([0xfb; 16]);
        let key = ContentKey::from_bytes([0xff; 16]);
        let mut out = Vec::new();
        encode([(&kid, &key)], SessionType::PersistentLicense, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"keys":[{"kty":"oct","kid":"-_v7-_v7-_v7-_v7-_v7-w","k":"_____________________w"}],"type":"persistent-license"}"#
        );
    }

    proptest! {
        #[test]
        fn round_trip(kids in proptest::collection::vec(any::<[u8; 16]>(), 1..8)) {
            let keys: Vec<(KeyId, ContentKey)> = kids.iter().map(|k| (KeyId::from_bytes(*k), ContentKey::from_bytes(*k))).collect();
            let mut out = Vec::new();
            encode(keys.iter().map(|(a, b)| (a, b)), SessionType::Temporary, &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let listed: Vec<&str> = v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
            let req = serde_json::json!({"kids": listed}).to_string();
            let parsed = parse(req.as_bytes(), 16).unwrap();
            let mut expect: Vec<KeyId> = Vec::new();
            for (k, _) in &keys { if !expect.contains(k) { expect.push(*k); } }
            prop_assert_eq!(parsed.kids, expect);
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&body, 16);
        }
    }
}
