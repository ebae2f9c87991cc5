//! Device-certificate chains (drm-interop.md §1.6): a leaf DEVICE certificate, signed by a
//! DEVICE_MODEL intermediate, signed by one of the operator's configured roots. The client
//! library never checks any of this; the server is the only place trust is enforced.
//!
//! Verification is pure (no I/O; the caller passes the time). A verified chain is immutable
//! input, so it is cached by the SHA-256 of the token bytes: the steady state pays a hash and
//! a map lookup, then only the per-request signature check. A chain enters the cache only
//! after a request signed by its device key verified ([`Trust::remember`]): whoever copies a
//! device's certificate (and pads it with unknown fields to make new cache keys) cannot evict
//! real devices. Expiry and revocation are re-checked on every request, cached or not.

use super::pb;
use super::pb::drm_certificate::Type as CertType;
use crate::crypto::rsa::{PssHash, RsaPublicKey};
use crate::license::policy::SecurityLevel;
use prost::Message;
use std::collections::{HashMap, HashSet};

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
    /// More certificates than the depth limit (4).
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
    /// The leaf's RSA key: verifies request signatures.
    pub key: RsaPublicKey,
    /// The key session keys are wrapped to: the leaf's `encryption_key` on dual-key devices,
    /// else the leaf key.
    pub wrap_key: RsaPublicKey,
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

/// A chain that verified, and whether it came from the cache.
pub type Verified = crate::protocol::chain_cache::Verified<Device>;

