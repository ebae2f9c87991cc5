//! The bounded cache of opened keys on the licence hot path.
//!
//! A licence request for a cached key touches no database and no disk. Entries are filled on
//! first use and on creation, and dropped on revocation (locally at once, on other nodes by the
//! store's change feed). The cache is keyed by a tenant *index* (assigned at startup) so a
//! lookup allocates nothing.

use super::{ContentKey, KeyId, KeyMeta, KeyState};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::sync::Arc;

/// An opened key with its metadata.
#[derive(Debug)]
pub struct CachedKey {
    /// Metadata (state included).
    pub meta: KeyMeta,
    /// The key bytes.
    pub key: ContentKey,
}

enum Slot {
    Key(Arc<CachedKey>),
    /// A key known to be revoked (`at`: when, or when this node learnt it). It is never
    /// replaced by an active copy: a lookup that read the key before the revocation committed
    /// and caches it afterwards would otherwise put a revoked key back into service on this
    /// node until eviction.
    Revoked {
        at: u64,
    },
}

/// Bounded concurrent map `(tenant index, kid) -> opened key`.
pub struct KeyCache {
    map: DashMap<(u32, KeyId), Slot>,
    capacity: usize,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("len", &self.map.len())
            .finish()
    }
}

impl KeyCache {
    /// A cache holding at most `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    /// Looks a key up. A revoked tombstone is a miss (the caller reads the revoked record).
    pub fn get(&self, tenant: u32, kid: &KeyId) -> Option<Arc<CachedKey>> {
        match self.map.get(&(tenant, *kid)).as_deref() {
            Some(Slot::Key(k)) => Some(k.clone()),
            _ => None,
        }
    }

    /// Inserts a key, evicting some other entry when full. Eviction picks an arbitrary entry:
    /// cheap, and adequate because a miss costs one store read, not correctness. An active
    /// copy never replaces a revoked entry (check and insert are atomic on the shard): then
    /// this returns `Some(revoked at)`, and the caller must treat the key as revoked, whatever
    /// the store (a replica behind the change feed) said.
    #[must_use = "Some means the key is known to be revoked"]
    pub fn insert(&self, tenant: u32, key: Arc<CachedKey>) -> Option<u64> {
        if self.capacity == 0 {
            return None;
        }
        if self.map.len() >= self.capacity {
            let victim = self.map.iter().next().map(|e| *e.key());
            if let Some(victim) = victim {
                self.map.remove(&victim);
            }
        }
        let active = key.meta.is_active();
        match self.map.entry((tenant, key.meta.kid)) {
            Entry::Occupied(mut e) => {
                let revoked = match e.get() {
                    Slot::Revoked { at } => Some(*at),
                    Slot::Key(k) => match k.meta.state {
                        KeyState::Revoked { at } => Some(at),
                        KeyState::Active => None,
                    },
                };
                if active && revoked.is_some() {
                    return revoked;
                }
                e.insert(Slot::Key(key));
            }
            Entry::Vacant(e) => {
                e.insert(Slot::Key(key));
            }
        }
        None
    }

    /// Marks a key revoked at `at` (local revocation, or a revocation seen on the change feed:
    /// then when it was seen).
    pub fn revoke(&self, tenant: u32, kid: &KeyId, at: u64) {
        if self.capacity > 0 {
            self.map.insert((tenant, *kid), Slot::Revoked { at });
        }
    }

    /// Drops every opened key and keeps the revocation marks: for a node that may have
    /// missed revocations (the change feed was pruned past its cursor).
    pub fn drop_active(&self) {
        self.map.retain(|_, slot| match slot {
            Slot::Revoked { .. } => true,
            Slot::Key(k) => !k.meta.is_active(),
        });
    }

    /// Drops an entry (tests and administrative eviction).
    pub fn invalidate(&self, tenant: u32, kid: &KeyId) {
        self.map.remove(&(tenant, *kid));
    }

    /// Number of entries.
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
        key_in(b, KeyState::Active)
    }

    fn key_in(b: u8, state: KeyState) -> Arc<CachedKey> {
        Arc::new(CachedKey {
            meta: KeyMeta {
                kid: KeyId::from_bytes([b; 16]),
                content_id: "c".into(),
                track: None,
                period: None,
                created_at: 0,
                state,
            },
            key: ContentKey::from_bytes([b; 16]),
        })
    }

    #[test]
    fn bounded_and_tenant_scoped() {
        let cache = KeyCache::new(2);
        assert!(cache.insert(0, key(1)).is_none());
        assert!(cache.insert(0, key(2)).is_none());
        assert!(cache.insert(0, key(3)).is_none());
        assert_eq!(cache.len(), 2);
        assert!(cache.get(0, &KeyId::from_bytes([3; 16])).is_some());
        assert!(
            cache.get(1, &KeyId::from_bytes([3; 16])).is_none(),
            "other tenant"
        );
        cache.invalidate(0, &KeyId::from_bytes([3; 16]));
        assert!(cache.get(0, &KeyId::from_bytes([3; 16])).is_none());
    }

    // See: review finding "revoked key re-cached by a racing lookup".
    #[test]
    fn an_active_copy_never_replaces_a_revocation() {
        let cache = KeyCache::new(8);
        let kid = KeyId::from_bytes([1; 16]);
        assert!(cache.insert(0, key(1)).is_none());
        cache.revoke(0, &kid, 4);
        assert!(cache.get(0, &kid).is_none(), "tombstone reads as a miss");
        // A lookup that read the key before the revocation committed tries to cache it now.
        assert_eq!(cache.insert(0, key(1)), Some(4));
        assert!(cache.get(0, &kid).is_none());
        // The revoked record itself may be cached, and is still not replaced afterwards.
        assert!(
            cache
                .insert(0, key_in(1, KeyState::Revoked { at: 5 }))
                .is_none()
        );
        assert!(!cache.get(0, &kid).unwrap().meta.is_active());
        assert_eq!(cache.insert(0, key(1)), Some(5));
        assert!(!cache.get(0, &kid).unwrap().meta.is_active());
    }

    #[test]
    fn drop_active_keeps_what_is_known_revoked() {
        let cache = KeyCache::new(8);
        assert!(cache.insert(0, key(1)).is_none());
        assert!(
            cache
                .insert(0, key_in(2, KeyState::Revoked { at: 5 }))
                .is_none()
        );
        assert!(cache.insert(0, key(3)).is_none());
        cache.revoke(0, &KeyId::from_bytes([3; 16]), 6);
        cache.drop_active();
        assert_eq!(cache.len(), 2);
        assert!(cache.get(0, &KeyId::from_bytes([1; 16])).is_none());
        assert!(
            !cache
                .get(0, &KeyId::from_bytes([2; 16]))
                .unwrap()
                .meta
                .is_active()
        );
        // The tombstone still refuses an active copy read before the revocation.
        assert_eq!(cache.insert(0, key(3)), Some(6));
        assert!(cache.get(0, &KeyId::from_bytes([3; 16])).is_none());
    }
}
