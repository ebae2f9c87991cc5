//! Minting tokens: `tessera token` and the tests. Production tokens come from the customer's
//! identity provider; this exists so a developer can try Tessera and tests can exercise every
//! algorithm with real signatures. Tokens are encoded and signed by jsonwebtoken, on ring
//! (`crate::crypto::jws`).

use super::jwt::{Alg, alg_name, parse_alg};
use crate::config::{SigningKeyConfig, secrets};
use crate::encoding::b64url_encode;
use jsonwebtoken::{AlgorithmFamily, EncodingKey, Header};
use spki::der::pem;

/// Errors of minting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The algorithm cannot be minted with this kind of key.
    #[error("cannot mint {0} with this key")]
    Algorithm(String),
    /// The key does not parse, or signing failed.
    #[error("{0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The secret or key file.
    #[error(transparent)]
    Secret(#[from] secrets::Error),
    /// The configuration names no key, or a key of the wrong form.
    #[error("{0}")]
    Config(String),
    /// jsonwebtoken has another crypto provider.
    #[error("{0}")]
    Provider(&'static str),
}

/// A token signer.
pub struct Signer {
    header: Header,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, <redacted>)", alg_name(self.header.alg))
    }
}

impl Signer {
    fn new(kid: Option<String>, alg: Alg, key: EncodingKey) -> Result<Self, Error> {
        crate::crypto::jws::install().map_err(Error::Provider)?;
        // Parsed now, so a bad key is refused here rather than at the first token.
        crate::crypto::jws::check_signing_key(alg, &key)?;
        let mut header = Header::new(alg);
        header.kid = kid;
        Ok(Self { header, key })
    }

    /// An HMAC signer.
    pub fn hmac(kid: Option<String>, alg: Alg, secret: &[u8]) -> Result<Self, Error> {
        if alg.family() != AlgorithmFamily::Hmac {
            return Err(Error::Algorithm(alg_name(alg)));
        }
        Self::new(kid, alg, EncodingKey::from_secret(secret)?)
    }

    /// A signer from a PKCS#8 private key (DER): RS*/PS* (RSA), ES256 (P-256), EdDSA.
    pub fn pkcs8(kid: Option<String>, alg: Alg, der: &[u8]) -> Result<Self, Error> {
        let key = match alg {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                EncodingKey::from_rsa_der(der)
            }
            Alg::ES256 => EncodingKey::from_ec_der(der),
            Alg::EdDSA => EncodingKey::from_ed_der(der),
            other => return Err(Error::Algorithm(alg_name(other))),
        };
        Self::new(kid, alg, key)
    }

    /// A signer from `[tenants.signing_key]`.
    pub fn from_config(c: &SigningKeyConfig, allow_shared_files: bool) -> Result<Self, Error> {
        let alg = parse_alg(&c.algorithm)
            .map_err(|_| Error::Config(format!("unsupported algorithm {:?}", c.algorithm)))?;
        if let Some(s) = secrets::resolve(
            "secret",
            c.secret.as_ref(),
            c.secret_file.as_deref(),
            allow_shared_files,
        )? {
            return Self::hmac(c.kid.clone(), alg, s.expose().as_bytes());
        }
        let path = c.private_key_file.as_ref().ok_or_else(|| {
            Error::Config("signing_key needs secret, secret_file or private_key_file".into())
        })?;
        let text = secrets::read_secret_file(path, allow_shared_files)?;
        let (label, der) = pem::decode_vec(text.expose().trim().as_bytes())
            .map_err(|e| Error::Config(format!("bad PEM: {e}")))?;
        if label != "PRIVATE KEY" {
            return Err(Error::Config(format!(
                "private_key_file must be PKCS#8 (PRIVATE KEY), not {label}"
            )));
        }
        Self::pkcs8(c.kid.clone(), alg, &der)
    }

    /// Signs `claims` into a compact JWS (header `typ: JWT`, `alg`, `kid`).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, Error> {
        Ok(jsonwebtoken::encode(&self.header, claims, &self.key)?)
    }

    /// Signs arbitrary header and payload bytes as they are: the fuzz target reaches odd but
    /// validly signed tokens with it. Not for minting real tokens.
    #[doc(hidden)]
    pub fn sign_segments(&self, header_json: &[u8], payload: &[u8]) -> Result<String, Error> {
        let input = format!("{}.{}", b64url_encode(header_json), b64url_encode(payload));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.header.alg)?;
        Ok(format!("{input}.{signature}"))
    }
}
