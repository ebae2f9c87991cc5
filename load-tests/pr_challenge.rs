//! Writes pre-made PlayReady-style challenges for the load test and the fuzz seeds, from a
//! test device issued under the committed dev root (what `tessera devices playready` makes),
//! encrypted to the given server public key:
//!
//!   cargo run --release --example pr_challenge -- SERVER_PUBLIC.pem OUT_DIR COUNT KID...
//!
//! Files are `OUT_DIR/challenge-N.bin` (the name `widevine.lua` reads pre-made bodies by).
//! Prints `la_bytes=N client_data_bytes=M`: the sizes the crypto floor hashes and decrypts.

// A load-test tool: a panic is the right way to fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera::crypto::ecc::{self, EccPrivateKey};
use tessera::keyring::KeyId;
use tessera::protocol::playready::{DEV_ROOT_KEY, bcert, challenge, header, provision};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, out, count, kids @ ..] = &args[..] else {
        eprintln!("usage: pr_challenge SERVER_PUBLIC.pem OUT_DIR COUNT KID...");
        std::process::exit(64);
    };
    let server = ecc::public_from_pem(&std::fs::read(server).expect("server key")).expect("PEM");
    let root = EccPrivateKey::from_pem(DEV_ROOT_KEY).unwrap();
    let group = provision::new_group(
        &root,
        bcert::Manufacturer {
            name: "Tessera".into(),
            model_name: "load test".into(),
            model_number: "1".into(),
        },
        2000,
    )
    .unwrap();
    let device = provision::new_device(&group, 2000).unwrap();
    let keys: Vec<header::HeaderKey<'_>> = kids
        .iter()
        .map(|k| header::HeaderKey {
            kid: KeyId::parse(k).expect("KID"),
            key: None,
        })
        .collect();
    let wrm = header::wrmheader(&keys, header::AlgId::AesCtr, None);
    let count: usize = count.parse().expect("COUNT");
    std::fs::create_dir_all(out).expect("OUT_DIR");
    let (mut la, mut data) = (0, 0);
    for k in 0..count {
        let c = device
            .challenge(&server, &wrm, None, tessera::app::now_secs())
            .unwrap();
        let parsed = challenge::parse(c.as_bytes()).unwrap();
        la = parsed.la.len();
        data = parsed.encrypted_data.len() - 16;
        std::fs::write(format!("{out}/challenge-{k}.bin"), c).expect("write");
    }
    println!("la_bytes={la} client_data_bytes={data}");
}
