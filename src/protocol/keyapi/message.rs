//! Key API request and response bodies. Pure codec: JSON in, typed values out.

use crate::encoding::{b64_decode, b64_encode};
use crate::keyring::{ContentKey, KeyId, KeyMeta, KeyState, TrackType};
use serde::{Deserialize, Serialize};

/// Errors of the key API codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The body is not valid JSON of the documented shape.
    #[error("request body: {0}")]
    Json(String),
    /// A field value is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Largest content id, bytes.
pub const MAX_CONTENT_ID: usize = 256;
/// Most crypto periods in one create request.
pub const MAX_PERIODS: u64 = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCreate {
    content_id: String,
    #[serde(default)]
    tracks: Vec<String>,
    period: Option<u64>,
    period_count: Option<u64>,
    keys: Option<Vec<RawImport>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    kid: String,
    key: String,
    track: Option<String>,
    period: Option<u64>,
}

/// One key to import.
#[derive(Debug, PartialEq, Eq)]
pub struct Import {
    /// KID.
    pub kid: KeyId,
    /// Key bytes.
    pub key: ContentKey,
    /// Track type.
    pub track: Option<TrackType>,
    /// Crypto period.
    pub period: Option<u64>,
}

/// A parsed `POST /v1/keys`.
#[derive(Debug, PartialEq, Eq)]
pub enum Create {
    /// Generate one key per (track, period).
    Generate {
        /// Content id.
        content_id: String,
        /// Track types (at least one).
        tracks: Vec<TrackType>,
        /// Crypto periods; `[None]` without key rotation.
        periods: Vec<Option<u64>>,
    },
    /// Store the given keys.
    Import {
        /// Content id.
        content_id: String,
        /// Keys.
        keys: Vec<Import>,
    },
}

fn content_id(s: String) -> Result<String, Error> {
    if s.is_empty() || s.len() > MAX_CONTENT_ID || s.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "content_id must be 1..={MAX_CONTENT_ID} bytes without control characters"
        )));
    }
    Ok(s)
}

fn track(s: &str) -> Result<TrackType, Error> {
    TrackType::parse(s).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown track type {s:?} (SD, HD, UHD1, UHD2, AUDIO)"
        ))
    })
}

/// Parses a create/import request; at most `max_keys` keys may result.
pub fn parse_create(body: &[u8], max_keys: usize) -> Result<Create, Error> {
    let raw: RawCreate = serde_json::from_slice(body).map_err(|e| Error::Json(e.to_string()))?;
    let content_id = content_id(raw.content_id)?;
    match raw.keys {
        Some(keys) => {
            if !raw.tracks.is_empty() || raw.period.is_some() || raw.period_count.is_some() {
                return Err(Error::Invalid(
                    "give either keys (import) or tracks/period (generate), not both".into(),
                ));
            }
            if keys.is_empty() || keys.len() > max_keys {
                return Err(Error::Invalid(format!(
                    "keys must list 1..={max_keys} keys"
                )));
            }
            let mut out: Vec<Import> = Vec::with_capacity(keys.len());
            for k in keys {
                let kid = KeyId::parse(&k.kid)
                    .map_err(|e| Error::Invalid(format!("kid {:?}: {e}", k.kid)))?;
                if out.iter().any(|o| o.kid == kid) {
                    return Err(Error::Invalid(format!("kid {kid} is listed twice")));
                }
                let bytes = zeroize::Zeroizing::new(
                    b64_decode(&k.key)
                        .map_err(|_| Error::Invalid(format!("key of {kid} is not base64")))?,
                );
                let key = ContentKey::from_slice(&bytes)
                    .map_err(|_| Error::Invalid(format!("key of {kid} must be 16 bytes")))?;
                let track = k.track.as_deref().map(track).transpose()?;
                out.push(Import {
                    kid,
                    key,
                    track,
                    period: k.period,
                });
            }
            Ok(Create::Import {
                content_id,
                keys: out,
            })
        }
        None => {
            if raw.tracks.is_empty() {
                return Err(Error::Invalid(
                    "tracks must list at least one track type (or give keys to import)".into(),
                ));
            }
            let mut tracks = Vec::new();
            for t in &raw.tracks {
                let t = track(t)?;
                if !tracks.contains(&t) {
                    tracks.push(t);
                }
            }
            let periods: Vec<Option<u64>> = match (raw.period, raw.period_count) {
                (None, None) => vec![None],
                (None, Some(_)) => return Err(Error::Invalid("period_count needs period".into())),
                (Some(first), count) => {
                    let count = count.unwrap_or(1);
                    if count == 0 || count > MAX_PERIODS {
                        return Err(Error::Invalid(format!(
                            "period_count must be 1..={MAX_PERIODS}"
                        )));
                    }
                    let last = first
                        .checked_add(count - 1)
                        .ok_or_else(|| Error::Invalid("period overflows".into()))?;
                    (first..=last).map(Some).collect()
                }
            };
            if tracks.len() * periods.len() > max_keys {
                return Err(Error::Invalid(format!(
                    "request would create more than {max_keys} keys"
                )));
            }
            Ok(Create::Generate {
                content_id,
                tracks,
                periods,
            })
        }
    }
}

