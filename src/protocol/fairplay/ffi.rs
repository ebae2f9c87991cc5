//! The licensee D-function adapter (`docs/fairplay.md` §9.5, `d-dylib`): a shared library,
//! built by the licensee against their own credentials, exporting
//!
//! ```c
//! int tessera_fps_d(const uint8_t *r2, size_t r2_len, const uint8_t ask[16], uint8_t dask[16]);
//! ```
//!
//! (0 on success). Tessera never ships, links or redistributes such code; an operator names
//! the library in `[[tenants.fairplay_credentials]] dylib`. Behind the cargo feature
//! `fairplay-licensee-ffi`, off by default.
//!
//! This is the one module of Tessera with `unsafe` code (the crate denies it elsewhere):
//! calling into a C ABI cannot be done otherwise.
#![allow(unsafe_code)]

use super::Error;
use super::dfunc::DFunction;
use std::ffi::c_int;

type DFn = unsafe extern "C" fn(*const u8, usize, *const u8, *mut u8) -> c_int;

/// A D function loaded from a shared library.
pub struct DylibD {
    // Kept alive for as long as `f` may be called.
    _lib: libloading::Library,
    f: DFn,
}

impl std::fmt::Debug for DylibD {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DylibD")
    }
}

impl DylibD {
    /// Loads `path` and finds `tessera_fps_d`.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        // SAFETY: loading a library runs its initialisers; the operator chose this library
        // (configuration, feature off by default), exactly as with any plug-in.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: the symbol's type is the documented C ABI above; a library exporting the
        // name with another signature is a configuration error we cannot detect.
        let f: DFn = unsafe { lib.get::<DFn>(b"tessera_fps_d\0") }
            .map(|s| *s)
            .map_err(|e| format!("{}: no tessera_fps_d: {e}", path.display()))?;
        Ok(Self { _lib: lib, f })
    }
}

impl DFunction for DylibD {
    fn derive(&self, r2: &[u8], ask: &[u8; 16]) -> Result<[u8; 16], Error> {
        let mut dask = [0u8; 16];
        // SAFETY: every pointer is valid for the length the ABI gives it (r2 for r2_len
        // bytes, ask and dask for 16), and lives for the duration of the call.
        let rc = unsafe { (self.f)(r2.as_ptr(), r2.len(), ask.as_ptr(), dask.as_mut_ptr()) };
        if rc != 0 {
            return Err(Error::Internal);
        }
        Ok(dask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fairplay::dfunc::TesseraDv1;

    /// A licensee library stand-in, in C, that computes tessera-d-v1 with OpenSSL: the
    /// adapter must give what the built-in gives.
    const SOURCE: &str = r#"
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <openssl/hmac.h>
int tessera_fps_d(const uint8_t *r2, size_t r2_len, const uint8_t ask[16], uint8_t dask[16]) {
    uint8_t msg[18 + 255]; unsigned char mac[32]; unsigned int len = 32;
    if (r2_len > 255) return 1;
    memcpy(msg, "TESSERA-FPS-D-v1", 16); msg[16] = 0; msg[17] = (uint8_t)r2_len;
    memcpy(msg + 18, r2, r2_len);
    if (!HMAC(EVP_sha256(), ask, 16, msg, 18 + r2_len, mac, &len)) return 2;
    memcpy(dask, mac, 16);
    return 0;
}
"#;

    #[test]
    fn a_shared_library_d_serves_like_the_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("d.c");
        let so = dir.path().join("libd.so");
        std::fs::write(&c, SOURCE).unwrap();
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c)
            .arg("-lcrypto")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cc (and libssl-dev) are needed for this test"
        );
        let d = DylibD::load(&so).unwrap();
        let r2: Vec<u8> = (0u8..21).collect();
        let ask: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            d.derive(&r2, &ask).unwrap(),
            TesseraDv1.derive(&r2, &ask).unwrap()
        );
        assert!(DylibD::load(&dir.path().join("missing.so")).is_err());
    }
}
