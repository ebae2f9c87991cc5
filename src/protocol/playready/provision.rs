//! Roots, groups and test devices under the operator's own roots (docs/playready.md §2.9;
//! `tessera devices playready`, docs/playready.md §1.5).
//!
//! A device chain is `device ← model (group) ← intermediate ← root`: the root key signs an
//! intermediate ISSUER certificate (usage ISSUER_ALL), which signs a model certificate whose
//! key may issue devices (ISSUER_DEVICE), which signs the device leaf with a SIGN key and an
//! ENCRYPT_KEY key. The root never appears in the chain. The `.prd` file is the format the
//! reference client loads: `"PRD" | 3 | group key | encryption key | signing key | u32
//! chain length | chain`, each key `d‖X‖Y` (96 bytes).
//!
//! Also the response-signing chain: a SERVER certificate with usage SIGN_RESPONSE, signed
//! by the root.

use super::bcert::{self, CertKey, CertSpec, Manufacturer, NEVER, cert_type, feature, usage};
use crate::crypto::ecc::{self, EccPrivateKey};
use zeroize::Zeroizing;

/// File names in a root directory (`tessera devices playready --new-root DIR`, and the
/// committed dev root under `keys/dev/playready/`).
pub mod files {
    /// The root's private key (devices are issued under it). Keep it offline in production.
    pub const ROOT_KEY: &str = "root-key.pem";
    /// The root's public key: what `[playready] roots` lists.
    pub const ROOT_PUBLIC: &str = "root-public.pem";
    /// The server key pair in the WMRM role: clients encrypt challenges to its public key.
    pub const SERVER_KEY: &str = "server-key.pem";
    /// The response-signing key.
    pub const SIGNING_KEY: &str = "signing-key.pem";
    /// The response-signing chain (BCert).
    pub const SIGNING_CHAIN: &str = "signing-chain.bin";
}

