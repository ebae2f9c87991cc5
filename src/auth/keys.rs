//! JWT verification keys: HMAC secrets, RSA/EC/Ed25519 public keys (PEM SPKI or PKCS#1),
//! X.509 certificates, and JWKS (RFC 7517) fetched from a URL and selected by `kid`.
//!
//! Each key carries the algorithms pinned to it, and an algorithm is accepted only if the key's
//! material is of the matching family: an HMAC secret verifies HS* only, an RSA key RS*/PS*
//! only, and so on. That is what defeats algorithm confusion (an HS256 token "signed" with a
//! public key as the HMAC secret).

use super::jwt::Alg;
use crate::config::{KeyPurpose, TenantConfig, VerificationKeyConfig, secrets};
use crate::crypto::signature as sig;
use crate::crypto::{HmacAlg, HmacKey};
use spki::der::{Decode, pem};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ED25519: &str = "1.3.101.112";

/// Key material of one verification key.
pub enum Material {
    /// HMAC secret, prepared once per pinned algorithm.
    Hmac(Vec<(Alg, HmacKey)>),
    /// RSA public key, PKCS#1 `RSAPublicKey` DER (what ring takes).
    Rsa(Vec<u8>),
    /// RSA public key as JWK components (n, e).
    RsaComponents {
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Exponent, big-endian.
        e: Vec<u8>,
    },
    /// P-256 uncompressed point.
    P256(Vec<u8>),
    /// P-384 uncompressed point.
    P384(Vec<u8>),
    /// Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Material::Hmac(_) => "Hmac(<redacted>)",
            Material::Rsa(_) | Material::RsaComponents { .. } => "Rsa",
            Material::P256(_) => "P256",
            Material::P384(_) => "P384",
            Material::Ed25519(_) => "Ed25519",
        })
    }
}

impl Material {
    /// Whether `alg` belongs to this key's family.
    fn fits(&self, alg: Alg) -> bool {
        use Alg::*;
        match self {
            Material::Hmac(_) => matches!(alg, HS256 | HS384 | HS512),
            Material::Rsa(_) | Material::RsaComponents { .. } => {
                matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
            }
            Material::P256(_) => alg == ES256,
            Material::P384(_) => alg == ES384,
            Material::Ed25519(_) => alg == EdDSA,
        }
    }
}

/// One verification key with its pins.
#[derive(Debug)]
pub struct VerificationKey {
    /// `kid` it answers to.
    pub kid: Option<String>,
    /// Pinned algorithms.
    pub algs: Vec<Alg>,
    /// Which tokens it may verify.
    pub purpose: KeyPurpose,
    /// The material.
    pub material: Material,
}

impl VerificationKey {
    /// Builds a key, checking that every pinned algorithm fits the material.
    pub fn new(
        kid: Option<String>,
        algs: Vec<Alg>,
        purpose: KeyPurpose,
        material: Material,
    ) -> Result<Self, String> {
        if algs.is_empty() {
            return Err("algorithms must list at least one algorithm".into());
        }
        if let Some(bad) = algs.iter().find(|a| !material.fits(**a)) {
            return Err(format!(
                "algorithm {} does not fit a {material:?} key",
                bad.name()
            ));
        }
        Ok(Self {
            kid,
            algs,
            purpose,
            material,
        })
    }

    /// Verifies `signature` over `msg` with `alg`, which must be pinned to this key.
    pub fn verify(&self, alg: Alg, msg: &[u8], signature: &[u8]) -> bool {
        if !self.algs.contains(&alg) {
            return false;
        }
        use Alg::*;
        let public = |a: &'static dyn sig::VerificationAlgorithm, key: &[u8]| {
            sig::UnparsedPublicKey::new(a, key)
                .verify(msg, signature)
                .is_ok()
        };
        let rsa_alg: Option<&'static sig::RsaParameters> = match alg {
            RS256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            RS384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            RS512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            PS256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
            PS384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
            PS512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
        match (&self.material, alg) {
            (Material::Hmac(keys), _) => keys
                .iter()
                .any(|(a, k)| *a == alg && k.verify(msg, signature)),
            (Material::Rsa(der), _) => rsa_alg.is_some_and(|a| public(a, der)),
            (Material::RsaComponents { n, e }, _) => rsa_alg.is_some_and(|a| {
                sig::RsaPublicKeyComponents { n, e }
                    .verify(a, msg, signature)
                    .is_ok()
            }),
            (Material::P256(p), ES256) => public(&sig::ECDSA_P256_SHA256_FIXED, p),
            (Material::P384(p), ES384) => public(&sig::ECDSA_P384_SHA384_FIXED, p),
            (Material::Ed25519(k), EdDSA) => public(&sig::ED25519, k),
            _ => false,
        }
    }
}

