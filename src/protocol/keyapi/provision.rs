//! Key provisioning shared by every packager front door: the REST key API, the
//! Widevine-style key API, PlayReady packaging and SPEKE (`docs/protocols.md`, "One key store,
//! several front doors"). A key fetched through one of them is the key every licence
//! endpoint serves, and a retry, a restart or a second node gets the same key again.
//!
//! Two ways to name a key:
//! - by *slot*, (content id, track, period): the KID is derived from the slot
//!   (`Keyring::derive_kid`), so every node picks the same KID and the store's
//!   insert-if-absent makes creation idempotent;
//! - by *KID*, chosen by the caller (SPEKE encryptors pick their own): the first request
//!   stores a fresh random key, and a racing second one gets the stored key back.

use crate::app::{self, App};
use crate::keyring::{CachedKey, ContentKey, KeyId, KeyMeta, KeyState, TrackType};
use crate::store::{self, KeyRecord};
use std::sync::Arc;

/// Errors of provisioning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The KID exists in this tenant under another content id.
    #[error("key id {0} already belongs to another content id")]
    Conflict(KeyId),
    /// The KID was revoked; a revoked key is never handed out again.
    #[error("key id {0} is revoked")]
    Revoked(KeyId),
    /// Store, keyring or random-number failure: Tessera's fault.
    #[error(transparent)]
    App(#[from] app::Error),
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(kid) => Error::Conflict(kid),
            other => Error::App(other.into()),
        }
    }
}

impl crate::http::error::ApiError for Error {
    fn status(&self) -> http::StatusCode {
        match self {
            Error::Conflict(_) | Error::Revoked(_) => http::StatusCode::CONFLICT,
            Error::App(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::Conflict(_) | Error::Revoked(_) => "key_conflict",
            Error::App(e) => e.code(),
        }
    }
}

/// A (track, period) of one content id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Track type; `None` for one key covering every track.
    pub track: Option<TrackType>,
    /// Crypto period; `None` without rotation.
    pub period: Option<u64>,
}

/// A key a front door may release, and whether this request created it.
#[derive(Clone, Debug)]
pub struct Provisioned {
    /// The key (active).
    pub key: Arc<CachedKey>,
    /// False when it existed before this request.
    pub created: bool,
}

/// The label a slot's KID is derived from.
fn slot_label(track: Option<TrackType>) -> &'static str {
    track.map_or("ALL", TrackType::as_str)
}

/// The active key of each slot, generating the missing ones; positional. Revoked keys are
/// never reused: their count is the generation of the replacement's KID.
pub async fn by_slot(
    app: &App,
    tenant: u32,
    content_id: &str,
    slots: &[Slot],
    now: u64,
) -> Result<Vec<Provisioned>, Error> {
    let tenant_id = app.auth.tenant_id(tenant).to_owned();
    let existing = app.store.list_by_content(&tenant_id, content_id).await?;
    let mut records = Vec::with_capacity(slots.len());
    for slot in slots {
        let same = |e: &&KeyRecord| e.meta.track == slot.track && e.meta.period == slot.period;
        if let Some(e) = existing.iter().filter(same).find(|e| e.meta.is_active()) {
            records.push(e.clone());
            continue;
        }
        let generation = existing.iter().filter(same).count() as u32;
        let meta = KeyMeta {
            kid: app.keyring.derive_kid(
                &tenant_id,
                content_id,
                slot_label(slot.track),
                slot.period,
                generation,
            ),
            content_id: content_id.to_owned(),
            track: slot.track,
            period: slot.period,
            created_at: now,
            state: KeyState::Active,
        };
        records.push(seal(app, &tenant_id, meta)?);
    }
    // Derived KIDs name their key, so an existing record is the answer whatever its bytes,
    // unless it was revoked meanwhile.
    let inserted = insert(app, &tenant_id, records).await?;
    finish(app, tenant, inserted)
}

/// One key the caller names by KID.
#[derive(Clone, Copy, Debug)]
pub struct Named {
    /// The KID.
    pub kid: KeyId,
    /// Track type, recorded when the key is created.
    pub track: Option<TrackType>,
    /// Crypto period, recorded when the key is created.
    pub period: Option<u64>,
}

