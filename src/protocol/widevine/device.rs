//! Device-certificate chains (drm-interop.md §1.6): a leaf DEVICE certificate, signed by a
//! DEVICE_MODEL intermediate, signed by one of the operator's configured roots. The client
//! library never checks any of this; the server is the only place trust is enforced.
//!
//! Verification is pure (no I/O; the caller passes the time). A verified chain is immutable
//! input, so it is cached by the SHA-256 of the token bytes: the steady state pays a hash and
//! a map lookup, then only the per-request signature check. Expiry and revocation are
//! re-checked on every request, cached or not, because both change with time or config.

use super::pb;
use super::pb::drm_certificate::Type as CertType;
use crate::crypto::rsa::{PssHash, RsaPublicKey};
use crate::crypto::sha256;
use crate::license::policy::SecurityLevel;
use dashmap::DashMap;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Longest chain accepted (leaf, intermediates, up to the root's signature).
const MAX_DEPTH: usize = 4;

/// Why a device is not trusted. The codes name the failed check in problem bodies.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No device certificate (keybox clients are not supported).
    #[error("the client identification carries no device certificate")]
    NoCertificate,
    /// A certificate in the chain does not decode.
    #[error("a certificate in the chain is not a valid protobuf message")]
    Malformed,
    /// More certificates than [`MAX_DEPTH`].
    #[error("the certificate chain is longer than {MAX_DEPTH}")]
    TooDeep,
    /// A certificate has the wrong type for its position, or lacks a field.
    #[error("bad certificate chain: {0}")]
    Structure(&'static str),
    /// A signature in the chain does not verify.
    #[error("a signature in the certificate chain does not verify")]
    Signature,
    /// The top of the chain is not signed by a configured root.
    #[error("the certificate chain does not lead to a trusted root")]
    UntrustedRoot,
    /// A certificate's `expiration_time_seconds` has passed.
    #[error("a certificate in the chain has expired")]
    Expired,
    /// A certificate serial number or the system id is revoked.
    #[error("the device is revoked ({0})")]
    Revoked(&'static str),
    /// The leaf key is not RSA of an accepted size.
    #[error("the device key is not an accepted RSA key")]
    Key,
}

impl Error {
    /// Machine-readable code for problem bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoCertificate => "device_certificate_missing",
            Error::Malformed | Error::TooDeep | Error::Structure(_) | Error::Key => {
                "device_chain_invalid"
            }
            Error::Signature => "device_chain_signature",
            Error::UntrustedRoot => "device_chain_untrusted",
            Error::Expired => "device_certificate_expired",
            Error::Revoked(_) => "device_revoked",
        }
    }
}

/// A device whose chain verified.
#[derive(Debug)]
pub struct Device {
    /// The system id shared by the chain.
    pub system_id: u32,
    /// Serial numbers of every certificate in the chain, leaf first.
    pub serials: Vec<Vec<u8>>,
    /// The leaf's RSA key: verifies request signatures and wraps session keys.
    pub key: RsaPublicKey,
    /// Earliest `expiration_time_seconds` in the chain; 0 when none expires.
    pub expires_at: u64,
}

/// What the operator trusts and revokes.
#[derive(Debug)]
pub struct TrustConfig {
    /// Root public keys.
    pub roots: Vec<RsaPublicKey>,
    /// Revoked certificate serial numbers (any position in the chain).
    pub revoked_serials: HashSet<Vec<u8>>,
    /// Revoked system ids (whole device models).
    pub revoked_system_ids: HashSet<u32>,
    /// Security level of each known system id.
    pub levels: HashMap<u32, SecurityLevel>,
    /// Security level of system ids not listed.
    pub default_level: SecurityLevel,
}

/// Verifies chains and caches the verified ones.
#[derive(Debug)]
pub struct Trust {
    config: TrustConfig,
    cache: DashMap<[u8; 32], Arc<Device>>,
    cache_capacity: usize,
}

impl Trust {
    /// A verifier over `config` caching up to `cache_capacity` chains.
    pub fn new(config: TrustConfig, cache_capacity: usize) -> Self {
        Self {
            config,
            cache: DashMap::new(),
            cache_capacity,
        }
    }

    /// The security level the operator assigned to the device's model.
    pub fn level(&self, device: &Device) -> SecurityLevel {
        self.config
            .levels
            .get(&device.system_id)
            .copied()
            .unwrap_or(self.config.default_level)
    }

