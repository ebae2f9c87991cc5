//! Verification (docs/playready.md §2.6, §1.4): a chain checked link by link up to one of
//! the operator's roots, then expiry and revocation on every request, with verified chains
//! cached by their bytes.

use super::{BASIC_EXTDATA, Error, NEVER, cert_type, parse_chain, usage};
use crate::crypto::ecc::{self, Point};
use crate::crypto::sha256;
use crate::license::policy::SecurityLevel;
use std::collections::HashSet;

/// A device whose chain verified.
#[derive(Clone, Debug)]
pub struct Device {
    /// The leaf key with usage SIGN: challenges are signed with it.
    pub sign_key: Point,
    /// The leaf key with usage ENCRYPT_KEY: content keys are encrypted to it.
    pub encrypt_key: Point,
    /// The leaf's security level (150, 2000, 3000).
    pub security_level: u32,
    /// Certificate ids of the chain, leaf first.
    pub cert_ids: Vec<[u8; 16]>,
    /// The model name, from the MANUFACTURER of the model certificate (the issuer right
    /// above the leaf: whoever holds the model key writes the leaf's freely), for
    /// revocation by model.
    pub model: Option<String>,
    /// Earliest expiry in the chain (Unix seconds); [`NEVER`] when none expires.
    pub expires_at: u32,
}

impl Device {
    /// The neutral security level of the device: SL3000 is hardware throughout; SL2000
    /// covers hardened software as well as hardware, so it counts as the safe end of that
    /// range, software crypto and decode; SL150 (and anything lower) is test-grade software.
    pub fn level(&self) -> SecurityLevel {
        match self.security_level {
            3000.. => SecurityLevel::HwSecureAll,
            2000.. => SecurityLevel::SwSecureDecode,
            _ => SecurityLevel::SwSecureCrypto,
        }
    }
}

/// Verifies a chain up to one of `roots` (§2.6; no time or revocation checks: see
/// [`Trust::verify`]). `want` is the leaf's required type; `sign_key`, when given, must be
/// the leaf's SIGN key. Every structural check (types, links, usages, levels, keys on the
/// curve, the root, the signing key) runs before the first signature verification, so a
/// chain that cannot verify costs no ECDSA operation.
pub fn verify_chain(
    bytes: &[u8],
    roots: &[Point],
    want: u32,
    sign_key: Option<&Point>,
) -> Result<Device, Error> {
    let certs = parse_chain(bytes)?;
    let leaf = &certs[0];
    if leaf.basic.cert_type != want {
        return Err(Error::Structure("the leaf has the wrong certificate type"));
    }
    let mut expires_at = NEVER;
    for (i, c) in certs.iter().enumerate() {
        if c.basic.flags & BASIC_EXTDATA != 0 {
            return Err(Error::Structure("extended data is not supported"));
        }
        if c.basic.key_digest != sha256(&c.keys[0].key) {
            return Err(Error::Structure("the BASIC key digest does not match"));
        }
        if !c.keys.iter().all(|k| ecc::is_point(&k.key)) {
            return Err(Error::Structure("a certificate key is not a P-256 point"));
        }
        expires_at = expires_at.min(c.basic.expiration);
        match certs.get(i + 1) {
            Some(parent) => {
                if parent.basic.cert_type != cert_type::ISSUER {
                    return Err(Error::Structure("an intermediate is not an ISSUER"));
                }
                let issuer =
                    parent
                        .keys
                        .iter()
                        .find(|k| k.key == c.issuer_key)
                        .ok_or(Error::Structure(
                            "a certificate's issuer key is not its parent's",
                        ))?;
                let may_issue = issuer.usages.iter().any(|u| match c.basic.cert_type {
                    cert_type::DEVICE => {
                        matches!(
                            *u,
                            usage::ISSUER_ALL | usage::ISSUER_DEVICE | usage::ISSUER_INDIV
                        )
                    }
                    _ => *u == usage::ISSUER_ALL,
                });
                if !may_issue {
                    return Err(Error::Structure("the issuer key may not issue this type"));
                }
                if c.basic.security_level > parent.basic.security_level {
                    return Err(Error::Structure(
                        "a certificate claims more than its issuer",
                    ));
                }
            }
            None => {
                if !roots.iter().any(|r| crate::crypto::ct_eq(r, &c.issuer_key)) {
                    return Err(Error::UntrustedRoot);
                }
            }
        }
    }
    let (sign, encrypt) = match want {
        cert_type::DEVICE => (
            *leaf
                .key_with(usage::SIGN)
                .ok_or(Error::Structure("the device has no SIGN key"))?,
            *leaf
                .key_with(usage::ENCRYPT_KEY)
                .ok_or(Error::Structure("the device has no ENCRYPT_KEY key"))?,
        ),
        _ => {
            let k = *leaf
                .key_with(usage::SIGN_RESPONSE)
                .ok_or(Error::Structure("the server has no SIGN_RESPONSE key"))?;
            (k, k)
        }
    };
    if sign_key.is_some_and(|k| !crate::crypto::ct_eq(k, &sign)) {
        return Err(Error::KeyMismatch);
    }
    for c in &certs {
        if !ecc::verify(&c.issuer_key, &bytes[c.signed.clone()], &c.signature) {
            return Err(Error::Signature);
        }
    }
    let model = certs.get(1).unwrap_or(leaf);
    Ok(Device {
        sign_key: sign,
        encrypt_key: encrypt,
        security_level: leaf.basic.security_level,
        cert_ids: certs.iter().map(|c| c.basic.cert_id).collect(),
        model: model.manufacturer.as_ref().map(|m| m.model_name.clone()),
        expires_at,
    })
}

