//! Test roots, service certificates and devices for the Widevine-style protocol
//! (drm-interop.md §1.5, §1.8): what `tessera devices widevine` writes. Every key here is the
//! operator's own; nothing is a vendor's.
//!
//! A root directory holds `root-key.pem` (0600), `root-cert.bin` (the self-signed ROOT
//! `SignedDrmCertificate`), `root-public.pem` (what `[widevine] roots` lists),
//! `service-key.pem` (0600) and `service-cert.bin` (the SERVICE certificate signed by the
//! root, for privacy mode).

use super::pb;
use super::pb::drm_certificate::Type as CertType;
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::crypto::{self, random_array};
use prost::Message;
use std::path::Path;

/// Errors of provisioning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A key or certificate file does not parse, or they do not match.
    #[error("{0}")]
    Invalid(String),
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(#[from] crypto::Error),
}

/// File names inside a root directory.
pub mod files {
    /// Root private key (PKCS#8 PEM, 0600).
    pub const ROOT_KEY: &str = "root-key.pem";
    /// Root certificate (self-signed `SignedDrmCertificate`).
    pub const ROOT_CERT: &str = "root-cert.bin";
    /// Root public key (SPKI PEM): what a server trusts.
    pub const ROOT_PUBLIC: &str = "root-public.pem";
    /// Service private key (PKCS#8 PEM, 0600).
    pub const SERVICE_KEY: &str = "service-key.pem";
    /// Service certificate (`SignedDrmCertificate` signed by the root).
    pub const SERVICE_CERT: &str = "service-cert.bin";
}

/// A root of trust: its key and self-signed certificate.
#[derive(Debug)]
pub struct Root {
    /// The root key.
    pub key: RsaPrivateKey,
    /// The self-signed ROOT certificate.
    pub cert: Vec<u8>,
}

/// A certificate signed with PSS-SHA1 (the protocol's scheme), `signer` as given.
fn sign(
    key: &RsaPrivateKey,
    cert: &pb::DrmCertificate,
    signer: Option<pb::SignedDrmCertificate>,
) -> Result<pb::SignedDrmCertificate, Error> {
    let body = cert.encode_to_vec();
    let signature = key.sign_pss_sha1(&body)?;
    Ok(pb::SignedDrmCertificate {
        drm_certificate: Some(body),
        signature: Some(signature),
        signer: signer.map(Box::new),
        hash_algorithm: None,
    })
}

fn cert(
    r#type: CertType,
    key: &RsaPublicKey,
    now: u64,
    system_id: Option<u32>,
) -> Result<pb::DrmCertificate, Error> {
    Ok(pb::DrmCertificate {
        r#type: Some(r#type as i32),
        serial_number: Some(random_array::<16>()?.to_vec()),
        creation_time_seconds: Some(now as u32),
        public_key: Some(key.to_pkcs1_der()?),
        system_id,
        ..Default::default()
    })
}

impl Root {
    /// Generates a root (RSA-3072) and self-signs its certificate.
    pub fn generate(now: u64) -> Result<Self, Error> {
        let key = RsaPrivateKey::generate(3072)?;
        let mut c = cert(CertType::Root, &key.public_key()?, now, None)?;
        c.serial_number = Some(vec![0]);
        let cert = sign(&key, &c, None)?.encode_to_vec();
        Ok(Self { key, cert })
    }

