//! A FairPlay-style device simulator, written from the profile (`docs/fairplay.md`) with
//! OpenSSL, independently of the server's codecs: it builds SPCs (container versions 1, 2
//! and 3-T) and opens CKCs. It holds only what `tessera devices fairplay` gives a device
//! (`{r2, dask, hu}` and the public certificate), never the ASk. Shared by the integration
//! tests and the load test's SPC generator (`load-tests/fp_spc.rs`).

use openssl::hash::{MessageDigest, hash};
use openssl::symm::{Cipher, Crypter, Mode};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

pub const SK_R1: u64 = 0x3d1a10b8bffac2ec;
pub const SK_R1_INTEGRITY: u64 = 0xb349d4809e910687;
pub const ANTI_REPLAY: u64 = 0x89c90f12204106b2;
pub const R2: u64 = 0x71b5595ac1521133;
pub const ASSET_ID: u64 = 0x1bf7f53f5d5d5a1f;
pub const TRANSACTION_ID: u64 = 0x47aa7ad3440577de;
pub const VERSIONS: u64 = 0x67b8fb79ecce1a13;
pub const VERSION_USED: u64 = 0x5d81bcbcc7f61703;
pub const RETURN_REQUEST: u64 = 0x19f9d4e5ab7609cb;
pub const PLAYBACK_STATE: u64 = 0xeb8efdf2b25ab3a0;
pub const CK: u64 = 0x58b38165af0e3d5a;
pub const R1: u64 = 0xea74c4645d5efee9;
pub const KEY_DURATION: u64 = 0x47acf6a418cd091a;
pub const OFFLINE_KEY: u64 = 0x6375d9727060218c;
pub const HDCP: u64 = 0x2e52f1530d8ddb4a;
pub const CAPABILITIES: u64 = 0x9c02af3253c07fb2;

fn rand<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

fn aes(mode: Mode, cipher: Cipher, key: &[u8], iv: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut c = Crypter::new(cipher, mode, key, iv).unwrap();
    c.pad(false);
    let mut out = vec![0u8; data.len() + 16];
    let n = c.update(data, &mut out).unwrap();
    let m = c.finalize(&mut out[n..]).unwrap();
    out.truncate(n + m);
    out
}

fn ecb(key: &[u8], block: &[u8]) -> Vec<u8> {
    aes(Mode::Encrypt, Cipher::aes_128_ecb(), key, None, block)
}

fn cmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let pkey = openssl::pkey::PKey::cmac(&Cipher::aes_128_cbc(), key).unwrap();
    let mut s = openssl::sign::Signer::new_without_digest(&pkey).unwrap();
    s.sign_oneshot_to_vec(data).unwrap()
}

fn tllv(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    // Padding to a block and one more block, as some writers do.
    let pad = (16 - value.len() % 16) % 16 + 16;
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&((value.len() + pad) as u32).to_be_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out.extend(std::iter::repeat_n(0xa5u8, pad));
}

fn tllvs(mut b: &[u8]) -> Result<HashMap<u64, Vec<u8>>, String> {
    let mut out = HashMap::new();
    while b.len() >= 16 {
        let tag = u64::from_be_bytes(b[0..8].try_into().unwrap());
        let total = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        let len = u32::from_be_bytes(b[12..16].try_into().unwrap()) as usize;
        if len > total || 16 + total > b.len() {
            return Err("CKC payload does not decrypt to TLLVs".into());
        }
        out.insert(tag, b[16..16 + len].to_vec());
        b = &b[16 + total..];
    }
    Ok(out)
}

/// The device: provisioned triple, certificate, and one playback's secrets.
pub struct Device {
    pub r2: Vec<u8>,
    pub dask: Vec<u8>,
    pub hu: Vec<u8>,
    pub cert: Vec<u8>,
}

/// The content key a CKC delivered, and its TLLVs.
pub type Opened = (Vec<u8>, HashMap<u64, Vec<u8>>);

pub struct Playback {
    pub sk: [u8; 16],
    pub r1: [u8; 44],
    pub ar: [u8; 16],
}

impl Device {
    pub fn load(path: &Path) -> Self {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex = |k: &str| tessera::encoding::hex_decode(v[k].as_str().unwrap()).unwrap();
        Device {
            r2: hex("r2"),
            dask: hex("dask"),
            hu: hex("hu"),
            cert: tessera::encoding::b64_decode(v["certificate"].as_str().unwrap()).unwrap(),
        }
    }

    /// An SPC (container version 1, 2 or 3) for `asset`, with optional extra TLLVs.
    pub fn spc(&self, version: u32, asset: &[u8], extra: &[(u64, Vec<u8>)]) -> (Vec<u8>, Playback) {
        self.spc_with(version, asset, extra, &[])
    }

