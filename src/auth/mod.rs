//! Who is asking: JWT verification per tenant, and what a verified token allows.
//!
//! Flow (`docs/tokens.md`): size cap -> the header's `alg` and `crit` checked ([`jwt`]:
//! `alg: none` is refused before any key is looked at) -> peek the payload's `iss` to pick
//! the one tenant that owns that issuer -> select that tenant's keys by `kid` and pinned
//! `alg` -> `jsonwebtoken` verifies the signature, then `exp`/`nbf` (with the tenant's
//! leeway), `aud` and `iss` -> only then are the claims used. The tenant of a request is
//! therefore decided by a *verified* token: a token of tenant A cannot name tenant B,
//! because B's keys would have to verify it. Signatures are computed by ring
//! (`crate::crypto::jws`, jsonwebtoken's provider).
//!
//! Player tokens become an [`Entitlement`]; service tokens a
//! [`Service`] with scopes. Token format: `docs/tokens.md`.

pub mod claims;
pub mod jwt;
pub mod keys;
pub mod mint;
pub mod replay;

use crate::config::{Config, KeyPurpose, SetupError};
use crate::license::Entitlement;
use crate::license::policy::Policy;
use claims::{Claims, PolicyRef};
use http_body_util::{BodyExt, Empty, Limited};
use keys::{JwksSource, TenantKeys};
use replay::ReplayGuard;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Errors of the auth module. Each names the check that failed; none carries token contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No bearer token in the request.
    #[error("no bearer token")]
    Missing,
    /// The token is larger than `limits.max_token_bytes`.
    #[error("token too large")]
    TooLarge,
    /// The token is not a well-formed compact JWS or its claims are not well-formed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are refused")]
    AlgNone,
    /// An algorithm Tessera does not implement.
    #[error("unsupported algorithm")]
    AlgUnsupported,
    /// The algorithm is not pinned to any key with this `kid` (e.g. HS256 against an RSA key).
    #[error("algorithm not allowed for this key")]
    AlgNotAllowed,
    /// `iss` missing or not configured for any tenant.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// No key of the issuer's tenant has this `kid`.
    #[error("unknown key id")]
    UnknownKid,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// `exp` missing.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `exp` is past (leeway included).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (leeway included).
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` does not name this tenant's audience.
    #[error("wrong audience")]
    BadAudience,
    /// The key that verified the token may not be used for this kind of token.
    #[error("token kind not accepted here")]
    WrongPurpose,
    /// A player endpoint got a token without the `tessera` entitlement claim.
    #[error("token carries no entitlement")]
    NoEntitlement,
    /// The token names a policy the tenant does not define, or an invalid inline one.
    #[error("unknown or invalid policy")]
    BadPolicy,
    /// The token's `max_uses` are spent.
    #[error("token already used")]
    Replayed,
    /// The service token lacks the scope this operation needs.
    #[error("insufficient scope")]
    InsufficientScope,
    /// Replay tracking is full, or the tenant's JWKS has never been fetched: fail closed.
    #[error("token verification temporarily unavailable")]
    Unavailable,
}

impl Error {
    /// Machine-readable code (problem bodies, `tessera_auth_denials_total{reason}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing => "token_missing",
            Error::TooLarge => "token_too_large",
            Error::Malformed(_) => "token_malformed",
            Error::AlgNone => "alg_none",
            Error::AlgUnsupported => "alg_unsupported",
            Error::AlgNotAllowed => "alg_not_allowed",
            Error::UnknownIssuer => "issuer_unknown",
            Error::UnknownKid => "kid_unknown",
            Error::BadSignature => "signature_invalid",
            Error::MissingExpiry => "exp_missing",
            Error::Expired => "token_expired",
            Error::NotYetValid => "token_not_yet_valid",
            Error::BadAudience => "audience_invalid",
            Error::WrongPurpose => "token_purpose",
            Error::NoEntitlement => "entitlement_missing",
            Error::BadPolicy => "policy_invalid",
            Error::Replayed => "token_replayed",
            Error::InsufficientScope => "insufficient_scope",
            Error::Unavailable => "auth_unavailable",
        }
    }

    /// Every code, for pre-registering metric labels.
    pub const CODES: [&'static str; 19] = [
        "token_missing",
        "token_too_large",
        "token_malformed",
        "alg_none",
        "alg_unsupported",
        "alg_not_allowed",
        "issuer_unknown",
        "kid_unknown",
        "signature_invalid",
        "exp_missing",
        "token_expired",
        "token_not_yet_valid",
        "audience_invalid",
        "token_purpose",
        "entitlement_missing",
        "policy_invalid",
        "token_replayed",
        "insufficient_scope",
        "auth_unavailable",
    ];
}

