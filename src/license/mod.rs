//! The protocol-neutral licence core: an [`Entitlement`] plus the KIDs a client asked for
//! becomes a [`Grant`] (the keys to release, and the policy to release them under).
//!
//! Every licence protocol (ClearKey and HLS now; Widevine-, PlayReady- and FairPlay-style
//! later) calls [`decide`] and only encodes its result, so the rules live in one place:
//! tenant isolation, entitlement by KID or content id, revocation, allowed tracks, and the
//! client's security level.

pub mod policy;

use crate::keyring::{CachedKey, KeyId};
use policy::{Policy, SecurityLevel};
use std::sync::Arc;

/// What a verified entitlement token allows.
#[derive(Clone, Debug)]
pub struct Entitlement {
    /// Index of the tenant that signed the token (decided by the verified `iss`).
    pub tenant: u32,
    /// KIDs the viewer may unlock.
    pub kids: Vec<KeyId>,
    /// Content ids whose keys the viewer may unlock.
    pub content_ids: Vec<String>,
    /// The policy resolved from the token (named or inline).
    pub policy: Arc<Policy>,
    /// `sub`, for the audit trail.
    pub subject: Option<String>,
    /// `jti`, for the audit trail.
    pub token_id: Option<String>,
    /// Token expiry (Unix seconds).
    pub expires_at: u64,
    /// `tessera.max_uses`: counted when keys are released (`Authenticator::consume`).
    pub max_uses: Option<u32>,
}

impl Entitlement {
    /// Whether this entitlement covers a key, by KID or by content id.
    pub fn covers(&self, key: &CachedKey) -> bool {
        self.kids.contains(&key.meta.kid) || self.content_ids.contains(&key.meta.content_id)
    }
}

/// Why a requested key was left out of a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Omission {
    /// Unknown KID (in this tenant: other tenants' keys are never visible).
    NotFound,
    /// The token does not entitle the viewer to it.
    NotEntitled,
    /// Revoked.
    Revoked,
    /// The policy does not release this track type.
    TrackNotAllowed,
    /// The client's security level is below the policy's requirement for the track.
    SecurityLevel,
    /// The client cannot enforce the output protection (HDCP) the policy requires.
    OutputProtection,
}

impl Omission {
    /// Machine-readable code used in problem bodies and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Omission::NotFound => "key_not_found",
            Omission::NotEntitled => "not_entitled",
            Omission::Revoked => "key_revoked",
            Omission::TrackNotAllowed => "track_not_allowed",
            Omission::SecurityLevel => "security_level_too_low",
            Omission::OutputProtection => "output_protection_unsupported",
        }
    }
}

/// The outcome of [`decide`].
#[derive(Debug)]
pub struct Grant {
    /// Keys to release, in request order.
    pub keys: Vec<Arc<CachedKey>>,
    /// Requested keys left out, with the reason.
    pub omitted: Vec<(KeyId, Omission)>,
}

/// Applies the rules to keys already looked up (in the entitlement's tenant only: `found`
/// pairs each requested KID with that tenant's key, or `None`).
pub fn decide(
    ent: &Entitlement,
    found: Vec<(KeyId, Option<Arc<CachedKey>>)>,
    client_level: SecurityLevel,
) -> Grant {
    let mut grant = Grant {
        keys: Vec::with_capacity(found.len()),
        omitted: Vec::new(),
    };
    for (kid, key) in found {
        // Order matters for what a refused viewer learns: "not entitled" is reported before
        // "revoked" so a token cannot probe the state of keys it has no right to.
        let verdict = match &key {
            None => Err(Omission::NotFound),
            Some(k) if !ent.covers(k) => Err(Omission::NotEntitled),
            Some(k) if !k.meta.is_active() => Err(Omission::Revoked),
            Some(k) if !ent.policy.can_play || !ent.policy.allows_track(k.meta.track) => {
                Err(Omission::TrackNotAllowed)
            }
            Some(k) if ent.policy.required_level(k.meta.track) > client_level => {
                Err(Omission::SecurityLevel)
            }
            Some(_) => Ok(()),
        };
        match (verdict, key) {
            (Ok(()), Some(k)) => grant.keys.push(k),
            (Err(why), _) => grant.omitted.push((kid, why)),
            (Ok(()), None) => grant.omitted.push((kid, Omission::NotFound)),
        }
    }
    grant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{ContentKey, KeyMeta, KeyState, TrackType};
    use std::collections::BTreeMap;

    fn key(
        b: u8,
        content: &str,
        track: TrackType,
        state: KeyState,
    ) -> (KeyId, Option<Arc<CachedKey>>) {
        let kid = KeyId::from_bytes([b; 16]);
        let meta = KeyMeta {
            kid,
            content_id: content.into(),
            track: Some(track),
            period: None,
            created_at: 0,
            state,
        };
        (
            kid,
            Some(Arc::new(CachedKey {
                meta,
                key: ContentKey::from_bytes([b; 16]),
            })),
        )
    }

    #[test]
    fn rules_in_order() {
        let mut policy = Policy {
            allowed_tracks: vec![TrackType::Sd, TrackType::Hd, TrackType::Uhd1],
            ..Default::default()
        };
        policy.track_security_level =
            BTreeMap::from([(TrackType::Uhd1, SecurityLevel::HwSecureAll)]);
        let ent = Entitlement {
            tenant: 0,
            kids: vec![KeyId::from_bytes([5; 16])],
            content_ids: vec!["movie".into()],
            policy: Arc::new(policy),
            subject: None,
            token_id: None,
            expires_at: 0,
            max_uses: None,
        };
        let found = vec![
            key(1, "movie", TrackType::Sd, KeyState::Active),
            key(2, "other", TrackType::Sd, KeyState::Active),
            key(3, "movie", TrackType::Hd, KeyState::Revoked { at: 1 }),
            key(4, "movie", TrackType::Audio, KeyState::Active),
            key(5, "other", TrackType::Uhd1, KeyState::Active),
            (KeyId::from_bytes([6; 16]), None),
            key(7, "other", TrackType::Hd, KeyState::Revoked { at: 1 }),
        ];
        let g = decide(&ent, found, SecurityLevel::SwSecureCrypto);
        assert_eq!(
            g.keys
                .iter()
                .map(|k| k.meta.kid.as_bytes()[0])
                .collect::<Vec<_>>(),
            vec![1]
        );
        let why: Vec<_> = g
            .omitted
            .iter()
            .map(|(k, w)| (k.as_bytes()[0], *w))
            .collect();
        assert_eq!(
            why,
            vec![
                (2, Omission::NotEntitled),
                (3, Omission::Revoked),
                (4, Omission::TrackNotAllowed),
                (5, Omission::SecurityLevel),
                (6, Omission::NotFound),
                (7, Omission::NotEntitled),
            ]
        );
    }
}
