//! CKC: TLLVs (`docs/fairplay.md` §7.2) and container (§7.1). Pure but for randomness.

use super::spc::{Session, Spc};
use super::{Error, tllv};
use crate::crypto::symmetric;
use zeroize::Zeroizing;

/// CKC TLLV tags (§7.2).
#[allow(missing_docs)]
pub mod tag {
    pub const CONTENT_KEY: u64 = 0x58b38165af0e3d5a;
    pub const R1: u64 = 0xea74c4645d5efee9;
    pub const HDCP: u64 = 0x2e52f1530d8ddb4a;
    pub const KEY_DURATION: u64 = 0x47acf6a418cd091a;
    pub const OFFLINE_KEY: u64 = 0x6375d9727060218c;
}

/// Key types of the key-duration TLLV.
#[allow(missing_docs)]
pub mod key_type {
    pub const LEASE: u32 = 0x1a4bde7e;
    pub const RENTAL: u32 = 0x3dfe45a0;
    pub const LEASE_AND_RENTAL: u32 = 0x27b59bde;
    pub const PERSISTENCE: u32 = 0x3df2d9fb;
    pub const PERSISTENCE_WITH_DURATION: u32 = 0x18f06048;
}

/// How long a key may be used, in Tessera's terms (§7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duration {
    /// Streaming without a time limit: no duration TLLV.
    Unlimited,
    /// A lease of `lease` seconds and/or a rental window of `rental` seconds (0 = none).
    Streaming {
        /// Lease, seconds (renewed while playing).
        lease: u32,
        /// Rental window, seconds.
        rental: u32,
    },
    /// A persistent (offline) key: storage and playback windows, seconds (0 = unlimited).
    Persistent {
        /// How long the key may be stored.
        storage: u32,
        /// How long playback may last once started.
        playback: u32,
    },
}

/// The duration TLLV for `d`, if any (§7.3). Only an SPC that carried a media playback
/// state gets one; offline keys use the offline-key TLLV when the device announced it
/// (capability bit 1), else the key-duration TLLV older clients read.
pub fn duration_tllv(
    d: Duration,
    has_playback_state: bool,
    capabilities: Option<u128>,
) -> Option<(u64, Vec<u8>)> {
    if !has_playback_state {
        return None;
    }
    let key_duration = |lease: u32, rental: u32, kind: u32| {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&lease.to_be_bytes());
        v.extend_from_slice(&rental.to_be_bytes());
        v.extend_from_slice(&kind.to_be_bytes());
        v.extend_from_slice(&0x86d34a3au32.to_be_bytes());
        (tag::KEY_DURATION, v)
    };
    match d {
        Duration::Unlimited => None,
        Duration::Streaming {
            lease: 0,
            rental: 0,
        } => None,
        Duration::Streaming { lease, rental: 0 } => Some(key_duration(lease, 0, key_type::LEASE)),
        Duration::Streaming { lease: 0, rental } => Some(key_duration(0, rental, key_type::RENTAL)),
        Duration::Streaming { lease, rental } => {
            Some(key_duration(lease, rental, key_type::LEASE_AND_RENTAL))
        }
        Duration::Persistent { storage, playback } => {
            if capabilities.is_some_and(|c| c & 0b10 != 0) {
                // Offline key v1: version, reserved, content id (unused here), storage, playback.
                let mut v = Vec::with_capacity(32);
                v.extend_from_slice(&1u32.to_be_bytes());
                v.extend_from_slice(&0u32.to_be_bytes());
                v.extend_from_slice(&[0; 16]);
                v.extend_from_slice(&storage.to_be_bytes());
                v.extend_from_slice(&playback.to_be_bytes());
                Some((tag::OFFLINE_KEY, v))
            } else if storage == 0 && playback == 0 {
                Some(key_duration(0, 0, key_type::PERSISTENCE))
            } else {
                // Old clients cannot enforce the playback window: the storage window only.
                Some(key_duration(
                    0,
                    storage,
                    key_type::PERSISTENCE_WITH_DURATION,
                ))
            }
        }
    }
}

/// HDCP requirement values.
#[allow(missing_docs)]
pub mod hdcp {
    pub const NOT_REQUIRED: u64 = 0xef72894ca7895b78;
    pub const TYPE_0: u64 = 0x40791ac78bd5c571;
    pub const TYPE_1: u64 = 0x285a0863bba8e1d3;
}

/// The CKC payload key: `AES-ECB(SHA-1(R1)[0:16], anti-replay seed)`.
pub fn anti_replay_key(r1: &[u8; 44], seed: &[u8; 16]) -> Zeroizing<[u8; 16]> {
    let digest = crate::crypto::sha1(r1);
    let mut k = Zeroizing::new([0u8; 16]);
    k.copy_from_slice(&digest[..16]);
    Zeroizing::new(symmetric::aes128_ecb_block(&k, seed))
}

/// Builds the CKC for `spc`: the content key (content IV ‖ AES-ECB(SK, CK)), R1, every TLLV
/// the return request names (byte for byte, in order), the HDCP requirement and the
/// duration TLLV of `duration` when one applies.
pub fn build(
    spc: &Spc<'_>,
    session: &Session,
    content_key: &[u8; 16],
    content_iv: &[u8; 16],
    hdcp: u64,
    duration: Duration,
) -> Result<Vec<u8>, Error> {
    let mut payload = Zeroizing::new(Vec::with_capacity(512));
    let mut ck = Zeroizing::new(content_iv.to_vec());
    ck.extend_from_slice(&symmetric::aes128_ecb_block(&session.sk, content_key));
    tllv::write(&mut payload, tag::CONTENT_KEY, &ck)?;
    tllv::write(&mut payload, tag::R1, &session.r1[..])?;
    for t in &spc.return_request {
        let v = tllv::find(&spc.tllvs, *t).ok_or(Error::MissingTag(*t))?;
        tllv::write(&mut payload, *t, v)?;
    }
    // SDK 26 writes the requirement and 8 random bytes; readers take the first 8.
    let mut h = hdcp.to_be_bytes().to_vec();
    h.extend_from_slice(&crate::crypto::random_array::<8>().map_err(|_| Error::Internal)?);
    tllv::write(&mut payload, tag::HDCP, &h)?;
    if let Some((t, v)) = duration_tllv(duration, spc.playback_state.is_some(), spc.capabilities) {
        tllv::write(&mut payload, t, &v)?;
    }
    let ark = anti_replay_key(&session.r1, &spc.anti_replay);
    let iv = crate::crypto::random_array::<16>().map_err(|_| Error::Internal)?;
    let enc =
        symmetric::aes128_cbc_encrypt_nopad(&ark, &iv, &payload).map_err(|_| Error::Internal)?;
    let mut out = Vec::with_capacity(28 + enc.len());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
    out.extend_from_slice(&enc);
    Ok(out)
}
