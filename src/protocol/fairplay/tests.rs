//! The codecs against a simulated device built from the profile (`docs/fairplay.md` §9.4:
//! the device holds R2, DASk and HU, never ASk), and the profile's known-answer values.

use super::ckc::{self, anti_replay_key};
use super::dfunc::{DFunction, TesseraDv1};
use super::spc::{self, SpcVersion, V3Params, tag, tessera_v3};
use super::{Error, tllv};
use crate::crypto::rsa::RsaPrivateKey;
use crate::crypto::symmetric;

const ASK: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

#[test]
fn tessera_d_v1_known_answer() {
    let r2: Vec<u8> = (0u8..21).collect();
    let dask = TesseraDv1.derive(&r2, &ASK).unwrap();
    assert_eq!(
        crate::encoding::hex_encode(&dask),
        "f0a19239d7540134eba6799800be0199"
    );
}

#[test]
fn tessera_v3_constants() {
    let p = tessera_v3();
    let hex = crate::encoding::hex_encode;
    assert_eq!(hex(&p.uuid), "5dff77ea260f7c338394190ffa02d8cf");
    assert_eq!(hex(&p.key_seed), "a77112e190658b3022762ddca7aeeec7");
    assert_eq!(hex(&p.iv_seed), "f838d18c23f8cbbc97671d700c2811d5");
    assert_eq!(hex(&p.integrity_seed), "ec81aa731b866aec2b3cbf1925c6c677");
}

/// What a device recovers from a CKC: content key, content IV, and every TLLV.
type Opened = ([u8; 16], [u8; 16], Vec<(u64, Vec<u8>)>);

/// A device: what `tessera devices fairplay` will hand out, plus its session secrets.
struct Device {
    r2: [u8; 21],
    dask: [u8; 16],
    hu: [u8; 20],
    sk: [u8; 16],
    r1: [u8; 44],
    ar: [u8; 16],
}

impl Device {
    fn new() -> Self {
        let r2 = crate::crypto::random_array().unwrap();
        Self {
            dask: TesseraDv1.derive(&r2, &ASK).unwrap(),
            r2,
            hu: crate::crypto::random_array().unwrap(),
            sk: crate::crypto::random_array().unwrap(),
            r1: crate::crypto::random_array().unwrap(),
            ar: crate::crypto::random_array().unwrap(),
        }
    }

    fn payload(&self, asset: &[u8], mutate: impl Fn(&mut Vec<(u64, Vec<u8>)>)) -> Vec<u8> {
        let iv: [u8; 16] = crate::crypto::random_array().unwrap();
        let integrity: [u8; 16] = crate::crypto::random_array().unwrap();
        let mut clear = self.sk.to_vec();
        clear.extend_from_slice(&self.hu);
        clear.extend_from_slice(&self.r1);
        clear.extend_from_slice(&integrity);
        let mut sk_r1 = iv.to_vec();
        sk_r1.extend(symmetric::aes128_cbc_encrypt_nopad(&self.dask, &iv, &clear).unwrap());
        let mut tllvs: Vec<(u64, Vec<u8>)> = vec![
            (tag::ASSET_ID, asset.to_vec()),
            (tag::SK_R1, sk_r1),
            (tag::SK_R1_INTEGRITY, integrity.to_vec()),
            (tag::ANTI_REPLAY, self.ar.to_vec()),
            (tag::R2, self.r2.to_vec()),
            (tag::TRANSACTION_ID, vec![7; 8]),
            (tag::VERSIONS_SUPPORTED, 1u32.to_be_bytes().to_vec()),
            (tag::VERSION_USED, 1u32.to_be_bytes().to_vec()),
            (
                tag::RETURN_REQUEST,
                tag::TRANSACTION_ID.to_be_bytes().to_vec(),
            ),
            (0x1122334455667788, vec![1, 2, 3]),
        ];
        mutate(&mut tllvs);
        let mut out = Vec::new();
        for (t, v) in &tllvs {
            tllv::write(&mut out, *t, v).unwrap();
        }
        out
    }

