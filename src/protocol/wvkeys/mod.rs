//! The Widevine-style common-encryption key API on the internal listener
//! (`POST /widevine/cenc/getcontentkey/{tenant}`), as Shaka Packager's
//! `--enable_widevine_encryption` key source speaks it (`docs/protocols.md`,
//! "Widevine-style key API"). Requests are authorised by their signer, configured per
//! tenant; keys come from the same store every licence endpoint reads.

pub mod handler;
pub mod message;
pub mod signer;

use crate::config::{Config, secrets};
use signer::Signer;
use std::collections::HashMap;
use std::sync::Arc;

/// Every tenant's signers, by (tenant index, signer name).
#[derive(Debug, Default)]
pub struct Signers(HashMap<(u32, String), Arc<Signer>>);

impl Signers {
    /// Loads `[[tenants.widevine_signers]]` (reads key files; no network).
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (idx, t) in config.tenants.iter().enumerate() {
            for s in &t.widevine_signers {
                let what = format!("tenant {:?} widevine_signers {:?}", t.id, s.name);
                if s.name.is_empty() || s.name.len() > 128 {
                    return Err(format!("{what}: name must be 1..=128 bytes"));
                }
                let aes = secrets::resolve(
                    &format!("{what} aes_key"),
                    s.aes_key.as_ref(),
                    s.aes_key_file.as_deref(),
                    false,
                )?;
                let signer = match (aes, &s.aes_iv, &s.rsa_public_key_file) {
                    (Some(key), Some(iv), None) => Signer::aes_from_hex(key.expose(), iv)
                        .map_err(|e| format!("{what}: {e}"))?,
                    (None, None, Some(path)) => {
                        let pem = std::fs::read(path)
                            .map_err(|e| format!("{what}: {}: {e}", path.display()))?;
                        Signer::Rsa(crate::crypto::rsa::RsaPublicKey::from_pem(&pem).map_err(
                            |_| {
                                format!(
                                    "{what}: {} is not an RSA-2048..4096 public key",
                                    path.display()
                                )
                            },
                        )?)
                    }
                    _ => {
                        return Err(format!(
                            "{what}: give aes_key (or aes_key_file) with aes_iv, or rsa_public_key_file"
                        ));
                    }
                };
                if map
                    .insert((idx as u32, s.name.clone()), Arc::new(signer))
                    .is_some()
                {
                    return Err(format!("{what}: defined twice"));
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
