//! Asset IDs and `skd://` URIs (`docs/fairplay.md` §10.6). Pure.
//!
//! Tessera mints `skd://<kid as a lowercase hyphenated UUID>`: a valid hostname, so every
//! player's default content-id extractor returns the whole id. Requests from other key
//! servers' players are understood too: a bare UUID or 32 hex digits, Axinom's `KID:IV`,
//! EZDRM's `host/path;<id>`, DRMtoday's `skd://host?assetId=X&variantId=Y`.

use crate::keyring::KeyId;

/// What an asset ID names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asset {
    /// A key, by KID.
    Kid(KeyId),
    /// A content id, resolved through the key store.
    ContentId(String),
}

/// The `skd://` URI Tessera signals for a key.
pub fn skd_uri(kid: &KeyId) -> String {
    format!("skd://{kid}")
}

/// Decodes the SPC's asset-ID bytes: UTF-16LE when every odd byte is zero (legacy WebKit
/// pages build init data with UTF-16 ids), else UTF-8. `None` when neither decodes.
pub fn decode(bytes: &[u8]) -> Option<String> {
    let utf16 = bytes.len() >= 2
        && bytes.len().is_multiple_of(2)
        && bytes.iter().skip(1).step_by(2).all(|&b| b == 0);
    if utf16 {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16(&units).ok();
    }
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Normalises an asset ID (or an `skd://` URI) to what it names.
pub fn resolve(text: &str) -> Option<Asset> {
    let text = text.trim();
    let rest = text
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("skd://"))
        .map_or(text, |_| &text[6..]);
    if rest.is_empty() {
        return None;
    }
    // DRMtoday: skd://host?assetId=X&variantId=Y
    if let Some((_, query)) = rest.split_once('?') {
        let id = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("assetId="))
            .filter(|v| !v.is_empty())?;
        return Some(resolve_id(id));
    }
    // EZDRM: host/path;<id>
    let id = rest.rsplit_once(';').map_or(rest, |(_, id)| id);
    // Axinom: KID:IV (the stored IV is used).
    let id = id.split_once(':').map_or(id, |(kid, _)| kid);
    Some(resolve_id(id))
}

fn resolve_id(id: &str) -> Asset {
    match KeyId::parse(id) {
        Ok(kid) => Asset::Kid(kid),
        Err(_) => Asset::ContentId(id.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_form() {
        let kid = KeyId::parse("6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab").unwrap();
        assert_eq!(skd_uri(&kid), "skd://6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab");
        for form in [
            "skd://6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab",
            "SKD://6F1C7E1A-3B5D-4C2E-9A8B-0123456789AB",
            "6f1c7e1a3b5d4c2e9a8b0123456789ab",
            "skd://6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab:00112233445566778899aabbccddeeff",
            "skd://fps.ezdrm.com/;6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab",
            "skd://drmtoday?assetId=6f1c7e1a3b5d4c2e9a8b0123456789ab&variantId=x",
        ] {
            assert_eq!(resolve(form), Some(Asset::Kid(kid)), "{form}");
        }
        assert_eq!(
            resolve("skd://movie-42"),
            Some(Asset::ContentId("movie-42".into()))
        );
        assert_eq!(resolve("skd://"), None);
        assert_eq!(resolve("skd://x?variantId=1"), None);
        let utf16: Vec<u8> = "skd://abc"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode(&utf16).as_deref(), Some("skd://abc"));
        assert_eq!(decode(b"skd://abc").as_deref(), Some("skd://abc"));
        assert_eq!(decode(&[0xff, 0xfe, 0xfd]), None);
    }
}