    /// Verifies the device certificate of a client identification at time `now`.
    pub fn verify(
        &self,
        client: &pb::ClientIdentification,
        now: u64,
    ) -> Result<Arc<Device>, Error> {
        if client.r#type() != pb::client_identification::TokenType::DrmDeviceCertificate {
            return Err(Error::NoCertificate);
        }
        let token = client.token.as_deref().ok_or(Error::NoCertificate)?;
        let digest = sha256(token);
        let device = match self.cache.get(&digest) {
            Some(d) => d.clone(),
            None => {
                let d = Arc::new(verify_chain(token, &self.config.roots)?);
                if self.cache.len() >= self.cache_capacity {
                    // Wholesale eviction keeps the map bounded without an LRU's bookkeeping on
                    // the hot path; re-verifying costs one chain per device once.
                    self.cache.clear();
                }
                self.cache.insert(digest, d.clone());
                d
            }
        };
        self.admit(&device, now)?;
        Ok(device)
    }

    fn admit(&self, device: &Device, now: u64) -> Result<(), Error> {
        if device.expires_at != 0 && device.expires_at <= now {
            return Err(Error::Expired);
        }
        if self.config.revoked_system_ids.contains(&device.system_id) {
            return Err(Error::Revoked("system id"));
        }
        if device
            .serials
            .iter()
            .any(|s| self.config.revoked_serials.contains(s))
        {
            return Err(Error::Revoked("certificate serial number"));
        }
        Ok(())
    }
}

/// Verifies a serialized `SignedDrmCertificate` chain up to one of `roots` (no time or
/// revocation checks: see [`Trust::verify`]).
pub fn verify_chain(token: &[u8], roots: &[RsaPublicKey]) -> Result<Device, Error> {
    let mut signed = pb::SignedDrmCertificate::decode(token).map_err(|_| Error::Malformed)?;
    let mut certs: Vec<pb::DrmCertificate> = Vec::with_capacity(3);
    loop {
        if certs.len() == MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let body = signed
            .drm_certificate
            .as_deref()
            .ok_or(Error::Structure("a certificate is missing"))?;
        let sig = signed
            .signature
            .as_deref()
            .ok_or(Error::Structure("a signature is missing"))?;
        let hash = match signed.hash_algorithm() {
            pb::signed_drm_certificate::HashAlgorithm::Unspecified
            | pb::signed_drm_certificate::HashAlgorithm::Sha1 => PssHash::Sha1,
            pb::signed_drm_certificate::HashAlgorithm::Sha256 => PssHash::Sha256,
            pb::signed_drm_certificate::HashAlgorithm::Sha384 => PssHash::Sha384,
        };
        let cert = pb::DrmCertificate::decode(body).map_err(|_| Error::Malformed)?;
        match signed.signer.take() {
            Some(parent) => {
                let parent_cert = pb::DrmCertificate::decode(
                    parent
                        .drm_certificate
                        .as_deref()
                        .ok_or(Error::Structure("a signer certificate is missing"))?,
                )
                .map_err(|_| Error::Malformed)?;
                let parent_key = RsaPublicKey::from_pkcs1_der(
                    parent_cert
                        .public_key
                        .as_deref()
                        .ok_or(Error::Structure("a signer has no public key"))?,
                )
                .map_err(|_| Error::Key)?;
                if !parent_key.verify_pss(hash, body, sig) {
                    return Err(Error::Signature);
                }
                certs.push(cert);
                signed = *parent;
            }
            None => {
                if !roots.iter().any(|r| r.verify_pss(hash, body, sig)) {
                    return Err(Error::UntrustedRoot);
                }
                certs.push(cert);
                break;
            }
        }
    }
    check_structure(&certs)
}

fn check_structure(certs: &[pb::DrmCertificate]) -> Result<Device, Error> {
    let (leaf, parents) = certs.split_first().ok_or(Error::Structure("empty chain"))?;
    if leaf.r#type() != CertType::Device {
        return Err(Error::Structure("the leaf is not a DEVICE certificate"));
    }
    if parents.is_empty() {
        return Err(Error::Structure(
            "the device certificate is not issued by a DEVICE_MODEL certificate",
        ));
    }
    if parents.iter().any(|c| c.r#type() != CertType::DeviceModel) {
        return Err(Error::Structure(
            "an intermediate is not a DEVICE_MODEL certificate",
        ));
    }
    let system_id = leaf
        .system_id
        .filter(|&s| s != 0)
        .ok_or(Error::Structure("the device has no system id"))?;
    if parents.iter().any(|c| c.system_id != Some(system_id)) {
        return Err(Error::Structure("the system id differs along the chain"));
    }
    if leaf.algorithm() != pb::drm_certificate::Algorithm::Rsa {
        return Err(Error::Key);
    }
    let key = RsaPublicKey::from_pkcs1_der(leaf.public_key.as_deref().ok_or(Error::Key)?)
        .map_err(|_| Error::Key)?;
    let expires_at = certs
        .iter()
        .filter_map(|c| c.expiration_time_seconds.filter(|&e| e != 0))
        .min()
        .map_or(0, u64::from);
    Ok(Device {
        system_id,
        serials: certs
            .iter()
            .map(|c| c.serial_number.clone().unwrap_or_default())
            .collect(),
        key,
        expires_at,
    })
}
