//! The D function: DASk = D(R2, ASk) (`docs/fairplay.md` §6, §9.3, §9.5). Apple's D belongs to
//! licensees and is plugged in by them; Tessera's own, `tessera-d-v1`, serves its test
//! credentials on the same code path.

use super::Error;
use crate::crypto::{HmacAlg, HmacKey};

/// A D function: a PRF keyed by the credential's ASk.
pub trait DFunction: Send + Sync {
    /// DASk for `r2`.
    fn derive(&self, r2: &[u8], ask: &[u8; 16]) -> Result<[u8; 16], Error>;
}

/// `tessera-d-v1`: `HMAC-SHA256(ASk, "TESSERA-FPS-D-v1" ‖ 0x00 ‖ u8(len R2) ‖ R2)[0:16]`. The
/// label makes the output unmistakably Tessera's; the length byte keeps inputs unambiguous
/// when R2 grows (v3's R2 is up to 64 bytes).
#[derive(Clone, Copy, Debug, Default)]
pub struct TesseraDv1;

impl DFunction for TesseraDv1 {
    fn derive(&self, r2: &[u8], ask: &[u8; 16]) -> Result<[u8; 16], Error> {
        let len = u8::try_from(r2.len()).map_err(|_| Error::Param("R2 longer than 255 bytes"))?;
        let mut msg = Vec::with_capacity(18 + r2.len());
        msg.extend_from_slice(b"TESSERA-FPS-D-v1");
        msg.push(0);
        msg.push(len);
        msg.extend_from_slice(r2);
        let mac = HmacKey::new(HmacAlg::Sha256, ask).sign(&msg);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        Ok(out)
    }
}
