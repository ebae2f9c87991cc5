//! PlayReady Header Object (PRO) and WRMHEADER 4.3, for packagers (`docs/protocols.md`,
//! "PlayReady packaging"; PlayReady Header Specification, WRMHEADER v4.3.0.0). Pure codec.
//!
//! Byte order is the trap: a WRMHEADER `KID@VALUE` is the KID as a little-endian GUID (the
//! first three fields byte-swapped), while CENC, `tenc` and every other protocol of Tessera
//! use the UUID's big-endian bytes.

use crate::crypto::symmetric::aes128_ecb_block;
use crate::encoding::b64_encode;
use crate::keyring::KeyId;

/// PlayReady's DRM system id (`9a04f079-9840-4286-ab92-e65be0885f95`).
pub const SYSTEM_ID: [u8; 16] = [
    0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88, 0x5f, 0x95,
];

/// Content encryption algorithm named in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgId {
    /// `cenc` / `cens` (AES-CTR); the header carries a key checksum.
    AesCtr,
    /// `cbcs` / `cbc1` (AES-CBC, WRMHEADER 4.3 only); no checksum.
    AesCbc,
}

impl AlgId {
    fn as_str(self) -> &'static str {
        match self {
            AlgId::AesCtr => "AESCTR",
            AlgId::AesCbc => "AESCBC",
        }
    }
}

/// The KID's bytes as a little-endian GUID (the WRMHEADER form).
pub fn guid_le(kid: &KeyId) -> [u8; 16] {
    let b = kid.as_bytes();
    let mut le = *b;
    le[0..4].reverse();
    le[4..6].reverse();
    le[6..8].reverse();
    le
}

/// The AESCTR key checksum: the first 8 bytes of AES-128-ECB(key, KID as GUID-LE).
pub fn checksum(kid: &KeyId, key: &[u8; 16]) -> [u8; 8] {
    let block = aes128_ecb_block(key, &guid_le(kid));
    let mut out = [0u8; 8];
    out.copy_from_slice(&block[..8]);
    out
}

/// One protected key of a header. `Debug` never shows the key.
#[derive(Clone, Copy)]
pub struct HeaderKey<'a> {
    /// KID.
    pub kid: KeyId,
    /// The key, needed for the AESCTR checksum; `None` leaves the checksum out (optional).
    pub key: Option<&'a [u8; 16]>,
}

impl std::fmt::Debug for HeaderKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderKey")
            .field("kid", &self.kid)
            .field("key", &self.key.map(|_| "<redacted>"))
            .finish()
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A WRMHEADER 4.3.0.0 naming `keys`, with an optional licence acquisition URL.
pub fn wrmheader(keys: &[HeaderKey<'_>], alg: AlgId, la_url: Option<&str>) -> String {
    let mut x = String::from(
        r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.3.0.0"><DATA><PROTECTINFO><KIDS>"#,
    );
    for k in keys {
        x.push_str(r#"<KID ALGID=""#);
        x.push_str(alg.as_str());
        if let (AlgId::AesCtr, Some(key)) = (alg, k.key) {
            x.push_str(r#"" CHECKSUM=""#);
            x.push_str(&b64_encode(&checksum(&k.kid, key)));
        }
        x.push_str(r#"" VALUE=""#);
        x.push_str(&b64_encode(&guid_le(&k.kid)));
        x.push_str(r#""></KID>"#);
    }
    x.push_str("</KIDS></PROTECTINFO>");
    if let Some(url) = la_url {
        x.push_str("<LA_URL>");
        x.push_str(&escape(url));
        x.push_str("</LA_URL>");
    }
    x.push_str("</DATA></WRMHEADER>");
    x
}

/// The PlayReady Object around a WRMHEADER: `u32le length | u16le count(1) | u16le type(1) |
/// u16le size | UTF-16LE header`.
pub fn pro(wrmheader: &str) -> Vec<u8> {
    let utf16: Vec<u8> = wrmheader
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let total = 4 + 2 + 2 + 2 + utf16.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    // A header longer than 32 KiB UTF-16 would not fit the u16 size; callers bound the KID
    // count (`limits.max_kids_per_request`) far below that.
    out.extend_from_slice(&(utf16.len().min(u16::MAX as usize) as u16).to_le_bytes());
    out.extend_from_slice(&utf16);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_le_swaps_the_first_three_fields() {
        // A KID whose first 8 bytes are asymmetric, so a missing or wrong swap shows.
        let kid = KeyId::parse("ac1f4667-cd91-3ae3-3137-ac232b0e6617").unwrap();
        assert_eq!(
            crate::encoding::hex_encode(&guid_le(&kid)),
            "67461fac91cde33a3137ac232b0e6617"
        );
    }

    #[test]
    fn checksum_matches_the_published_vector() {
        // KID 11112222-3333-4444-5555-666677778888, key 00..0f: "nrfaQxCW4RU=" (computed by the
        // `cpix` package's helper and accepted by pyplayready's KID checksum check).
        let kid = KeyId::parse("11112222-3333-4444-5555-666677778888").unwrap();
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(b64_encode(&checksum(&kid, &key)), "nrfaQxCW4RU=");
    }

    #[test]
    fn header_and_pro_layout() {
        let kid = KeyId::parse("ac1f4667-cd91-3ae3-3137-ac232b0e6617").unwrap();
        let key = [7u8; 16];
        let h = wrmheader(
            &[HeaderKey {
                kid,
                key: Some(&key),
            }],
            AlgId::AesCtr,
            Some("https://keys.example/playready/license?a=1&b=2"),
        );
        assert!(h.contains(r#"VALUE="Z0YfrJHN4zoxN6wjKw5mFw==""#), "{h}");
        assert!(h.contains("CHECKSUM="));
        assert!(h.contains("?a=1&amp;b=2</LA_URL>"));
        let cbc = wrmheader(&[HeaderKey { kid, key: None }], AlgId::AesCbc, None);
        assert!(cbc.contains(r#"ALGID="AESCBC""#) && !cbc.contains("CHECKSUM"));
        let p = pro(&h);
        assert_eq!(
            u32::from_le_bytes(p[0..4].try_into().unwrap()) as usize,
            p.len()
        );
        assert_eq!(&p[4..8], &[1, 0, 1, 0]);
        assert_eq!(
            u16::from_le_bytes(p[8..10].try_into().unwrap()) as usize,
            p.len() - 10
        );
        assert_eq!(&p[10..12], &[b'<', 0]);
    }
}