/// A key as the API shows it.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// Canonical KID (lowercase UUID).
    pub kid: String,
    /// Key, standard base64 (absent where the operation does not release keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Content id.
    pub content_id: String,
    /// Track type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<TrackType>,
    /// Crypto period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// Unix seconds.
    pub created_at: u64,
    /// `active` or `revoked`.
    pub state: &'static str,
    /// Unix seconds of revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// What a packager writes into its output for this key (active keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signalling: Option<Signalling>,
}

/// PSSH boxes and the PlayReady Object for one key, base64: what a packager that fetched or
/// imported the key through this API writes into its output (`docs/protocols.md`, "Key API").
#[derive(Debug, Serialize)]
pub struct Signalling {
    /// The protection scheme the values are for.
    pub scheme: &'static str,
    /// Widevine `pssh` box (v0; data names the KID, content id and scheme).
    pub widevine_pssh: String,
    /// PlayReady `pssh` box (v0 around the PRO).
    pub playready_pssh: String,
    /// PlayReady Object (WRMHEADER 4.3 with the licence URL).
    pub playready_pro: String,
    /// W3C common `pssh` box (v1, the KID): what Clear Key players read.
    pub common_pssh: String,
    /// FairPlay-style key URI for HLS `#EXT-X-KEY` (`skd://<kid>`).
    pub fairplay_uri: String,
    /// The HLS key line for it (media playlists; `#EXT-X-SESSION-KEY` with the same
    /// attributes in multivariant ones).
    pub fairplay_hls_key: String,
}

/// Where the signalling points and what it names besides the key.
#[derive(Clone, Copy, Debug)]
pub struct SignallingContext<'a> {
    /// Protection scheme.
    pub scheme: crate::protocol::signalling::Scheme,
    /// `provider` of Widevine PSSH data.
    pub provider: &'a str,
    /// PlayReady licence URL.
    pub la_url: &'a str,
}

impl KeyView {
    /// A view of `meta`, with the key material when given.
    pub fn new(meta: &KeyMeta, key: Option<&ContentKey>) -> Self {
        let (state, revoked_at) = match meta.state {
            KeyState::Active => ("active", None),
            KeyState::Revoked { at } => ("revoked", Some(at)),
        };
        Self {
            kid: meta.kid.to_string(),
            key: key.map(|k| b64_encode(k.expose())),
            content_id: meta.content_id.clone(),
            track: meta.track,
            period: meta.period,
            created_at: meta.created_at,
            state,
            revoked_at,
            signalling: None,
        }
    }

