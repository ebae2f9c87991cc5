//! The packager-facing parsers on arbitrary bytes: SPEKE/CPIX request documents (parsed,
//! validated and, when valid, filled with keys and signalling), the XML tree they sit on,
//! PlayReady `AcquirePackagingData`, and the Widevine-style key API's JSON. Any panic is a
//! bug; every input must end in `Ok` or a protocol error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::protocol::cpix::document::{self, Context};
use tessera::protocol::{playready, wvkeys};

const CTX: Context<'static> = Context {
    widevine_provider: "fuzz",
    public_url: "https://keys.example",
};

fuzz_target!(|data: &[u8]| {
    for version in ["2.0", "2.1"] {
        if let Ok(request) = document::parse(data, Some(version), 64) {
            let keys = vec![[7u8; 16]; request.keys.len()];
            if let Ok(out) = document::respond(request, &keys, &keys, &CTX) {
                // What Tessera writes, it can read back.
                assert!(tessera::xml::parse(out.as_bytes()).is_ok());
            }
        }
    }
    let _ = playready::packaging::parse(data);
    if let Ok(env) = wvkeys::message::parse_envelope(data) {
        let _ = wvkeys::message::parse_request(&env.request);
    }
    let _ = wvkeys::message::parse_request(data);
});
