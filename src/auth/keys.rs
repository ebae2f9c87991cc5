//! JWT verification keys: HMAC secrets, RSA/EC/Ed25519 public keys (PEM SPKI or PKCS#1),
//! X.509 certificates, and JWKS (RFC 7517) fetched from a URL and selected by `kid`. Each
//! becomes a jsonwebtoken `DecodingKey` with the `Validation` it is checked under, both built
//! once, when the key is configured or fetched.
//!
//! Each key carries the algorithms pinned to it, and an algorithm is accepted only if the key's
//! material is of the matching family: an HMAC secret verifies HS* only, an RSA key RS*/PS*
//! only, and so on. That is what defeats algorithm confusion (an HS256 token "signed" with a
//! public key as the HMAC secret); the ring provider (`crate::crypto::jws`) checks the family
//! again on every verification.

use super::jwt::{Alg, alg_name, parse_alg};
use crate::config::{KeyPurpose, SetupError, TenantConfig, VerificationKeyConfig, secrets};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use spki::der::{Decode, pem};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";

/// Why key material or a JWKS document cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An algorithm name Tessera does not verify.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No algorithm is pinned.
    #[error("algorithms must list at least one algorithm")]
    NoAlgorithm,
    /// A pinned algorithm of another family than the key's.
    #[error("algorithm {alg} does not fit a {material} key")]
    DoesNotFit {
        /// The algorithm.
        alg: String,
        /// The key (redacted for a secret).
        material: String,
    },
    /// An HMAC secret shorter than its hash output.
    #[error("{alg} needs a secret of at least {min} bytes (RFC 7518 §3.2)")]
    ShortSecret {
        /// The algorithm.
        alg: String,
        /// Its minimum length.
        min: usize,
    },
    /// Text that is not PEM, or PEM of another kind.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// A public key or certificate that does not parse, or of a kind Tessera does not verify.
    #[error("{0}")]
    Key(String),
    /// A JWKS document that does not parse.
    #[error("bad JWKS: {0}")]
    Jwks(String),
    /// A JWKS document with no key Tessera can use.
    #[error("JWKS holds no usable signature key")]
    NoUsableKey,
    /// jsonwebtoken refused the key.
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// What kind of key a verification key is: which algorithms its material fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An HMAC secret.
    Hmac,
    /// An RSA public key.
    Rsa,
    /// A P-256 public key.
    P256,
    /// A P-384 public key.
    P384,
    /// An Ed25519 public key.
    Ed25519,
}

impl Kind {
    /// Whether `alg` belongs to this key's family (and curve).
    pub fn fits(self, alg: Alg) -> bool {
        use Alg::*;
        match self {
            Kind::Hmac => matches!(alg, HS256 | HS384 | HS512),
            Kind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Kind::P256 => alg == ES256,
            Kind::P384 => alg == ES384,
            Kind::Ed25519 => alg == EdDSA,
        }
    }
}

/// Key material: its kind, and the jsonwebtoken key over it.
pub struct Material {
    /// Which algorithms it fits.
    pub kind: Kind,
    /// The key jsonwebtoken verifies with.
    pub key: DecodingKey,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Hmac => f.write_str("Hmac(<redacted>)"),
            kind => write!(f, "{kind:?}"),
        }
    }
}

/// What every token a tenant accepts must satisfy besides its signature: leeway for
/// `exp`/`nbf`, the audiences (one must be named when any is configured), the issuers.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Clock-skew leeway, seconds.
    pub leeway: u64,
    /// Accepted `aud` values (none: `aud` is not checked).
    pub audiences: Vec<String>,
    /// Accepted `iss` values.
    pub issuers: Vec<String>,
}

impl Rules {
    /// The tenant's rules.
    pub fn of(t: &TenantConfig) -> Self {
        Self {
            leeway: t.leeway_secs,
            audiences: t.audiences.clone(),
            issuers: t.issuers.clone(),
        }
    }

