//! JWS headers (RFC 7515 §4): what Tessera reads of a token before `jsonwebtoken` verifies
//! it. Splitting, decoding, signature verification and the registered-claim checks are
//! jsonwebtoken's (`Authenticator::verify`); this module only decides, from the header,
//! what jsonwebtoken cannot tell apart and Tessera's refusal codes must: `alg: none`
//! (`alg_none`) against an algorithm no key could ever verify (`alg_unsupported`), both
//! before any key is looked at, and any `crit` header (RFC 7515 §4.1.11: Tessera
//! understands no extension; jsonwebtoken accepts `crit: ["b64"]`). jsonwebtoken parses
//! `alg` into a closed enum, so `none` and `HS1024` reach its caller as the same JSON error.
//! The check runs once per distinct header text (the authenticator caches the result).

use super::Error;
use crate::encoding::b64url_decode;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;

/// JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1): jsonwebtoken's.
pub use jsonwebtoken::Algorithm as Alg;

/// Parses a registered algorithm name; `none` (any case) and unknown names are errors.
pub fn parse_alg(name: &str) -> Result<Alg, Error> {
    if name.eq_ignore_ascii_case("none") {
        return Err(Error::AlgNone);
    }
    name.parse().map_err(|_| Error::AlgUnsupported)
}

/// The name of an algorithm, as JWS registers it.
pub fn alg_name(alg: Alg) -> String {
    format!("{alg:?}")
}

/// The header members Tessera reads on its own (see the module documentation).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The parts of a JWS header Tessera acts on before verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Algorithm.
    pub alg: Alg,
    /// Key id.
    pub kid: Option<Arc<str>>,
}

/// Checks a header segment (base64url JSON): `crit` refused, `alg: none` and unsupported
/// algorithms told apart, then the same header as jsonwebtoken reads it (typed members,
/// `b64`), so that what passes here is what it will verify.
pub fn check_header(segment: &str) -> Result<Header, Error> {
    let bytes = b64url_decode(segment).map_err(|_| Error::Malformed("header is not base64url"))?;
    let raw: RawHeader<'_> = serde_json::from_slice(&bytes)
        .map_err(|_| Error::Malformed("header is not a JWS header"))?;
    if raw.crit.is_some() {
        return Err(Error::Malformed("crit header parameters are not supported"));
    }
    parse_alg(&raw.alg)?;
    // jsonwebtoken's own reading of the header (a token of this header and empty payload
    // and signature segments): the typed members and its `b64` rule.
    let header = jsonwebtoken::decode_header(format!("{segment}.."))
        .map_err(|_| Error::Malformed("header is not a JWS header"))?;
    if !matches!(header.extras.get::<bool>("b64"), Ok(None | Some(true))) {
        return Err(Error::Malformed(
            "the b64 header parameter is not supported",
        ));
    }
    Ok(Header {
        alg: header.alg,
        kid: header.kid.map(Arc::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::b64url_encode;

    fn segment(header: &str) -> String {
        b64url_encode(header.as_bytes())
    }

    #[test]
    fn refusals() {
        let check = |h: &str| check_header(&segment(h));
        assert!(matches!(check(r#"{"alg":"none"}"#), Err(Error::AlgNone)));
        assert!(matches!(check(r#"{"alg":"NONE"}"#), Err(Error::AlgNone)));
        assert!(matches!(
            check(r#"{"alg":"HS1"}"#),
            Err(Error::AlgUnsupported)
        ));
        assert!(matches!(
            check(r#"{"alg":"HS256","crit":["b64"],"b64":true}"#),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            check(r#"{"alg":{"HS256":null}}"#),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            check(r#"{"alg":"HS256","kid":7}"#),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            check(r#"{"alg":"HS256","b64":false}"#),
            Err(Error::Malformed(_))
        ));
        let padded = format!("{}=", segment(r#"{"alg":"HS256"}"#));
        assert!(matches!(check_header(&padded), Err(Error::Malformed(_))));
        assert_eq!(
            check(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#).unwrap(),
            Header {
                alg: Alg::HS256,
                kid: Some("k1".into())
            }
        );
        assert_eq!(alg_name(Alg::EdDSA), "EdDSA");
        assert_eq!(parse_alg("PS384").unwrap(), Alg::PS384);
    }
}