/// Service scopes (`scope` claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Read keys (material included).
    KeysRead,
    /// Create, import and revoke keys.
    KeysWrite,
    /// Everything.
    Admin,
}

impl Scope {
    /// The claim spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::KeysRead => "keys:read",
            Scope::KeysWrite => "keys:write",
            Scope::Admin => "admin",
        }
    }
}

/// A verified service token.
#[derive(Debug, Clone)]
pub struct Service {
    /// Tenant index.
    pub tenant: u32,
    /// `sub`, for the audit trail.
    pub subject: Option<String>,
    /// The token may read key material (`keys:read` or `admin`): key material appears in key
    /// API responses only then, whatever the operation.
    pub can_read: bool,
}

/// A token whose signature and time/audience claims have been verified.
#[derive(Debug)]
pub struct Verified {
    /// Tenant index.
    pub tenant: u32,
    /// The claims.
    pub claims: Claims,
    /// Purpose of the key that verified it.
    pub purpose: KeyPurpose,
    /// `exp`.
    pub expires_at: u64,
}

struct TenantAuth {
    id: String,
    keys: TenantKeys,
    audiences: Vec<String>,
    leeway: u64,
    policies: HashMap<String, Arc<Policy>>,
    default_policy: Arc<Policy>,
}

/// Checked JWS headers by their exact base64url text. Bounded: when full it is cleared, so
/// junk headers can cost speed, never correctness (the cache only skips re-checking bytes
/// whose meaning cannot change).
struct HeaderCache(std::sync::RwLock<HashMap<Box<str>, jwt::Header>>);

const HEADER_CACHE_MAX: usize = 256;

impl HeaderCache {
    fn get_or_check(&self, segment: &str) -> Result<jwt::Header, Error> {
        if let Some(h) = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(segment)
        {
            return Ok(h.clone());
        }
        let checked = jwt::check_header(segment)?;
        if segment.len() <= 512 {
            let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
            if map.len() >= HEADER_CACHE_MAX {
                map.clear();
            }
            map.insert(segment.into(), checked.clone());
        }
        Ok(checked)
    }
}

/// How a jsonwebtoken refusal reads in Tessera's codes. `exp_missing` is told from an
/// unusable `exp` by the claims as peeked (jsonwebtoken reports both as missing).
fn refusal(e: &jsonwebtoken::errors::Error, claims: &Claims) -> Error {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => Error::BadSignature,
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => Error::AlgNotAllowed,
        K::MissingRequiredClaim(c) if c == "exp" && claims.exp.is_none() => Error::MissingExpiry,
        K::MissingRequiredClaim(c) | K::InvalidClaimFormat(c) if c == "exp" => Error::Expired,
        K::ExpiredSignature => Error::Expired,
        K::ImmatureSignature => Error::NotYetValid,
        K::InvalidClaimFormat(c) if c == "nbf" => Error::NotYetValid,
        K::InvalidAudience => Error::BadAudience,
        K::InvalidClaimFormat(c) | K::MissingRequiredClaim(c) if c == "aud" => Error::BadAudience,
        K::InvalidIssuer => Error::UnknownIssuer,
        K::InvalidClaimFormat(c) | K::MissingRequiredClaim(c) if c == "iss" => Error::UnknownIssuer,
        _ => Error::Malformed("token is not a well-formed JWS"),
    }
}

/// Refusals that say this key cannot verify the token (another candidate may).
fn tries_next_key(e: &jsonwebtoken::errors::Error) -> bool {
    use jsonwebtoken::errors::ErrorKind as K;
    matches!(
        e.kind(),
        K::InvalidSignature
            | K::InvalidKeyFormat
            | K::InvalidEcdsaKey
            | K::InvalidEddsaKey
            | K::InvalidRsaKey(_)
            | K::UnsupportedAlgorithm
            | K::Provider(_)
    )
}

/// Verifies tokens for every configured tenant.
pub struct Authenticator {
    headers: HeaderCache,
    tenants: Vec<TenantAuth>,
    by_issuer: HashMap<String, u32>,
    /// Every configured (not JWKS) key with a `kid`, with its tenant: the fast path of
    /// [`Authenticator::verify`].
    by_kid: HashMap<Box<str>, Vec<(u32, Arc<keys::VerificationKey>)>>,
    replay: Arc<dyn ReplayGuard>,
    max_token_bytes: usize,
    max_entitlement_items: usize,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tenants", &self.tenants.len())
            .finish_non_exhaustive()
    }
}

