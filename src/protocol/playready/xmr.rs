//! XMR licences (docs/playready.md §2.7, §1.2): one licence per
//! content key, its key ElGamal-encrypted to the device's ENCRYPT_KEY, and an AES-CMAC
//! integrity signature, keyed with a fresh integrity key that travels with the content key,
//! as the last object.
//!
//! Only object types the reference client parses are emitted (§2.7's list): an unknown leaf
//! derails its flattened parser. Containers carry flags 2 (container) and leaves flag 1
//! (must understand). Pure: randomness comes from the crypto module, time from the caller.

use crate::crypto::ecc::{self, EccPrivateKey, Point};
use crate::crypto::symmetric::aes128_cmac;
use zeroize::Zeroizing;

/// Object types used here.
pub mod object {
    /// Everything but the header.
    pub const OUTER_CONTAINER: u16 = 0x0001;
    /// Licence-wide policy.
    pub const GLOBAL_POLICY_CONTAINER: u16 = 0x0002;
    /// Playback policy.
    pub const PLAYBACK_POLICY_CONTAINER: u16 = 0x0004;
    /// Output protection levels.
    pub const OUTPUT_PROTECTION: u16 = 0x0005;
    /// Key material.
    pub const KEY_MATERIAL_CONTAINER: u16 = 0x0009;
    /// The encrypted content key.
    pub const CONTENT_KEY: u16 = 0x000A;
    /// The integrity signature (AES-CMAC), last.
    pub const SIGNATURE: u16 = 0x000B;
    /// Rights flags.
    pub const SETTINGS: u16 = 0x000D;
    /// Begin and end of validity.
    pub const EXPIRATION: u16 = 0x0012;
    /// Issue time.
    pub const ISSUEDATE: u16 = 0x0013;
    /// The device key the content key is encrypted to.
    pub const ECC_DEVICE_KEY: u16 = 0x002A;
    /// Seconds of validity after first playback.
    pub const EXPIRATION_AFTER_FIRSTPLAY: u16 = 0x0030;
    /// Minimum security level.
    pub const SECURITY_LEVEL: u16 = 0x0034;
}

/// Rights flag (`XMR_GLOBAL_RIGHTS_SETTINGS`): the licence must not be stored (a
/// non-persistent licence). One of the three flags valid in XMR v3.
pub const RIGHTS_CANNOT_PERSIST: u16 = 0x0001;
/// Content key encryption: ElGamal on P-256 (`cipher_type` 3).
const CIPHER_ECC_256: u16 = 3;
const FLAG_LEAF: u16 = 0x0001;
const FLAG_CONTAINER: u16 = 0x0002;
const HEADER_LEN: usize = 24;
const XMR_VERSION: u32 = 3;

/// Content key types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// AES-128-CTR ('cenc').
    AesCtr = 1,
    /// AES-128-CBC ('cbcs').
    AesCbc = 5,
}

/// Output protection levels, in the OUTPUT_PROTECTION object's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opl {
    /// Compressed digital video.
    pub compressed_digital_video: u16,
    /// Uncompressed digital video (HDCP).
    pub uncompressed_digital_video: u16,
    /// Analog video.
    pub analog_video: u16,
    /// Compressed digital audio.
    pub compressed_digital_audio: u16,
    /// Uncompressed digital audio.
    pub uncompressed_digital_audio: u16,
}

impl Default for Opl {
    /// The least restrictive levels of the compliance rules (video 400/100/100, audio
    /// 100/100).
    fn default() -> Self {
        Self {
            compressed_digital_video: 400,
            uncompressed_digital_video: 100,
            analog_video: 100,
            compressed_digital_audio: 100,
            uncompressed_digital_audio: 100,
        }
    }
}

/// One licence to build. No `Debug`: it holds the content key.
pub struct Spec<'a> {
    /// Licence id (random per licence).
    pub rights_id: [u8; 16],
    /// KID, GUID-LE (the WRMHEADER's bytes).
    pub kid: [u8; 16],
    /// Content key type.
    pub key_type: KeyType,
    /// The content key.
    pub content_key: &'a [u8; 16],
    /// The device's ENCRYPT_KEY.
    pub device_key: &'a Point,
    /// Minimum security level (150, 2000, 3000).
    pub security_level: u16,
    /// Issue time, Unix seconds.
    pub issued_at: u32,
    /// May the client store the licence?
    pub persistent: bool,
    /// `(begin, end)`, Unix seconds, when the licence ends.
    pub expiration: Option<(u32, u32)>,
    /// Seconds the licence lasts after first playback.
    pub after_first_play: Option<u32>,
    /// Output protection levels.
    pub opl: Opl,
}

