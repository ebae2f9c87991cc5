//! Writes pre-made Widevine-style licence challenges for the load test: the request a CDM
//! would send for `KIDS` from the device in a `.wvd` file (as `tessera devices widevine`
//! writes it), signed with the device key. The server keeps no per-challenge state, so a
//! challenge can be sent many times, as the load test does.
//!
//!   cargo run --release --example wv_challenge -- DEVICE.wvd OUT_DIR COUNT KID...
//!
//! Prints `msg_bytes=<size of the signed LicenseRequest>`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a load-test tool: a failure aborts"
)]

use prost::Message;
use tessera::crypto::rsa::RsaPrivateKey;
use tessera::keyring::KeyId;
use tessera::protocol::widevine::pb;
use tessera::protocol::widevine::pb::license_request::ContentIdentification;
use tessera::protocol::widevine::pb::license_request::content_identification::{
    ContentIdVariant, WidevinePsshData,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [wvd, out, count, kids @ ..] = &args[..] else {
        panic!("usage: wv_challenge DEVICE.wvd OUT_DIR COUNT KID...");
    };
    let wvd = std::fs::read(wvd).unwrap();
    assert!(wvd.starts_with(b"WVD") && wvd[3] == 2, "not a .wvd v2 file");
    let part = |at: usize| {
        let len = u16::from_be_bytes([wvd[at], wvd[at + 1]]) as usize;
        (&wvd[at + 2..at + 2 + len], at + 2 + len)
    };
    let (key_der, next) = part(7);
    let (client_id, _) = part(next);
    let key = RsaPrivateKey::from_der(key_der).expect("device key");
    let client_id = pb::ClientIdentification::decode(client_id).unwrap();
    let pssh = pb::WidevinePsshData {
        key_ids: kids
            .iter()
            .map(|k| KeyId::parse(k).unwrap().as_bytes().to_vec())
            .collect(),
        ..Default::default()
    }
    .encode_to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut msg_bytes = 0;
    for i in 0..count.parse::<u32>().unwrap() {
        let request = pb::LicenseRequest {
            client_id: Some(client_id.clone()),
            content_id: Some(ContentIdentification {
                content_id_variant: Some(ContentIdVariant::WidevinePsshData(WidevinePsshData {
                    pssh_data: vec![pssh.clone()],
                    license_type: Some(pb::LicenseType::Streaming as i32),
                    request_id: Some(format!("load-test-{i:08}").into_bytes()),
                })),
            }),
            r#type: Some(pb::license_request::RequestType::New as i32),
            request_time: Some(now),
            protocol_version: Some(pb::ProtocolVersion::Version21 as i32),
            key_control_nonce: Some(i + 1),
            ..Default::default()
        };
        let msg = request.encode_to_vec();
        msg_bytes = msg.len();
        let signed = pb::SignedMessage {
            r#type: Some(pb::signed_message::MessageType::LicenseRequest as i32),
            signature: Some(key.sign_pss_sha1(&msg).unwrap()),
            msg: Some(msg),
            ..Default::default()
        };
        std::fs::write(format!("{out}/challenge-{i}.bin"), signed.encode_to_vec()).unwrap();
    }
    println!("msg_bytes={msg_bytes}");
}
