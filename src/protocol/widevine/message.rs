//! Widevine-style request decoding (drm-interop.md §1.2-1.3): the outer `SignedMessage`,
//! the `LicenseRequest` inside it, and the KIDs its content identification names. Pure codec:
//! no I/O, no clock, no keys.
//!
//! The exact received `msg` bytes are kept: the request signature and the key derivation are
//! over them, never over a re-encoding.

use super::pb;
use super::pb::license_request::content_identification::ContentIdVariant;
use crate::keyring::KeyId;
use prost::Message;

/// System ID of Widevine-style PSSH boxes (`edef8ba9-79d6-4ace-a3c8-27dcd51d21ed`).
pub const WIDEVINE_SYSTEM_ID: [u8; 16] = [
    0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed,
];
/// System ID of the W3C common PSSH box (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`).
pub const COMMON_SYSTEM_ID: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];

/// Errors of the request codec; each names what is wrong for the problem body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not a protobuf `SignedMessage`, or a nested message is not decodable.
    #[error("{0} is not a valid protobuf message")]
    Protobuf(&'static str),
    /// A `SignedMessage` of a type this endpoint does not take.
    #[error("message type {0} is not a licence or service-certificate request")]
    MessageType(i32),
    /// A mandatory field is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// The request names no key.
    #[error("the content identification names no key id")]
    NoKids,
    /// More KIDs than allowed.
    #[error("the request names more than {0} key ids")]
    TooManyKids(usize),
    /// A key id is not 16 bytes.
    #[error("a key id is {0} bytes, not 16")]
    BadKid(usize),
    /// A PSSH box is truncated or inconsistent.
    #[error("malformed PSSH box: {0}")]
    Pssh(&'static str),
    /// A content identification this server does not support.
    #[error("unsupported content identification: {0}")]
    Unsupported(&'static str),
}

/// A decoded request body.
#[derive(Debug)]
pub enum Incoming {
    /// `SignedMessage{type=SERVICE_CERTIFICATE_REQUEST}` (the two bytes `08 04`).
    ServiceCertificateRequest,
    /// A signed `LicenseRequest` (boxed: it is large and the other variant is empty).
    License(Box<SignedRequest>),
}

/// A licence request and the exact bytes it was decoded from.
#[derive(Debug)]
pub struct SignedRequest {
    /// The exact `SignedMessage.msg` bytes (signed, and the KDF input).
    pub msg: Vec<u8>,
    /// `SignedMessage.signature`.
    pub signature: Vec<u8>,
    /// The decoded `LicenseRequest`.
    pub request: pb::LicenseRequest,
}

/// The licence types a request can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseKind {
    /// STREAMING.
    Streaming,
    /// OFFLINE (persistent).
    Offline,
    /// AUTOMATIC: the CDM decides; never persisted by this server's policy mapping.
    Automatic,
}

impl LicenseKind {
    fn from_wire(v: Option<i32>) -> Self {
        match v.and_then(|v| pb::LicenseType::try_from(v).ok()) {
            Some(pb::LicenseType::Offline) => LicenseKind::Offline,
            Some(pb::LicenseType::Automatic) => LicenseKind::Automatic,
            _ => LicenseKind::Streaming,
        }
    }

    /// The wire value.
    pub fn wire(self) -> pb::LicenseType {
        match self {
            LicenseKind::Streaming => pb::LicenseType::Streaming,
            LicenseKind::Offline => pb::LicenseType::Offline,
            LicenseKind::Automatic => pb::LicenseType::Automatic,
        }
    }
}

/// What a licence request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Content {
    /// A new licence for these KIDs (duplicates folded, request order kept).
    New {
        /// The KIDs.
        kids: Vec<KeyId>,
        /// STREAMING or OFFLINE.
        kind: LicenseKind,
        /// Opaque, mandatory; echoed in `License.id.request_id` (the client finds the
        /// context of its request by it, and cannot use a licence without it).
        request_id: Vec<u8>,
        /// `WidevinePsshData.protection_scheme`, echoed in the licence when present.
        protection_scheme: Option<u32>,
    },
    /// A renewal or release of a licence this server issued.
    Existing(pb::LicenseIdentification),
}

