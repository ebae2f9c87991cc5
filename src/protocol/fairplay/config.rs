//! `[[tenants.fairplay_credentials]]`: FPS credential sets (`docs/configuration.md`,
//! `docs/fairplay.md` §9).

use crate::config::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[[tenants.fairplay_credentials]]`: one FPS credential set. The SPC's certificate hash
/// selects it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairPlayCredentialConfig {
    /// The FPS certificate (X.509, DER or PEM) players fetch from `/fairplay/certificate`.
    pub certificate_file: PathBuf,
    /// Its RSA private key (PEM, mode 0600).
    pub private_key_file: PathBuf,
    /// The D function: `tessera-d-v1` (Tessera's own), or `d-dylib` (a licensee's shared
    /// library; needs the `fairplay-licensee-ffi` build).
    pub provider: String,
    /// The shared library of a `d-dylib` provider.
    pub dylib: Option<PathBuf>,
    /// ASk, hex (16 bytes).
    pub ask: Option<Secret>,
    /// File holding the ASk, hex (mode 0600).
    pub ask_file: Option<PathBuf>,
    /// Accept v3 SPCs with the Tessera v3-T constants.
    pub v3: bool,
}