    /// The SPC container around `payload` for the credential's certificate and key.
    fn spc(
        &self,
        version: SpcVersion,
        cert_der: &[u8],
        public: &openssl::rsa::Rsa<openssl::pkey::Public>,
        payload: &[u8],
        v3: &V3Params,
    ) -> Vec<u8> {
        use openssl::rsa::Padding;
        let key: [u8; 16] = crate::crypto::random_array().unwrap();
        let wrap = |md: &openssl::md::MdRef| {
            let pkey = openssl::pkey::PKey::from_rsa(public.clone()).unwrap();
            let mut c = openssl::pkey_ctx::PkeyCtx::new(&pkey).unwrap();
            c.encrypt_init().unwrap();
            c.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
            c.set_rsa_oaep_md(md).unwrap();
            c.set_rsa_mgf1_md(md).unwrap();
            let mut out = Vec::new();
            c.encrypt_to_vec(&key, &mut out).unwrap();
            out
        };
        let mut out = Vec::new();
        match version {
            SpcVersion::V1 | SpcVersion::V2 => {
                let iv: [u8; 16] = crate::crypto::random_array().unwrap();
                out.extend_from_slice(
                    &(if version == SpcVersion::V1 { 1u32 } else { 2 }).to_be_bytes(),
                );
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&iv);
                out.extend(if version == SpcVersion::V1 {
                    wrap(openssl::md::Md::sha1())
                } else {
                    wrap(openssl::md::Md::sha256())
                });
                out.extend_from_slice(&crate::crypto::sha1(cert_der));
                out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                out.extend(symmetric::aes128_cbc_encrypt_nopad(&key, &iv, payload).unwrap());
            }
            SpcVersion::V3 => {
                let k = symmetric::aes128_ecb_block(&key, &v3.key_seed);
                let iv = symmetric::aes128_ecb_block(&key, &v3.iv_seed);
                let k_int = symmetric::aes128_ecb_block(&key, &v3.integrity_seed);
                out.extend_from_slice(&3u32.to_be_bytes());
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&v3.uuid);
                out.extend(wrap(openssl::md::Md::sha256()));
                out.extend_from_slice(&crate::crypto::sha256(cert_der));
                out.extend_from_slice(&[0; 12]);
                out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                out.extend(symmetric::aes128_cbc_encrypt_nopad(&k, &iv, payload).unwrap());
                let tag = symmetric::aes128_cmac(&k_int, &[&out[24..]]);
                out.extend_from_slice(&tag);
            }
        }
        out
    }

    /// Opens a CKC the way the device does: its own R1 and anti-replay seed, its SK.
    fn open(&self, ckc_bytes: &[u8]) -> Result<Opened, String> {
        let n = u32::from_be_bytes(ckc_bytes[24..28].try_into().unwrap()) as usize;
        let iv: [u8; 16] = ckc_bytes[8..24].try_into().unwrap();
        let ark = anti_replay_key(&self.r1, &self.ar);
        let clear = symmetric::aes128_cbc_decrypt_nopad(&ark, &iv, &ckc_bytes[28..28 + n])
            .map_err(|e| e.to_string())?;
        let tllvs = tllv::parse(&clear).map_err(|e| e.to_string())?;
        let r1 = tllv::find(&tllvs, ckc::tag::R1).ok_or("no R1")?;
        if r1 != self.r1 {
            return Err("R1 is not this SPC's".into());
        }
        let ck = tllv::find(&tllvs, ckc::tag::CONTENT_KEY).ok_or("no CK")?;
        let iv: [u8; 16] = ck[..16].try_into().unwrap();
        let key = symmetric::aes128_ecb_decrypt_block(&self.sk, ck[16..32].try_into().unwrap());
        Ok((
            key,
            iv,
            tllvs.iter().map(|t| (t.tag, t.value.to_vec())).collect(),
        ))
    }
}

struct Credential {
    cert: Vec<u8>,
    private: RsaPrivateKey,
    public: openssl::rsa::Rsa<openssl::pkey::Public>,
}

fn credential(bits: u32) -> Credential {
    let private = RsaPrivateKey::generate(bits).unwrap();
    let der = private.public_key_der().unwrap();
    Credential {
        cert: crate::crypto::rsa::self_signed_certificate(&private),
        public: openssl::rsa::Rsa::public_key_from_der(&der).unwrap(),
        private,
    }
}

