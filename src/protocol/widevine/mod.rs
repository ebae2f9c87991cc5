//! Widevine-style licences (drm-interop.md §1; docs/protocols.md "Widevine-style"): the
//! public message formats and cryptography, with the operator's own device roots and
//! service certificate. No vendor key or certificate is shipped or needed.
//!
//! - [`message`]: request codec (pure).
//! - [`device`]: device-certificate chain verification and its cache.
//! - [`license`]: key derivation and licence construction (pure).
//! - [`policy`]: the neutral policy mapped onto licence policy and key requirements (pure).
//! - [`service`]: the service certificate and privacy mode.
//! - [`provision`]: roots, service certificates and test devices (`tessera devices widevine`).
//! - [`handler`]: `POST /widevine/license`.
//! - [`WidevineProtocol`]: its registration (route, `[widevine]`, denial codes).

pub mod device;
pub mod handler;
pub mod license;
pub mod message;
pub mod pb;
pub mod policy;
pub mod provision;
pub mod service;

mod config;

pub use config::{WidevineConfig, WidevineModel};

use crate::config::SetupError;
use crate::crypto::SealingKey;
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::keyring::KeyId;
use crate::protocol::wire::Reader;
use zeroize::Zeroizing;

/// The committed dev-mode root public key (`keys/dev/widevine/`, testing only).
pub const DEV_ROOT_PUBLIC: &[u8] = include_bytes!("../../../keys/dev/widevine/root-public.pem");
/// The committed dev-mode service certificate.
pub const DEV_SERVICE_CERT: &[u8] = include_bytes!("../../../keys/dev/widevine/service-cert.bin");
/// The committed dev-mode service private key. Public on purpose: dev mode protects nothing.
pub const DEV_SERVICE_KEY: &[u8] = include_bytes!("../../../keys/dev/widevine/service-key.pem");

/// The Widevine-style configuration, loaded and checked.
#[derive(Debug)]
pub struct Setup {
    /// Device trust (roots, revocation, levels) and the verified-chain cache.
    pub trust: device::Trust,
    /// The service certificate, when privacy mode is configured.
    pub service: Option<service::ServiceIdentity>,
}

impl Setup {
    /// Loads roots and the service identity. `Ok(None)` when the protocol is not configured.
    pub fn load(cfg: &WidevineConfig, dev_mode: bool) -> Result<Option<Self>, SetupError> {
        let bad = |why: &dyn std::fmt::Display| SetupError::invalid("widevine", why);
        let use_dev = dev_mode && cfg.roots.is_empty();
        if cfg.roots.is_empty() && !use_dev {
            if cfg.service_certificate_file.is_some() || cfg.service_private_key_file.is_some() {
                return Err(bad(&"a service certificate or key is set but no roots are"));
            }
            return Ok(None);
        }
        let mut roots = Vec::new();
        if use_dev {
            roots.push(RsaPublicKey::from_pem(DEV_ROOT_PUBLIC).map_err(|e| bad(&e))?);
        }
        for path in &cfg.roots {
            let pem = std::fs::read(path).map_err(|e| SetupError::read(path, e))?;
            roots.push(RsaPublicKey::from_pem(&pem).map_err(|_| {
                bad(&format!(
                    "{}: not a PEM RSA public key of {}..{} bits",
                    path.display(),
                    crate::crypto::rsa::MIN_BITS,
                    crate::crypto::rsa::MAX_BITS
                ))
            })?);
        }
        let service = match (&cfg.service_certificate_file, &cfg.service_private_key_file) {
            (Some(cert), Some(key)) => {
                let cert_bytes = std::fs::read(cert).map_err(|e| SetupError::read(cert, e))?;
                let pem = crate::config::secrets::read_secret_file(key, false)?;
                let key = RsaPrivateKey::from_pem(pem.expose().as_bytes())
                    .map_err(|_| bad(&format!("{}: not an RSA private key", key.display())))?;
                Some(service::ServiceIdentity::new(cert_bytes, key).map_err(|e| bad(&e))?)
            }
            (None, None) if use_dev => Some(
                service::ServiceIdentity::new(
                    DEV_SERVICE_CERT.to_vec(),
                    RsaPrivateKey::from_pem(DEV_SERVICE_KEY).map_err(|e| bad(&e))?,
                )
                .map_err(|e| bad(&e))?,
            ),
            (None, None) => None,
            _ => {
                return Err(bad(
                    &"service_certificate_file and service_private_key_file go together",
                ));
            }
        };
        let mut revoked_serials = std::collections::HashSet::new();
        for s in &cfg.revoked_serials {
            revoked_serials.insert(
                crate::encoding::hex_decode(s)
                    .ok_or_else(|| bad(&format!("revoked_serials: {s:?} is not hex")))?,
            );
        }
        let trust = device::Trust::new(
            device::TrustConfig {
                roots,
                revoked_serials,
                revoked_system_ids: cfg.revoked_system_ids.iter().copied().collect(),
                levels: cfg
                    .models
                    .iter()
                    .map(|m| (m.system_id, m.security_level))
                    .collect(),
                default_level: cfg.default_security_level,
            },
            cfg.device_cache_capacity.max(1),
        );
        Ok(Some(Self { trust, service }))
    }
}