/// Decodes a request body.
pub fn parse(body: &[u8]) -> Result<Incoming, Error> {
    let signed =
        pb::SignedMessage::decode(body).map_err(|_| Error::Protobuf("the SignedMessage"))?;
    match signed.r#type {
        Some(t) if t == pb::signed_message::MessageType::ServiceCertificateRequest as i32 => {
            Ok(Incoming::ServiceCertificateRequest)
        }
        Some(t) if t == pb::signed_message::MessageType::LicenseRequest as i32 => {
            let msg = signed.msg.ok_or(Error::Missing("SignedMessage.msg"))?;
            let signature = signed
                .signature
                .ok_or(Error::Missing("SignedMessage.signature"))?;
            let request = pb::LicenseRequest::decode(&msg[..])
                .map_err(|_| Error::Protobuf("the LicenseRequest"))?;
            Ok(Incoming::License(Box::new(SignedRequest {
                msg,
                signature,
                request,
            })))
        }
        Some(t) => Err(Error::MessageType(t)),
        None => Err(Error::Missing("SignedMessage.type")),
    }
}

/// What the request's content identification asks for.
pub fn content(request: &pb::LicenseRequest, max_kids: usize) -> Result<Content, Error> {
    let variant = request
        .content_id
        .as_ref()
        .and_then(|c| c.content_id_variant.as_ref())
        .ok_or(Error::Missing("LicenseRequest.content_id"))?;
    let mut kids = Kids::new(max_kids);
    let (kind, request_id, scheme) = match variant {
        ContentIdVariant::WidevinePsshData(p) => {
            let mut scheme = None;
            for data in &p.pssh_data {
                scheme = scheme.or(kids.add_pssh_data(data)?);
            }
            (p.license_type, p.request_id.clone(), scheme)
        }
        ContentIdVariant::InitData(i) => {
            if i.init_data_type()
                == pb::license_request::content_identification::init_data::InitDataType::Webm
            {
                kids.push(i.init_data.as_deref().unwrap_or_default())?;
                (i.license_type, i.request_id.clone(), None)
            } else {
                let data = i.init_data.as_deref().ok_or(Error::Missing("init_data"))?;
                let mut scheme = None;
                for b in PsshBoxes(data) {
                    let b = b?;
                    scheme = scheme.or(kids.add_box(&b)?);
                }
                (i.license_type, i.request_id.clone(), scheme)
            }
        }
        ContentIdVariant::WebmKeyId(w) => {
            kids.push(w.header.as_deref().unwrap_or_default())?;
            (w.license_type, w.request_id.clone(), None)
        }
        ContentIdVariant::ExistingLicense(e) => {
            let id = e
                .license_id
                .clone()
                .ok_or(Error::Missing("existing_license.license_id"))?;
            return Ok(Content::Existing(id));
        }
    };
    if kids.0.is_empty() {
        return Err(Error::NoKids);
    }
    Ok(Content::New {
        kids: kids.0,
        kind: LicenseKind::from_wire(kind),
        request_id: request_id
            .filter(|r| !r.is_empty())
            .ok_or(Error::Missing("the content identification's request_id"))?,
        protection_scheme: scheme,
    })
}

struct Kids(Vec<KeyId>, usize);

impl Kids {
    fn new(max: usize) -> Self {
        Self(Vec::new(), max)
    }

    fn push(&mut self, raw: &[u8]) -> Result<(), Error> {
        let bytes: [u8; 16] = raw.try_into().map_err(|_| Error::BadKid(raw.len()))?;
        let kid = KeyId::from_bytes(bytes);
        if !self.0.contains(&kid) {
            if self.0.len() == self.1 {
                return Err(Error::TooManyKids(self.1));
            }
            self.0.push(kid);
        }
        Ok(())
    }

    /// One `pssh_data` entry: the `WidevinePsshData` of a PSSH box (what CDMs send), or,
    /// leniently, whole PSSH boxes (what some players pass through from the init segment).
    fn add_pssh_data(&mut self, data: &[u8]) -> Result<Option<u32>, Error> {
        if data.len() >= 8 && &data[4..8] == b"pssh" {
            let mut scheme = None;
            for b in PsshBoxes(data) {
                scheme = scheme.or(self.add_box(&b?)?);
            }
            return Ok(scheme);
        }
        self.add_widevine_data(data)
    }

