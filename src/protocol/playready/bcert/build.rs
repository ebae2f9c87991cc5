//! Building certificates and chains (docs/playready.md §2.5): the layout real devices carry,
//! for `tessera devices playready`, the response-signing chain and tests.

use super::{CertKey, FLAG_MUST_UNDERSTAND, Manufacturer};
use super::{TAG_BASIC, TAG_DEVICE, TAG_FEATURE, TAG_KEY, TAG_MANUFACTURER, TAG_SIGNATURE};
use crate::crypto::ecc::{self, EccPrivateKey};
use crate::crypto::sha256;

/// A certificate to build.
#[derive(Clone, Debug)]
pub struct CertSpec {
    /// Certificate id.
    pub cert_id: [u8; 16],
    /// 150, 2000 or 3000.
    pub security_level: u32,
    /// [`cert_type`](super::cert_type).
    pub cert_type: u32,
    /// Client id.
    pub client_id: [u8; 16],
    /// Unix seconds or [`NEVER`](super::NEVER).
    pub expiration: u32,
    /// Keys; the first one's digest goes into BASIC.
    pub keys: Vec<CertKey>,
    /// FEATURE ids (device certificates).
    pub features: Option<Vec<u32>>,
    /// MANUFACTURER.
    pub manufacturer: Option<Manufacturer>,
}

fn attribute(out: &mut Vec<u8>, tag: u16, payload: &[u8]) {
    out.extend_from_slice(&FLAG_MUST_UNDERSTAND.to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

fn padded_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + (4 - s.len() % 4) % 4, 0);
}

impl CertSpec {
    /// The certificate, signed by `issuer`.
    pub fn build(&self, issuer: &EccPrivateKey) -> Result<Vec<u8>, ecc::Error> {
        let mut attrs = Vec::new();
        let first = self.keys.first().map(|k| k.key).unwrap_or([0; 64]);
        let mut basic = Vec::with_capacity(88);
        basic.extend_from_slice(&self.cert_id);
        basic.extend_from_slice(&self.security_level.to_be_bytes());
        basic.extend_from_slice(&0u32.to_be_bytes());
        basic.extend_from_slice(&self.cert_type.to_be_bytes());
        basic.extend_from_slice(&sha256(&first));
        basic.extend_from_slice(&self.expiration.to_be_bytes());
        basic.extend_from_slice(&self.client_id);
        attribute(&mut attrs, TAG_BASIC, &basic);
        if let Some(features) = &self.features {
            // DEVICE: the limits pyplayready's own builder writes (max licence size, max
            // header size, max chain depth).
            let mut dev = Vec::new();
            for v in [10240u32, 15360, 2] {
                dev.extend_from_slice(&v.to_be_bytes());
            }
            attribute(&mut attrs, TAG_DEVICE, &dev);
            let mut f = (features.len() as u32).to_be_bytes().to_vec();
            for x in features {
                f.extend_from_slice(&x.to_be_bytes());
            }
            attribute(&mut attrs, TAG_FEATURE, &f);
        }
        let mut keys = (self.keys.len() as u32).to_be_bytes().to_vec();
        for k in &self.keys {
            keys.extend_from_slice(&1u16.to_be_bytes());
            keys.extend_from_slice(&512u16.to_be_bytes());
            keys.extend_from_slice(&0u32.to_be_bytes());
            keys.extend_from_slice(&k.key);
            keys.extend_from_slice(&(k.usages.len() as u32).to_be_bytes());
            for u in &k.usages {
                keys.extend_from_slice(&u.to_be_bytes());
            }
        }
        attribute(&mut attrs, TAG_KEY, &keys);
        if let Some(m) = &self.manufacturer {
            let mut p = 0u32.to_be_bytes().to_vec();
            padded_string(&mut p, &m.name);
            padded_string(&mut p, &m.model_name);
            padded_string(&mut p, &m.model_number);
            attribute(&mut attrs, TAG_MANUFACTURER, &p);
        }
        let signed_len = 16 + attrs.len();
        let total = signed_len + 8 + 136;
        let mut cert = Vec::with_capacity(total);
        cert.extend_from_slice(b"CERT");
        cert.extend_from_slice(&1u32.to_be_bytes());
        cert.extend_from_slice(&(total as u32).to_be_bytes());
        cert.extend_from_slice(&(signed_len as u32).to_be_bytes());
        cert.extend_from_slice(&attrs);
        let sig = issuer.signer()?.sign(&cert)?;
        let mut s = Vec::with_capacity(136);
        s.extend_from_slice(&1u16.to_be_bytes());
        s.extend_from_slice(&64u16.to_be_bytes());
        s.extend_from_slice(&sig);
        s.extend_from_slice(&512u32.to_be_bytes());
        s.extend_from_slice(issuer.public());
        attribute(&mut cert, TAG_SIGNATURE, &s);
        Ok(cert)
    }
}

/// A chain of certificates, leaf first.
pub fn chain(certs: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 20 + certs.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"CHAI");
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    for c in certs {
        out.extend_from_slice(c);
    }
    out
}
