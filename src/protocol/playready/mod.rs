//! PlayReady-style support (docs/playready.md): the public message
//! formats and cryptography, with the operator's own roots of trust and server keys. No
//! vendor key or certificate is shipped or needed: the key in the role of the WMRM server
//! key, the device-certificate roots and the response-signing chain are all configuration.
//!
//! - [`header`]: the PlayReady Header Object and WRMHEADER 4.3 (pure).
//! - [`packaging`]: Shaka Packager's `AcquirePackagingData` exchange.
//! - [`challenge`]: the SOAP AcquireLicense challenge (pure).
//! - [`bcert`]: BCert device-certificate chains, their verification and cache.
//! - [`xmr`]: XMR licences (pure).
//! - [`response`]: the SOAP response, its signature, and faults (pure).
//! - [`provision`]: roots, models and test devices (`tessera devices playready`).
//! - [`client`]: a device simulator for tests and load tests.
//! - [`handler`]: `POST /playready/license`.
//! - [`PlayReadyProtocol`]: its registration (routes, `[playready]`, denial codes).

pub mod bcert;
pub mod challenge;
pub mod client;
pub mod handler;
pub mod header;
pub mod packaging;
pub mod provision;
pub mod response;
pub mod xmr;

mod config;

use crate::crypto::ecc::{self, EccPrivateKey};
pub use config::PlayReadyConfig;

use crate::config::SetupError;
use std::collections::HashSet;

/// The committed dev-mode root public key (`keys/dev/playready/`, testing only).
pub const DEV_ROOT_PUBLIC: &[u8] = include_bytes!("../../../keys/dev/playready/root-public.pem");
/// The committed dev-mode root private key: `tessera devices playready` issues test devices
/// under it by default. Public on purpose: dev mode protects nothing.
pub const DEV_ROOT_KEY: &[u8] = include_bytes!("../../../keys/dev/playready/root-key.pem");
/// The committed dev-mode server key (the WMRM role).
pub const DEV_SERVER_KEY: &[u8] = include_bytes!("../../../keys/dev/playready/server-key.pem");
/// The committed dev-mode response-signing key...
pub const DEV_SIGNING_KEY: &[u8] = include_bytes!("../../../keys/dev/playready/signing-key.pem");
/// ...and its chain (a SERVER certificate issued by the dev root).
pub const DEV_SIGNING_CHAIN: &[u8] =
    include_bytes!("../../../keys/dev/playready/signing-chain.bin");

/// The PlayReady-style service at run time.
#[derive(Debug)]
pub struct PlayReady {
    /// The server key: challenges are encrypted to its public key.
    pub server: EccPrivateKey,
    /// Device trust and the verified-chain cache.
    pub trust: bcert::Trust,
    /// Response signing, when configured.
    pub signer: Option<response::ResponseSigner>,
}

fn read_key(path: &std::path::Path) -> Result<EccPrivateKey, SetupError> {
    let pem = crate::config::secrets::read_secret_file(path, false)?;
    EccPrivateKey::from_pem(pem.expose().as_bytes())
        .map_err(|_| invalid(format!("{}: not a PEM P-256 private key", path.display())))
}

fn invalid(why: impl std::fmt::Display) -> SetupError {
    SetupError::invalid("playready", why)
}

impl PlayReady {
    /// Loads `[playready]`. `Ok(None)` when the protocol is not configured (no server key
    /// and no roots), except in dev mode, which uses the committed test keys.
    pub fn load(cfg: &PlayReadyConfig, dev_mode: bool) -> Result<Option<Self>, SetupError> {
        let use_dev = dev_mode && cfg.server_key_file.is_none() && cfg.roots.is_empty();
        let server = match (&cfg.server_key_file, use_dev) {
            (_, true) => EccPrivateKey::from_pem(DEV_SERVER_KEY).map_err(invalid)?,
            (Some(path), false) => read_key(path)?,
            (None, false) if cfg.roots.is_empty() => {
                if cfg.signing_key_file.is_some() || cfg.signing_chain_file.is_some() {
                    return Err(invalid(
                        "a signing key or chain is set but no server key is",
                    ));
                }
                return Ok(None);
            }
            (None, false) => return Err(invalid("roots are set but server_key_file is not")),
        };
        let mut roots = Vec::new();
        if use_dev {
            roots.push(ecc::public_from_pem(DEV_ROOT_PUBLIC).map_err(invalid)?);
        } else if cfg.roots.is_empty() {
            return Err(invalid("server_key_file is set but no roots are"));
        }
        for path in &cfg.roots {
            let pem = std::fs::read(path).map_err(|e| SetupError::read(path, e))?;
            roots.push(
                ecc::public_from_pem(&pem).map_err(|_| {
                    invalid(format!("{}: not a PEM P-256 public key", path.display()))
                })?,
            );
        }
        let signer = match (&cfg.signing_chain_file, &cfg.signing_key_file) {
            (Some(chain), Some(key)) => {
                let bytes = std::fs::read(chain).map_err(|e| SetupError::read(chain, e))?;
                Some(signer(bytes, read_key(key)?)?)
            }
            (None, None) if use_dev => {
                let key = EccPrivateKey::from_pem(DEV_SIGNING_KEY).map_err(invalid)?;
                Some(signer(DEV_SIGNING_CHAIN.to_vec(), key)?)
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "signing_chain_file and signing_key_file go together",
                ));
            }
        };
        let mut revoked_cert_ids = HashSet::new();
        for s in &cfg.revoked_certificate_ids {
            let id: [u8; 16] = crate::encoding::hex_decode(s)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "revoked_certificate_ids: {s:?} is not 32 hex digits"
                    ))
                })?;
            revoked_cert_ids.insert(id);
        }
        Ok(Some(Self {
            server,
            trust: bcert::Trust::new(
                bcert::TrustConfig {
                    roots,
                    revoked_cert_ids,
                    revoked_models: cfg.revoked_models.iter().cloned().collect(),
                },
                cfg.device_cache_capacity,
            ),
            signer,
        }))
    }
}