/// Errors of the XMR codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not an XMR licence this module reads.
    #[error("malformed XMR licence: {0}")]
    Malformed(&'static str),
    /// The integrity signature does not match.
    #[error("the XMR integrity signature does not match")]
    Integrity,
    /// The licence is for another device key.
    #[error("the licence is bound to another device key")]
    WrongDevice,
    /// P-256 failed.
    #[error(transparent)]
    Ecc(#[from] ecc::Error),
}

fn object(out: &mut Vec<u8>, flags: u16, kind: u16, payload: &[u8]) {
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

fn be<const N: usize>(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(N);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// The point whose X is `CI‖CK` for a fresh integrity key CI: CI is drawn until such a point
/// exists (half of all values) and never starts with a zero byte, which the reference client
/// would lose when it rebuilds X from an integer (§2.7).
fn key_point(ck: &[u8; 16]) -> Result<(Zeroizing<[u8; 16]>, Zeroizing<Point>), Error> {
    // 2^-64 chance of needing more than 64 draws.
    for _ in 0..64 {
        let ci =
            Zeroizing::new(crate::crypto::random_array::<16>().map_err(|_| ecc::Error::Internal)?);
        if ci[0] == 0 {
            continue;
        }
        let mut x = Zeroizing::new([0u8; 32]);
        x[..16].copy_from_slice(&*ci);
        x[16..].copy_from_slice(ck);
        if let Some(m) = ecc::point_from_x(&x)? {
            return Ok((ci, Zeroizing::new(m)));
        }
    }
    Err(ecc::Error::Internal.into())
}

/// Builds one licence.
pub fn build(spec: &Spec<'_>) -> Result<Vec<u8>, Error> {
    let (ci, m) = key_point(spec.content_key)?;
    let encrypted = ecc::elgamal_encrypt(spec.device_key, &m)?;

    let mut global = Vec::with_capacity(64);
    object(
        &mut global,
        FLAG_LEAF,
        object::SECURITY_LEVEL,
        &spec.security_level.to_be_bytes(),
    );
    object(
        &mut global,
        FLAG_LEAF,
        object::ISSUEDATE,
        &spec.issued_at.to_be_bytes(),
    );
    let rights = if spec.persistent {
        0
    } else {
        RIGHTS_CANNOT_PERSIST
    };
    object(
        &mut global,
        FLAG_LEAF,
        object::SETTINGS,
        &rights.to_be_bytes(),
    );
    if let Some((begin, end)) = spec.expiration {
        object(
            &mut global,
            FLAG_LEAF,
            object::EXPIRATION,
            &be::<8>(&[&begin.to_be_bytes(), &end.to_be_bytes()]),
        );
    }
    if let Some(secs) = spec.after_first_play {
        object(
            &mut global,
            FLAG_LEAF,
            object::EXPIRATION_AFTER_FIRSTPLAY,
            &secs.to_be_bytes(),
        );
    }
    let o = &spec.opl;
    let mut playback = Vec::with_capacity(18);
    object(
        &mut playback,
        FLAG_LEAF,
        object::OUTPUT_PROTECTION,
        &be::<10>(&[
            &o.compressed_digital_video.to_be_bytes(),
            &o.uncompressed_digital_video.to_be_bytes(),
            &o.analog_video.to_be_bytes(),
            &o.compressed_digital_audio.to_be_bytes(),
            &o.uncompressed_digital_audio.to_be_bytes(),
        ]),
    );
    let mut keys = Vec::with_capacity(234);
    object(
        &mut keys,
        FLAG_LEAF,
        object::CONTENT_KEY,
        &be::<150>(&[
            &spec.kid,
            &(spec.key_type as u16).to_be_bytes(),
            &CIPHER_ECC_256.to_be_bytes(),
            &128u16.to_be_bytes(),
            &encrypted,
        ]),
    );
    object(
        &mut keys,
        FLAG_LEAF,
        object::ECC_DEVICE_KEY,
        &be::<68>(&[&1u16.to_be_bytes(), &64u16.to_be_bytes(), spec.device_key]),
    );

    let mut inner = Vec::with_capacity(400);
    object(
        &mut inner,
        FLAG_CONTAINER,
        object::GLOBAL_POLICY_CONTAINER,
        &global,
    );
    object(
        &mut inner,
        FLAG_CONTAINER,
        object::PLAYBACK_POLICY_CONTAINER,
        &playback,
    );
    object(
        &mut inner,
        FLAG_CONTAINER,
        object::KEY_MATERIAL_CONTAINER,
        &keys,
    );
    // The outer length counts the signature object, which is appended after the MAC is
    // computed over everything before it.
    const SIGNATURE_LEN: usize = 8 + 4 + 16;
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + inner.len() + SIGNATURE_LEN);
    out.extend_from_slice(b"XMR\0");
    out.extend_from_slice(&XMR_VERSION.to_be_bytes());
    out.extend_from_slice(&spec.rights_id);
    out.extend_from_slice(&FLAG_CONTAINER.to_be_bytes());
    out.extend_from_slice(&object::OUTER_CONTAINER.to_be_bytes());
    out.extend_from_slice(&((8 + inner.len() + SIGNATURE_LEN) as u32).to_be_bytes());
    out.extend_from_slice(&inner);
    let mac = aes128_cmac(&ci, &[&out]);
    object(
        &mut out,
        FLAG_LEAF,
        object::SIGNATURE,
        &be::<20>(&[&1u16.to_be_bytes(), &16u16.to_be_bytes(), &mac]),
    );
    Ok(out)
}

/// A parsed licence: every object (type and payload range), depth first, and where the
/// signature object starts.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The licence bytes.
    pub bytes: &'a [u8],
    /// Rights id.
    pub rights_id: [u8; 16],
    /// `(type, payload)` of every object, containers included.
    pub objects: Vec<(u16, &'a [u8])>,
}

impl<'a> Parsed<'a> {
    /// The first object of a type.
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.objects
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
    }
}

/// Parses a licence (structure only).
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, Error> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != b"XMR\0" {
        return Err(Error::Malformed("no XMR header"));
    }
    let mut rights_id = [0u8; 16];
    rights_id.copy_from_slice(&bytes[8..24]);
    let mut objects = Vec::new();
    walk(bytes, HEADER_LEN, bytes.len(), 0, &mut objects)?;
    Ok(Parsed {
        bytes,
        rights_id,
        objects,
    })
}

