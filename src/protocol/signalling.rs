//! DRM signalling for packagers: protection schemes, PSSH boxes and their DASH forms
//! (ISO/IEC 23001-7 §8.1 `pssh`; W3C "Common PSSH Box Format"; `docs/protocols.md`,
//! "Signalling"). Pure: bytes in, bytes out.

use crate::keyring::KeyId;
use crate::protocol::playready::header::{self, AlgId, HeaderKey};
use crate::protocol::widevine::message::{COMMON_SYSTEM_ID, WIDEVINE_SYSTEM_ID, pssh_box};
use crate::protocol::widevine::pb;
use prost::Message;

/// A CENC protection scheme (ISO/IEC 23001-7 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// AES-CTR, full sample.
    Cenc,
    /// AES-CBC, full sample.
    Cbc1,
    /// AES-CTR, pattern.
    Cens,
    /// AES-CBC, pattern (HLS SAMPLE-AES, FairPlay).
    Cbcs,
}

impl Scheme {
    /// Parses the four-character name, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "cenc" => Scheme::Cenc,
            "cbc1" => Scheme::Cbc1,
            "cens" => Scheme::Cens,
            "cbcs" => Scheme::Cbcs,
            _ => return None,
        })
    }

    /// The four-character name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbc1 => "cbc1",
            Scheme::Cens => "cens",
            Scheme::Cbcs => "cbcs",
        }
    }

    /// The FourCC as a big-endian integer (`WidevinePsshData.protection_scheme`).
    pub fn fourcc(self) -> u32 {
        u32::from_be_bytes(self.as_str().as_bytes().try_into().unwrap_or([0; 4]))
    }

    /// The PlayReady header algorithm for this scheme.
    pub fn playready_alg(self) -> AlgId {
        match self {
            Scheme::Cenc | Scheme::Cens => AlgId::AesCtr,
            Scheme::Cbc1 | Scheme::Cbcs => AlgId::AesCbc,
        }
    }
}

/// `WidevinePsshData` naming `kids` (the `data` of a Widevine `pssh` box).
pub fn widevine_pssh_data(
    kids: &[KeyId],
    provider: &str,
    content_id: &[u8],
    scheme: Option<Scheme>,
    period: Option<u32>,
) -> Vec<u8> {
    pb::WidevinePsshData {
        key_ids: kids.iter().map(|k| k.as_bytes().to_vec()).collect(),
        provider: (!provider.is_empty()).then(|| provider.to_owned()),
        content_id: (!content_id.is_empty()).then(|| content_id.to_vec()),
        crypto_period_index: period,
        protection_scheme: scheme.map(Scheme::fourcc),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A version-0 Widevine `pssh` box around `data`.
pub fn widevine_pssh(data: &[u8]) -> Vec<u8> {
    pssh_box(&WIDEVINE_SYSTEM_ID, &[], data)
}

/// The W3C common `pssh` box (version 1, KIDs, no data): what Clear Key players read.
pub fn common_pssh(kids: &[KeyId]) -> Vec<u8> {
    pssh_box(&COMMON_SYSTEM_ID, kids, &[])
}

/// A PlayReady Object for `keys` (WRMHEADER 4.3) with an optional licence URL.
pub fn playready_pro(keys: &[HeaderKey<'_>], scheme: Scheme, la_url: Option<&str>) -> Vec<u8> {
    header::pro(&header::wrmheader(keys, scheme.playready_alg(), la_url))
}

/// A version-0 PlayReady `pssh` box around a PRO.
pub fn playready_pssh(pro: &[u8]) -> Vec<u8> {
    pssh_box(&header::SYSTEM_ID, &[], pro)
}

/// `<cenc:pssh>` for a DASH `ContentProtection`, declaring its own namespace.
pub fn cenc_pssh_element(pssh_b64: &str) -> String {
    format!(r#"<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">{pssh_b64}</cenc:pssh>"#)
}

/// `<mspr:pro>` for a DASH PlayReady `ContentProtection`, declaring its own namespace.
pub fn mspr_pro_element(pro_b64: &str) -> String {
    format!(r#"<mspr:pro xmlns:mspr="urn:microsoft:playready">{pro_b64}</mspr:pro>"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_values() {
        assert_eq!(Scheme::Cenc.fourcc(), 0x6365_6E63);
        assert_eq!(Scheme::Cbcs.fourcc(), 1_667_392_371);
        assert_eq!(Scheme::parse("CBCS"), Some(Scheme::Cbcs));
        assert_eq!(Scheme::parse("aes"), None);
    }

    #[test]
    fn widevine_data_round_trips() {
        let kid = KeyId::parse("8b83290a-e024-0525-715a-2ee14b6db215").unwrap();
        let data = widevine_pssh_data(
            &[kid],
            "tessera",
            b"tessera-clip-1",
            Some(Scheme::Cenc),
            None,
        );
        let back = pb::WidevinePsshData::decode(&data[..]).unwrap();
        assert_eq!(back.key_ids, vec![kid.as_bytes().to_vec()]);
        assert_eq!(back.provider.as_deref(), Some("tessera"));
        assert_eq!(back.protection_scheme, Some(0x6365_6E63));
        let bx = widevine_pssh(&data);
        assert_eq!(&bx[4..8], b"pssh");
        assert_eq!(bx[8], 0, "version 0");
        assert_eq!(&bx[12..28], &WIDEVINE_SYSTEM_ID);
        let common = common_pssh(&[kid]);
        assert_eq!(common[8], 1);
        assert_eq!(&common[32..48], kid.as_bytes());
    }
}