/// What the operator trusts and revokes.
#[derive(Debug, Default)]
pub struct TrustConfig {
    /// Root public keys (`X‖Y`).
    pub roots: Vec<Point>,
    /// Revoked certificate ids (any position in the chain: a model certificate's id revokes
    /// the model).
    pub revoked_cert_ids: HashSet<[u8; 16]>,
    /// Revoked model names (MANUFACTURER `model_name` of the leaf).
    pub revoked_models: HashSet<String>,
}

/// A chain that verified, and whether it came from the cache.
pub type Verified = crate::protocol::chain_cache::Verified<Device>;

/// Verifies device chains and caches the verified ones.
#[derive(Debug)]
pub struct Trust {
    config: TrustConfig,
    cache: crate::protocol::chain_cache::ChainCache<Device>,
}

impl Trust {
    /// A verifier over `config` caching up to `cache_capacity` chains.
    pub fn new(config: TrustConfig, cache_capacity: usize) -> Self {
        Self {
            config,
            cache: crate::protocol::chain_cache::ChainCache::new(cache_capacity),
        }
    }

    /// Verifies a device chain at time `now` (from the cache when these exact bytes
    /// verified before), that `sign_key` is its SIGN key, then expiry and revocation.
    pub fn verify(&self, chain: &[u8], sign_key: &Point, now: u64) -> Result<Verified, Error> {
        let verified = self.cache.get_or_verify(chain, || {
            verify_chain(chain, &self.config.roots, cert_type::DEVICE, Some(sign_key))
        })?;
        // A cached chain was verified with the key of the challenge that cached it.
        if !crate::crypto::ct_eq(&verified.device.sign_key, sign_key) {
            return Err(Error::KeyMismatch);
        }
        self.admit(&verified.device, now)?;
        Ok(verified)
    }

    /// Caches a verified chain; call once the device has proved possession of its key.
    pub fn remember(&self, v: &Verified) {
        self.cache.remember(v);
    }

    fn admit(&self, d: &Device, now: u64) -> Result<(), Error> {
        if d.expires_at != NEVER && u64::from(d.expires_at) <= now {
            return Err(Error::Expired);
        }
        if d.cert_ids
            .iter()
            .any(|id| self.config.revoked_cert_ids.contains(id))
        {
            return Err(Error::Revoked("certificate id"));
        }
        if d.model
            .as_ref()
            .is_some_and(|m| self.config.revoked_models.contains(m))
        {
            return Err(Error::Revoked("model"));
        }
        Ok(())
    }
}