/// The Widevine-style service at run time.
#[derive(Debug)]
pub struct Widevine {
    /// Configuration.
    pub setup: Setup,
    /// Root of the keys sealing the session state carried in `License.id.session_id`: an
    /// HMAC-SHA256 key (pads precomputed) whose output over a blob's salt is that blob's key.
    sessions: crate::crypto::HmacKey,
    /// `[widevine] session_max_age_secs`.
    pub session_max_age_secs: u64,
}

/// What a licence's `session_id` carries, sealed, so renewals and releases need no server
/// state: the client MAC key (to verify their HMAC), the server MAC key (to sign the answer),
/// what was licensed, and the device facts its renewal must re-check (revocation, expiry,
/// security level, HDCP).
pub struct SessionState {
    /// Tenant index (the tenant's id is also bound as associated data).
    pub tenant: u32,
    /// Whether the licence was OFFLINE.
    pub offline: bool,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
    /// Client MAC key.
    pub mac_client: Zeroizing<[u8; 32]>,
    /// Server MAC key.
    pub mac_server: Zeroizing<[u8; 32]>,
    /// The device's system id.
    pub system_id: u32,
    /// Serial numbers of the device's chain.
    pub serials: Vec<Vec<u8>>,
    /// The chain's earliest expiry, 0 for none.
    pub expires_at: u64,
    /// The HDCP version the client reported (wire value).
    pub max_hdcp: i32,
    /// The KIDs released.
    pub kids: Vec<KeyId>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("tenant", &self.tenant)
            .field("system_id", &self.system_id)
            .field("kids", &self.kids.len())
            .finish_non_exhaustive()
    }
}

const SESSION_V1: u8 = 1;
const SESSION_AAD: &[u8] = b"tessera/widevine/session/v1/";
const SALT_LEN: usize = 16;

impl Widevine {
    /// Builds the service over `setup`, with the session key root derived from the keyring.
    pub fn new(setup: Setup, keyring: &crate::keyring::Keyring, session_max_age_secs: u64) -> Self {
        Self {
            setup,
            sessions: crate::crypto::HmacKey::new(
                crate::crypto::HmacAlg::Sha256,
                &keyring.purpose_secret("widevine/session")[..],
            ),
            session_max_age_secs,
        }
    }

    /// The sealing key of one blob: HMAC-SHA256 (a PRF) of the root over a label and the
    /// blob's random salt. Every blob has its own key, so the random-nonce limit of AES-GCM
    /// (2^32 messages per key) never applies however many licences a fleet issues under one
    /// master key, and the single-use key needs no nonce.
    fn blob_key(&self, salt: &[u8]) -> SealingKey {
        let mut input = [0u8; 20 + SALT_LEN];
        input[..20].copy_from_slice(b"widevine/session/v1\0");
        input[20..20 + salt.len().min(SALT_LEN)].copy_from_slice(&salt[..salt.len().min(SALT_LEN)]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&self.sessions.sign(&input));
        SealingKey::new(&key)
    }