    /// Adds the signalling of an active key. The PlayReady checksum needs the key bytes; it
    /// is left out without them (it is optional in WRMHEADER 4.3).
    pub fn with_signalling(
        mut self,
        meta: &KeyMeta,
        key: Option<&ContentKey>,
        ctx: &SignallingContext<'_>,
    ) -> Self {
        use crate::protocol::playready::header::HeaderKey;
        use crate::protocol::signalling as sig;
        if !meta.is_active() {
            return self;
        }
        let kids = [meta.kid];
        let data = sig::widevine_pssh_data(
            &kids,
            ctx.provider,
            meta.content_id.as_bytes(),
            Some(ctx.scheme),
            meta.period.and_then(|p| u32::try_from(p).ok()),
        );
        let pro = sig::playready_pro(
            &[HeaderKey {
                kid: meta.kid,
                key: key.map(ContentKey::expose),
            }],
            ctx.scheme,
            Some(ctx.la_url),
        );
        self.signalling = Some(Signalling {
            scheme: ctx.scheme.as_str(),
            widevine_pssh: b64_encode(&sig::widevine_pssh(&data)),
            playready_pssh: b64_encode(&sig::playready_pssh(&pro)),
            playready_pro: b64_encode(&pro),
            common_pssh: b64_encode(&sig::common_pssh(&kids)),
            fairplay_uri: crate::protocol::fairplay::asset::skd_uri(&meta.kid),
            fairplay_hls_key: format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#,
                crate::protocol::fairplay::asset::skd_uri(&meta.kid)
            ),
        });
        self
    }
}

/// Encodes `{"keys":[...]}`.
pub fn encode_keys(keys: &[KeyView]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Keys<'a> {
        keys: &'a [KeyView],
    }
    // Serialising plain strings and integers cannot fail.
    serde_json::to_vec(&Keys { keys }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_and_import_forms() {
        let c = parse_create(
            br#"{"content_id":"movie-1","tracks":["SD","HD","AUDIO","SD"]}"#,
            64,
        )
        .unwrap();
        assert_eq!(
            c,
            Create::Generate {
                content_id: "movie-1".into(),
                tracks: vec![TrackType::Sd, TrackType::Hd, TrackType::Audio],
                periods: vec![None]
            }
        );
        let c = parse_create(
            br#"{"content_id":"m","tracks":["HD"],"period":5,"period_count":2}"#,
            64,
        )
        .unwrap();
        assert!(matches!(c, Create::Generate { periods, .. } if periods == vec![Some(5), Some(6)]));
        let c = parse_create(
            br#"{"content_id":"m","keys":[{"kid":"0123456789abcdef0123456789abcdef","key":"AAECAwQFBgcICQoLDA0ODw=="}]}"#,
            64,
        )
        .unwrap();
        assert!(matches!(c, Create::Import { keys, .. } if keys[0].key.expose()[15] == 15));
    }

    #[test]
    fn refusals() {
        for (body, why) in [
            (&br#"{"content_id":"","tracks":["SD"]}"#[..], "content_id"),
            (br#"{"content_id":"m"}"#, "tracks"),
            (br#"{"content_id":"m","tracks":["XD"]}"#, "unknown track"),
            (br#"{"content_id":"m","tracks":["SD"],"bogus":1}"#, "unknown field"),
            (br#"{"content_id":"m","tracks":["SD"],"period":1,"period_count":0}"#, "period_count"),
            (br#"{"content_id":"m","tracks":["SD","HD"],"period":0,"period_count":3}"#, "more than 4"),
            (br#"{"content_id":"m","keys":[{"kid":"xyz","key":"AAECAwQFBgcICQoLDA0ODw=="}]}"#, "kid"),
            (br#"{"content_id":"m","keys":[{"kid":"0123456789abcdef0123456789abcdef","key":"AAEC"}]}"#, "16 bytes"),
            (br#"{"content_id":"m","tracks":["SD"],"keys":[]}"#, "not both"),
        ] {
            let err = parse_create(body, 4).unwrap_err().to_string();
            assert!(err.contains(why), "{err:?} should mention {why:?}");
        }
    }
}
