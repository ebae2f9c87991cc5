//! `[packaging]`: what packagers get besides keys.

use serde::Deserialize;

/// `[packaging]`: what packagers get besides keys (docs/configuration.md).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackagingConfig {
    /// Base URL at which players reach the public listener (`https://keys.example.com`): the
    /// PlayReady licence URL in headers and the HLS AES-128 key URIs. Default
    /// `http://{public_addr}`.
    pub public_url: Option<String>,
    /// `provider` written into Widevine PSSH data.
    pub widevine_provider: String,
    /// Most crypto periods one key request may ask for.
    pub max_crypto_periods: u32,
}

impl Default for PackagingConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            widevine_provider: "tessera".into(),
            // Shaka Packager asks for 10 at a time and keeps at most 100 queued.
            max_crypto_periods: 100,
        }
    }
}
