//! `[[tenants]]`: who may mint tokens for which keys, with what policies.

use super::Secret;
use crate::license::policy::Policy;
use crate::protocol::TenantSections;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a verification key may authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPurpose {
    /// Entitlement and service tokens.
    #[default]
    Any,
    /// Player entitlement tokens only.
    Entitlement,
    /// Service tokens (key API) only.
    Service,
}

/// `[[tenants.keys]]`: one JWT verification key (or a JWKS URL standing for many).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationKeyConfig {
    /// The JWS `kid` this key answers to; tokens without `kid` try every key allowing their alg.
    pub kid: Option<String>,
    /// Algorithms pinned to this key (`HS256`, `RS256`, `PS256`, `ES256`, `ES384`, `EdDSA`, ...).
    pub algorithms: Vec<String>,
    /// Which tokens this key may verify.
    pub purpose: KeyPurpose,
    /// HMAC secret by value (at least as long as the hash output, RFC 7518 §3.2).
    pub secret: Option<Secret>,
    /// HMAC secret file.
    pub secret_file: Option<PathBuf>,
    /// Public key, PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    pub public_key_pem: Option<String>,
    /// Public key PEM file.
    pub public_key_file: Option<PathBuf>,
    /// X.509 certificate PEM file whose subject key verifies tokens.
    pub certificate_file: Option<PathBuf>,
    /// JWKS URL (http or https); keys are selected by `kid` and refreshed on rotation.
    pub jwks_url: Option<String>,
    /// JWKS refresh interval, seconds.
    pub jwks_refresh_secs: Option<u64>,
}

/// `[tenants.signing_key]`: used only by `tessera token` to mint test tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// `kid` written into minted tokens' headers.
    pub kid: Option<String>,
    /// `HS256`/`HS384`/`HS512`, `RS256`, `PS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// HMAC secret by value.
    pub secret: Option<Secret>,
    /// HMAC secret file.
    pub secret_file: Option<PathBuf>,
    /// PKCS#8 private key PEM file (RSA, P-256 or Ed25519).
    pub private_key_file: Option<PathBuf>,
}

/// `[[tenants]]`. Deserialized by hand (below) so that the members protocols declare
/// (`widevine_signers`, `fairplay_credentials`: [`crate::protocol::Protocol::TENANT_SECTION`])
/// are read into [`TenantSections`] while every other unknown key is still refused.
#[derive(Debug)]
pub struct TenantConfig {
    /// Tenant id: `[a-z0-9_-]{1,64}`. Part of every sealed key's associated data: never rename.
    pub id: String,
    /// Accepted `iss` values; each issuer belongs to exactly one tenant.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when non-empty a token must name one of them.
    pub audiences: Vec<String>,
    /// Clock-skew leeway for `exp`/`nbf`, seconds (default 30).
    pub leeway_secs: u64,
    /// Browser origins allowed to call the public listener (`*` for any).
    pub cors_allowed_origins: Vec<String>,
    /// Verification keys.
    pub keys: Vec<VerificationKeyConfig>,
    /// Key used by `tessera token`.
    pub signing_key: Option<SigningKeyConfig>,
    /// Named licence policies.
    pub policies: BTreeMap<String, Policy>,
    /// Policy applied when a token names none; default `default` (built in if not defined).
    pub default_policy: Option<String>,
    /// The members protocols declare (`[[tenants.widevine_signers]]`,
    /// `[[tenants.fairplay_credentials]]`).
    pub protocols: TenantSections,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway_secs: 30,
            cors_allowed_origins: Vec::new(),
            keys: Vec::new(),
            signing_key: None,
            policies: BTreeMap::new(),
            default_policy: None,
            protocols: TenantSections::default(),
        }
    }
}

/// The keys of `[[tenants]]` this module reads itself.
const TENANT_KEYS: [&str; 9] = [
    "id",
    "issuers",
    "audiences",
    "leeway_secs",
    "cors_allowed_origins",
    "keys",
    "signing_key",
    "policies",
    "default_policy",
];

/// Every key `[[tenants]]` accepts, for the unknown-key error.
static EXPECTED: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| super::known_keys(&TENANT_KEYS, TenantSections::KEYS));

impl<'de> Deserialize<'de> for TenantConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TenantConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [[tenants]] table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TenantConfig, A::Error> {
                let mut t = TenantConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => t.id = map.next_value()?,
                        "issuers" => t.issuers = map.next_value()?,
                        "audiences" => t.audiences = map.next_value()?,
                        "leeway_secs" => t.leeway_secs = map.next_value()?,
                        "cors_allowed_origins" => t.cors_allowed_origins = map.next_value()?,
                        "keys" => t.keys = map.next_value()?,
                        "signing_key" => t.signing_key = map.next_value()?,
                        "policies" => t.policies = map.next_value()?,
                        "default_policy" => t.default_policy = map.next_value()?,
                        other => {
                            if !t.protocols.read(other, &mut map)? {
                                return Err(serde::de::Error::unknown_field(other, &EXPECTED));
                            }
                        }
                    }
                }
                Ok(t)
            }
        }
        d.deserialize_map(Visitor)
    }
}