    /// Loads `root-key.pem` and `root-cert.bin` from `dir`, checking they belong together.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let key = RsaPrivateKey::from_pem(&read(&dir.join(files::ROOT_KEY))?)
            .map_err(|_| Error::Invalid(format!("{}: not an RSA private key", files::ROOT_KEY)))?;
        let cert = read(&dir.join(files::ROOT_CERT))?;
        let parsed = pb::SignedDrmCertificate::decode(&cert[..])
            .ok()
            .and_then(|s| pb::DrmCertificate::decode(s.drm_certificate?.as_slice()).ok())
            .ok_or_else(|| {
                Error::Invalid(format!("{}: not a DRM certificate", files::ROOT_CERT))
            })?;
        if parsed.public_key != Some(key.public_key()?.to_pkcs1_der()?) {
            return Err(Error::Invalid(format!(
                "{} does not match {}",
                files::ROOT_CERT,
                files::ROOT_KEY
            )));
        }
        Ok(Self { key, cert })
    }

    /// Writes a fresh root and a service certificate under it into `dir` (created 0700).
    pub fn create_dir(dir: &Path, provider_id: &str, now: u64) -> Result<Self, Error> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| io(dir, source))?;
        let root = Self::generate(now)?;
        let (service_key, service_cert) = root.service_certificate(provider_id, now)?;
        write(&dir.join(files::ROOT_KEY), &root.key.to_pem()?, true)?;
        write(&dir.join(files::ROOT_CERT), &root.cert, false)?;
        write(
            &dir.join(files::ROOT_PUBLIC),
            &root.key.public_key()?.to_pem()?,
            false,
        )?;
        write(&dir.join(files::SERVICE_KEY), &service_key.to_pem()?, true)?;
        write(&dir.join(files::SERVICE_CERT), &service_cert, false)?;
        Ok(root)
    }

    /// A SERVICE certificate for privacy mode, signed directly by the root (the client
    /// checks it against the root's key and nothing else).
    pub fn service_certificate(
        &self,
        provider_id: &str,
        now: u64,
    ) -> Result<(RsaPrivateKey, Vec<u8>), Error> {
        let key = RsaPrivateKey::generate(2048)?;
        let mut c = cert(CertType::Service, &key.public_key()?, now, None)?;
        c.provider_id = Some(provider_id.to_owned());
        c.service_types = vec![pb::drm_certificate::ServiceType::LicenseServerSdk as i32];
        Ok((key, sign(&self.key, &c, None)?.encode_to_vec()))
    }

    /// A new DEVICE_MODEL intermediate under this root and a device under it.
    pub fn device(&self, opts: &DeviceOptions, now: u64) -> Result<TestDevice, Error> {
        let model_key = RsaPrivateKey::generate(2048)?;
        let model = sign(
            &self.key,
            &cert(
                CertType::DeviceModel,
                &model_key.public_key()?,
                now,
                Some(opts.system_id),
            )?,
            None,
        )?;
        let key = RsaPrivateKey::generate(2048)?;
        let mut leaf = cert(
            CertType::Device,
            &key.public_key()?,
            now,
            Some(opts.system_id),
        )?;
        if opts.expires_at != 0 {
            leaf.expiration_time_seconds = Some(opts.expires_at as u32);
        }
        let serial = leaf.serial_number.clone().unwrap_or_default();
        let token = sign(&model_key, &leaf, Some(model))?.encode_to_vec();
        let info = |name: &str, value: &str| pb::client_identification::NameValue {
            name: Some(name.into()),
            value: Some(value.into()),
        };
        let client_id = pb::ClientIdentification {
            r#type: Some(pb::client_identification::TokenType::DrmDeviceCertificate as i32),
            token: Some(token),
            client_info: vec![
                info("company_name", "tessera"),
                info("model_name", "test-device"),
                info("architecture_name", "x86-64"),
                info("device_name", "tessera-test"),
                info("product_name", "tessera-test"),
                info("build_info", "tessera devices widevine"),
                info("widevine_cdm_version", "16.0.0"),
                info("oem_crypto_security_patch_level", "0"),
            ],
            client_capabilities: Some(pb::client_identification::ClientCapabilities {
                client_token: Some(true),
                session_token: Some(true),
                max_hdcp_version: Some(opts.max_hdcp as i32),
                oem_crypto_api_version: Some(16),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        Ok(TestDevice {
            wvd: wvd(&key.to_pkcs1_der()?, &client_id),
            key,
            client_id,
            serial,
        })
    }
}

/// What a test device looks like.
#[derive(Debug, Clone, Copy)]
pub struct DeviceOptions {
    /// System id of the model and device.
    pub system_id: u32,
    /// The HDCP version the device reports.
    pub max_hdcp: pb::client_identification::client_capabilities::HdcpVersion,
    /// Leaf expiry (Unix seconds), 0 for none.
    pub expires_at: u64,
}

/// A provisioned test device. `Debug` leaves out the key and the `.wvd` (which holds it).
pub struct TestDevice {
    /// The device key.
    pub key: RsaPrivateKey,
    /// Serialized `ClientIdentification` (with the certificate chain).
    pub client_id: Vec<u8>,
    /// The leaf certificate's serial number (for revocation).
    pub serial: Vec<u8>,
    /// The `.wvd` v2 file.
    pub wvd: Vec<u8>,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("serial", &crate::encoding::hex_encode(&self.serial))
            .finish_non_exhaustive()
    }
}

/// `.wvd` v2: `"WVD" | 2 | type (2 = ANDROID) | security level 3 | flags 0 | u16 BE length |
/// PKCS#1 private key | u16 BE length | ClientIdentification`.
fn wvd(private_key_der: &[u8], client_id: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + private_key_der.len() + client_id.len());
    out.extend_from_slice(b"WVD");
    out.extend_from_slice(&[2, 2, 3, 0]);
    for part in [private_key_der, client_id] {
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| io(path, source))
}

/// Writes a new file; `private` ones are created 0600. Never overwrites.
pub fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|source| io(path, source))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|source| io(path, source))
}
