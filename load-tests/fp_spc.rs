//! Writes pre-made FairPlay-style SPCs (container version 2) for the load test, from a device
//! made by `tessera devices fairplay`:
//!
//!   cargo run --release --example fp_spc -- DEVICE.json OUT_DIR COUNT ASSET_ID
//!
//! Files are `OUT_DIR/challenge-N.bin` (the name `widevine.lua` reads pre-made bodies by).
//! Prints `payload_bytes=N`, the decrypted SPC payload size (the floor measures AES over it).

// A load-test tool sharing the tests' device simulator: a panic is the right way to fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/fairplay_device.rs"]
#[allow(dead_code)]
mod device;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dev, out, count, asset] = &args[..] else {
        eprintln!("usage: fp_spc DEVICE.json OUT_DIR COUNT ASSET_ID");
        std::process::exit(64);
    };
    let device = device::Device::load(std::path::Path::new(dev));
    let count: usize = count.parse().expect("COUNT");
    std::fs::create_dir_all(out).expect("OUT_DIR");
    let mut payload = 0;
    for k in 0..count {
        let (spc, _) = device.spc(2, asset.as_bytes(), &[]);
        payload = spc.len() - 304;
        std::fs::write(format!("{out}/challenge-{k}.bin"), spc).expect("write");
    }
    println!("payload_bytes={payload}");
}
