//! Token claims: the registered ones Tessera checks (RFC 7519 §4.1) and the `tessera`
//! entitlement claim, documented in `docs/tokens.md`.

use crate::license::policy::Policy;
use serde::Deserialize;

/// A string or an array of strings (`aud`, `scope`). Deserialized by hand: serde's
/// `untagged` would buffer the value and try each variant in turn, building (and formatting)
/// an error for every variant that does not fit, on every token.
#[derive(Debug, Default)]
pub enum OneOrMany {
    /// Absent.
    #[default]
    None,
    /// One value (for `scope`, space-separated values).
    One(String),
    /// Many values.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::None)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::None)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(OneOrMany::Many(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl OneOrMany {
    /// Iterates the values, splitting a single string on spaces when `split` is true.
    pub fn values(&self, split: bool) -> Vec<&str> {
        match self {
            Self::None => Vec::new(),
            Self::One(s) if split => s.split(' ').filter(|x| !x.is_empty()).collect(),
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The payload of a Tessera token.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    /// Issuer: decides the tenant.
    pub iss: Option<String>,
    /// Subject (viewer or service account), for the audit trail.
    pub sub: Option<String>,
    /// Audience.
    #[serde(default)]
    pub aud: OneOrMany,
    /// Expiry (required), NumericDate.
    pub exp: Option<f64>,
    /// Not-before, NumericDate.
    pub nbf: Option<f64>,
    /// Issued-at, NumericDate.
    pub iat: Option<f64>,
    /// Token id, for replay prevention and the audit trail.
    pub jti: Option<String>,
    /// Service scopes (`keys:read keys:write admin`), string or array.
    #[serde(default)]
    pub scope: OneOrMany,
    /// The entitlement claim, kept as raw JSON: it is parsed only once the signature has
    /// verified, so an unsigned token never reaches its parser (see `TesseraClaim`).
    pub tessera: Option<Box<serde_json::value::RawValue>>,
}

/// `tessera`: what a player token entitles its bearer to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TesseraClaim {
    /// KIDs (UUID or 32 hex digits).
    #[serde(default)]
    pub kids: Vec<String>,
    /// Content ids: every key of these contents.
    #[serde(default)]
    pub content_ids: Vec<String>,
    /// A named policy of the tenant (a string), or an inline policy object; raw until
    /// resolved, so a malformed inline policy is a policy error, not a malformed token.
    pub policy: Option<Box<serde_json::value::RawValue>>,
    /// With `jti`: the token is accepted at most this many times.
    pub max_uses: Option<u32>,
}

/// A policy by name or inline.
#[derive(Debug)]
pub enum PolicyRef {
    /// A policy defined in the tenant's config.
    Named(String),
    /// A policy carried in the token.
    Inline(Box<Policy>),
}

impl PolicyRef {
    /// Reads the raw `policy` member: a JSON string names a policy, anything else must be a
    /// policy object.
    pub fn parse(raw: &serde_json::value::RawValue) -> Result<Self, serde_json::Error> {
        if raw.get().trim_start().starts_with('"') {
            serde_json::from_str(raw.get()).map(PolicyRef::Named)
        } else {
            serde_json::from_str(raw.get()).map(PolicyRef::Inline)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_many_reads_every_form() {
        let read = |json: &str| {
            serde_json::from_str::<OneOrMany>(json).map(|v| {
                v.values(false)
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(read(r#""a""#).unwrap(), ["a"]);
        assert_eq!(read(r#"["a","b"]"#).unwrap(), ["a", "b"]);
        assert_eq!(read("null").unwrap(), Vec::<String>::new());
        assert!(read("7").is_err());
        assert!(read(r#"["a",7]"#).is_err());
        let c: Claims = serde_json::from_str(r#"{"scope":"keys:read keys:write"}"#).unwrap();
        assert_eq!(c.scope.values(true), ["keys:read", "keys:write"]);
        let c: Claims = serde_json::from_str("{}").unwrap();
        assert!(c.aud.values(false).is_empty());
    }
}