/// Minimum time between two unscheduled JWKS fetches triggered by an unknown `kid`.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

impl Authenticator {
    /// Builds the verifier for every tenant (tenant index = position in `cfg.tenants`),
    /// reading each key file once.
    pub fn from_config(cfg: &Config, replay: Arc<dyn ReplayGuard>) -> Result<Self, SetupError> {
        let mut tenants = Vec::new();
        let mut by_issuer = HashMap::new();
        for (i, t) in cfg.tenants.iter().enumerate() {
            let idx =
                u32::try_from(i).map_err(|_| SetupError::invalid("tenants", "too many tenants"))?;
            for iss in &t.issuers {
                by_issuer.insert(iss.clone(), idx);
            }
            let policies: HashMap<String, Arc<Policy>> = t
                .policies
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(v.clone())))
                .collect();
            let default_name = t.default_policy.as_deref().unwrap_or("default");
            let default_policy = policies.get(default_name).cloned().unwrap_or_default();
            tenants.push(TenantAuth {
                id: t.id.clone(),
                keys: TenantKeys::from_config(t, cfg.dev_mode)?,
                audiences: t.audiences.clone(),
                leeway: t.leeway_secs,
                policies,
                default_policy,
            });
        }
        let mut by_kid: HashMap<Box<str>, Vec<_>> = HashMap::new();
        for (i, t) in tenants.iter().enumerate() {
            for key in &t.keys.fixed {
                if let Some(kid) = &key.kid {
                    by_kid
                        .entry(kid.as_str().into())
                        .or_default()
                        .push((i as u32, key.clone()));
                }
            }
        }
        Ok(Self {
            headers: HeaderCache(std::sync::RwLock::default()),
            tenants,
            by_issuer,
            by_kid,
            replay,
            max_token_bytes: cfg.limits.max_token_bytes,
            max_entitlement_items: cfg.limits.max_kids_per_request.max(1) * 8,
        })
    }

    /// The tenant id of an index.
    pub fn tenant_id(&self, idx: u32) -> &str {
        self.tenants.get(idx as usize).map_or("", |t| t.id.as_str())
    }

    /// The index of a tenant id.
    pub fn tenant_index(&self, id: &str) -> Option<u32> {
        self.tenants
            .iter()
            .position(|t| t.id == id)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Verifies signature, expiry, not-before, audience and issuer (synchronously; see
    /// [`Authenticator::verify_async`] for JWKS rotation). The clock is jsonwebtoken's.
    pub fn verify(&self, token: &str) -> Result<Verified, Error> {
        if token.len() > self.max_token_bytes {
            return Err(Error::TooLarge);
        }
        // Exactly three segments: jsonwebtoken splits from the right, so this keeps the
        // header checked here the one it verifies.
        let mut segments = token.split('.');
        let (Some(header), Some(_), Some(_), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(Error::Malformed("not three dot-separated parts"));
        };
        let header = self.headers.get_or_check(header)?;
        if let Some(verified) = self.verify_by_kid(token, &header) {
            return Ok(verified);
        }
        // Only `iss` is acted on before verification: it picks the tenant, whose keys must
        // then verify the very payload these claims were read from.
        let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| Error::Malformed("claims are not valid"))?;
        let tenant = claims
            .iss
            .as_deref()
            .and_then(|i| self.by_issuer.get(i))
            .copied()
            .ok_or(Error::UnknownIssuer)?;
        let t = &self.tenants[tenant as usize];
        let kid = header.kid.as_deref();
        let candidates = t.keys.candidates(kid, header.alg);
        if candidates.is_empty() {
            return Err(match kid {
                Some(k) if !t.keys.knows_kid(k) => {
                    if t.keys.jwks.iter().any(|s| !s.is_loaded()) && t.keys.fixed.is_empty() {
                        Error::Unavailable
                    } else {
                        Error::UnknownKid
                    }
                }
                _ => Error::AlgNotAllowed,
            });
        }
        let mut verified_by = None;
        for key in &candidates {
            match jsonwebtoken::decode::<serde::de::IgnoredAny>(
                token,
                &key.decoding,
                &key.validation,
            ) {
                Ok(_) => {
                    verified_by = Some(key);
                    break;
                }
                Err(e) if tries_next_key(&e) => {}
                Err(e) => return Err(refusal(&e, &claims)),
            }
        }
        let key = verified_by.ok_or(Error::BadSignature)?;
        // jsonwebtoken lets a token without `aud` pass; a tenant with audiences needs one.
        if !t.audiences.is_empty() && claims.aud.values(false).is_empty() {
            return Err(Error::BadAudience);
        }
        let exp = claims.exp.ok_or(Error::MissingExpiry)?;
        Ok(Verified {
            tenant,
            claims,
            purpose: key.purpose,
            expires_at: exp.max(0.0) as u64,
        })
    }

    /// The fast path: a configured key named by the header's `kid` verifies the token and
    /// jsonwebtoken finds its `iss` to be one of that key's tenant's issuers (so it is the
    /// tenant the issuer picks, each issuer belonging to one tenant), and the claims pass.
    /// That is exactly what the full path accepts, without reading the payload twice. Any
    /// other outcome (no such key, a refusal) is left to the full path, which gives the
    /// refusal its code.
    fn verify_by_kid(&self, token: &str, header: &jwt::Header) -> Option<Verified> {
        let keys = self.by_kid.get(header.kid.as_deref()?)?;
        for (tenant, key) in keys {
            if !key.algs.contains(&header.alg) {
                continue;
            }
            let Ok(data) = jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation)
            else {
                continue;
            };
            let claims = data.claims;
            let t = &self.tenants[*tenant as usize];
            let exp = claims.exp?;
            if !t.audiences.is_empty() && claims.aud.values(false).is_empty() {
                return None;
            }
            return Some(Verified {
                tenant: *tenant,
                claims,
                purpose: key.purpose,
                expires_at: exp.max(0.0) as u64,
            });
        }
        None
    }

    /// [`Authenticator::verify`], refetching the issuer's JWKS once (rate-limited) when the
    /// token names a `kid` we do not know yet: that is how signing-key rotation arrives.
    pub async fn verify_async(&self, token: &str, jwks: &JwksFetcher) -> Result<Verified, Error> {
        match self.verify(token) {
            Err(Error::UnknownKid | Error::Unavailable) => {
                let Some(tenant) = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
                    .ok()
                    .and_then(|c| c.iss.and_then(|i| self.by_issuer.get(&i).copied()))
                else {
                    return Err(Error::UnknownKid);
                };
                for source in &self.tenants[tenant as usize].keys.jwks {
                    if source.try_begin_fetch(JWKS_MIN_REFETCH) {
                        // A failed fetch keeps the previous key set; the retry below then
                        // reports the original refusal.
                        let _ = jwks.refresh(source).await;
                    }
                }
                self.verify(token)
            }
            other => other,
        }
    }

    /// Turns a verified player token into an entitlement (and counts a use when the token
    /// carries `max_uses`).
    pub fn entitlement(&self, v: Verified) -> Result<Entitlement, Error> {
        if v.purpose == KeyPurpose::Service {
            return Err(Error::WrongPurpose);
        }
        let t = &self.tenants[v.tenant as usize];
        let raw = v.claims.tessera.ok_or(Error::NoEntitlement)?;
        let claim: claims::TesseraClaim = serde_json::from_str(raw.get())
            .map_err(|_| Error::Malformed("the tessera claim is not valid"))?;
        if claim.kids.len() + claim.content_ids.len() > self.max_entitlement_items {
            return Err(Error::Malformed("entitlement lists too many items"));
        }
        let kids = claim
            .kids
            .iter()
            .map(|k| crate::keyring::KeyId::parse(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Malformed("tessera.kids must be UUIDs or 32 hex digits"))?;
        let policy = claim
            .policy
            .as_deref()
            .map(PolicyRef::parse)
            .transpose()
            .map_err(|_| Error::BadPolicy)?;
        let policy = match policy {
            None => t.default_policy.clone(),
            Some(PolicyRef::Named(name)) => match t.policies.get(&name) {
                Some(p) => p.clone(),
                None if name == "default" => t.default_policy.clone(),
                None => return Err(Error::BadPolicy),
            },
            Some(PolicyRef::Inline(p)) => {
                p.validate().map_err(|_| Error::BadPolicy)?;
                Arc::new(*p)
            }
        };
        if claim.max_uses.is_some() && v.claims.jti.is_none() {
            return Err(Error::Malformed("max_uses requires jti"));
        }
        Ok(Entitlement {
            max_uses: claim.max_uses,
            tenant: v.tenant,
            kids,
            content_ids: claim.content_ids,
            policy,
            subject: v.claims.sub,
            token_id: v.claims.jti,
            expires_at: v.expires_at,
        })
    }

    /// `(max_uses, jti, expiry with leeway)` of a token that limits its uses.
    pub fn use_limit<'e>(&self, ent: &'e Entitlement) -> Option<(u32, &'e str, u64)> {
        let (Some(max), Some(jti)) = (ent.max_uses, ent.token_id.as_deref()) else {
            return None;
        };
        let leeway = self
            .tenants
            .get(ent.tenant as usize)
            .map_or(0, |t| t.leeway);
        Some((max, jti, ent.expires_at + leeway))
    }

    /// Counts one use of a `max_uses` token. Called by a licence handler once it is about to
    /// release keys, so a request that fails (bad body, unknown KID, store outage) does not
    /// spend a single-use token.
    pub fn consume(&self, ent: &Entitlement, now: u64) -> Result<(), Error> {
        let (Some(max), Some(jti)) = (ent.max_uses, ent.token_id.as_deref()) else {
            return Ok(());
        };
        let leeway = self
            .tenants
            .get(ent.tenant as usize)
            .map_or(0, |t| t.leeway);
        self.replay
            .record_use(ent.tenant, jti, max, ent.expires_at + leeway, now)
            .map_err(|r| match r {
                replay::Refusal::Exhausted => Error::Replayed,
                replay::Refusal::Full => Error::Unavailable,
            })
    }

    /// Checks a verified service token for `scope` (`admin` implies every scope).
    pub fn service(&self, v: Verified, scope: Scope) -> Result<Service, Error> {
        if v.purpose == KeyPurpose::Entitlement {
            return Err(Error::WrongPurpose);
        }
        let scopes = v.claims.scope.values(true);
        let has = |s: Scope| {
            scopes
                .iter()
                .any(|x| *x == s.as_str() || *x == Scope::Admin.as_str())
        };
        if !has(scope) {
            return Err(Error::InsufficientScope);
        }
        Ok(Service {
            tenant: v.tenant,
            subject: v.claims.sub,
            can_read: has(Scope::KeysRead),
        })
    }

    /// Every JWKS source, for the background refresher and readiness.
    pub fn jwks_sources(&self) -> impl Iterator<Item = &Arc<JwksSource>> {
        self.tenants.iter().flat_map(|t| t.keys.jwks.iter())
    }
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<bytes::Bytes>,
>;