fn walk<'a>(
    bytes: &'a [u8],
    mut at: usize,
    end: usize,
    depth: usize,
    out: &mut Vec<(u16, &'a [u8])>,
) -> Result<(), Error> {
    if depth > 8 {
        return Err(Error::Malformed("nested too deep"));
    }
    while at < end {
        let h = bytes
            .get(at..at + 8)
            .ok_or(Error::Malformed("truncated object header"))?;
        let flags = u16::from_be_bytes([h[0], h[1]]);
        let kind = u16::from_be_bytes([h[2], h[3]]);
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let stop = at
            .checked_add(len)
            .filter(|s| len >= 8 && *s <= end)
            .ok_or(Error::Malformed("object length"))?;
        out.push((kind, &bytes[at + 8..stop]));
        if flags & FLAG_CONTAINER != 0 {
            walk(bytes, at + 8, stop, depth + 1, out)?;
        }
        at = stop;
    }
    Ok(())
}

/// What a device recovers from a licence. `Debug` leaves the key out.
pub struct Opened {
    /// KID, GUID-LE.
    pub kid: [u8; 16],
    /// Key type.
    pub key_type: u16,
    /// The content key.
    pub key: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("kid", &crate::encoding::hex_encode(&self.kid))
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

/// The device side: decrypts the content key with the device's ENCRYPT_KEY private key and
/// checks the integrity signature (the load-test client, unit tests and the fuzz target use
/// it; the server never does).
pub fn open(bytes: &[u8], device: &EccPrivateKey) -> Result<Opened, Error> {
    let parsed = parse(bytes)?;
    let ck = parsed
        .get(object::CONTENT_KEY)
        .filter(|p| p.len() == 150)
        .ok_or(Error::Malformed("no content key"))?;
    let dk = parsed
        .get(object::ECC_DEVICE_KEY)
        .filter(|p| p.len() == 68)
        .ok_or(Error::Malformed("no device key"))?;
    if &dk[4..] != device.public() {
        return Err(Error::WrongDevice);
    }
    let sig = parsed
        .get(object::SIGNATURE)
        .filter(|p| p.len() == 20)
        .ok_or(Error::Malformed("no signature"))?;
    let sig_at = bytes.len() - 28;
    if !std::ptr::eq(sig.as_ptr(), bytes[sig_at + 8..].as_ptr()) {
        return Err(Error::Malformed("the signature is not the last object"));
    }
    let ct: &[u8; 128] = ck[22..]
        .try_into()
        .map_err(|_| Error::Malformed("content key length"))?;
    let m = device.elgamal_decrypt(ct)?;
    let mut ci = Zeroizing::new([0u8; 16]);
    ci.copy_from_slice(&m[..16]);
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&m[16..32]);
    let mac = aes128_cmac(&ci, &[&bytes[..sig_at]]);
    if !crate::crypto::ct_eq(&mac, &sig[4..]) {
        return Err(Error::Integrity);
    }
    let mut kid = [0u8; 16];
    kid.copy_from_slice(&ck[..16]);
    Ok(Opened {
        kid,
        key_type: u16::from_be_bytes([ck[16], ck[17]]),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(key: &'a [u8; 16], device: &'a Point) -> Spec<'a> {
        Spec {
            rights_id: [7; 16],
            kid: [1; 16],
            key_type: KeyType::AesCtr,
            content_key: key,
            device_key: device,
            security_level: 2000,
            issued_at: 1_700_000_000,
            persistent: false,
            expiration: None,
            after_first_play: None,
            opl: Opl::default(),
        }
    }

    #[test]
    fn layout_matches_the_recorded_licence() {
        let device = EccPrivateKey::generate().unwrap();
        let key = [0x42; 16];
        let xmr = build(&spec(&key, device.public())).unwrap();
        // §2.7's licence: 368 bytes with this object set, offsets as recorded.
        assert_eq!(xmr.len(), 368);
        let p = parse(&xmr).unwrap();
        let kinds: Vec<u16> = p.objects.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                0x0001, 0x0002, 0x0034, 0x0013, 0x000D, 0x0004, 0x0005, 0x0009, 0x000A, 0x002A,
                0x000B
            ]
        );
        assert_eq!(&xmr[24..32], &[0, 2, 0, 1, 0, 0, 1, 0x58]); // outer, 344 bytes
        assert_eq!(&xmr[340..348], &[0, 1, 0, 0x0B, 0, 0, 0, 28]); // signature last
        assert_eq!(p.get(object::SETTINGS), Some(&[0u8, 1][..]));
        let opened = open(&xmr, &device).unwrap();
        assert_eq!(*opened.key, key);
        assert_eq!(opened.kid, [1; 16]);
        assert_eq!(opened.key_type, 1);
    }

    #[test]
    fn policy_objects_and_integrity() {
        let device = EccPrivateKey::generate().unwrap();
        let key = [0x24; 16];
        let mut s = spec(&key, device.public());
        s.persistent = true;
        s.expiration = Some((1_700_000_000, 1_700_086_400));
        s.after_first_play = Some(3600);
        s.key_type = KeyType::AesCbc;
        let xmr = build(&s).unwrap();
        let p = parse(&xmr).unwrap();
        assert_eq!(p.get(object::SETTINGS), Some(&[0u8, 0][..]));
        assert_eq!(
            p.get(object::EXPIRATION).unwrap(),
            &[
                1_700_000_000u32.to_be_bytes(),
                1_700_086_400u32.to_be_bytes()
            ]
            .concat()[..]
        );
        assert_eq!(
            p.get(object::EXPIRATION_AFTER_FIRSTPLAY),
            Some(&3600u32.to_be_bytes()[..])
        );
        assert_eq!(open(&xmr, &device).unwrap().key_type, 5);
        // Any change to the MACed part is detected (or breaks the structure).
        for at in [30, 60, 90, 110] {
            let mut bad = xmr.clone();
            bad[at] ^= 1;
            assert!(open(&bad, &device).is_err(), "{at}");
        }
        let other = EccPrivateKey::generate().unwrap();
        assert_eq!(open(&xmr, &other).unwrap_err(), Error::WrongDevice);
        // A fresh integrity key each time: two licences of one key differ.
        assert_ne!(build(&s).unwrap(), xmr);
    }
}