    /// The data of a Widevine-style box: a `WidevinePsshData`, never boxes again (one level
    /// of boxes only: nesting would let a 64 KiB body recurse thousands of times).
    fn add_widevine_data(&mut self, data: &[u8]) -> Result<Option<u32>, Error> {
        let wv =
            pb::WidevinePsshData::decode(data).map_err(|_| Error::Protobuf("WidevinePsshData"))?;
        if wv.r#type.unwrap_or(0) != pb::widevine_pssh_data::Type::Single as i32 {
            return Err(Error::Unsupported("entitlement PSSH data"));
        }
        for kid in &wv.key_ids {
            self.push(kid)?;
        }
        Ok(wv.protection_scheme)
    }

    fn add_box(&mut self, b: &PsshBox<'_>) -> Result<Option<u32>, Error> {
        if b.system_id == WIDEVINE_SYSTEM_ID {
            if !b.kids.is_empty() {
                for kid in b.kids.chunks_exact(16) {
                    self.push(kid)?;
                }
            }
            return self.add_widevine_data(b.data);
        }
        if b.system_id == COMMON_SYSTEM_ID {
            for kid in b.kids.chunks_exact(16) {
                self.push(kid)?;
            }
        }
        Ok(None)
    }
}

/// One parsed PSSH box (ISO/IEC 23001-7 §8.1).
#[derive(Debug)]
pub struct PsshBox<'a> {
    /// The DRM system.
    pub system_id: [u8; 16],
    /// v1 KIDs, 16 bytes each, concatenated.
    pub kids: &'a [u8],
    /// System-specific data.
    pub data: &'a [u8],
}

/// Iterates over concatenated PSSH boxes, checking every length against the buffer.
pub struct PsshBoxes<'a>(pub &'a [u8]);

impl<'a> Iterator for PsshBoxes<'a> {
    type Item = Result<PsshBox<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let r = parse_box(self.0);
        match r {
            Ok((b, rest)) => {
                self.0 = rest;
                Some(Ok(b))
            }
            Err(e) => {
                self.0 = &[];
                Some(Err(e))
            }
        }
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

fn parse_box(buf: &[u8]) -> Result<(PsshBox<'_>, &[u8]), Error> {
    if buf.len() < 32 {
        return Err(Error::Pssh("shorter than a box header"));
    }
    let size = be32(buf);
    if size < 32 || size > buf.len() || &buf[4..8] != b"pssh" {
        return Err(Error::Pssh("bad size or type"));
    }
    let (bx, rest) = buf.split_at(size);
    let version = bx[8];
    let mut system_id = [0u8; 16];
    system_id.copy_from_slice(&bx[12..28]);
    let mut at = 28;
    let mut kids: &[u8] = &[];
    if version == 1 {
        let n = be32(&bx[at..at + 4]);
        at += 4;
        let len = n
            .checked_mul(16)
            .filter(|l| at + l + 4 <= size)
            .ok_or(Error::Pssh("KID count exceeds the box"))?;
        kids = &bx[at..at + len];
        at += len;
    } else if version != 0 {
        return Err(Error::Pssh("unknown version"));
    }
    if at + 4 > size {
        return Err(Error::Pssh("no data size"));
    }
    let dlen = be32(&bx[at..at + 4]);
    at += 4;
    if at + dlen != size {
        return Err(Error::Pssh("data size does not match the box size"));
    }
    Ok((
        PsshBox {
            system_id,
            kids,
            data: &bx[at..],
        },
        rest,
    ))
}

/// Builds a PSSH box (v1 when `kids` is non-empty). Used by tests and tools.
pub fn pssh_box(system_id: &[u8; 16], kids: &[KeyId], data: &[u8]) -> Vec<u8> {
    let v1 = !kids.is_empty();
    let size = 32 + if v1 { 4 + 16 * kids.len() } else { 0 } + data.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&[u8::from(v1), 0, 0, 0]);
    out.extend_from_slice(system_id);
    if v1 {
        out.extend_from_slice(&(kids.len() as u32).to_be_bytes());
        for k in kids {
            out.extend_from_slice(k.as_bytes());
        }
    }
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::license_request::ContentIdentification;
    use pb::license_request::content_identification::{InitData, WidevinePsshData};

    fn kid(b: u8) -> KeyId {
        KeyId::from_bytes([b; 16])
    }

    fn request(variant: ContentIdVariant) -> pb::LicenseRequest {
        pb::LicenseRequest {
            content_id: Some(ContentIdentification {
                content_id_variant: Some(variant),
            }),
            ..Default::default()
        }
    }