    fn aad(tenant_id: &str) -> Vec<u8> {
        [SESSION_AAD, tenant_id.as_bytes()].concat()
    }

    /// Seals session state into an opaque `session_id`, bound to the tenant's id.
    pub fn seal_session(
        &self,
        tenant_id: &str,
        s: &SessionState,
    ) -> Result<Vec<u8>, crate::crypto::Error> {
        let mut p = Zeroizing::new(Vec::with_capacity(128 + 16 * s.kids.len()));
        p.push(SESSION_V1);
        p.extend_from_slice(&s.tenant.to_be_bytes());
        p.push(u8::from(s.offline));
        p.extend_from_slice(&s.issued_at.to_be_bytes());
        p.extend_from_slice(&s.mac_client[..]);
        p.extend_from_slice(&s.mac_server[..]);
        p.extend_from_slice(&s.system_id.to_be_bytes());
        p.extend_from_slice(&s.expires_at.to_be_bytes());
        p.extend_from_slice(&s.max_hdcp.to_be_bytes());
        p.push(s.serials.len().min(255) as u8);
        for serial in s.serials.iter().take(255) {
            let serial = &serial[..serial.len().min(255)];
            p.push(serial.len() as u8);
            p.extend_from_slice(serial);
        }
        for k in &s.kids {
            p.extend_from_slice(k.as_bytes());
        }
        // The salt must not repeat, not be secret: OpenSSL's DRBG, no system call.
        let mut salt = [0u8; SALT_LEN];
        crate::crypto::fill_random_fast(&mut salt)?;
        let sealed = self
            .blob_key(&salt)
            .seal_single_use(&Self::aad(tenant_id), &p)?;
        Ok([&salt[..], &sealed].concat())
    }

    /// Opens a `session_id` made by [`Widevine::seal_session`] for `tenant_id`; `None` if it
    /// is not ours, not this tenant's, or malformed.
    pub fn open_session(&self, tenant_id: &str, blob: &[u8]) -> Option<SessionState> {
        if blob.len() < SALT_LEN {
            return None;
        }
        let (salt, sealed) = blob.split_at(SALT_LEN);
        let plain = self
            .blob_key(salt)
            .open(&Self::aad(tenant_id), sealed)
            .ok()?;
        let mut r = Reader::new(&plain[..]);
        if r.u8().ok()? != SESSION_V1 {
            return None;
        }
        let tenant = r.u32().ok()?;
        let offline = r.u8().ok()? == 1;
        let issued_at = r.u64().ok()?;
        let mac_client = Zeroizing::new(r.array::<32>().ok()?);
        let mac_server = Zeroizing::new(r.array::<32>().ok()?);
        let system_id = r.u32().ok()?;
        let expires_at = r.u64().ok()?;
        let max_hdcp = i32::from_be_bytes(r.array().ok()?);
        let n = r.u8().ok()?;
        let mut serials = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = r.u8().ok()? as usize;
            serials.push(r.take(len).ok()?.to_vec());
        }
        // The rest is the KIDs, 16 bytes each.
        let kids = r.rest();
        if !kids.len().is_multiple_of(16) {
            return None;
        }
        let kids = kids
            .chunks_exact(16)
            .filter_map(|c| c.try_into().ok().map(KeyId::from_bytes))
            .collect();
        Some(SessionState {
            tenant,
            offline,
            issued_at,
            mac_client,
            mac_server,
            system_id,
            serials,
            expires_at,
            max_hdcp,
            kids,
        })
    }
}

/// `POST /widevine/license`, as the server registers it. Off (404
/// `protocol_not_configured`) without `[widevine] roots`, except in dev mode.
#[derive(Debug)]
pub struct WidevineProtocol(Option<Widevine>);

impl WidevineProtocol {
    /// The service, when configured.
    pub fn service(&self) -> Option<&Widevine> {
        self.0.as_ref()
    }
}

