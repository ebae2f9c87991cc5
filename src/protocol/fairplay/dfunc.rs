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

/// The secret step of a licence, where a licensee's library plugs in (`docs/fairplay.md`
/// §9.5): from the SPC's [SK..R1] and R2 to the session secrets. Tessera's credentials use a
/// [`DFunctionProvider`] over `tessera-d-v1`.
pub trait KeyPayloadProvider: Send + Sync {
    /// Opens [SK..R1].
    fn open_session(&self, spc: &super::spc::Spc<'_>) -> Result<super::spc::Session, Error>;
}

/// A [`KeyPayloadProvider`] from a D function and the credential's ASk.
pub struct DFunctionProvider<D> {
    d: D,
    ask: zeroize::Zeroizing<[u8; 16]>,
}

impl<D> std::fmt::Debug for DFunctionProvider<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DFunctionProvider(<redacted>)")
    }
}

impl<D: DFunction> DFunctionProvider<D> {
    /// A provider holding `ask`.
    pub fn new(d: D, ask: [u8; 16]) -> Self {
        Self {
            d,
            ask: zeroize::Zeroizing::new(ask),
        }
    }
}

impl<D: DFunction> KeyPayloadProvider for DFunctionProvider<D> {
    fn open_session(&self, spc: &super::spc::Spc<'_>) -> Result<super::spc::Session, Error> {
        let dask = zeroize::Zeroizing::new(self.d.derive(spc.r2, &self.ask)?);
        super::spc::open_session(spc, &dask)
    }
}