    fn wv_data(kids: &[KeyId]) -> Vec<u8> {
        pb::WidevinePsshData {
            key_ids: kids.iter().map(|k| k.as_bytes().to_vec()).collect(),
            protection_scheme: Some(0x6365_6e63),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn service_certificate_request_is_two_bytes() {
        assert!(matches!(
            parse(&[0x08, 0x04]).unwrap(),
            Incoming::ServiceCertificateRequest
        ));
        assert_eq!(parse(&[0x08, 0x02]).unwrap_err(), Error::MessageType(2));
        assert_eq!(
            parse(&[0x08, 0x01]).unwrap_err(),
            Error::Missing("SignedMessage.msg")
        );
        assert!(matches!(parse(&[0xff]), Err(Error::Protobuf(_))));
    }

    #[test]
    fn kids_from_every_content_identification() {
        let r = request(ContentIdVariant::WidevinePsshData(WidevinePsshData {
            pssh_data: vec![wv_data(&[kid(1), kid(2), kid(1)])],
            license_type: Some(pb::LicenseType::Offline as i32),
            request_id: Some(b"rid".to_vec()),
        }));
        assert_eq!(
            content(&r, 8).unwrap(),
            Content::New {
                kids: vec![kid(1), kid(2)],
                kind: LicenseKind::Offline,
                request_id: b"rid".to_vec(),
                protection_scheme: Some(0x6365_6e63),
            }
        );
        assert_eq!(content(&r, 1).unwrap_err(), Error::TooManyKids(1));

        // CENC init data: a Widevine box plus a common-system box.
        let mut init = pssh_box(&WIDEVINE_SYSTEM_ID, &[], &wv_data(&[kid(3)]));
        init.extend(pssh_box(&COMMON_SYSTEM_ID, &[kid(4)], &[]));
        let r = request(ContentIdVariant::InitData(InitData {
            init_data: Some(init.clone()),
            request_id: Some(b"r".to_vec()),
            ..Default::default()
        }));
        let Content::New { kids, kind, .. } = content(&r, 8).unwrap() else {
            panic!()
        };
        assert_eq!((kids, kind), (vec![kid(3), kid(4)], LicenseKind::Streaming));

        // Truncations anywhere but the box boundary are errors, never panics.
        let first = u32::from_be_bytes(init[..4].try_into().unwrap()) as usize;
        for cut in (1..init.len()).filter(|&c| c != first) {
            let r = request(ContentIdVariant::InitData(InitData {
                init_data: Some(init[..cut].to_vec()),
                request_id: Some(b"r".to_vec()),
                ..Default::default()
            }));
            assert!(content(&r, 8).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn boxes_nest_one_level_only_and_request_id_is_mandatory() {
        let mut nested = pssh_box(&WIDEVINE_SYSTEM_ID, &[], &wv_data(&[kid(1)]));
        for _ in 0..3000 {
            nested = pssh_box(&WIDEVINE_SYSTEM_ID, &[], &nested);
        }
        let r = request(ContentIdVariant::WidevinePsshData(WidevinePsshData {
            pssh_data: vec![nested],
            request_id: Some(b"r".to_vec()),
            ..Default::default()
        }));
        assert_eq!(
            content(&r, 8).unwrap_err(),
            Error::Protobuf("WidevinePsshData")
        );
        let r = request(ContentIdVariant::WidevinePsshData(WidevinePsshData {
            pssh_data: vec![wv_data(&[kid(1)])],
            ..Default::default()
        }));
        assert!(matches!(content(&r, 8).unwrap_err(), Error::Missing(_)));
    }

    #[test]
    fn bad_kids_and_missing_content() {
        let r = request(ContentIdVariant::WidevinePsshData(WidevinePsshData {
            pssh_data: vec![
                pb::WidevinePsshData {
                    key_ids: vec![vec![1; 15]],
                    ..Default::default()
                }
                .encode_to_vec(),
            ],
            ..Default::default()
        }));
        assert_eq!(content(&r, 8).unwrap_err(), Error::BadKid(15));
        let r = request(ContentIdVariant::WidevinePsshData(
            WidevinePsshData::default(),
        ));
        assert_eq!(content(&r, 8).unwrap_err(), Error::NoKids);
        assert_eq!(
            content(&pb::LicenseRequest::default(), 8).unwrap_err(),
            Error::Missing("LicenseRequest.content_id")
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(Incoming::License(r)) = parse(&body) {
                let _ = content(&r.request, 16);
            }
        }
    }
}