/// What a route of [`PlayReadyProtocol`] serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /playready/license`: licences for players.
    License,
    /// `POST /playready/packaging/{tenant}`: `AcquirePackagingData` for packagers.
    Packaging,
}

/// PlayReady-style licences and packaging, as the server registers them. Licences are off
/// (404 `protocol_not_configured`) without `[playready]` keys, except in dev mode;
/// packaging needs no PlayReady keys.
#[derive(Debug)]
pub struct PlayReadyProtocol(Option<PlayReady>);

impl crate::protocol::Protocol for PlayReadyProtocol {
    const NAME: &'static str = "playready";
    const ISSUES_LICENCES: bool = true;
    const ROUTES: &'static [crate::protocol::RouteSpec<Route>] = &[
        crate::protocol::RouteSpec {
            endpoint: "playready_license",
            listener: crate::http::router::Listener::Public,
            methods: &["POST"],
            paths: &["/playready/license", "/playready/rightsmanager.asmx"],
            route: Route::License,
        },
        crate::protocol::RouteSpec {
            endpoint: "playready_packaging",
            listener: crate::http::router::Listener::Internal,
            methods: &["POST"],
            paths: &["/playready/packaging/{tenant}"],
            route: Route::Packaging,
        },
    ];
    const DENIAL_CODES: &'static [&'static str] = &handler::DENIAL_CODES;
    const SECTION: Option<&'static str> = Some("playready");
    type Route = Route;
    type Config = PlayReadyConfig;
    type TenantConfig = ();

    fn prepare(
        cx: &crate::protocol::PrepareCx<'_>,
        section: &PlayReadyConfig,
        _: &[&()],
    ) -> Result<Self, crate::config::SetupError> {
        PlayReady::load(section, cx.config.dev_mode).map(Self)
    }

    async fn handle(
        &self,
        app: &crate::app::App,
        route: Route,
        req: http::Request<hyper::body::Incoming>,
        tenant: Option<&str>,
        ctx: &mut crate::http::Ctx,
    ) -> crate::protocol::HttpResponse {
        match route {
            Route::License => handler::handle(app, self.0.as_ref(), req, ctx).await,
            Route::Packaging => packaging::handle(app, req, tenant.unwrap_or(""), ctx).await,
        }
    }
}

/// A response signer from a chain and its key: the chain must verify as a SERVER chain
/// (every link; its top is whatever root the clients trust, so it is taken from the chain),
/// not be expired, and its SIGN_RESPONSE key must be this key's.
fn signer(chain: Vec<u8>, key: EccPrivateKey) -> Result<response::ResponseSigner, SetupError> {
    let bad = |why: String| SetupError::invalid("playready signing chain", why);
    let certs = bcert::parse_chain(&chain).map_err(|e| bad(e.to_string()))?;
    let top = certs.last().map(|c| c.issuer_key).unwrap_or([0; 64]);
    let server = bcert::verify_chain(&chain, &[top], bcert::cert_type::SERVER, Some(key.public()))
        .map_err(|e| match e {
            bcert::Error::KeyMismatch => {
                bad("its SIGN_RESPONSE key is not signing_key_file's".to_owned())
            }
            e => bad(e.to_string()),
        })?;
    if server.expires_at != bcert::NEVER && u64::from(server.expires_at) <= crate::app::now_secs() {
        return Err(bad("a certificate has expired".into()));
    }
    Ok(response::ResponseSigner {
        chain_b64: crate::encoding::b64_encode(&chain),
        signer: key.signer().map_err(|e| bad(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_mode_uses_the_committed_keys_and_production_needs_configuration() {
        let dev = PlayReady::load(&PlayReadyConfig::default(), true)
            .unwrap()
            .unwrap();
        assert!(dev.signer.is_some());
        assert_eq!(
            dev.server.public(),
            &ecc::public_from_pem(include_bytes!(
                "../../../keys/dev/playready/server-public.pem"
            ))
            .unwrap()
        );
        // The committed chain is issued by the committed root.
        let root = ecc::public_from_pem(DEV_ROOT_PUBLIC).unwrap();
        bcert::verify_chain(DEV_SIGNING_CHAIN, &[root], bcert::cert_type::SERVER, None).unwrap();
        assert!(
            PlayReady::load(&PlayReadyConfig::default(), false)
                .unwrap()
                .is_none()
        );
    }
}