    /// [`Device::spc`] leaving out the TLLVs tagged `omit`.
    pub fn spc_with(
        &self,
        version: u32,
        asset: &[u8],
        extra: &[(u64, Vec<u8>)],
        omit: &[u64],
    ) -> (Vec<u8>, Playback) {
        let p = Playback {
            sk: rand(),
            r1: rand(),
            ar: rand(),
        };
        let integrity: [u8; 16] = rand();
        let mut clear = p.sk.to_vec();
        clear.extend_from_slice(&self.hu);
        clear.extend_from_slice(&p.r1);
        clear.extend_from_slice(&integrity);
        let iv: [u8; 16] = rand();
        let mut sk_r1 = iv.to_vec();
        sk_r1.extend(aes(
            Mode::Encrypt,
            Cipher::aes_128_cbc(),
            &self.dask,
            Some(&iv),
            &clear,
        ));
        let mut payload = Vec::new();
        for (t, v) in [
            (SK_R1, sk_r1),
            (SK_R1_INTEGRITY, integrity.to_vec()),
            (ANTI_REPLAY, p.ar.to_vec()),
            (R2, self.r2.clone()),
            (ASSET_ID, asset.to_vec()),
            (TRANSACTION_ID, vec![0x11; 8]),
            (VERSIONS, 1u32.to_be_bytes().to_vec()),
            (VERSION_USED, 1u32.to_be_bytes().to_vec()),
            (RETURN_REQUEST, TRANSACTION_ID.to_be_bytes().to_vec()),
        ] {
            if !omit.contains(&t) {
                tllv(&mut payload, t, &v);
            }
        }
        for (t, v) in extra {
            tllv(&mut payload, *t, v);
        }
        let cert = openssl::x509::X509::from_der(&self.cert).unwrap();
        let pkey = cert.public_key().unwrap();
        let key: [u8; 16] = rand();
        let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&pkey).unwrap();
        ctx.encrypt_init().unwrap();
        ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
            .unwrap();
        // v1: OAEP with SHA-1 (RSA-1024 certificates); v2 and v3: SHA-256.
        let md = if version == 1 {
            openssl::md::Md::sha1()
        } else {
            openssl::md::Md::sha256()
        };
        ctx.set_rsa_oaep_md(md).unwrap();
        ctx.set_rsa_mgf1_md(md).unwrap();
        let mut wrapped = Vec::new();
        ctx.encrypt_to_vec(&key, &mut wrapped).unwrap();
        let mut out = version.to_be_bytes().to_vec();
        out.extend_from_slice(&[0; 4]);
        if version <= 2 {
            let iv: [u8; 16] = rand();
            out.extend_from_slice(&iv);
            out.extend(wrapped);
            out.extend(hash(MessageDigest::sha1(), &self.cert).unwrap().to_vec());
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend(aes(
                Mode::Encrypt,
                Cipher::aes_128_cbc(),
                &key,
                Some(&iv),
                &payload,
            ));
        } else {
            // v3-T: Tessera's public constants, SHA-256("TESSERA-FPS-" || label)[..16].
            let c = |l: &str| {
                hash(
                    MessageDigest::sha256(),
                    format!("TESSERA-FPS-{l}").as_bytes(),
                )
                .unwrap()[..16]
                    .to_vec()
            };
            let (k, iv, k_int) = (
                ecb(&key, &c("V3-ENC-KEY-SEED")),
                ecb(&key, &c("V3-ENC-IV-SEED")),
                ecb(&key, &c("V3-INTEGRITY-SEED")),
            );
            out.extend(c("V3-PROTOCOL-UUID"));
            out.extend(wrapped);
            out.extend(hash(MessageDigest::sha256(), &self.cert).unwrap().to_vec());
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend(aes(
                Mode::Encrypt,
                Cipher::aes_128_cbc(),
                &k,
                Some(&iv),
                &payload,
            ));
            let tag = cmac(&k_int, &out[24..]);
            out.extend(tag);
        }
        (out, p)
    }

    /// Opens a CKC as the device would: R1 must be this playback's; returns CK and TLLVs.
    pub fn open(&self, p: &Playback, ckc: &[u8]) -> Result<Opened, String> {
        let n = u32::from_be_bytes(ckc[24..28].try_into().unwrap()) as usize;
        let k = hash(MessageDigest::sha1(), &p.r1).unwrap();
        let ark = ecb(&k[..16], &p.ar);
        let clear = aes(
            Mode::Decrypt,
            Cipher::aes_128_cbc(),
            &ark,
            Some(&ckc[8..24]),
            &ckc[28..28 + n],
        );
        let t = tllvs(&clear)?;
        if t.get(&R1).map(Vec::as_slice) != Some(&p.r1[..]) {
            return Err("R1 does not match".into());
        }
        let ck = t.get(&CK).ok_or("no content key")?;
        let key = aes(
            Mode::Decrypt,
            Cipher::aes_128_ecb(),
            &p.sk,
            None,
            &ck[16..32],
        );
        Ok((key, t))
    }
}

impl Device {
    pub fn load_clone(d: &Device) -> Device {
        Device {
            r2: d.r2.clone(),
            dask: d.dask.clone(),
            hu: d.hu.clone(),
            cert: d.cert.clone(),
        }
    }
}
