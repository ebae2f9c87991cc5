//! The Widevine-style request parser on arbitrary bytes: the SignedMessage and LicenseRequest
//! decoding, KID extraction from PSSH data and init data, and device-chain decoding and
//! structure checks. Any panic is a bug; every input must end in `Ok` or a codec error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::protocol::widevine::{device, message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message::Incoming::License(r)) = message::parse(data) {
        let _ = message::content(&r.request, 64);
        if let Some(token) = r
            .request
            .client_id
            .as_ref()
            .and_then(|c| c.token.as_deref())
        {
            // No roots: the chain is decoded and its signatures checked up to the top,
            // which then fails as untrusted.
            let _ = device::verify_chain(token, &[]);
        }
    }
    // The same bytes as PSSH boxes.
    for b in message::PsshBoxes(data) {
        if b.is_err() {
            break;
        }
    }
});
