//! The PlayReady-style parsers on arbitrary bytes: the SOAP challenge (and, when it parses,
//! its signature check and decryption with a fixed server key), the decrypted client data,
//! BCert chains, XMR licences and the CustomData token. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::crypto::ecc::EccPrivateKey;
use tessera::protocol::playready::{self, bcert, challenge, handler, xmr};

/// The dev server key: the seeds CI makes are encrypted to it, so fuzzing reaches the
/// client-data decryption and parsing behind it.
fn server() -> &'static EccPrivateKey {
    static KEY: OnceLock<EccPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| EccPrivateKey::from_pem(playready::DEV_SERVER_KEY).unwrap())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = challenge::parse(data) {
        let _ = c.verify();
        let _ = c.open(server());
        if let Some(custom) = &c.custom_data {
            let _ = handler::custom_data_token(custom);
        }
    }
    let _ = challenge::client_data(data);
    if let Ok(certs) = bcert::parse_chain(data) {
        let _ = bcert::verify_chain(data, &[[0; 64]], bcert::cert_type::DEVICE, None);
        let _ = bcert::split_chain(data);
        assert!(!certs.is_empty());
    }
    let _ = xmr::parse(data);
    let _ = xmr::open(data, server());
});
