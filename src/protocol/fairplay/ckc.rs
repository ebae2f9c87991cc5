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
/// the return request names (byte for byte, in order), and the HDCP requirement.
pub fn build(
    spc: &Spc<'_>,
    session: &Session,
    content_key: &[u8; 16],
    content_iv: &[u8; 16],
    hdcp: u64,
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