/// The KSM side: container, credential, payload, D, [SK..R1], CKC.
fn ksm(
    spc_bytes: &[u8],
    cred: &Credential,
    v3: &V3Params,
    ck: &[u8; 16],
    civ: &[u8; 16],
) -> Result<Vec<u8>, Error> {
    let c = spc::parse_container(spc_bytes)?;
    let want: Vec<u8> = match c.version {
        SpcVersion::V3 => crate::crypto::sha256(&cred.cert).to_vec(),
        _ => crate::crypto::sha1(&cred.cert).to_vec(),
    };
    if !crate::crypto::ct_eq(c.cert_hash, &want) {
        return Err(Error::Certificate);
    }
    let payload = spc::decrypt(&c, &cred.private, Some(v3))?;
    let parsed = spc::parse(&payload)?;
    let dask = TesseraDv1.derive(parsed.r2, &ASK)?;
    let session = spc::open_session(&parsed, &dask)?;
    ckc::build(
        &parsed,
        &session,
        ck,
        civ,
        ckc::hdcp::TYPE_0,
        ckc::Duration::Unlimited,
    )
}

#[test]
fn every_container_version_round_trips_to_the_content_key() {
    let v3 = tessera_v3();
    let ck = [0x42u8; 16];
    let civ = [0x17u8; 16];
    for (version, bits) in [
        (SpcVersion::V1, 1024),
        (SpcVersion::V2, 2048),
        (SpcVersion::V3, 2048),
    ] {
        let cred = credential(bits);
        let dev = Device::new();
        let payload = dev.payload(b"6f1c7e1a-3b5d-4c2e-9a8b-0123456789ab", |_| {});
        let spc_bytes = dev.spc(version, &cred.cert, &cred.public, &payload, &v3);
        let ckc_bytes = ksm(&spc_bytes, &cred, &v3, &ck, &civ).unwrap();
        let (key, iv, tllvs) = dev.open(&ckc_bytes).unwrap();
        assert_eq!((key, iv), (ck, civ), "{version:?}");
        // The return request is answered: the transaction ID comes back byte for byte.
        assert!(tllvs.contains(&(tag::TRANSACTION_ID, vec![7; 8])));
        // Another device (another R1) cannot use this CKC.
        assert!(Device::new().open(&ckc_bytes).is_err());
    }
}

#[test]
fn refusals_carry_the_fps_codes() {
    let v3 = tessera_v3();
    let cred = credential(2048);
    let dev = Device::new();
    let run = |payload: Vec<u8>, version: SpcVersion| {
        let spc_bytes = dev.spc(version, &cred.cert, &cred.public, &payload, &v3);
        ksm(&spc_bytes, &cred, &v3, &[1; 16], &[2; 16])
            .map(|_| ())
            .map_err(|e| e.code())
    };
    let asset = b"asset-1";
    assert_eq!(
        run(
            dev.payload(asset, |t| t.retain(|(k, _)| *k != tag::R2)),
            SpcVersion::V2
        ),
        Err(-42583)
    );
    assert_eq!(
        run(
            dev.payload(asset, |t| {
                let d = t[3].clone();
                t.push(d)
            }),
            SpcVersion::V2
        ),
        Err(-42591)
    );
    assert_eq!(
        run(
            dev.payload(asset, |t| t[7].1 = 2u32.to_be_bytes().to_vec()),
            SpcVersion::V2
        ),
        Err(-42590)
    );
    assert_eq!(
        run(
            dev.payload(asset, |t| t[8].1 = 0xdeadu64.to_be_bytes().to_vec()),
            SpcVersion::V2
        ),
        Err(-42583)
    );
    assert_eq!(run(dev.payload(b"x", |_| {}), SpcVersion::V2), Err(-42585));
    assert_eq!(
        run(dev.payload(asset, |t| t[5].1 = vec![7; 9]), SpcVersion::V2),
        Err(-42581)
    );
    // A device provisioned under another ASk: DASk is wrong, the integrity check says so.
    let other = Device {
        dask: TesseraDv1.derive(&dev.r2, &[9; 16]).unwrap(),
        ..Device::new()
    };
    let other = Device {
        r2: dev.r2,
        ..other
    };
    let spc_bytes = other.spc(
        SpcVersion::V2,
        &cred.cert,
        &cred.public,
        &other.payload(asset, |_| {}),
        &v3,
    );
    assert_eq!(
        ksm(&spc_bytes, &cred, &v3, &[1; 16], &[2; 16]).unwrap_err(),
        Error::Integrity
    );
    // Container level: a version 4, a truncated SPC, another credential's key, v3 tampering.
    let good = dev.spc(
        SpcVersion::V3,
        &cred.cert,
        &cred.public,
        &dev.payload(asset, |_| {}),
        &v3,
    );
    let mut v4 = good.clone();
    v4[3] = 4;
    assert_eq!(spc::parse_container(&v4).unwrap_err().code(), -42580);
    assert_eq!(
        spc::parse_container(&good[..good.len() - 1])
            .unwrap_err()
            .code(),
        -42581
    );
    let stranger = credential(2048);
    let c = spc::parse_container(&good).unwrap();
    assert_eq!(
        spc::decrypt(&c, &stranger.private, Some(&v3)).unwrap_err(),
        Error::Certificate
    );
    for at in [30, 300, 400, good.len() - 20] {
        let mut t = good.clone();
        t[at] ^= 1;
        let err = spc::parse_container(&t)
            .and_then(|c| spc::decrypt(&c, &cred.private, Some(&v3)).map(|_| ()));
        assert!(
            matches!(err, Err(Error::Integrity) | Err(Error::Certificate)),
            "flip at {at}: {err:?}"
        );
    }
    // A v3 SPC under another profile's UUID.
    let mut other_v3 = v3;
    other_v3.uuid[0] ^= 1;
    let c = spc::parse_container(&good).unwrap();
    assert_eq!(
        spc::decrypt(&c, &cred.private, Some(&other_v3)).unwrap_err(),
        Error::Version
    );
}

