//! `[widevine]`: device roots, revocation, the service certificate
//! (`docs/configuration.md`, "[widevine]").

use serde::Deserialize;
use std::path::PathBuf;

/// `[widevine]` (docs/configuration.md). With no roots the Widevine-style endpoint is off,
/// except in dev mode, which trusts the committed test root under `keys/dev/widevine/`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidevineConfig {
    /// PEM RSA public keys of the device-certificate roots to trust.
    pub roots: Vec<PathBuf>,
    /// The SERVICE `SignedDrmCertificate` (binary) for privacy mode.
    pub service_certificate_file: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub service_private_key_file: Option<PathBuf>,
    /// Revoked certificate serial numbers (hex), device or model.
    pub revoked_serials: Vec<String>,
    /// Revoked system ids (whole device models).
    pub revoked_system_ids: Vec<u32>,
    /// Security level of devices whose system id is not in `models`.
    pub default_security_level: crate::license::policy::SecurityLevel,
    /// Security level per system id (what a device-certificate status list would say).
    pub models: Vec<WidevineModel>,
    /// Verified device chains kept in memory.
    pub device_cache_capacity: usize,
    /// How long after issue a licence may still be renewed or released (seconds).
    pub session_max_age_secs: u64,
}

impl Default for WidevineConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            service_certificate_file: None,
            service_private_key_file: None,
            revoked_serials: Vec::new(),
            revoked_system_ids: Vec::new(),
            // An unlisted model is treated as a software CDM (Widevine L3: crypto and decode
            // in software), never as hardware it has not been shown to be.
            default_security_level: crate::license::policy::SecurityLevel::SwSecureDecode,
            models: Vec::new(),
            device_cache_capacity: 100_000,
            session_max_age_secs: 30 * 24 * 3600,
        }
    }
}

/// `[[widevine.models]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidevineModel {
    /// The system id.
    pub system_id: u32,
    /// Its security level.
    pub security_level: crate::license::policy::SecurityLevel,
}
