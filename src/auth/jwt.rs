//! Compact JWS (RFC 7515 §7.1) verification, written against ring rather than a JWT crate:
//! `docs/architecture.md` records that the team measured jsonwebtoken at 8-10 us inside a server against ~3 for a
//! lean check, and the licence hot path verifies one token per request.
//!
//! What is refused, and where: `alg: none` and unknown algorithms (here, before any key is
//! looked at); an algorithm not pinned to the selected key, which covers HS256-with-an-RSA-key
//! confusion (in `keys.rs`); any `crit` header (RFC 7515 §4.1.11: we understand no extension);
//! oversized tokens; padding or non-canonical base64url.

use super::Error;
use crate::encoding::b64url_decode;
use serde::Deserialize;
use std::borrow::Cow;

/// JWS algorithms Tessera verifies (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[expect(
    missing_docs,
    reason = "the variant names are the registered JWS names"
)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// Parses a registered name; `none` and anything else are errors.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            n if n.eq_ignore_ascii_case("none") => return Err(Error::AlgNone),
            _ => return Err(Error::AlgUnsupported),
        })
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A split, decoded, not yet verified token.
#[derive(Debug)]
pub struct Unverified<'t> {
    /// The header's algorithm.
    pub alg: Alg,
    /// The header's key id.
    pub kid: Option<String>,
    /// Decoded payload bytes (JSON).
    pub payload: Vec<u8>,
    /// `header.payload`: the bytes the signature covers.
    pub signing_input: &'t [u8],
    /// Decoded signature.
    pub signature: Vec<u8>,
}

/// The parts of a JWS header Tessera acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Algorithm.
    pub alg: Alg,
    /// Key id.
    pub kid: Option<String>,
}

/// Decodes and checks the header segment (base64url JSON).
pub fn parse_header(segment: &str) -> Result<Header, Error> {
    let header_bytes =
        b64url_decode(segment).map_err(|_| Error::Malformed("header is not base64url"))?;
    let header: RawHeader<'_> = serde_json::from_slice(&header_bytes)
        .map_err(|_| Error::Malformed("header is not a JWS header"))?;
    if header.crit.is_some() {
        return Err(Error::Malformed("crit header parameters are not supported"));
    }
    Ok(Header {
        alg: Alg::parse(&header.alg)?,
        kid: header.kid.map(Cow::into_owned),
    })
}

/// Splits and decodes a compact JWS. Nothing here is trusted until a key verifies it.
pub fn split(token: &str, max_len: usize) -> Result<Unverified<'_>, Error> {
    split_with(token, max_len, parse_header)
}

/// [`split`], with the header segment decoded by `header` (which may cache: every token of
/// an issuer usually carries the very same header segment).
pub fn split_with(
    token: &str,
    max_len: usize,
    header: impl FnOnce(&str) -> Result<Header, Error>,
) -> Result<Unverified<'_>, Error> {
    if token.len() > max_len {
        return Err(Error::TooLarge);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("not three dot-separated parts"));
    };
    let Header { alg, kid } = header(h)?;
    let payload = b64url_decode(p).map_err(|_| Error::Malformed("payload is not base64url"))?;
    let signature = b64url_decode(s).map_err(|_| Error::Malformed("signature is not base64url"))?;
    Ok(Unverified {
        alg,
        kid,
        payload,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::b64url_encode;

    fn tok(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64url_encode(header.as_bytes()),
            b64url_encode(payload.as_bytes())
        )
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            split(&tok(r#"{"alg":"none"}"#, "{}"), 9999),
            Err(Error::AlgNone)
        ));
        assert!(matches!(
            split(&tok(r#"{"alg":"NONE"}"#, "{}"), 9999),
            Err(Error::AlgNone)
        ));
        assert!(matches!(
            split(&tok(r#"{"alg":"HS1"}"#, "{}"), 9999),
            Err(Error::AlgUnsupported)
        ));
        assert!(matches!(
            split(&tok(r#"{"alg":"HS256","crit":["b64"]}"#, "{}"), 9999),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            split(&tok(r#"{"alg":"HS256"}"#, "{}"), 10),
            Err(Error::TooLarge)
        ));
        assert!(matches!(split("a.b", 9999), Err(Error::Malformed(_))));
        assert!(matches!(split("a.b.c.d", 9999), Err(Error::Malformed(_))));
        let padded = format!("{}=", tok(r#"{"alg":"HS256"}"#, "{}"));
        assert!(matches!(split(&padded, 9999), Err(Error::Malformed(_))));
        let token = tok(r#"{"alg":"HS256","kid":"k1"}"#, "{}");
        let ok = split(&token, 9999).unwrap();
        assert_eq!(
            (
                ok.alg,
                ok.kid.as_deref(),
                &ok.payload[..],
                &ok.signature[..]
            ),
            (Alg::HS256, Some("k1"), &b"{}"[..], &b"sig"[..])
        );
    }
}