/// Verifies chains and caches the verified ones.
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

    /// The security level the operator assigned to a model.
    pub fn level(&self, system_id: u32) -> SecurityLevel {
        self.config
            .levels
            .get(&system_id)
            .copied()
            .unwrap_or(self.config.default_level)
    }

    /// Verifies the device certificate of a client identification at time `now` (from the
    /// cache when these exact bytes verified before).
    pub fn verify(&self, client: &pb::ClientIdentification, now: u64) -> Result<Verified, Error> {
        if client.r#type() != pb::client_identification::TokenType::DrmDeviceCertificate {
            return Err(Error::NoCertificate);
        }
        let token = client.token.as_deref().ok_or(Error::NoCertificate)?;
        let verified = self
            .cache
            .get_or_verify(token, || verify_chain(token, &self.config.roots))?;
        let d = &verified.device;
        self.admit(d.system_id, &d.serials, d.expires_at, now)?;
        Ok(verified)
    }

    /// Caches a verified chain; call once the device has proved possession of its key.
    pub fn remember(&self, v: &Verified) {
        self.cache.remember(v);
    }

    /// Expiry and revocation of a device (also applied to renewals, from the sealed state).
    pub fn admit(
        &self,
        system_id: u32,
        serials: &[Vec<u8>],
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error> {
        if expires_at != 0 && expires_at <= now {
            return Err(Error::Expired);
        }
        if self.config.revoked_system_ids.contains(&system_id) {
            return Err(Error::Revoked("system id"));
        }
        if serials
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
    let wrap_key = match &leaf.encryption_key {
        Some(e) if e.algorithm() == pb::drm_certificate::Algorithm::Rsa => {
            RsaPublicKey::from_pkcs1_der(e.public_key.as_deref().ok_or(Error::Key)?)
                .map_err(|_| Error::Key)?
        }
        Some(_) => return Err(Error::Key),
        None => key.clone(),
    };
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
        wrap_key,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rsa::RsaPrivateKey;
    use crate::protocol::widevine::provision::{DeviceOptions, Root};
    use std::sync::OnceLock;

    fn root() -> &'static Root {
        static ROOT: OnceLock<Root> = OnceLock::new();
        ROOT.get_or_init(|| Root::generate(1_700_000_000).unwrap())
    }

    fn trust(cfg: impl FnOnce(&mut TrustConfig)) -> Trust {
        let mut c = TrustConfig {
            roots: vec![root().key.public_key().unwrap()],
            revoked_serials: HashSet::new(),
            revoked_system_ids: HashSet::new(),
            levels: HashMap::new(),
            default_level: SecurityLevel::SwSecureDecode,
        };
        cfg(&mut c);
        Trust::new(c, 2)
    }

    fn client(expires_at: u64) -> pb::ClientIdentification {
        let d = root()
            .device(
                &DeviceOptions {
                    system_id: 7,
                    max_hdcp: pb::client_identification::client_capabilities::HdcpVersion::HdcpNone,
                    expires_at,
                },
                1_700_000_000,
            )
            .unwrap();
        pb::ClientIdentification::decode(&d.client_id[..]).unwrap()
    }

    fn signed(
        key: &RsaPrivateKey,
        cert: &pb::DrmCertificate,
        signer: Option<pb::SignedDrmCertificate>,
    ) -> pb::SignedDrmCertificate {
        let body = cert.encode_to_vec();
        pb::SignedDrmCertificate {
            signature: Some(key.sign_pss_sha1(&body).unwrap()),
            drm_certificate: Some(body),
            signer: signer.map(Box::new),
            hash_algorithm: None,
        }
    }

    fn cert(t: CertType, key: &RsaPrivateKey, system_id: u32) -> pb::DrmCertificate {
        pb::DrmCertificate {
            r#type: Some(t as i32),
            serial_number: Some(vec![t as u8; 16]),
            public_key: Some(key.public_key().unwrap().to_pkcs1_der().unwrap()),
            system_id: Some(system_id),
            ..Default::default()
        }
    }

    #[test]
    fn chains_enter_the_cache_when_remembered_and_expiry_and_revocation_are_rechecked() {
        let c = client(1_800_000_000);
        let t = trust(|_| {});
        let v = t.verify(&c, 1_700_000_000).unwrap();
        let d = v.device.clone();
        assert_eq!(
            (d.system_id, d.serials.len(), d.expires_at),
            (7, 2, 1_800_000_000)
        );
        assert_eq!(t.level(d.system_id), SecurityLevel::SwSecureDecode);
        assert!(
            !t.verify(&c, 1_700_000_000).unwrap().cached(),
            "not before remember"
        );
        t.remember(&v);
        let again = t.verify(&c, 1_700_000_000).unwrap();
        assert!(again.cached() && std::sync::Arc::ptr_eq(&d, &again.device));
        assert_eq!(
            t.verify(&c, 1_800_000_000).unwrap_err(),
            Error::Expired,
            "expiry of a cached chain"
        );
        // Bounded: capacity 2; more chains evict one entry at a time, never all.
        t.remember(&t.verify(&client(0), 0).unwrap());
        t.remember(&t.verify(&client(0), 0).unwrap());
        assert_eq!(t.cache.len(), 2);

        let serial = d.serials[0].clone();
        let t = trust(|c| {
            c.revoked_serials.insert(serial);
        });
        assert_eq!(
            t.verify(&c, 0).unwrap_err(),
            Error::Revoked("certificate serial number")
        );
        let t = trust(|c| {
            c.revoked_system_ids.insert(7);
            c.levels.insert(7, SecurityLevel::HwSecureAll);
        });
        assert_eq!(t.verify(&c, 0).unwrap_err(), Error::Revoked("system id"));
        assert_eq!(t.level(7), SecurityLevel::HwSecureAll);
        let t =
            trust(|c| c.roots = vec![RsaPrivateKey::generate(2048).unwrap().public_key().unwrap()]);
        assert_eq!(t.verify(&c, 0).unwrap_err(), Error::UntrustedRoot);
    }

    #[test]
    fn structure_is_enforced() {
        let r = &root().key;
        let model_key = RsaPrivateKey::generate(2048).unwrap();
        let dev_key = RsaPrivateKey::generate(2048).unwrap();
        let roots = [r.public_key().unwrap()];
        let model = signed(r, &cert(CertType::DeviceModel, &model_key, 7), None);

        // A device signed directly by the root, with no model certificate.
        let direct = signed(r, &cert(CertType::Device, &dev_key, 7), None).encode_to_vec();
        assert!(matches!(
            verify_chain(&direct, &roots),
            Err(Error::Structure(_))
        ));
        // The system id changes along the chain.
        let other = signed(
            &model_key,
            &cert(CertType::Device, &dev_key, 8),
            Some(model.clone()),
        );
        assert!(matches!(
            verify_chain(&other.encode_to_vec(), &roots),
            Err(Error::Structure(_))
        ));
        // The leaf is not a DEVICE.
        let svc = signed(
            &model_key,
            &cert(CertType::Service, &dev_key, 7),
            Some(model.clone()),
        );
        assert!(matches!(
            verify_chain(&svc.encode_to_vec(), &roots),
            Err(Error::Structure(_))
        ));
        // An ECC leaf (the key type this server cannot wrap to).
        let mut ecc = cert(CertType::Device, &dev_key, 7);
        ecc.algorithm = Some(pb::drm_certificate::Algorithm::EccSecp256r1 as i32);
        let ecc = signed(&model_key, &ecc, Some(model.clone()));
        assert_eq!(
            verify_chain(&ecc.encode_to_vec(), &roots).unwrap_err(),
            Error::Key
        );
        // Too deep: models signing models.
        let mut chain = model.clone();
        for _ in 0..4 {
            chain = signed(
                &model_key,
                &cert(CertType::DeviceModel, &model_key, 7),
                Some(chain),
            );
        }
        let deep = signed(
            &model_key,
            &cert(CertType::Device, &dev_key, 7),
            Some(chain),
        );
        assert_eq!(
            verify_chain(&deep.encode_to_vec(), &roots).unwrap_err(),
            Error::TooDeep
        );
        // The good chain, for contrast.
        let good = signed(
            &model_key,
            &cert(CertType::Device, &dev_key, 7),
            Some(model),
        );
        assert!(verify_chain(&good.encode_to_vec(), &roots).is_ok());
        assert_eq!(
            verify_chain(b"\xff\xff", &roots).unwrap_err(),
            Error::Malformed
        );
    }
}
