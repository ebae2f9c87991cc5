//! FairPlay-style credential sets, per tenant, selected by the SPC's certificate hash
//! (`docs/fairplay.md` §2.4, §9.1). Loaded at start; dev mode embeds the committed test
//! credential of `keys/dev/fairplay/` for the `demo` tenant.

use super::dfunc::{DFunctionProvider, KeyPayloadProvider, TesseraDv1};
use super::spc::{V3Params, tessera_v3};
use crate::config::{Config, SetupError, secrets};
use crate::crypto::rsa::RsaPrivateKey;
use std::collections::HashMap;
use std::sync::Arc;

const DEV_CERT: &[u8] = include_bytes!("../../../keys/dev/fairplay/cert-2048.der");
const DEV_KEY: &[u8] = include_bytes!("../../../keys/dev/fairplay/key-2048.pem");
const DEV_ASK: &str = include_str!("../../../keys/dev/fairplay/ask.hex");

/// One credential set.
pub struct Credential {
    /// Owning tenant.
    pub tenant: u32,
    /// The certificate (DER) players fetch.
    pub certificate: Vec<u8>,
    /// Its private key.
    pub private: RsaPrivateKey,
    /// The secret step.
    pub provider: Box<dyn KeyPayloadProvider>,
    /// v3 constants, when v3 SPCs are accepted.
    pub v3: Option<V3Params>,
    /// The ASk, kept for provisioning test devices with `tessera-d-v1` (never sent).
    ask: zeroize::Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Provisions a test device for this credential (`docs/fairplay.md` §9.4): a random R2,
    /// DASk = tessera-d-v1(R2, ASk) and a random HU. The device never learns ASk.
    pub fn provision_test_device(&self) -> Result<TestDevice, super::Error> {
        use super::dfunc::DFunction;
        let r2 = crate::crypto::random_array().map_err(|_| super::Error::Internal)?;
        let dask = TesseraDv1.derive(&r2, &self.ask)?;
        let hu = crate::crypto::random_array().map_err(|_| super::Error::Internal)?;
        Ok((r2, dask, hu))
    }
}

/// A provisioned test device: (R2, DASk, HU).
pub type TestDevice = ([u8; 21], [u8; 16], [u8; 20]);

/// Every tenant's credentials.
#[derive(Debug, Default)]
pub struct FairPlay {
    by_hash: HashMap<Vec<u8>, Arc<Credential>>,
    first: HashMap<u32, Arc<Credential>>,
}

/// The D function of a credential.
enum Provider {
    TesseraDv1,
    #[cfg(feature = "fairplay-licensee-ffi")]
    Dylib(super::ffi::DylibD),
}

enum Kind {
    Tessera,
    #[cfg(feature = "fairplay-licensee-ffi")]
    Licensee,
}

/// Why a credential set cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// `provider = "d-dylib"` in a build without the feature.
    #[error("provider d-dylib needs a build with the fairplay-licensee-ffi feature")]
    NoFfi,
    /// `provider = "d-dylib"` without `dylib`.
    #[error("provider d-dylib needs dylib = PATH")]
    NoDylib,
    /// `dylib` with another provider.
    #[error("dylib is only for provider d-dylib")]
    UnusedDylib,
    /// An unknown provider.
    #[error("provider {0:?} (tessera-d-v1, d-dylib)")]
    UnknownProvider(String),
    /// The licensee's library does not load.
    #[error("{0}")]
    Dylib(String),
    /// The ASk is not 16 bytes of hex.
    #[error("ask must be 16 bytes of hex")]
    Ask,
    /// `ask` and `ask_file` are both missing.
    #[error("ask or ask_file is required")]
    NoAsk,
    /// The certificate does not parse.
    #[error("not an X.509 certificate (DER or PEM)")]
    Certificate,
    /// The certificate's key is not RSA.
    #[error("certificate key is not RSA")]
    CertificateKey,
    /// The private key does not parse.
    #[error("private key is not an RSA-1024 or RSA-2048 PEM key")]
    PrivateKey,
    /// Key and certificate are not a pair.
    #[error("the private key does not match the certificate")]
    Mismatch,
    /// A key of another size than FairPlay's.
    #[error("RSA-{0}: FairPlay certificates are RSA-1024 or RSA-2048")]
    Size(u32),
    /// The same certificate twice.
    #[error("the same certificate is configured twice")]
    Twice,
}

fn provider(c: &super::FairPlayCredentialConfig) -> Result<Provider, CredentialError> {
    match (c.provider.as_str(), &c.dylib) {
        ("" | "tessera-d-v1", None) => Ok(Provider::TesseraDv1),
        #[cfg(feature = "fairplay-licensee-ffi")]
        ("d-dylib", Some(path)) => super::ffi::DylibD::load(path)
            .map(Provider::Dylib)
            .map_err(CredentialError::Dylib),
        #[cfg(not(feature = "fairplay-licensee-ffi"))]
        ("d-dylib", Some(_)) => Err(CredentialError::NoFfi),
        ("d-dylib", None) => Err(CredentialError::NoDylib),
        (_, Some(_)) => Err(CredentialError::UnusedDylib),
        (other, None) => Err(CredentialError::UnknownProvider(other.to_owned())),
    }
}