    /// The jsonwebtoken validation of a key pinned to `algs`: `exp` and `iss` required, `nbf`
    /// checked, both with the leeway; audience and issuer as configured.
    fn validation(&self, algs: &[Alg]) -> Validation {
        let mut v = Validation::new(algs.first().copied().unwrap_or_default());
        v.algorithms = algs.to_vec();
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.required_spec_claims = ["exp", "iss"].into_iter().map(str::to_owned).collect();
        if self.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
        }
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
        }
        v
    }
}

/// One verification key with its pins.
pub struct VerificationKey {
    /// `kid` it answers to.
    pub kid: Option<String>,
    /// Pinned algorithms.
    pub algs: Vec<Alg>,
    /// Which tokens it may verify.
    pub purpose: KeyPurpose,
    /// What kind of key it is.
    pub kind: Kind,
    /// The key.
    pub decoding: DecodingKey,
    /// What a token it verifies must satisfy.
    pub validation: Validation,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .field("purpose", &self.purpose)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Builds a key, checking that every pinned algorithm fits the material.
    pub fn new(
        kid: Option<String>,
        algs: Vec<Alg>,
        purpose: KeyPurpose,
        material: Material,
        rules: &Rules,
    ) -> Result<Self, Error> {
        if algs.is_empty() {
            return Err(Error::NoAlgorithm);
        }
        if let Some(bad) = algs.iter().find(|a| !material.kind.fits(**a)) {
            return Err(Error::DoesNotFit {
                alg: alg_name(*bad),
                material: format!("{material:?}"),
            });
        }
        Ok(Self {
            kid,
            validation: rules.validation(&algs),
            algs,
            purpose,
            kind: material.kind,
            decoding: material.key,
        })
    }
}

fn hmac_min(alg: Alg) -> Option<usize> {
    match alg {
        Alg::HS256 => Some(32),
        Alg::HS384 => Some(48),
        Alg::HS512 => Some(64),
        _ => None,
    }
}

/// An HMAC secret for its pinned algorithms; RFC 7518 §3.2 requires a secret at least as
/// long as the hash output.
pub fn hmac_material(secret: &[u8], algs: &[Alg]) -> Result<Material, Error> {
    for &alg in algs {
        let min = hmac_min(alg).ok_or_else(|| Error::DoesNotFit {
            alg: alg_name(alg),
            material: "HMAC secret".into(),
        })?;
        if secret.len() < min {
            return Err(Error::ShortSecret {
                alg: alg_name(alg),
                min,
            });
        }
    }
    Ok(Material {
        kind: Kind::Hmac,
        key: DecodingKey::from_secret(secret)?,
    })
}

/// Parses SPKI DER into key material.
pub fn spki_material(der: &[u8]) -> Result<Material, Error> {
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(der)
        .map_err(|e| Error::Key(format!("bad public key: {e}")))?;
    let bits = spki.subject_public_key.raw_bytes();
    let (kind, key) = match spki.algorithm.oid.to_string().as_str() {
        OID_RSA => (Kind::Rsa, DecodingKey::from_rsa_der(bits)),
        OID_ED25519 => (Kind::Ed25519, DecodingKey::from_ed_der(bits)),
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .ok_or_else(|| Error::Key("EC key without a named curve".into()))?;
            let kind = match curve.to_string().as_str() {
                OID_P256 => Kind::P256,
                OID_P384 => Kind::P384,
                other => return Err(Error::Key(format!("unsupported EC curve {other}"))),
            };
            (kind, DecodingKey::from_ec_der(bits))
        }
        other => {
            return Err(Error::Key(format!(
                "unsupported public key algorithm {other}"
            )));
        }
    };
    Ok(Material { kind, key })
}