/// Errors of provisioning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// P-256 failed.
    #[error(transparent)]
    Ecc(#[from] ecc::Error),
    /// A `.prd` file that does not parse.
    #[error("not a .prd device file: {0}")]
    Prd(&'static str),
    /// Its chain does not parse.
    #[error(transparent)]
    Chain(#[from] bcert::Error),
}

fn random16() -> Result<[u8; 16], Error> {
    crate::crypto::random_array().map_err(|_| ecc::Error::Internal.into())
}

/// A model (group): its key and the chain `model ← intermediate` up to the root.
#[derive(Debug)]
pub struct Group {
    /// The model key (issues devices).
    pub key: EccPrivateKey,
    /// `[model, intermediate]` as a chain.
    pub chain: Vec<u8>,
    /// Manufacturer and model names copied into each device.
    pub manufacturer: Manufacturer,
    /// Highest security level of its devices.
    pub security_level: u32,
}

/// Creates a model under `root`.
pub fn new_group(
    root: &EccPrivateKey,
    manufacturer: Manufacturer,
    security_level: u32,
) -> Result<Group, Error> {
    let intermediate = EccPrivateKey::generate()?;
    let key = EccPrivateKey::generate()?;
    let issuer = |id, k: &EccPrivateKey, u, level| CertSpec {
        cert_id: id,
        security_level: level,
        cert_type: cert_type::ISSUER,
        client_id: [0; 16],
        expiration: NEVER,
        keys: vec![CertKey {
            key: *k.public(),
            usages: vec![u],
        }],
        features: None,
        manufacturer: Some(manufacturer.clone()),
    };
    let inter_cert = issuer(random16()?, &intermediate, usage::ISSUER_ALL, 3000).build(root)?;
    let model_cert =
        issuer(random16()?, &key, usage::ISSUER_DEVICE, security_level).build(&intermediate)?;
    Ok(Group {
        key,
        chain: bcert::chain(&[model_cert, inter_cert]),
        manufacturer,
        security_level,
    })
}

/// A test device.
#[derive(Debug)]
pub struct Device {
    /// Signs challenges.
    pub sign: EccPrivateKey,
    /// Receives content keys.
    pub encrypt: EccPrivateKey,
    /// `device ← model ← intermediate`.
    pub chain: Vec<u8>,
    /// The leaf's certificate id.
    pub cert_id: [u8; 16],
    /// Its client id.
    pub client_id: [u8; 16],
    /// Its security level.
    pub security_level: u32,
}

/// Issues a device under a model. `security_level` must not exceed the model's.
pub fn new_device(group: &Group, security_level: u32) -> Result<Device, Error> {
    let sign = EccPrivateKey::generate()?;
    let encrypt = EccPrivateKey::generate()?;
    let cert_id = random16()?;
    let client_id = random16()?;
    let leaf = CertSpec {
        cert_id,
        security_level,
        cert_type: cert_type::DEVICE,
        client_id,
        expiration: NEVER,
        keys: vec![
            CertKey {
                key: *sign.public(),
                usages: vec![usage::SIGN],
            },
            CertKey {
                key: *encrypt.public(),
                usages: vec![usage::ENCRYPT_KEY],
            },
        ],
        features: Some(vec![
            feature::SECURE_CLOCK,
            feature::SUPPORTS_CRLS,
            feature::SUPPORTS_PR3_FEATURES,
        ]),
        manufacturer: Some(group.manufacturer.clone()),
    }
    .build(&group.key)?;
    let mut certs = vec![leaf];
    certs.extend(bcert::split_chain(&group.chain)?);
    Ok(Device {
        sign,
        encrypt,
        chain: bcert::chain(&certs),
        cert_id,
        client_id,
        security_level,
    })
}

fn key96(out: &mut Vec<u8>, k: &EccPrivateKey) {
    out.extend_from_slice(k.scalar());
    out.extend_from_slice(k.public());
}

impl Device {
    /// The `.prd` (v3) file: secret keys included, write it with mode 0600.
    pub fn prd(&self, group: &Group) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4 + 288 + 4 + self.chain.len()));
        out.extend_from_slice(b"PRD\x03");
        key96(&mut out, &group.key);
        key96(&mut out, &self.encrypt);
        key96(&mut out, &self.sign);
        out.extend_from_slice(&(self.chain.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.chain);
        out
    }

    /// Loads a `.prd` (v2 or v3): the signing and encryption keys and the chain.
    pub fn from_prd(bytes: &[u8]) -> Result<Self, Error> {
        let key = |b: &[u8]| -> Result<EccPrivateKey, Error> {
            let d: &[u8; 32] = b
                .get(..32)
                .and_then(|d| d.try_into().ok())
                .ok_or(Error::Prd("truncated key"))?;
            Ok(EccPrivateKey::from_scalar(d)?)
        };
        let (encrypt, sign, chain) = match bytes.get(..4) {
            Some(b"PRD\x03") => {
                let keys = bytes.get(4..292).ok_or(Error::Prd("truncated"))?;
                let len = u32::from_be_bytes(
                    bytes
                        .get(292..296)
                        .and_then(|b| b.try_into().ok())
                        .ok_or(Error::Prd("truncated"))?,
                ) as usize;
                let chain = bytes
                    .get(296..296 + len)
                    .ok_or(Error::Prd("truncated chain"))?;
                (key(&keys[96..])?, key(&keys[192..])?, chain.to_vec())
            }
            Some(b"PRD\x02") => {
                let len = u32::from_be_bytes(
                    bytes
                        .get(4..8)
                        .and_then(|b| b.try_into().ok())
                        .ok_or(Error::Prd("truncated"))?,
                ) as usize;
                let chain = bytes.get(8..8 + len).ok_or(Error::Prd("truncated chain"))?;
                let keys = bytes.get(8 + len..).ok_or(Error::Prd("truncated"))?;
                (
                    key(keys)?,
                    key(keys.get(96..).ok_or(Error::Prd("truncated"))?)?,
                    chain.to_vec(),
                )
            }
            _ => return Err(Error::Prd("unknown version")),
        };
        let certs = bcert::parse_chain(&chain)?;
        let leaf = &certs[0].basic;
        Ok(Self {
            sign,
            encrypt,
            cert_id: leaf.cert_id,
            client_id: leaf.client_id,
            security_level: leaf.security_level,
            chain,
        })
    }
}