fn parse_ask(hex: &str) -> Result<[u8; 16], CredentialError> {
    crate::encoding::hex_decode(hex.trim())
        .and_then(|v| v.try_into().ok())
        .ok_or(CredentialError::Ask)
}

fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, CredentialError> {
    openssl::x509::X509::from_der(bytes)
        .or_else(|_| openssl::x509::X509::from_pem(bytes))
        .and_then(|cert| cert.to_der())
        .map_err(|_| CredentialError::Certificate)
}

impl FairPlay {
    /// Loads `[[tenants.fairplay_credentials]]`, and the dev credential in dev mode.
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        let mut fp = FairPlay::default();
        for (idx, t) in config.tenants.iter().enumerate() {
            for (i, c) in t.protocols.fairplay.iter().enumerate() {
                let what = format!("tenant {:?} fairplay_credentials[{i}]", t.id);
                let bad = |e: CredentialError| SetupError::invalid(&what, e);
                let provider = provider(c).map_err(bad)?;
                let cert = std::fs::read(&c.certificate_file)
                    .map_err(|e| SetupError::read(&c.certificate_file, e))?;
                let key = secrets::read_secret_file(&c.private_key_file, false)?;
                let ask = secrets::resolve(
                    &format!("{what} ask"),
                    c.ask.as_ref(),
                    c.ask_file.as_deref(),
                    false,
                )?
                .ok_or_else(|| bad(CredentialError::NoAsk))?;
                fp.add(
                    idx as u32,
                    &cert,
                    key.expose().as_bytes(),
                    ask.expose(),
                    c.v3,
                    provider,
                )
                .map_err(bad)?;
            }
        }
        if config.dev_mode
            && let Some(idx) = config.tenants.iter().position(|t| t.id == "demo")
        {
            fp.add(
                idx as u32,
                DEV_CERT,
                DEV_KEY,
                DEV_ASK,
                true,
                Provider::TesseraDv1,
            )
            .map_err(|e| SetupError::invalid("fairplay dev credential", e))?;
        }
        Ok(fp)
    }

    fn add(
        &mut self,
        tenant: u32,
        cert: &[u8],
        key_pem: &[u8],
        ask: &str,
        v3: bool,
        provider: Provider,
    ) -> Result<(), CredentialError> {
        let certificate = certificate_der(cert)?;
        let private =
            RsaPrivateKey::from_pem_any_size(key_pem).map_err(|_| CredentialError::PrivateKey)?;
        let cert_key = openssl::x509::X509::from_der(&certificate)
            .and_then(|c| c.public_key())
            .and_then(|k| k.rsa())
            .and_then(|k| k.public_key_to_der())
            .map_err(|_| CredentialError::CertificateKey)?;
        let public = private
            .public_key_der()
            .map_err(|_| CredentialError::PrivateKey)?;
        if cert_key != public {
            return Err(CredentialError::Mismatch);
        }
        let bits = private.bits();
        if bits != 1024 && bits != 2048 {
            return Err(CredentialError::Size(bits));
        }
        let ask = parse_ask(ask)?;
        let provider_kind = match &provider {
            Provider::TesseraDv1 => Kind::Tessera,
            #[cfg(feature = "fairplay-licensee-ffi")]
            Provider::Dylib(_) => Kind::Licensee,
        };
        let cred = Arc::new(Credential {
            tenant,
            private,
            provider: match provider {
                Provider::TesseraDv1 => Box::new(DFunctionProvider::new(TesseraDv1, ask)),
                #[cfg(feature = "fairplay-licensee-ffi")]
                Provider::Dylib(d) => Box::new(DFunctionProvider::new(d, ask)),
            },
            // The v3-T constants are Tessera's: a licensee's v3 needs the licensee's own.
            v3: (v3 && bits == 2048 && matches!(provider_kind, Kind::Tessera)).then(tessera_v3),
            ask: zeroize::Zeroizing::new(ask),
            certificate,
        });
        for hash in [
            crate::crypto::sha1(&cred.certificate).to_vec(),
            crate::crypto::sha256(&cred.certificate).to_vec(),
        ] {
            if self.by_hash.insert(hash, cred.clone()).is_some() {
                return Err(CredentialError::Twice);
            }
        }
        self.first.entry(tenant).or_insert(cred);
        Ok(())
    }

    /// The credential whose certificate has this hash (SHA-1 or SHA-256).
    pub fn by_hash(&self, hash: &[u8]) -> Option<&Arc<Credential>> {
        self.by_hash.get(hash)
    }

    /// The tenant's first credential (its certificate is what players fetch).
    pub fn for_tenant(&self, tenant: u32) -> Option<&Arc<Credential>> {
        self.first.get(&tenant)
    }

    /// True when no tenant has a credential.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}