/// Parses a PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY`) or certificate.
pub fn pem_material(text: &str) -> Result<Material, Error> {
    let (label, der) =
        pem::decode_vec(text.trim().as_bytes()).map_err(|e| Error::Pem(e.to_string()))?;
    match label {
        "PUBLIC KEY" => spki_material(&der),
        "RSA PUBLIC KEY" => Ok(Material {
            kind: Kind::Rsa,
            key: DecodingKey::from_rsa_der(&der),
        }),
        "CERTIFICATE" => {
            let cert = x509_cert::Certificate::from_der(&der)
                .map_err(|e| Error::Key(format!("bad certificate: {e}")))?;
            let spki = cert.tbs_certificate().subject_public_key_info();
            let spki_der = spki::der::Encode::to_der(spki)
                .map_err(|e| Error::Key(format!("bad certificate key: {e}")))?;
            spki_material(&spki_der)
        }
        other => Err(Error::Pem(format!(
            "unexpected label {other:?} (want PUBLIC KEY or CERTIFICATE)"
        ))),
    }
}

fn parse_algs(names: &[String]) -> Result<Vec<Alg>, Error> {
    names
        .iter()
        .map(|n| parse_alg(n).map_err(|_| Error::UnsupportedAlgorithm(n.clone())))
        .collect()
}

/// A JWKS URL and the keys last fetched from it.
#[derive(Debug)]
pub struct JwksSource {
    /// The URL.
    pub url: String,
    /// Algorithms allowed for JWKs that do not name their own `alg`.
    pub algs: Vec<Alg>,
    /// Purpose of every key of the set.
    pub purpose: KeyPurpose,
    /// Refresh interval.
    pub refresh: Duration,
    /// The tenant's rules, for every key of the set.
    rules: Rules,
    keys: RwLock<Arc<HashMap<String, Arc<VerificationKey>>>>,
    last_attempt: std::sync::Mutex<Option<Instant>>,
}

impl JwksSource {
    /// The key for `kid`, if the last fetch had it.
    pub fn get(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    /// True once a fetch has succeeded.
    pub fn is_loaded(&self) -> bool {
        !self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Replaces the key set (rotation: keys absent from the new set stop verifying).
    pub fn install(&self, keys: HashMap<String, Arc<VerificationKey>>) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// Claims the right to refetch now: at most once per `min_gap` (an unknown `kid` must not
    /// let anyone make us hammer the identity provider).
    pub fn try_begin_fetch(&self, min_gap: Duration) -> bool {
        let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < min_gap) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Parses a JWKS document (RFC 7517 §5) into keys, one JWK at a time with
    /// jsonwebtoken's `Jwk`: a JWK that does not parse, has no `kid`, is not a signature key
    /// (`use` other than `sig`), is symmetric (`oct`: a secret published in a document
    /// anyone can fetch verifies nothing), or of a curve Tessera does not verify, is skipped.
    /// A JWK's own `alg` pins it; otherwise the source's algorithms apply, filtered to the
    /// key's family.
    pub fn parse(&self, json: &[u8]) -> Result<HashMap<String, Arc<VerificationKey>>, Error> {
        #[derive(serde::Deserialize)]
        struct Jwks {
            keys: Vec<Box<serde_json::value::RawValue>>,
        }
        let set: Jwks = serde_json::from_slice(json).map_err(|e| Error::Jwks(e.to_string()))?;
        let mut out = HashMap::new();
        for raw in set.keys {
            let Ok(jwk) = serde_json::from_str::<Jwk>(raw.get()) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != PublicKeyUse::Signature)
            {
                continue;
            }
            let kind = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Kind::Rsa,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Kind::P256
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
                    Kind::P384
                }
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Kind::Ed25519
                }
                _ => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let algs = match jwk.common.key_algorithm {
                Some(ka) => match Alg::try_from(ka) {
                    Ok(a) => vec![a],
                    Err(_) => continue,
                },
                None => self
                    .algs
                    .iter()
                    .copied()
                    .filter(|a| kind.fits(*a))
                    .collect(),
            };
            if let Ok(key) = VerificationKey::new(
                Some(kid.clone()),
                algs,
                self.purpose,
                Material { kind, key },
                &self.rules,
            ) {
                out.insert(kid, Arc::new(key));
            }
        }
        if out.is_empty() {
            return Err(Error::NoUsableKey);
        }
        Ok(out)
    }
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// All verification keys of one tenant.
#[derive(Debug, Default)]
pub struct TenantKeys {
    /// Keys from config.
    pub fixed: Vec<Arc<VerificationKey>>,
    /// JWKS URLs.
    pub jwks: Vec<Arc<JwksSource>>,
}

