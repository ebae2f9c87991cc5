//! Minting tokens: `tessera token` and the tests. Production tokens come from the customer's
//! identity provider; this exists so a developer can try Tessera and tests can exercise every
//! algorithm with real signatures.

use super::jwt::Alg;
use crate::config::{SigningKeyConfig, secrets};
use crate::crypto::signature as sig;
use crate::crypto::{HmacAlg, HmacKey};
use crate::encoding::b64url_encode;
use spki::der::pem;

enum Key {
    Hmac(HmacKey),
    Rsa(sig::RsaKeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

/// A token signer.
pub struct Signer {
    kid: Option<String>,
    alg: Alg,
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, <redacted>)", self.alg.name())
    }
}

impl Signer {
    /// An HMAC signer.
    pub fn hmac(kid: Option<String>, alg: Alg, secret: &[u8]) -> Result<Self, String> {
        let h = match alg {
            Alg::HS256 => HmacAlg::Sha256,
            Alg::HS384 => HmacAlg::Sha384,
            Alg::HS512 => HmacAlg::Sha512,
            _ => return Err(format!("{} is not an HMAC algorithm", alg.name())),
        };
        Ok(Self {
            kid,
            alg,
            key: Key::Hmac(HmacKey::new(h, secret)),
        })
    }

    /// A signer from a PKCS#8 private key (DER): RS*/PS* (RSA), ES256 (P-256), EdDSA.
    pub fn pkcs8(kid: Option<String>, alg: Alg, der: &[u8]) -> Result<Self, String> {
        let rng = sig::SystemRandom::new();
        let key = match alg {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Key::Rsa(sig::RsaKeyPair::from_pkcs8(der).map_err(|e| format!("bad RSA key: {e}"))?)
            }
            Alg::ES256 => Key::Ecdsa(
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| format!("bad P-256 key: {e}"))?,
            ),
            Alg::EdDSA => Key::Ed25519(
                sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| format!("bad Ed25519 key: {e}"))?,
            ),
            other => return Err(format!("cannot mint {} with a private key", other.name())),
        };
        Ok(Self { kid, alg, key })
    }

    /// A signer from `[tenants.signing_key]`.
    pub fn from_config(c: &SigningKeyConfig, allow_shared_files: bool) -> Result<Self, String> {
        let alg = Alg::parse(&c.algorithm)
            .map_err(|_| format!("unsupported algorithm {:?}", c.algorithm))?;
        if let Some(s) = secrets::resolve(
            "secret",
            c.secret.as_ref(),
            c.secret_file.as_deref(),
            allow_shared_files,
        )
        .map_err(|e| e.to_string())?
        {
            return Self::hmac(c.kid.clone(), alg, s.expose().as_bytes());
        }
        let path = c
            .private_key_file
            .as_ref()
            .ok_or("signing_key needs secret, secret_file or private_key_file")?;
        let text =
            secrets::read_secret_file(path, allow_shared_files).map_err(|e| e.to_string())?;
        let (label, der) = pem::decode_vec(text.expose().trim().as_bytes())
            .map_err(|e| format!("bad PEM: {e}"))?;
        if label != "PRIVATE KEY" {
            return Err(format!(
                "private_key_file must be PKCS#8 (PRIVATE KEY), not {label}"
            ));
        }
        Self::pkcs8(c.kid.clone(), alg, &der)
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = serde_json::json!({"alg": self.alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = kid.clone().into();
        }
        let mut input = b64url_encode(header.to_string().as_bytes());
        input.push('.');
        input.push_str(&b64url_encode(claims.to_string().as_bytes()));
        let rng = sig::SystemRandom::new();
        let signature = match &self.key {
            Key::Hmac(k) => k.sign(input.as_bytes()),
            Key::Rsa(k) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    Alg::RS256 => &sig::RSA_PKCS1_SHA256,
                    Alg::RS384 => &sig::RSA_PKCS1_SHA384,
                    Alg::RS512 => &sig::RSA_PKCS1_SHA512,
                    Alg::PS256 => &sig::RSA_PSS_SHA256,
                    Alg::PS384 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, input.as_bytes(), &mut out)
                    .map_err(|_| "RSA signing failed")?;
                out
            }
            Key::Ecdsa(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|_| "ECDSA signing failed")?
                .as_ref()
                .to_vec(),
            Key::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        input.push('.');
        input.push_str(&b64url_encode(&signature));
        Ok(input)
    }
}