/// A response-signing chain: one SERVER certificate, usage SIGN_RESPONSE, signed by `root`.
pub fn signing_chain(root: &EccPrivateKey, key: &EccPrivateKey) -> Result<Vec<u8>, Error> {
    let cert = CertSpec {
        cert_id: random16()?,
        security_level: 3000,
        cert_type: cert_type::SERVER,
        client_id: [0; 16],
        expiration: NEVER,
        keys: vec![CertKey {
            key: *key.public(),
            usages: vec![usage::SIGN_RESPONSE],
        }],
        features: None,
        manufacturer: Some(Manufacturer {
            name: "Tessera".into(),
            model_name: "licence server".into(),
            model_number: env!("CARGO_PKG_VERSION").into(),
        }),
    }
    .build(root)?;
    Ok(bcert::chain(&[cert]))
}

/// Loads a root directory's private key. The dev root is also embedded, so the default
/// works from any directory.
pub fn load_root(dir: &std::path::Path) -> Result<EccPrivateKey, String> {
    let path = dir.join(files::ROOT_KEY);
    match std::fs::read(&path) {
        Ok(pem) => EccPrivateKey::from_pem(&pem)
            .map_err(|_| format!("{}: not a PEM P-256 private key", path.display())),
        Err(_) if dir == std::path::Path::new("keys/dev/playready") => {
            EccPrivateKey::from_pem(super::DEV_ROOT_KEY).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Creates a root directory: root key pair, server key pair (WMRM role) and the
/// response-signing key and chain ([`files`]). The directory must not exist.
pub fn create_root_dir(dir: &std::path::Path) -> Result<EccPrivateKey, String> {
    let write = crate::protocol::widevine::provision::write;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    std::fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let root = EccPrivateKey::generate().map_err(|e| err(&e))?;
    let server = EccPrivateKey::generate().map_err(|e| err(&e))?;
    let signing = EccPrivateKey::generate().map_err(|e| err(&e))?;
    let chain = signing_chain(&root, &signing).map_err(|e| err(&e))?;
    for (name, key) in [
        (files::ROOT_KEY, &root),
        (files::SERVER_KEY, &server),
        (files::SIGNING_KEY, &signing),
    ] {
        let pem = key.to_pem().map_err(|e| err(&e))?;
        write(&dir.join(name), pem.as_bytes(), true).map_err(|e| err(&e))?;
    }
    for (name, key) in [
        (files::ROOT_PUBLIC, root.public()),
        ("server-public.pem", server.public()),
    ] {
        let pem = ecc::public_to_pem(key).map_err(|e| err(&e))?;
        write(&dir.join(name), pem.as_bytes(), false).map_err(|e| err(&e))?;
    }
    write(&dir.join(files::SIGNING_CHAIN), &chain, false).map_err(|e| err(&e))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_verify_under_their_root_and_round_trip_through_prd() {
        let root = EccPrivateKey::generate().unwrap();
        let group = new_group(
            &root,
            Manufacturer {
                name: "Tessera".into(),
                model_name: "test model".into(),
                model_number: "1".into(),
            },
            2000,
        )
        .unwrap();
        let dev = new_device(&group, 2000).unwrap();
        let d =
            bcert::verify_chain(&dev.chain, &[*root.public()], cert_type::DEVICE, None).unwrap();
        assert_eq!(&d.sign_key, dev.sign.public());
        assert_eq!(d.model.as_deref(), Some("test model"));
        assert_eq!(d.cert_ids.len(), 3);
        let prd = dev.prd(&group);
        assert_eq!(&prd[..4], b"PRD\x03");
        let back = Device::from_prd(&prd).unwrap();
        assert_eq!(back.sign.public(), dev.sign.public());
        assert_eq!(back.encrypt.public(), dev.encrypt.public());
        assert_eq!(back.chain, dev.chain);
        assert_eq!(back.security_level, 2000);
        // A leaf above its model's level does not verify.
        let greedy = new_device(&group, 3000).unwrap();
        assert!(
            bcert::verify_chain(&greedy.chain, &[*root.public()], cert_type::DEVICE, None).is_err()
        );
        let key = EccPrivateKey::generate().unwrap();
        let chain = signing_chain(&root, &key).unwrap();
        let s = bcert::verify_chain(&chain, &[*root.public()], cert_type::SERVER, None).unwrap();
        assert_eq!(&s.sign_key, key.public());
        assert!(Device::from_prd(b"PRD\x09").is_err());
        assert!(Device::from_prd(&prd[..300]).is_err());
    }
}
