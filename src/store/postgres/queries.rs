//! Row mapping: key records to and from `tessera_keys` rows, and the integer conversions
//! that refuse (as [`Error::Corrupt`]) values a column cannot hold.

use crate::keyring::{KeyId, KeyMeta, KeyState, TrackType};
use crate::store::{Error, KeyRecord, Result};
use tokio_postgres::Row;

pub(super) fn track_code(t: Option<TrackType>) -> Option<i16> {
    t.map(|t| t as i16)
}

pub(super) fn track_of(code: Option<i16>) -> Result<Option<TrackType>> {
    code.map(|c| {
        usize::try_from(c)
            .ok()
            .and_then(|i| TrackType::ALL.get(i).copied())
            .ok_or_else(|| Error::Corrupt(format!("track code {c}")))
    })
    .transpose()
}

pub(super) fn i64_of(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} does not fit a bigint")))
}

pub(super) fn u64_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative value {v}")))
}

/// The columns [`record`] reads, in its order.
pub(super) const COLUMNS: &str = "kid, content_id, track, period, created_at, revoked_at, sealed";

pub(super) fn record(row: &Row) -> Result<KeyRecord> {
    let kid: Vec<u8> = row.try_get(0).map_err(|e| Error::Corrupt(e.to_string()))?;
    let kid: [u8; 16] = kid
        .try_into()
        .map_err(|_| Error::Corrupt("kid length".into()))?;
    let get = |e: tokio_postgres::Error| Error::Corrupt(e.to_string());
    let revoked: Option<i64> = row.try_get(5).map_err(get)?;
    Ok(KeyRecord {
        meta: KeyMeta {
            kid: KeyId::from_bytes(kid),
            content_id: row.try_get(1).map_err(get)?,
            track: track_of(row.try_get(2).map_err(get)?)?,
            period: row
                .try_get::<_, Option<i64>>(3)
                .map_err(get)?
                .map(u64_of)
                .transpose()?,
            created_at: u64_of(row.try_get(4).map_err(get)?)?,
            state: match revoked {
                None => KeyState::Active,
                Some(at) => KeyState::Revoked { at: u64_of(at)? },
            },
        },
        sealed: row.try_get(6).map_err(get)?,
    })
}