impl TenantKeys {
    /// Builds a tenant's keys, reading each key file once. `allow_shared_files` relaxes the
    /// 0600 rule for dev mode, whose key is committed to the repository anyway.
    pub fn from_config(t: &TenantConfig, allow_shared_files: bool) -> Result<Self, SetupError> {
        crate::crypto::jws::install()
            .map_err(|e| SetupError::invalid(format!("tenant {:?}", t.id), e))?;
        let rules = Rules::of(t);
        let mut keys = Self::default();
        for (i, k) in t.keys.iter().enumerate() {
            let what = format!("tenant {:?}: keys[{i}]", t.id);
            Self::add(&mut keys, k, &rules, allow_shared_files, &what)?;
        }
        Ok(keys)
    }

    fn add(
        keys: &mut Self,
        k: &VerificationKeyConfig,
        rules: &Rules,
        allow_shared: bool,
        what: &str,
    ) -> Result<(), SetupError> {
        let bad = |why: String| SetupError::invalid(what, why);
        let algs = parse_algs(&k.algorithms).map_err(|e| bad(e.to_string()))?;
        let secret = secrets::resolve(
            "secret",
            k.secret.as_ref(),
            k.secret_file.as_deref(),
            allow_shared,
        )
        .map_err(|e| bad(e.to_string()))?;
        let pem_text = match (&k.public_key_pem, &k.public_key_file, &k.certificate_file) {
            (Some(p), None, None) => Some(p.clone()),
            (None, Some(f), None) | (None, None, Some(f)) => {
                Some(std::fs::read_to_string(f).map_err(|e| bad(format!("{}: {e}", f.display())))?)
            }
            (None, None, None) => None,
            _ => {
                return Err(bad(
                    "give one of public_key_pem, public_key_file, certificate_file".into(),
                ));
            }
        };
        let sources = usize::from(secret.is_some())
            + usize::from(pem_text.is_some())
            + usize::from(k.jwks_url.is_some());
        if sources != 1 {
            return Err(bad(
                "give exactly one of secret/secret_file, a public key or certificate, jwks_url"
                    .into(),
            ));
        }
        if let Some(url) = &k.jwks_url {
            // Whoever can alter a JWKS in transit can mint tokens: https only, except to a
            // loopback host (an identity-provider sidecar on the same machine).
            if !(url.starts_with("https://") || is_loopback_http(url)) {
                return Err(bad(format!(
                    "jwks_url {url:?} must be https (plain http only to a loopback host)"
                )));
            }
            if algs.is_empty() {
                return Err(bad(
                    "algorithms must list the algorithms accepted from the JWKS".into(),
                ));
            }
            if algs.iter().any(|a| hmac_min(*a).is_some()) {
                return Err(bad("HS* algorithms cannot come from a JWKS".into()));
            }
            keys.jwks.push(Arc::new(JwksSource {
                url: url.clone(),
                algs,
                purpose: k.purpose,
                refresh: Duration::from_secs(k.jwks_refresh_secs.unwrap_or(300).max(10)),
                rules: rules.clone(),
                keys: RwLock::default(),
                last_attempt: std::sync::Mutex::new(None),
            }));
            return Ok(());
        }
        let material = match (secret, pem_text) {
            (Some(s), _) => hmac_material(s.expose().as_bytes(), &algs),
            (_, Some(p)) => pem_material(&p),
            _ => unreachable!("exactly one source was checked above"),
        }
        .map_err(|e| bad(e.to_string()))?;
        keys.fixed.push(Arc::new(
            VerificationKey::new(k.kid.clone(), algs, k.purpose, material, rules)
                .map_err(|e| bad(e.to_string()))?,
        ));
        Ok(())
    }

