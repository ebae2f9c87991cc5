//! Replay prevention for tokens that carry `jti` and `tessera.max_uses`.
//!
//! In-process for now, behind [`ReplayGuard`] so a shared store (PostgreSQL, with the
//! replication work) can back it when several nodes serve one tenant.

use std::collections::HashMap;
use std::sync::Mutex;

/// Why a use was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token was already used `max_uses` times.
    Exhausted,
    /// The tracker is full of unexpired tokens: fail closed.
    Full,
}

/// Counts uses of token ids.
pub trait ReplayGuard: Send + Sync + 'static {
    /// Records one use of `(tenant, jti)`, refusing the `max_uses + 1`-th. Entries are kept
    /// until `expires_at` (the token's own expiry, leeway included).
    fn record_use(
        &self,
        tenant: u32,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Refusal>;
}

/// The in-process guard: a mutex-protected map, purged of expired entries when it fills.
/// The lock covers a hash lookup only and is never held across an await (STYLE S2); only
/// tokens with `max_uses` reach it, so it is off the common hot path.
pub struct InMemoryReplayGuard {
    capacity: usize,
    seen: Mutex<HashMap<(u32, String), (u32, u64)>>,
}

impl InMemoryReplayGuard {
    /// A guard tracking at most `capacity` live token ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl ReplayGuard for InMemoryReplayGuard {
    fn record_use(
        &self,
        tenant: u32,
        jti: &str,
        max_uses: u32,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((uses, _)) = seen.get_mut(&(tenant, jti.to_owned())) {
            if *uses >= max_uses {
                return Err(Refusal::Exhausted);
            }
            *uses += 1;
            return Ok(());
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, (_, exp)| *exp >= now);
            if seen.len() >= self.capacity {
                return Err(Refusal::Full);
            }
        }
        if max_uses == 0 {
            return Err(Refusal::Exhausted);
        }
        seen.insert((tenant, jti.to_owned()), (1, expires_at));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_tenant_and_purges() {
        let g = InMemoryReplayGuard::new(2);
        assert_eq!(g.record_use(0, "a", 2, 100, 0), Ok(()));
        assert_eq!(g.record_use(0, "a", 2, 100, 0), Ok(()));
        assert_eq!(g.record_use(0, "a", 2, 100, 0), Err(Refusal::Exhausted));
        assert_eq!(
            g.record_use(1, "a", 1, 100, 0),
            Ok(()),
            "another tenant's jti is distinct"
        );
        assert_eq!(g.record_use(0, "b", 1, 100, 0), Err(Refusal::Full));
        assert_eq!(
            g.record_use(0, "b", 1, 300, 200),
            Ok(()),
            "expired entries are purged"
        );
    }
}
