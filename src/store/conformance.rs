//! The conformance suite every [`KeyStore`] backend must pass (STYLE T4).
//!
//! Backends call [`run`] from their own tests with a fresh, empty store; durability backends
//! also call [`write_fixture`], reopen, and [`check_fixture`]. It panics on the first
//! violation, like any test.

#![expect(
    clippy::unwrap_used,
    reason = "a test suite: a failed store call is a failed test"
)]

use super::{ChangeKind, Error, KeyRecord, KeyStore, any_key};
use crate::keyring::{KeyId, KeyMeta, KeyState, TrackType};

fn rec(kid: u8, content: &str, track: Option<TrackType>, period: Option<u64>) -> KeyRecord {
    KeyRecord {
        meta: KeyMeta {
            kid: KeyId::from_bytes([kid; 16]),
            content_id: content.to_owned(),
            track,
            period,
            created_at: 1_700_000_000 + u64::from(kid),
            state: KeyState::Active,
        },
        sealed: vec![kid; 45],
    }
}

/// Runs every check against an empty store.
pub async fn run(store: &dyn KeyStore) {
    // Empty store.
    assert_eq!(
        store
            .get_keys("t1", &[KeyId::from_bytes([1; 16])])
            .await
            .unwrap(),
        vec![None]
    );
    assert!(
        store
            .list_by_content("t1", "movie")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());
    assert_eq!(store.change_cursor().await.unwrap(), 0);
    store.ping().await.unwrap();

    // Insert and read back, batched and positional.
    let a = rec(1, "movie", Some(TrackType::Sd), None);
    let b = rec(2, "movie", Some(TrackType::Hd), None);
    let out = store
        .insert_keys("t1", vec![a.clone(), b.clone()], any_key())
        .await
        .unwrap();
    assert!(out.iter().all(|i| i.created));
    let got = store
        .get_keys("t1", &[b.meta.kid, KeyId::from_bytes([9; 16]), a.meta.kid])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(b.clone()), None, Some(a.clone())]);

    // Tenants are isolated: the same KID is invisible, and insertable, in another tenant.
    assert_eq!(
        store.get_keys("t2", &[a.meta.kid]).await.unwrap(),
        vec![None]
    );
    assert!(
        store
            .list_by_content("t2", "movie")
            .await
            .unwrap()
            .is_empty()
    );
    let other = rec(1, "other-tenant-movie", None, None);
    assert!(
        store
            .insert_keys("t2", vec![other.clone()], any_key())
            .await
            .unwrap()[0]
            .created
    );
    assert_eq!(
        store.get_keys("t1", &[a.meta.kid]).await.unwrap(),
        vec![Some(a.clone())]
    );

    // Idempotent insert: same KID and content id returns the stored record, unchanged.
    let mut again = a.clone();
    again.sealed = vec![0xaa; 45];
    let out = store
        .insert_keys("t1", vec![again], any_key())
        .await
        .unwrap();
    assert!(!out[0].created);
    assert_eq!(out[0].record, a);

    // Conflict: same KID, other content id; the batch is atomic, so `c` is not written either.
    let c = rec(3, "movie", Some(TrackType::Audio), None);
    let clash = rec(1, "another-movie", None, None);
    match store
        .insert_keys("t1", vec![c.clone(), clash], any_key())
        .await
    {
        Err(Error::Conflict(kid)) => assert_eq!(kid, a.meta.kid),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_keys("t1", &[c.meta.kid]).await.unwrap(),
        vec![None]
    );

    // Same KID and content id but, by `same_key`, another key: a conflict, decided inside
    // the transaction, and the batch is atomic again.
    let d = rec(7, "movie", Some(TrackType::Uhd1), None);
    let different: super::SameKey = std::sync::Arc::new(|_, _| false);
    match store
        .insert_keys("t1", vec![d.clone(), a.clone()], different)
        .await
    {
        Err(Error::Conflict(kid)) => assert_eq!(kid, a.meta.kid),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_keys("t1", &[d.meta.kid]).await.unwrap(),
        vec![None]
    );

    // Listing by content id: ordered by (period, track, kid), other content ids excluded, and
    // a content id that is a prefix of another does not leak into it.
    store
        .insert_keys(
            "t1",
            vec![rec(4, "movie", Some(TrackType::Sd), Some(0))],
            any_key(),
        )
        .await
        .unwrap();
    store
        .insert_keys(
            "t1",
            vec![rec(5, "movie-2", Some(TrackType::Sd), None)],
            any_key(),
        )
        .await
        .unwrap();
    store
        .insert_keys(
            "t1",
            vec![rec(6, "mov", Some(TrackType::Sd), None)],
            any_key(),
        )
        .await
        .unwrap();
    let listed: Vec<u8> = store
        .list_by_content("t1", "movie")
        .await
        .unwrap()
        .iter()
        .map(|r| r.meta.kid.as_bytes()[0])
        .collect();
    assert_eq!(listed, vec![1, 2, 4]);

    // Revocation: state change, idempotent (first time kept), unknown KID -> None.
    let revoked = store.revoke("t1", a.meta.kid, 100).await.unwrap().unwrap();
    assert_eq!(revoked.meta.state, KeyState::Revoked { at: 100 });
    assert_eq!(
        revoked.sealed, a.sealed,
        "revocation must not touch the sealed key"
    );
    let again = store.revoke("t1", a.meta.kid, 200).await.unwrap().unwrap();
    assert_eq!(again.meta.state, KeyState::Revoked { at: 100 });
    assert!(
        store
            .revoke("t1", KeyId::from_bytes([9; 16]), 1)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.get_keys("t2", &[a.meta.kid]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .meta
            .state,
        KeyState::Active,
        "revoking in t1 must not touch t2"
    );

    // Change feed: monotonic, cursor-based, limited, and it records the revocation once.
    let all = store.changes_since(0, 1000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let revocations: Vec<_> = all
        .iter()
        .filter(|c| c.kind == ChangeKind::Revoked)
        .collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(
        (revocations[0].tenant.as_str(), revocations[0].kid),
        ("t1", a.meta.kid)
    );
    let first_two = store.changes_since(0, 2).await.unwrap();
    assert_eq!(first_two.len(), 2);
    let rest = store.changes_since(first_two[1].seq, 1000).await.unwrap();
    assert_eq!(rest.len(), all.len() - 2);
    assert_eq!(
        store.change_cursor().await.unwrap(),
        all.last().unwrap().seq
    );
    assert!(
        store
            .changes_since(store.change_cursor().await.unwrap(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Metadata: put-if-absent keeps the first value.
    assert_eq!(store.meta_get("check").await.unwrap(), None);
    assert_eq!(
        store
            .meta_put_if_absent("check", b"one".to_vec())
            .await
            .unwrap(),
        b"one"
    );
    assert_eq!(
        store
            .meta_put_if_absent("check", b"two".to_vec())
            .await
            .unwrap(),
        b"one"
    );
    assert_eq!(
        store.meta_get("check").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
}

/// Writes a known state for a durability check across a reopen.
pub async fn write_fixture(store: &dyn KeyStore) {
    store
        .insert_keys(
            "t1",
            vec![
                rec(1, "movie", Some(TrackType::Sd), None),
                rec(2, "movie", None, Some(7)),
            ],
            any_key(),
        )
        .await
        .unwrap();
    store
        .revoke("t1", KeyId::from_bytes([2; 16]), 42)
        .await
        .unwrap();
    store
        .meta_put_if_absent("check", b"v".to_vec())
        .await
        .unwrap();
}

/// Checks the state written by [`write_fixture`].
pub async fn check_fixture(store: &dyn KeyStore) {
    let got = store
        .get_keys(
            "t1",
            &[KeyId::from_bytes([1; 16]), KeyId::from_bytes([2; 16])],
        )
        .await
        .unwrap();
    assert_eq!(got[0], Some(rec(1, "movie", Some(TrackType::Sd), None)));
    assert_eq!(
        got[1].as_ref().unwrap().meta.state,
        KeyState::Revoked { at: 42 }
    );
    assert_eq!(store.changes_since(0, 10).await.unwrap().len(), 3);
    assert_eq!(
        store.meta_get("check").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
