//! The bounded cache of opened keys on the licence hot path.
//!
//! A licence request for a cached key touches no database and no disk. Entries are filled on
//! first use and on creation, and dropped on revocation (locally at once, on other nodes by the
//! store's change feed). The cache is keyed by a tenant *index* (assigned at startup) so a
//! lookup allocates nothing.

use super::{ContentKey, KeyId, KeyMeta};
use dashmap::DashMap;
use std::sync::Arc;

/// An opened key with its metadata.
#[derive(Debug)]
pub struct CachedKey {
    /// Metadata (state included).
    pub meta: KeyMeta,
    /// The key bytes.
    pub key: ContentKey,
}

/// Bounded concurrent map `(tenant index, kid) -> opened key`.
#[derive(Debug)]
pub struct KeyCache {
    map: DashMap<(u32, KeyId), Arc<CachedKey>>,
    capacity: usize,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    /// Looks a key up.
    pub fn get(&self, tenant: u32, kid: &KeyId) -> Option<Arc<CachedKey>> {
        self.map.get(&(tenant, *kid)).map(|e| e.value().clone())
    }

    /// Inserts a key, evicting some other entry when full. Eviction picks an arbitrary entry:
    /// cheap, and adequate because a miss costs one store read, not correctness.
    pub fn insert(&self, tenant: u32, key: Arc<CachedKey>) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            let victim = self.map.iter().next().map(|e| *e.key());
            if let Some(victim) = victim {
                self.map.remove(&victim);
            }
        }
        self.map.insert((tenant, key.meta.kid), key);
    }

    /// Drops a key (revocation, or a change seen on the feed).
    pub fn invalidate(&self, tenant: u32, kid: &KeyId) {
        self.map.remove(&(tenant, *kid));
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyState;

    fn key(b: u8) -> Arc<CachedKey> {
        Arc::new(CachedKey {
            meta: KeyMeta {
                kid: KeyId::from_bytes([b; 16]),
                content_id: "c".into(),
                track: None,
                period: None,
                created_at: 0,
                state: KeyState::Active,
            },
            key: ContentKey::from_bytes([b; 16]),
        })
    }

    #[test]
    fn bounded_and_tenant_scoped() {
        let cache = KeyCache::new(2);
        cache.insert(0, key(1));
        cache.insert(0, key(2));
        cache.insert(0, key(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(0, &KeyId::from_bytes([3; 16])).is_some());
        assert!(
            cache.get(1, &KeyId::from_bytes([3; 16])).is_none(),
            "other tenant"
        );
        cache.invalidate(0, &KeyId::from_bytes([3; 16]));
        assert!(cache.get(0, &KeyId::from_bytes([3; 16])).is_none());
    }
}
