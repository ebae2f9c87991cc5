//! The Widevine-style common-encryption key API on the internal listener
//! (`POST /widevine/cenc/getcontentkey/{tenant}`), as Shaka Packager's
//! `--enable_widevine_encryption` key source speaks it (`docs/protocols.md`,
//! "Widevine-style key API"). Requests are authorised by their signer, configured per
//! tenant; keys come from the same store every licence endpoint reads.

pub mod handler;
pub mod message;
pub mod signer;

pub mod config;

use crate::app::App;
use crate::config::{SetupError, secrets};
use crate::http::Ctx;
use crate::http::router::Listener;
use crate::protocol::{HttpResponse, PrepareCx, Protocol, RouteSpec};
use config::SignerConfig;
use signer::Signer;
use std::collections::HashMap;
use std::sync::Arc;

/// The request signers of every tenant, by (tenant index, signer name).
#[derive(Debug, Default)]
pub struct Signers(HashMap<(u32, String), Arc<Signer>>);

impl Signers {
    /// Loads `[[tenants.widevine_signers]]` (reads key files; no network). `tenants` is
    /// positional: (tenant id, its signers).
    pub fn load(tenants: &[(&str, &[SignerConfig])]) -> Result<Self, SetupError> {
        let mut map = HashMap::new();
        for (idx, (tenant, signers)) in tenants.iter().enumerate() {
            for s in *signers {
                let what = format!("tenant {tenant:?} widevine_signers {:?}", s.name);
                if s.name.is_empty() || s.name.len() > 128 {
                    return Err(SetupError::invalid(what, "name must be 1..=128 bytes"));
                }
                let aes = secrets::resolve(
                    &format!("{what} aes_key"),
                    s.aes_key.as_ref(),
                    s.aes_key_file.as_deref(),
                    false,
                )?;
                let signer = match (aes, &s.aes_iv, &s.rsa_public_key_file) {
                    (Some(key), Some(iv), None) => Signer::aes_from_hex(key.expose(), iv)
                        .map_err(|e| SetupError::invalid(&what, e))?,
                    (None, None, Some(path)) => {
                        let pem = std::fs::read(path).map_err(|e| SetupError::read(path, e))?;
                        Signer::Rsa(crate::crypto::rsa::RsaPublicKey::from_pem(&pem).map_err(
                            |_| {
                                SetupError::invalid(
                                    &what,
                                    format!(
                                        "{} is not an RSA-2048..4096 public key",
                                        path.display()
                                    ),
                                )
                            },
                        )?)
                    }
                    _ => {
                        return Err(SetupError::invalid(
                            what,
                            "give aes_key (or aes_key_file) with aes_iv, or rsa_public_key_file",
                        ));
                    }
                };
                if map
                    .insert((idx as u32, s.name.clone()), Arc::new(signer))
                    .is_some()
                {
                    return Err(SetupError::invalid(what, "defined twice"));
                }
            }
        }
        Ok(Self(map))
    }

    /// The signer `name` of tenant `tenant`.
    pub fn get(&self, tenant: u32, name: &str) -> Option<&Arc<Signer>> {
        self.0.get(&(tenant, name.to_owned()))
    }
}

/// `POST /widevine/cenc/getcontentkey/{tenant}`, as the server registers it, with the
/// signers of `[[tenants.widevine_signers]]`.
#[derive(Debug)]
pub struct WidevineKeysProtocol(Signers);

impl Protocol for WidevineKeysProtocol {
    const NAME: &'static str = "widevine_keyapi";
    const ISSUES_LICENCES: bool = false;
    const ROUTES: &'static [RouteSpec<()>] = &[RouteSpec {
        endpoint: "widevine_keys",
        listener: Listener::Internal,
        methods: &["POST"],
        paths: &["/widevine/cenc/getcontentkey/{tenant}"],
        route: (),
    }];
    const TENANT_SECTION: Option<&'static str> = Some("widevine_signers");
    type Route = ();
    type Config = ();
    type TenantConfig = Vec<SignerConfig>;

    fn prepare(
        cx: &PrepareCx<'_>,
        _: &(),
        tenants: &[&Vec<SignerConfig>],
    ) -> Result<Self, SetupError> {
        let named: Vec<(&str, &[SignerConfig])> = cx
            .config
            .tenants
            .iter()
            .zip(tenants)
            .map(|(t, s)| (t.id.as_str(), s.as_slice()))
            .collect();
        Signers::load(&named).map(Self)
    }

    fn handle(
        &self,
        app: &App,
        _: (),
        req: http::Request<hyper::body::Incoming>,
        tenant: Option<&str>,
        ctx: &mut Ctx,
    ) -> impl Future<Output = HttpResponse> + Send {
        handler::handle(app, &self.0, req, tenant.unwrap_or(""), ctx)
    }
}