/// The key of each named KID of `content_id`, generating the missing ones; positional. A KID
/// of another content id, or a revoked one, fails the whole request and nothing is written.
pub async fn by_kid(
    app: &App,
    tenant: u32,
    content_id: &str,
    wanted: &[Named],
    now: u64,
) -> Result<Vec<Provisioned>, Error> {
    let tenant_id = app.auth.tenant_id(tenant).to_owned();
    let kids: Vec<KeyId> = wanted.iter().map(|w| w.kid).collect();
    let found = app.lookup_keys(tenant, &kids).await?;
    let mut out: Vec<Option<Provisioned>> = Vec::with_capacity(wanted.len());
    let mut records = Vec::new();
    for (w, (_, hit)) in wanted.iter().zip(found) {
        match hit {
            Some(k) => {
                check(&k.meta, content_id)?;
                out.push(Some(Provisioned {
                    key: k,
                    created: false,
                }));
            }
            None => {
                let meta = KeyMeta {
                    kid: w.kid,
                    content_id: content_id.to_owned(),
                    track: w.track,
                    period: w.period,
                    created_at: now,
                    state: KeyState::Active,
                };
                records.push(seal(app, &tenant_id, meta)?);
                out.push(None);
            }
        }
    }
    if !records.is_empty() {
        // A racing creator of the same KID wins or loses as a whole; either way every node
        // ends up with the one stored key (the store returns it with `created: false`).
        let inserted = insert(app, &tenant_id, records).await?;
        for ins in &inserted {
            check(&ins.record.meta, content_id)?;
        }
        let mut fresh = finish(app, tenant, inserted)?.into_iter();
        for slot in out.iter_mut().filter(|s| s.is_none()) {
            *slot = fresh.next();
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Inserts records, all or none. An existing KID counts as "the same key" only while it is
/// active: the check runs inside the store's write transaction, so a revocation racing this
/// request fails the whole batch instead of leaving the request's other keys behind.
async fn insert(
    app: &App,
    tenant_id: &str,
    records: Vec<KeyRecord>,
) -> Result<Vec<store::Inserted>, Error> {
    let active: store::SameKey = Arc::new(|old: &KeyRecord, _: &KeyRecord| old.meta.is_active());
    match app.store.insert_keys(tenant_id, records, active).await {
        Ok(inserted) => Ok(inserted),
        // Say which conflict it was: revoked, or another content id.
        Err(store::Error::Conflict(kid)) => {
            let existing = app.store.get_keys(tenant_id, &[kid]).await?;
            match existing.into_iter().flatten().next() {
                Some(r) if !r.meta.is_active() => Err(Error::Revoked(kid)),
                _ => Err(Error::Conflict(kid)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn check(meta: &KeyMeta, content_id: &str) -> Result<(), Error> {
    if meta.content_id != content_id {
        return Err(Error::Conflict(meta.kid));
    }
    if !meta.is_active() {
        return Err(Error::Revoked(meta.kid));
    }
    Ok(())
}

fn seal(app: &App, tenant_id: &str, meta: KeyMeta) -> Result<KeyRecord, Error> {
    let key = ContentKey::generate().map_err(app::Error::from)?;
    let sealed = app
        .keyring
        .seal(tenant_id, &meta, &key)
        .map_err(app::Error::from)?;
    Ok(KeyRecord { meta, sealed })
}

fn finish(
    app: &App,
    tenant: u32,
    inserted: Vec<store::Inserted>,
) -> Result<Vec<Provisioned>, Error> {
    let mut out = Vec::with_capacity(inserted.len());
    let mut created = 0u64;
    for ins in inserted {
        if !ins.record.meta.is_active() {
            return Err(Error::Revoked(ins.record.meta.kid));
        }
        created += u64::from(ins.created);
        out.push(Provisioned {
            key: app.open_and_cache(tenant, ins.record)?,
            created: ins.created,
        });
    }
    app.metrics
        .keys_created
        .with_label_values(&["generated"])
        .inc_by(created);
    Ok(out)
}
