//! TLLV blocks (`docs/fairplay.md` §3): `tag u64 | total length u32 | value length u32 |
//! value | padding`. Pure.

use super::Error;
use crate::protocol::wire::Reader;

/// Most TLLVs in one payload.
pub const MAX_TLLVS: usize = 512;

/// One block, borrowing its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tllv<'a> {
    /// Tag.
    pub tag: u64,
    /// Value (padding excluded).
    pub value: &'a [u8],
}

/// Walks a decrypted payload. It must be consumed exactly; a value longer than its block, a
/// block that overruns, or a repeated tag is an error. Padding of any length is accepted
/// (Apple's own writers differ), unknown tags are kept.
pub fn parse(buf: &[u8]) -> Result<Vec<Tllv<'_>>, Error> {
    let mut out: Vec<Tllv<'_>> = Vec::new();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        if out.len() == MAX_TLLVS {
            return Err(Error::Parser("too many TLLVs"));
        }
        let header = |_| Error::Parser("truncated TLLV header");
        let tag = r.u64().map_err(header)?;
        let total = r.u32().map_err(header)? as usize;
        let len = r.u32().map_err(header)? as usize;
        if len > total {
            return Err(Error::Parser("TLLV value longer than its block"));
        }
        let mut block = r
            .sub(total)
            .map_err(|_| Error::Parser("TLLV overruns the payload"))?;
        if out.iter().any(|t| t.tag == tag) {
            return Err(Error::DupTag(tag));
        }
        // Within its block (`len <= total`); the rest of the block is padding.
        let value = block.take(len).map_err(|_| Error::Internal)?;
        out.push(Tllv { tag, value });
    }
    Ok(out)
}

/// The value of `tag`, if present.
pub fn find<'a>(tllvs: &[Tllv<'a>], tag: u64) -> Option<&'a [u8]> {
    tllvs.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// Appends one block: the value padded with random bytes to a multiple of 16, plus 0 to 3
/// random extra blocks, as current writers do (the device ignores padding).
pub fn write(out: &mut Vec<u8>, tag: u64, value: &[u8]) -> Result<(), Error> {
    let mut extra = [0u8; 1];
    crate::crypto::fill_random_fast(&mut extra).map_err(|_| Error::Internal)?;
    let pad = (16 - value.len() % 16) % 16 + 16 * usize::from(extra[0] % 4);
    let total = u32::try_from(value.len() + pad).map_err(|_| Error::Param("TLLV too large"))?;
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    let at = out.len();
    out.resize(at + pad, 0);
    crate::crypto::fill_random_fast(&mut out[at..]).map_err(|_| Error::Internal)?;
    Ok(())
}
