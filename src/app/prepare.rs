//! The one startup step that turns configuration into a runtime (STYLE C2): [`prepare`]
//! reads every file the configuration names exactly once (master key, token keys, TLS
//! certificates, each protocol's keys and certificates, secrets) and builds the objects the
//! app runs on. Nothing is created on disk and nothing is bound here: `tessera
//! check-config` runs exactly this step and discards the result, and `tessera serve` runs it
//! before opening the store, so a bad file is a configuration error (exit 64) with nothing
//! left behind.

use crate::auth::{self, Authenticator};
use crate::config::{self, Config, Secret, SetupError, secrets};
use crate::keyring::{Keyring, MasterKey};
use crate::protocol::{PrepareCx, Protocols};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Name of the dev-mode master key file inside the data directory.
pub const DEV_MASTER_KEY_FILE: &str = "dev-master.key";

/// TLS acceptors of the two listeners (plaintext where `None`).
#[derive(Clone, Default)]
pub struct Tls {
    /// `[server.public_tls]`
    pub public: Option<tokio_rustls::TlsAcceptor>,
    /// `[server.internal_tls]`
    pub internal: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("public", &self.public.is_some())
            .field("internal", &self.internal.is_some())
            .finish()
    }
}

/// Everything startup builds from configuration, before any store, file or socket is
/// touched.
#[derive(Debug)]
pub struct Prepared {
    /// The validated configuration.
    pub config: Config,
    /// Envelope encryption under the master key.
    pub keyring: Arc<Keyring>,
    /// A dev-mode master key made now: written into the data directory by
    /// `App::with_store` once everything else has been checked (`None` otherwise).
    pub(super) dev_master_key: Option<(PathBuf, Zeroizing<String>)>,
    /// Token verification, every tenant's keys loaded.
    pub auth: Authenticator,
    /// Every protocol's runtime state.
    pub protocols: Protocols,
    /// The listeners' TLS.
    pub tls: Tls,
    /// Bearer token guarding `/metrics`.
    pub metrics_token: Option<Secret>,
}

/// Validates `config` and builds the runtime from it, reading each file once.
pub fn prepare(config: Config) -> Result<Prepared, config::Error> {
    // An app is only ever built from a valid configuration, whoever constructs it.
    config.validate()?;
    let (master, dev_master_key) = master_key(&config)?;
    let keyring = Arc::new(Keyring::new(master));
    let replay = Arc::new(auth::replay::InMemoryReplayGuard::new(
        config.limits.replay_cache_capacity,
    ));
    let auth = Authenticator::from_config(&config, replay)?;
    let protocols = Protocols::prepare(&PrepareCx {
        config: &config,
        keyring: &keyring,
    })?;
    let server = &config.server;
    let tls = Tls {
        public: tls(server.public_tls.as_ref(), "server.public_tls")?,
        internal: tls(server.internal_tls.as_ref(), "server.internal_tls")?,
    };
    let metrics_token = secrets::resolve(
        "server.metrics_token",
        server.metrics_token.as_ref(),
        server.metrics_token_file.as_deref(),
        false,
    )
    .map_err(SetupError::from)?;
    if metrics_token
        .as_ref()
        .is_some_and(|t| t.expose().is_empty())
    {
        // An empty token would match a request that sends none.
        return Err(config::Error::Invalid(
            "server.metrics_token must not be empty".into(),
        ));
    }
    Ok(Prepared {
        config,
        keyring,
        dev_master_key,
        auth,
        protocols,
        tls,
        metrics_token,
    })
}

fn tls(
    cfg: Option<&config::TlsConfig>,
    what: &str,
) -> Result<Option<tokio_rustls::TlsAcceptor>, config::Error> {
    cfg.map(|t| {
        crate::http::tls_acceptor(t).map_err(|e| config::Error::Invalid(format!("{what}: {e}")))
    })
    .transpose()
}

type DevKey = Option<(PathBuf, Zeroizing<String>)>;

/// The configured master key; in dev mode without one, the key in the data directory, or a
/// new one to be written there once startup has got that far.
fn master_key(config: &Config) -> Result<(MasterKey, DevKey), config::Error> {
    let s = &config.storage;
    let parse = |text: &str| {
        MasterKey::parse(text).map_err(|e| SetupError::invalid("storage.master_key", e))
    };
    if let Some(secret) = secrets::resolve(
        "storage.master_key",
        s.master_key.as_ref(),
        s.master_key_file.as_deref(),
        false,
    )
    .map_err(SetupError::from)?
    {
        return Ok((parse(secret.expose())?, None));
    }
    if !config.dev_mode {
        return Err(config::Error::Invalid("no master key configured".into()));
    }
    // Dev mode only: a master key kept inside the data directory. Anyone who can read the
    // data directory can open every key in it: fine for trying Tessera, never for content.
    let path = s.data_dir.join(DEV_MASTER_KEY_FILE);
    if path.exists() {
        let text = secrets::read_secret_file(&path, false).map_err(SetupError::from)?;
        return Ok((parse(text.expose())?, None));
    }
    let key = MasterKey::generate().map_err(|e| SetupError::invalid("storage.master_key", e))?;
    let hex = key.to_hex();
    Ok((key, Some((path, hex))))
}