fn hmac_alg(alg: Alg) -> Option<(HmacAlg, usize)> {
    match alg {
        Alg::HS256 => Some((HmacAlg::Sha256, 32)),
        Alg::HS384 => Some((HmacAlg::Sha384, 48)),
        Alg::HS512 => Some((HmacAlg::Sha512, 64)),
        _ => None,
    }
}

/// Prepares an HMAC secret for its pinned algorithms; RFC 7518 §3.2 requires a secret at
/// least as long as the hash output.
pub fn hmac_material(secret: &[u8], algs: &[Alg]) -> Result<Material, String> {
    let mut out = Vec::new();
    for &alg in algs {
        let (h, min) = hmac_alg(alg)
            .ok_or_else(|| format!("algorithm {} does not fit an HMAC secret", alg.name()))?;
        if secret.len() < min {
            return Err(format!(
                "{} needs a secret of at least {min} bytes (RFC 7518 §3.2)",
                alg.name()
            ));
        }
        out.push((alg, HmacKey::new(h, secret)));
    }
    Ok(Material::Hmac(out))
}

/// Parses SPKI DER into key material.
pub fn spki_material(der: &[u8]) -> Result<Material, String> {
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(der)
        .map_err(|e| format!("bad public key: {e}"))?;
    let bits = spki.subject_public_key.raw_bytes().to_vec();
    match spki.algorithm.oid.to_string().as_str() {
        OID_RSA => Ok(Material::Rsa(bits)),
        OID_ED25519 => Ok(Material::Ed25519(bits)),
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .ok_or("EC key without a named curve")?;
            match curve.to_string().as_str() {
                OID_P256 => Ok(Material::P256(bits)),
                OID_P384 => Ok(Material::P384(bits)),
                other => Err(format!("unsupported EC curve {other}")),
            }
        }
        other => Err(format!("unsupported public key algorithm {other}")),
    }
}

