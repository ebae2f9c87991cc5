//! `[[tenants.widevine_signers]]`: who may call the Widevine-style key API
//! (`docs/configuration.md`).

use crate::config::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[[tenants.widevine_signers]]`: one signer of the Widevine-style key API. Give an AES key
/// and IV (hex) or an RSA public key (PEM), never both.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// The name the packager sends (`--signer`). Unique within the tenant.
    pub name: String,
    /// AES signing key, hex (16, 24 or 32 bytes).
    pub aes_key: Option<Secret>,
    /// File holding the AES signing key, hex (mode 0600).
    pub aes_key_file: Option<PathBuf>,
    /// AES signing IV, hex (16 bytes; not secret).
    pub aes_iv: Option<String>,
    /// PEM RSA public key of an RSA signer (`--rsa_signing_key_path` holds its private key).
    pub rsa_public_key_file: Option<PathBuf>,
}

/// The AES key and IV Shaka Packager's documentation publishes for the `widevine_test`
/// signer. Public test values: dev mode accepts them for the `demo` tenant so the usual
/// tutorial command lines work against a local Tessera; production tenants configure their
/// own signers.
pub const DEV_WIDEVINE_TEST_SIGNER: (&str, &str, &str) = (
    "widevine_test",
    "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9",
    "d58ce954203b7c9a9a9d467f59839249",
);
