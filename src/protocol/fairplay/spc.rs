//! SPC: container (`docs/fairplay.md` §2), TLLV catalogue and checks (§4, §5) and the
//! [SK..R1] opening (§6). Pure.

use super::Error;
use super::tllv::{self, Tllv};
use crate::crypto::rsa::RsaPrivateKey;
use crate::crypto::{ct_eq, symmetric};
use zeroize::Zeroizing;

/// Largest SPC accepted (Apple's are 2 to 4 KiB).
pub const MAX_SPC: usize = 64 * 1024;

/// SPC TLLV tags (§4).
#[allow(missing_docs)]
pub mod tag {
    pub const SK_R1: u64 = 0x3d1a10b8bffac2ec;
    pub const SK_R1_INTEGRITY: u64 = 0xb349d4809e910687;
    pub const ANTI_REPLAY: u64 = 0x89c90f12204106b2;
    pub const R2: u64 = 0x71b5595ac1521133;
    pub const ASSET_ID: u64 = 0x1bf7f53f5d5d5a1f;
    pub const TRANSACTION_ID: u64 = 0x47aa7ad3440577de;
    pub const VERSIONS_SUPPORTED: u64 = 0x67b8fb79ecce1a13;
    pub const VERSION_USED: u64 = 0x5d81bcbcc7f61703;
    pub const RETURN_REQUEST: u64 = 0x19f9d4e5ab7609cb;
    pub const STREAMING_INDICATOR: u64 = 0xabb0256a31843974;
    pub const PLAYBACK_STATE: u64 = 0xeb8efdf2b25ab3a0;
    pub const CAPABILITIES: u64 = 0x9c02af3253c07fb2;
}

/// Protocol versions this KSM speaks.
pub const SERVER_VERSIONS: [u32; 1] = [1];

/// Container version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpcVersion {
    /// RSA-1024, OAEP-SHA1.
    V1,
    /// RSA-2048, OAEP-SHA256.
    V2,
    /// RSA-2048, OAEP-SHA256, derived keys and an AES-CMAC transport tag.
    V3,
}

/// The parts of a container, borrowing the request.
#[derive(Debug)]
pub struct Container<'a> {
    /// Version.
    pub version: SpcVersion,
    /// Payload IV (v1, v2).
    pub iv: [u8; 16],
    /// Protocol UUID (v3).
    pub uuid: [u8; 16],
    /// Wrapped key: SPCK (v1, v2) or the master key M (v3).
    pub wrapped: &'a [u8],
    /// Certificate hash: SHA-1 (v1, v2) or SHA-256 (v3) of the certificate DER.
    pub cert_hash: &'a [u8],
    /// Encrypted TLLV payload.
    pub payload: &'a [u8],
    /// v3: the MACed bytes (wrapped key through payload) and the tag.
    pub mac: Option<(&'a [u8], [u8; 16])>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(Error::Parser("truncated SPC"))
}

fn arr16(b: &[u8], at: usize) -> Result<[u8; 16], Error> {
    b.get(at..at + 16)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Parser("truncated SPC"))
}

/// Splits a container; sizes must add up exactly.
pub fn parse_container(spc: &[u8]) -> Result<Container<'_>, Error> {
    if spc.len() > MAX_SPC {
        return Err(Error::Parser("SPC larger than 64 KiB"));
    }
    let version = u32_at(spc, 0)?;
    let (version, wrapped_len, hash_len, header) = match version {
        1 => (SpcVersion::V1, 128, 20, 176),
        2 => (SpcVersion::V2, 256, 20, 304),
        3 => (SpcVersion::V3, 256, 32, 328),
        v => return Err(Error::SpcVersion(v)),
    };
    let n = u32_at(spc, header - 4)? as usize;
    if n == 0 || !n.is_multiple_of(16) {
        return Err(Error::Parser(
            "payload length not a positive multiple of 16",
        ));
    }
    let trailer = if version == SpcVersion::V3 { 16 } else { 0 };
    if header.checked_add(n).and_then(|x| x.checked_add(trailer)) != Some(spc.len()) {
        return Err(Error::Parser(
            "SPC length does not match its payload length",
        ));
    }
    let wrapped = &spc[24..24 + wrapped_len];
    let cert_hash = &spc[24 + wrapped_len..24 + wrapped_len + hash_len];
    let payload = &spc[header..header + n];
    let (iv, uuid, mac) = match version {
        SpcVersion::V3 => {
            if spc[312..324].iter().any(|&b| b != 0) {
                return Err(Error::Parser("v3 padding bytes not zero"));
            }
            let tag = arr16(spc, header + n)?;
            ([0; 16], arr16(spc, 8)?, Some((&spc[24..header + n], tag)))
        }
        _ => (arr16(spc, 8)?, [0; 16], None),
    };
    Ok(Container {
        version,
        iv,
        uuid,
        wrapped,
        cert_hash,
        payload,
        mac,
    })
}

