//! TLLV blocks (`docs/fairplay.md` §3): `tag u64 | total length u32 | value length u32 |
//! value | padding`. Pure.

use super::Error;

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
    let mut at = 0usize;
    while at < buf.len() {
        if out.len() == MAX_TLLVS {
            return Err(Error::Parser("too many TLLVs"));
        }
        let head = buf
            .get(at..at + 16)
            .ok_or(Error::Parser("truncated TLLV header"))?;
        let tag = u64::from_be_bytes(head[0..8].try_into().map_err(|_| Error::Internal)?);
        let total =
            u32::from_be_bytes(head[8..12].try_into().map_err(|_| Error::Internal)?) as usize;
        let len =
            u32::from_be_bytes(head[12..16].try_into().map_err(|_| Error::Internal)?) as usize;
        if len > total {
            return Err(Error::Parser("TLLV value longer than its block"));
        }
        let start = at + 16;
        let end = start
            .checked_add(total)
            .filter(|&e| e <= buf.len())
            .ok_or(Error::Parser("TLLV overruns the payload"))?;
        if out.iter().any(|t| t.tag == tag) {
            return Err(Error::DupTag(tag));
        }
        out.push(Tllv {
            tag,
            value: &buf[start..start + len],
        });
        at = end;
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
