//! FairPlay-style credential sets, per tenant, selected by the SPC's certificate hash
//! (`docs/fairplay.md` §2.4, §9.1). Loaded at start; dev mode embeds the committed test
//! credential of `keys/dev/fairplay/` for the `demo` tenant.

use super::dfunc::{DFunctionProvider, KeyPayloadProvider, TesseraDv1};
use super::spc::{V3Params, tessera_v3};
use crate::config::{Config, secrets};
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

fn provider(c: &super::FairPlayCredentialConfig) -> Result<Provider, String> {
    match (c.provider.as_str(), &c.dylib) {
        ("" | "tessera-d-v1", None) => Ok(Provider::TesseraDv1),
        #[cfg(feature = "fairplay-licensee-ffi")]
        ("d-dylib", Some(path)) => super::ffi::DylibD::load(path).map(Provider::Dylib),
        #[cfg(not(feature = "fairplay-licensee-ffi"))]
        ("d-dylib", Some(_)) => {
            Err("provider d-dylib needs a build with the fairplay-licensee-ffi feature".into())
        }
        ("d-dylib", None) => Err("provider d-dylib needs dylib = PATH".into()),
        (_, Some(_)) => Err("dylib is only for provider d-dylib".into()),
        (other, None) => Err(format!("provider {other:?} (tessera-d-v1, d-dylib)")),
    }
}

fn parse_ask(hex: &str) -> Result<[u8; 16], String> {
    crate::encoding::hex_decode(hex.trim())
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| "ask must be 16 bytes of hex".to_owned())
}

fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let cert = openssl::x509::X509::from_der(bytes)
        .or_else(|_| openssl::x509::X509::from_pem(bytes))
        .map_err(|_| "not an X.509 certificate (DER or PEM)".to_owned())?;
    cert.to_der().map_err(|e| e.to_string())
}

impl FairPlay {
    /// Loads `[[tenants.fairplay_credentials]]`, and the dev credential in dev mode.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut fp = FairPlay::default();
        for (idx, t) in config.tenants.iter().enumerate() {
            for (i, c) in t.protocols.fairplay.iter().enumerate() {
                let what = format!("tenant {:?} fairplay_credentials[{i}]", t.id);
                let provider = provider(c).map_err(|e| format!("{what}: {e}"))?;
                let cert = std::fs::read(&c.certificate_file)
                    .map_err(|e| format!("{what}: {}: {e}", c.certificate_file.display()))?;
                let key = secrets::read_secret_file(&c.private_key_file, false)
                    .map_err(|e| format!("{what}: {e}"))?;
                let ask = secrets::resolve(
                    &format!("{what} ask"),
                    c.ask.as_ref(),
                    c.ask_file.as_deref(),
                    false,
                )
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{what}: ask or ask_file is required"))?;
                fp.add(
                    idx as u32,
                    &cert,
                    key.expose().as_bytes(),
                    ask.expose(),
                    c.v3,
                    provider,
                )
                .map_err(|e| format!("{what}: {e}"))?;
            }
        }
        if config.dev_mode
            && let Some(idx) = config.tenants.iter().position(|t| t.id == "demo")
        {
            let key = std::str::from_utf8(DEV_KEY).map_err(|e| e.to_string())?;
            fp.add(
                idx as u32,
                DEV_CERT,
                key.as_bytes(),
                DEV_ASK,
                true,
                Provider::TesseraDv1,
            )?;
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
    ) -> Result<(), String> {
        let certificate = certificate_der(cert)?;
        let private = RsaPrivateKey::from_pem_any_size(key_pem)
            .map_err(|_| "private key is not an RSA-1024 or RSA-2048 PEM key".to_owned())?;
        let cert_key = openssl::x509::X509::from_der(&certificate)
            .and_then(|c| c.public_key())
            .and_then(|k| k.rsa())
            .map_err(|_| "certificate key is not RSA".to_owned())?;
        let public = private
            .public_key_der()
            .map_err(|_| "private key".to_owned())?;
        if cert_key.public_key_to_der().map_err(|e| e.to_string())? != public {
            return Err("the private key does not match the certificate".into());
        }
        let bits = private.bits();
        if bits != 1024 && bits != 2048 {
            return Err(format!(
                "RSA-{bits}: FairPlay certificates are RSA-1024 or RSA-2048"
            ));
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
                return Err("the same certificate is configured twice".into());
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