/// The public constants of a v3 profile: protocol UUID and the three key-derivation seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V3Params {
    /// Protocol UUID the SPC must carry.
    pub uuid: [u8; 16],
    /// Seed of the payload key.
    pub key_seed: [u8; 16],
    /// Seed of the payload IV.
    pub iv_seed: [u8; 16],
    /// Seed of the CMAC key.
    pub integrity_seed: [u8; 16],
}

/// The Tessera v3-T constants: `SHA-256("TESSERA-FPS-" ‖ label)[0:16]` (§9.6).
pub fn tessera_v3() -> V3Params {
    let c = |label: &str| {
        let d = crate::crypto::sha256(format!("TESSERA-FPS-{label}").as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    };
    V3Params {
        uuid: c("V3-PROTOCOL-UUID"),
        key_seed: c("V3-ENC-KEY-SEED"),
        iv_seed: c("V3-ENC-IV-SEED"),
        integrity_seed: c("V3-INTEGRITY-SEED"),
    }
}

/// Unwraps the container's key with the credential's private key and decrypts the payload.
/// Every unwrap failure, and a key of the wrong size for the version, is the same
/// [`Error::Certificate`].
pub fn decrypt(
    c: &Container<'_>,
    private: &RsaPrivateKey,
    v3: Option<&V3Params>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bits_ok = match c.version {
        SpcVersion::V1 => private.bits() == 1024,
        SpcVersion::V2 | SpcVersion::V3 => private.bits() == 2048,
    };
    let unwrapped = match c.version {
        SpcVersion::V1 => private.decrypt_oaep_sha1(c.wrapped),
        _ => private.decrypt_oaep_sha256(c.wrapped),
    };
    let key: Zeroizing<[u8; 16]> = match unwrapped {
        Ok(k) if bits_ok && k.len() == 16 => {
            Zeroizing::new(k[..].try_into().map_err(|_| Error::Certificate)?)
        }
        _ => return Err(Error::Certificate),
    };
    let (k, iv) = match (c.version, c.mac) {
        (SpcVersion::V3, Some((input, tag))) => {
            let p = v3.ok_or(Error::Version)?;
            if !ct_eq(&c.uuid, &p.uuid) {
                return Err(Error::Version);
            }
            let k_int = Zeroizing::new(symmetric::aes128_ecb_block(&key, &p.integrity_seed));
            if !ct_eq(&symmetric::aes128_cmac(&k_int, &[input]), &tag) {
                return Err(Error::Integrity);
            }
            (
                Zeroizing::new(symmetric::aes128_ecb_block(&key, &p.key_seed)),
                symmetric::aes128_ecb_block(&key, &p.iv_seed),
            )
        }
        _ => (key, c.iv),
    };
    symmetric::aes128_cbc_decrypt_nopad(&k, &iv, c.payload)
        .map_err(|_| Error::Parser("payload not block aligned"))
}

/// The SPC's fields that the KSM uses, checked (§4, §5 step 6).
#[derive(Debug)]
pub struct Spc<'a> {
    /// Every TLLV, unknown ones included.
    pub tllvs: Vec<Tllv<'a>>,
    /// [SK..R1]: IV ‖ 96 encrypted bytes.
    pub sk_r1: &'a [u8],
    /// Its integrity value.
    pub sk_r1_integrity: [u8; 16],
    /// Anti-replay seed.
    pub anti_replay: [u8; 16],
    /// R2, input to D.
    pub r2: &'a [u8],
    /// Asset ID (2..=200 bytes).
    pub asset_id: &'a [u8],
    /// Transaction ID.
    pub transaction_id: [u8; 8],
    /// Tags the CKC must echo, in order.
    pub return_request: Vec<u64>,
    /// Media playback state, when sent: (creation date, state, session id).
    pub playback_state: Option<(u32, u32, u64)>,
    /// Capability flags, when sent.
    pub capabilities: Option<u128>,
}

fn exact<'a>(tllvs: &[Tllv<'a>], tag: u64, len: usize) -> Result<&'a [u8], Error> {
    let v = tllv::find(tllvs, tag).ok_or(Error::MissingTag(tag))?;
    if v.len() != len {
        return Err(Error::Parser("TLLV of the wrong size"));
    }
    Ok(v)
}

fn optional<'a>(tllvs: &[Tllv<'a>], tag: u64, len: usize) -> Result<Option<&'a [u8]>, Error> {
    match tllv::find(tllvs, tag) {
        Some(v) if v.len() != len => Err(Error::Parser("TLLV of the wrong size")),
        other => Ok(other),
    }
}