/// Fetches JWKS documents over http(s), with a timeout and a body cap.
#[derive(Clone)]
pub struct JwksFetcher {
    client: HttpsClient,
    /// `tessera_jwks_fetches_total{result}`: every fetch, scheduled or caused by an unknown kid.
    fetches: Option<prometheus::IntCounterVec>,
}

impl std::fmt::Debug for JwksFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksFetcher")
    }
}

/// Why a JWKS document could not be fetched and installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The URL does not parse.
    #[error("bad JWKS URL: {0}")]
    Url(String),
    /// The connection or request failed.
    #[error("JWKS fetch failed: {0}")]
    Fetch(String),
    /// The server answered other than 2xx.
    #[error("JWKS fetch returned {0}")]
    Status(http::StatusCode),
    /// The body was over the cap or could not be read.
    #[error("JWKS body: {0}")]
    Body(String),
    /// No answer in time.
    #[error("JWKS fetch timed out")]
    Timeout,
    /// The document holds no usable key.
    #[error(transparent)]
    Keys(#[from] keys::Error),
}

/// Largest JWKS document accepted.
const JWKS_MAX_BYTES: usize = 256 * 1024;

impl JwksFetcher {
    /// A fetcher trusting the Mozilla root set (webpki-roots) for https.
    pub fn new() -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Self {
            client,
            fetches: None,
        }
    }

    /// Counts every fetch in `counter` (labels: `result` = `ok` | `error`).
    pub fn with_metric(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.fetches = Some(counter);
        self
    }

    /// Fetches `source.url` and installs its keys.
    pub async fn refresh(&self, source: &JwksSource) -> Result<(), JwksError> {
        let result = self.fetch(source).await;
        if let Some(c) = &self.fetches {
            c.with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
                .inc();
        }
        result
    }

    async fn fetch(&self, source: &JwksSource) -> Result<(), JwksError> {
        let uri: http::Uri = source
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| JwksError::Url(e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .get(uri)
                .await
                .map_err(|e| JwksError::Fetch(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(JwksError::Status(resp.status()));
            }
            Limited::new(resp.into_body(), JWKS_MAX_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| JwksError::Body(e.to_string()))
        };
        let body = tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .map_err(|_| JwksError::Timeout)??;
        let keys = source.parse(&body)?;
        source.install(keys);
        Ok(())
    }
}

impl Default for JwksFetcher {
    fn default() -> Self {
        Self::new()
    }
}
