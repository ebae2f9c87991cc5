//! The verified device-chain cache shared by the Widevine- and PlayReady-style device trust.
//!
//! A verified chain is immutable input, so it is cached by the SHA-256 of its exact bytes:
//! the steady state pays a hash and a map lookup instead of the chain's signature checks.
//! A chain enters the cache only through [`ChainCache::remember`], which callers invoke once
//! the device has proved possession of the chain's key, so copying a device's certificate
//! (and padding it to make new cache keys) cannot evict real devices. Expiry and revocation
//! stay the caller's, on every request, cached or not.

use crate::crypto::sha256;
use dashmap::DashMap;
use std::sync::Arc;

/// A chain that verified, and whether it came from the cache.
#[derive(Debug)]
pub struct Verified<T> {
    /// The verified device.
    pub device: Arc<T>,
    digest: [u8; 32],
    cached: bool,
}

/// Verified chains by the SHA-256 of their bytes, bounded.
#[derive(Debug)]
pub struct ChainCache<T> {
    map: DashMap<[u8; 32], Arc<T>>,
    capacity: usize,
}

impl<T> ChainCache<T> {
    /// A cache of at most `capacity` chains (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The cached device for these exact bytes, or `verify()`'s (not cached yet).
    pub fn get_or_verify<E>(
        &self,
        bytes: &[u8],
        verify: impl FnOnce() -> Result<T, E>,
    ) -> Result<Verified<T>, E> {
        let digest = sha256(bytes);
        if let Some(device) = self.map.get(&digest).map(|d| d.clone()) {
            return Ok(Verified {
                device,
                digest,
                cached: true,
            });
        }
        Ok(Verified {
            device: Arc::new(verify()?),
            digest,
            cached: false,
        })
    }

    /// Caches a verified chain; call once the device has proved possession of its key.
    pub fn remember(&self, v: &Verified<T>) {
        if v.cached {
            return;
        }
        if self.map.len() >= self.capacity {
            // Evict one entry (whichever the map yields first): bounded, no LRU bookkeeping
            // on the hot path, and no wholesale flush a client could trigger.
            let victim = self.map.iter().next().map(|e| *e.key());
            if let Some(k) = victim {
                self.map.remove(&k);
            }
        }
        self.map.insert(v.digest, v.device.clone());
    }

    /// Chains cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<T> Verified<T> {
    /// Whether the chain came from the cache.
    pub fn cached(&self) -> bool {
        self.cached
    }
}