impl crate::protocol::Protocol for WidevineProtocol {
    const NAME: &'static str = "widevine";
    const ISSUES_LICENCES: bool = true;
    const ROUTES: &'static [crate::protocol::RouteSpec<()>] = &[crate::protocol::RouteSpec {
        endpoint: "widevine_license",
        listener: crate::http::router::Listener::Public,
        methods: &["POST"],
        paths: &["/widevine/license"],
        route: (),
    }];
    const DENIAL_CODES: &'static [&'static str] = &handler::DENIAL_CODES;
    const SECTION: Option<&'static str> = Some("widevine");
    type Route = ();
    type Config = WidevineConfig;
    type TenantConfig = ();

    fn prepare(
        cx: &crate::protocol::PrepareCx<'_>,
        section: &WidevineConfig,
        _: &[&()],
    ) -> Result<Self, SetupError> {
        Ok(Self(Setup::load(section, cx.config.dev_mode)?.map(
            |setup| Widevine::new(setup, cx.keyring, section.session_max_age_secs),
        )))
    }

    fn handle(
        &self,
        app: &crate::app::App,
        _: (),
        req: http::Request<hyper::body::Incoming>,
        _: Option<&str>,
        ctx: &mut crate::http::Ctx,
    ) -> impl std::future::Future<Output = crate::protocol::HttpResponse> + Send {
        handler::handle(app, self.service(), req, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_state_round_trips_and_is_bound_to_the_master_key() {
        let setup = || {
            Setup::load(&WidevineConfig::default(), true)
                .unwrap()
                .unwrap()
        };
        let ring = crate::keyring::Keyring::new(crate::keyring::MasterKey::from_bytes([1; 32]));
        let wv = Widevine::new(setup(), &ring, 60);
        let state = SessionState {
            tenant: 3,
            offline: true,
            issued_at: 99,
            mac_client: Zeroizing::new([7; 32]),
            mac_server: Zeroizing::new([8; 32]),
            system_id: 4660,
            serials: vec![vec![1; 16], vec![2; 16]],
            expires_at: 1234,
            max_hdcp: 4,
            kids: vec![KeyId::from_bytes([1; 16]), KeyId::from_bytes([2; 16])],
        };
        let sealed = wv.seal_session("acme", &state).unwrap();
        let back = wv.open_session("acme", &sealed).unwrap();
        assert_eq!((back.tenant, back.offline, back.issued_at), (3, true, 99));
        assert_eq!((*back.mac_client, *back.mac_server), ([7; 32], [8; 32]));
        assert_eq!(
            (back.system_id, back.expires_at, back.max_hdcp),
            (4660, 1234, 4)
        );
        assert_eq!(back.serials, state.serials);
        assert_eq!(back.kids, state.kids);
        assert_ne!(
            sealed,
            wv.seal_session("acme", &state).unwrap(),
            "a fresh salt per blob"
        );
        assert!(
            wv.open_session("globex", &sealed).is_none(),
            "bound to the tenant id"
        );
        let other = crate::keyring::Keyring::new(crate::keyring::MasterKey::from_bytes([2; 32]));
        assert!(
            Widevine::new(setup(), &other, 60)
                .open_session("acme", &sealed)
                .is_none()
        );
        assert!(
            wv.open_session("acme", &sealed[..sealed.len() - 1])
                .is_none()
        );
        assert!(wv.open_session("acme", b"").is_none());
    }

    #[test]
    fn configuration_errors_are_reported() {
        assert!(
            Setup::load(&WidevineConfig::default(), false)
                .unwrap()
                .is_none()
        );
        let cfg = WidevineConfig {
            roots: vec!["/nonexistent/root.pem".into()],
            ..Default::default()
        };
        assert!(
            Setup::load(&cfg, false)
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/root.pem")
        );
        let cfg = WidevineConfig {
            revoked_serials: vec!["xyz".into()],
            ..Default::default()
        };
        assert!(
            Setup::load(&cfg, true)
                .unwrap_err()
                .to_string()
                .contains("not hex")
        );
        let cfg = WidevineConfig {
            service_certificate_file: Some("/x".into()),
            ..Default::default()
        };
        assert!(
            Setup::load(&cfg, true)
                .unwrap_err()
                .to_string()
                .contains("go together")
        );
    }
}