#[test]
fn tllv_framing_limits() {
    let mut b = Vec::new();
    tllv::write(&mut b, 1, &[5; 3]).unwrap();
    assert_eq!(b.len() % 16, 0);
    assert_eq!(tllv::parse(&b).unwrap()[0].value, &[5, 5, 5]);
    // Value longer than its block, and a block running past the end.
    let mut bad = b.clone();
    bad[12..16].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(tllv::parse(&bad).unwrap_err().code(), -42581);
    assert_eq!(tllv::parse(&b[..b.len() - 1]).unwrap_err().code(), -42581);
    assert_eq!(tllv::parse(&b[..10]).unwrap_err().code(), -42581);
}

#[test]
fn durations_follow_the_policy_and_the_device() {
    use ckc::{Duration, duration_tllv, key_type, tag as t};
    let kind = |v: &[u8]| u32::from_be_bytes(v[8..12].try_into().unwrap());
    // No playback state: never a duration TLLV.
    assert_eq!(
        duration_tllv(
            Duration::Streaming {
                lease: 60,
                rental: 0
            },
            false,
            None
        ),
        None
    );
    assert_eq!(duration_tllv(Duration::Unlimited, true, None), None);
    let (tag, v) = duration_tllv(
        Duration::Streaming {
            lease: 60,
            rental: 0,
        },
        true,
        None,
    )
    .unwrap();
    assert_eq!(
        (tag, kind(&v), &v[0..4]),
        (t::KEY_DURATION, key_type::LEASE, &60u32.to_be_bytes()[..])
    );
    let (_, v) = duration_tllv(
        Duration::Streaming {
            lease: 0,
            rental: 3600,
        },
        true,
        None,
    )
    .unwrap();
    assert_eq!(kind(&v), key_type::RENTAL);
    let (_, v) = duration_tllv(
        Duration::Streaming {
            lease: 60,
            rental: 3600,
        },
        true,
        None,
    )
    .unwrap();
    assert_eq!(kind(&v), key_type::LEASE_AND_RENTAL);
    // Persistent: the offline-key TLLV for devices that announce it, else key duration.
    let p = Duration::Persistent {
        storage: 86400,
        playback: 7200,
    };
    let (tag, v) = duration_tllv(p, true, Some(0b10)).unwrap();
    assert_eq!((tag, v.len()), (t::OFFLINE_KEY, 32));
    assert_eq!(&v[24..28], &86400u32.to_be_bytes());
    let (tag, v) = duration_tllv(p, true, Some(0)).unwrap();
    assert_eq!(
        (tag, kind(&v)),
        (t::KEY_DURATION, key_type::PERSISTENCE_WITH_DURATION)
    );
    let (_, v) = duration_tllv(
        Duration::Persistent {
            storage: 0,
            playback: 0,
        },
        true,
        None,
    )
    .unwrap();
    assert_eq!(kind(&v), key_type::PERSISTENCE);
}
