//! The FairPlay-style parsers on arbitrary bytes: the HTTP body sniffer, the SPC container,
//! the TLLV walk and the SPC catalogue checks, and asset-ID decoding. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::protocol::fairplay::{asset, request, spc};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = request::decode(data) {
        let _ = spc::parse_container(&d.spc);
        if let Some(h) = d.hint {
            let _ = asset::resolve(&h);
        }
    }
    let _ = spc::parse_container(data);
    // The bytes as a decrypted payload.
    if let Ok(s) = spc::parse(data) {
        if let Some(a) = asset::decode(s.asset_id) {
            let _ = asset::resolve(&a);
        }
    }
});
