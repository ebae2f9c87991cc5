//! Token claims: the registered ones Tessera checks (RFC 7519 §4.1) and the `tessera`
//! entitlement claim, documented in `docs/tokens.md`.

use crate::license::policy::Policy;
use serde::Deserialize;

/// A string or an array of strings (`aud`, `scope`).
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// Absent.
    #[default]
    None,
    /// One value (for `scope`, space-separated values).
    One(String),
    /// Many values.
    Many(Vec<String>),
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