    /// Keys that may verify a token with this header: fixed keys whose `kid` matches (any key
    /// when the token has none) and which pin `alg`, then the JWKS key of that `kid`.
    pub fn candidates(&self, kid: Option<&str>, alg: Alg) -> Vec<Arc<VerificationKey>> {
        let mut out: Vec<_> = self
            .fixed
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.algs.contains(&alg))
            .cloned()
            .collect();
        if let Some(kid) = kid {
            out.extend(
                self.jwks
                    .iter()
                    .filter_map(|s| s.get(kid))
                    .filter(|k| k.algs.contains(&alg)),
            );
        }
        out
    }

    /// Whether any key (fixed, or fetched) has this `kid`, whatever its algorithms.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.fixed.iter().any(|k| k.kid.as_deref() == Some(kid))
            || self.jwks.iter().any(|s| s.get(kid).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_must_fit_material() {
        let rules = Rules::default();
        let m = hmac_material(&[1; 32], &[Alg::HS256]).unwrap();
        assert!(VerificationKey::new(None, vec![Alg::HS256], KeyPurpose::Any, m, &rules).is_ok());
        assert!(hmac_material(&[1; 32], &[Alg::RS256]).is_err());
        assert!(
            hmac_material(&[1; 31], &[Alg::HS256]).is_err(),
            "short secret"
        );
        assert!(
            hmac_material(&[1; 32], &[Alg::HS512]).is_err(),
            "HS512 needs 64 bytes"
        );
        let ed = Material {
            kind: Kind::Ed25519,
            key: DecodingKey::from_ed_der(&[0; 32]),
        };
        assert!(VerificationKey::new(None, vec![Alg::HS256], KeyPurpose::Any, ed, &rules).is_err());
        let p256 = Material {
            kind: Kind::P256,
            key: DecodingKey::from_ec_der(&[4; 65]),
        };
        assert!(VerificationKey::new(None, vec![], KeyPurpose::Any, p256, &rules).is_err());
        let p256 = Material {
            kind: Kind::P256,
            key: DecodingKey::from_ec_der(&[4; 65]),
        };
        assert!(
            VerificationKey::new(None, vec![Alg::ES384], KeyPurpose::Any, p256, &rules).is_err(),
            "a P-256 key is not pinned to ES384"
        );
    }

    #[test]
    fn jwks_keep_signature_keys_only() {
        let source = JwksSource {
            url: String::new(),
            algs: vec![Alg::EdDSA, Alg::RS256],
            purpose: KeyPurpose::Any,
            refresh: Duration::from_secs(60),
            rules: Rules::default(),
            keys: RwLock::default(),
            last_attempt: std::sync::Mutex::new(None),
        };
        let x = crate::encoding::b64url_encode(&[9; 32]);
        let doc = format!(
            r#"{{"keys":[
                {{"kty":"oct","kid":"secret","alg":"HS256","k":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","kid":"enc","use":"enc","x":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","x":"{x}"}},
                {{"kty":"EC","crv":"P-521","kid":"p521","x":"{x}","y":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","kid":7,"x":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"{x}"}}
            ]}}"#
        );
        let keys = source.parse(doc.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["ed"]);
        assert_eq!(keys["ed"].algs, vec![Alg::EdDSA]);
        assert!(
            source
                .parse(br#"{"keys":[{"kty":"oct","kid":"s","k":"AAAA"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn plain_http_jwks_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:9/jwks",
            "http://localhost/x",
            "http://[::1]:8/j",
            "http://127.8.9.1",
        ] {
            assert!(is_loopback_http(ok), "{ok}");
        }
        for bad in [
            "http://idp.example/jwks",
            "http://10.0.0.1/",
            "http://127.0.0.1.evil.example/",
            "https://127.0.0.1/",
        ] {
            assert!(!is_loopback_http(bad), "{bad}");
        }
    }
}