/// Parses and checks a decrypted payload: the mandatory set with exact sizes, the asset ID
/// size, the protocol version (the best both sides support) and the return request.
pub fn parse(payload: &[u8]) -> Result<Spc<'_>, Error> {
    let tllvs = tllv::parse(payload)?;
    let sk_r1 = exact(&tllvs, tag::SK_R1, 112)?;
    let integrity = exact(&tllvs, tag::SK_R1_INTEGRITY, 16)?;
    let ar = exact(&tllvs, tag::ANTI_REPLAY, 16)?;
    let r2 = exact(&tllvs, tag::R2, 21)?;
    let asset_id = tllv::find(&tllvs, tag::ASSET_ID).ok_or(Error::MissingTag(tag::ASSET_ID))?;
    if !(2..=200).contains(&asset_id.len()) {
        return Err(Error::Param("asset ID must be 2 to 200 bytes"));
    }
    let transaction = exact(&tllvs, tag::TRANSACTION_ID, 8)?;
    let supported = tllv::find(&tllvs, tag::VERSIONS_SUPPORTED)
        .ok_or(Error::MissingTag(tag::VERSIONS_SUPPORTED))?;
    if supported.is_empty() || supported.len() % 4 != 0 {
        return Err(Error::Parser("versions list not a list of u32"));
    }
    let used = exact(&tllvs, tag::VERSION_USED, 4)?;
    let used = u32::from_be_bytes(used.try_into().map_err(|_| Error::Internal)?);
    let best = supported
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
        .filter(|v| SERVER_VERSIONS.contains(v))
        .max();
    if best != Some(used) {
        return Err(Error::Version);
    }
    let rr =
        tllv::find(&tllvs, tag::RETURN_REQUEST).ok_or(Error::MissingTag(tag::RETURN_REQUEST))?;
    if rr.len() % 8 != 0 {
        return Err(Error::Parser("return request not a list of u64"));
    }
    let mut return_request = Vec::with_capacity(rr.len() / 8);
    for c in rr.chunks_exact(8) {
        let t = u64::from_be_bytes(c.try_into().map_err(|_| Error::Internal)?);
        if tllv::find(&tllvs, t).is_none() {
            return Err(Error::MissingTag(t));
        }
        if !return_request.contains(&t) {
            return_request.push(t);
        }
    }
    let playback_state = optional(&tllvs, tag::PLAYBACK_STATE, 16)?.map(|v| {
        (
            u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
            u64::from_be_bytes([v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]]),
        )
    });
    let capabilities = optional(&tllvs, tag::CAPABILITIES, 16)?
        .and_then(|v| v.try_into().ok())
        .map(u128::from_be_bytes);
    optional(&tllvs, tag::STREAMING_INDICATOR, 8)?;
    Ok(Spc {
        sk_r1,
        sk_r1_integrity: integrity.try_into().map_err(|_| Error::Internal)?,
        anti_replay: ar.try_into().map_err(|_| Error::Internal)?,
        r2,
        asset_id,
        transaction_id: transaction.try_into().map_err(|_| Error::Internal)?,
        return_request,
        playback_state,
        capabilities,
        tllvs,
    })
}

/// What [SK..R1] protects. Zeroized on drop; `Debug` shows only HU.
pub struct Session {
    /// Session key: wraps the content key.
    pub sk: Zeroizing<[u8; 16]>,
    /// Device identifier hash.
    pub hu: [u8; 20],
    /// R1: keys the CKC and proves it answers this SPC.
    pub r1: Zeroizing<[u8; 44]>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("hu", &crate::encoding::hex_encode(&self.hu))
            .finish_non_exhaustive()
    }
}

/// Opens [SK..R1] with DASk and checks its integrity field (constant time). The field is the
/// last CBC block, so it proves DASk was right, not that [SK..R1] is intact (§6).
pub fn open_session(spc: &Spc<'_>, dask: &[u8; 16]) -> Result<Session, Error> {
    let iv: [u8; 16] = spc.sk_r1[..16].try_into().map_err(|_| Error::Internal)?;
    let clear = symmetric::aes128_cbc_decrypt_nopad(dask, &iv, &spc.sk_r1[16..])
        .map_err(|_| Error::Internal)?;
    if !ct_eq(&clear[80..96], &spc.sk_r1_integrity) {
        return Err(Error::Integrity);
    }
    let mut sk = Zeroizing::new([0u8; 16]);
    sk.copy_from_slice(&clear[0..16]);
    let mut hu = [0u8; 20];
    hu.copy_from_slice(&clear[16..36]);
    let mut r1 = Zeroizing::new([0u8; 44]);
    r1.copy_from_slice(&clear[36..80]);
    Ok(Session { sk, hu, r1 })
}