/// Parses a PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY`) or certificate.
pub fn pem_material(text: &str) -> Result<Material, String> {
    let (label, der) =
        pem::decode_vec(text.trim().as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
    match label {
        "PUBLIC KEY" => spki_material(&der),
        "RSA PUBLIC KEY" => Ok(Material::Rsa(der)),
        "CERTIFICATE" => {
            let cert = x509_cert::Certificate::from_der(&der)
                .map_err(|e| format!("bad certificate: {e}"))?;
            let spki = cert.tbs_certificate().subject_public_key_info();
            let spki_der =
                spki::der::Encode::to_der(spki).map_err(|e| format!("bad certificate key: {e}"))?;
            spki_material(&spki_der)
        }
        other => Err(format!(
            "unexpected PEM label {other:?} (want PUBLIC KEY or CERTIFICATE)"
        )),
    }
}

fn parse_algs(names: &[String]) -> Result<Vec<Alg>, String> {
    names
        .iter()
        .map(|n| Alg::parse(n).map_err(|_| format!("unsupported algorithm {n:?}")))
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

    /// Parses a JWKS document (RFC 7517 §5) into keys. JWKs that are not signature keys, or
    /// of a type Tessera does not verify, are skipped; a JWK's own `alg` pins it, otherwise
    /// the source's algorithms apply (filtered to the key's family).
    pub fn parse(&self, json: &[u8]) -> Result<HashMap<String, Arc<VerificationKey>>, String> {
        #[derive(serde::Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Map<String, serde_json::Value>>,
        }
        let set: Jwks = serde_json::from_slice(json).map_err(|e| format!("bad JWKS: {e}"))?;
        let mut out = HashMap::new();
        for jwk in set.keys {
            let s = |k: &str| jwk.get(k).and_then(|v| v.as_str());
            let b = |k: &str| s(k).and_then(|v| crate::encoding::b64url_decode(v).ok());
            let Some(kid) = s("kid") else { continue };
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let material = match (s("kty"), s("crv")) {
                (Some("RSA"), _) => match (b("n"), b("e")) {
                    (Some(n), Some(e)) => Material::RsaComponents { n, e },
                    _ => continue,
                },
                (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => match (b("x"), b("y")) {
                    (Some(x), Some(y)) => {
                        let mut p = vec![4u8];
                        p.extend_from_slice(&x);
                        p.extend_from_slice(&y);
                        if crv == "P-256" {
                            Material::P256(p)
                        } else {
                            Material::P384(p)
                        }
                    }
                    _ => continue,
                },
                (Some("OKP"), Some("Ed25519")) => match b("x") {
                    Some(x) => Material::Ed25519(x),
                    None => continue,
                },
                _ => continue,
            };
            let algs = match s("alg") {
                Some(a) => match Alg::parse(a) {
                    Ok(a) => vec![a],
                    Err(_) => continue,
                },
                None => self
                    .algs
                    .iter()
                    .copied()
                    .filter(|a| material.fits(*a))
                    .collect(),
            };
            if let Ok(key) =
                VerificationKey::new(Some(kid.to_owned()), algs, self.purpose, material)
            {
                out.insert(kid.to_owned(), Arc::new(key));
            }
        }
        if out.is_empty() {
            return Err("JWKS holds no usable signature key".into());
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
    /// Builds (and so validates) a tenant's keys. `allow_shared_files` relaxes the 0600 rule
    /// for dev mode, whose key is committed to the repository anyway.
    pub fn from_config(t: &TenantConfig, allow_shared_files: bool) -> Result<Self, String> {
        let mut keys = Self::default();
        for (i, k) in t.keys.iter().enumerate() {
            Self::add(&mut keys, k, allow_shared_files).map_err(|e| format!("keys[{i}]: {e}"))?;
        }
        Ok(keys)
    }

    fn add(keys: &mut Self, k: &VerificationKeyConfig, allow_shared: bool) -> Result<(), String> {
        let algs = parse_algs(&k.algorithms)?;
        let secret = secrets::resolve(
            "secret",
            k.secret.as_ref(),
            k.secret_file.as_deref(),
            allow_shared,
        )
        .map_err(|e| e.to_string())?;
        let pem_text = match (&k.public_key_pem, &k.public_key_file, &k.certificate_file) {
            (Some(p), None, None) => Some(p.clone()),
            (None, Some(f), None) | (None, None, Some(f)) => {
                Some(std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?)
            }
            (None, None, None) => None,
            _ => {
                return Err("give one of public_key_pem, public_key_file, certificate_file".into());
            }
        };
        let sources = usize::from(secret.is_some())
            + usize::from(pem_text.is_some())
            + usize::from(k.jwks_url.is_some());
        if sources != 1 {
            return Err(
                "give exactly one of secret/secret_file, a public key or certificate, jwks_url"
                    .into(),
            );
        }
        if let Some(url) = &k.jwks_url {
            // Whoever can alter a JWKS in transit can mint tokens: https only, except to a
            // loopback host (an identity-provider sidecar on the same machine).
            if !(url.starts_with("https://") || is_loopback_http(url)) {
                return Err(format!(
                    "jwks_url {url:?} must be https (plain http only to a loopback host)"
                ));
            }
            if algs.is_empty() {
                return Err("algorithms must list the algorithms accepted from the JWKS".into());
            }
            if algs.iter().any(|a| hmac_alg(*a).is_some()) {
                return Err("HS* algorithms cannot come from a JWKS".into());
            }
            keys.jwks.push(Arc::new(JwksSource {
                url: url.clone(),
                algs,
                purpose: k.purpose,
                refresh: Duration::from_secs(k.jwks_refresh_secs.unwrap_or(300).max(10)),
                keys: RwLock::default(),
                last_attempt: std::sync::Mutex::new(None),
            }));
            return Ok(());
        }
        let material = match (secret, pem_text) {
            (Some(s), _) => hmac_material(s.expose().as_bytes(), &algs)?,
            (_, Some(p)) => pem_material(&p)?,
            _ => unreachable!("exactly one source was checked above"),
        };
        keys.fixed.push(Arc::new(VerificationKey::new(
            k.kid.clone(),
            algs,
            k.purpose,
            material,
        )?));
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
        let m = hmac_material(&[1; 32], &[Alg::HS256]).unwrap();
        assert!(VerificationKey::new(None, vec![Alg::HS256], KeyPurpose::Any, m).is_ok());
        assert!(hmac_material(&[1; 32], &[Alg::RS256]).is_err());
        assert!(
            hmac_material(&[1; 31], &[Alg::HS256]).is_err(),
            "short secret"
        );
        assert!(
            hmac_material(&[1; 32], &[Alg::HS512]).is_err(),
            "HS512 needs 64 bytes"
        );
        let ed = Material::Ed25519(vec![0; 32]);
        assert!(VerificationKey::new(None, vec![Alg::HS256], KeyPurpose::Any, ed).is_err());
        assert!(
            VerificationKey::new(None, vec![], KeyPurpose::Any, Material::P256(vec![])).is_err()
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
