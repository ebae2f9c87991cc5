//! Reading chains and certificates (docs/playready.md §2.5, §2.6): every length and count
//! is checked against the bytes left, each known attribute appears once, and the signature
//! attribute comes last.

use super::{Basic, CertKey, Certificate, Error, Manufacturer};
use super::{MAX_CHAIN, MAX_CHAIN_BYTES, MAX_KEYS, MAX_LIST};
use super::{TAG_BASIC, TAG_FEATURE, TAG_KEY, TAG_MANUFACTURER, TAG_SIGNATURE};
use crate::crypto::ecc::Point;
use crate::protocol::wire::Reader;
use std::collections::HashSet;

/// Parses a chain (no signature or trust checks: see [`verify_chain`](super::verify_chain)).
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<Certificate>, Error> {
    if bytes.len() > MAX_CHAIN_BYTES {
        return Err(Error::Malformed("chain too large"));
    }
    let mut r = Reader::new(bytes);
    if r.take(4)? != b"CHAI" {
        return Err(Error::Malformed("no CHAI header"));
    }
    let _version = r.u32()?;
    let total = r.u32()? as usize;
    let _flags = r.u32()?;
    let count = r.u32()? as usize;
    if total != bytes.len() {
        return Err(Error::Malformed("chain length field"));
    }
    if count == 0 || count > MAX_CHAIN {
        return Err(Error::Length);
    }
    let mut certs = Vec::with_capacity(count);
    for _ in 0..count {
        let start = r.position();
        // The header is read from a copy: the certificate's length counts the header too.
        let mut head = r;
        if head.take(4)? != b"CERT" {
            return Err(Error::Malformed("no CERT header"));
        }
        let _version = head.u32()?;
        let len = head.u32()? as usize;
        let signed_len = head.u32()? as usize;
        if len < 16 || signed_len < 16 || signed_len > len {
            return Err(Error::Malformed("certificate length fields"));
        }
        let cert = r.take(len)?;
        certs.push(parse_cert(cert, start, signed_len)?);
    }
    r.finish()
        .map_err(|_| Error::Malformed("bytes after the last certificate"))?;
    Ok(certs)
}

fn parse_cert(cert: &[u8], offset: usize, signed_len: usize) -> Result<Certificate, Error> {
    let mut r = Reader::new(cert);
    r.skip(16)?;
    let mut basic = None;
    let mut keys = None;
    let mut features = Vec::new();
    let mut manufacturer = None;
    let mut signature = None;
    let mut seen = HashSet::new();
    while !r.is_empty() {
        let at = r.position();
        let _flags = r.u16()?;
        let tag = r.u16()?;
        let len = r.u32()? as usize;
        if len < 8 {
            return Err(Error::Malformed("attribute length"));
        }
        let mut p = r.sub(len - 8)?;
        // Each known attribute once: a duplicate could be read differently by another
        // parser (the reference client takes the first).
        if matches!(
            tag,
            TAG_BASIC | TAG_KEY | TAG_FEATURE | TAG_MANUFACTURER | TAG_SIGNATURE
        ) && !seen.insert(tag)
        {
            return Err(Error::Malformed("a duplicate attribute"));
        }
        if tag == TAG_SIGNATURE {
            // The signature covers exactly the bytes before it, and nothing may follow it.
            if at != signed_len || !r.is_empty() {
                return Err(Error::Malformed("signature attribute placement"));
            }
        } else if at >= signed_len {
            return Err(Error::Malformed("attribute after the signed part"));
        }
        match tag {
            TAG_BASIC => {
                basic = Some(Basic {
                    cert_id: p.array()?,
                    security_level: p.u32()?,
                    flags: p.u32()?,
                    cert_type: p.u32()?,
                    key_digest: p.array()?,
                    expiration: p.u32()?,
                    client_id: p.array()?,
                });
            }
            TAG_KEY => {
                let n = p.u32()?;
                if n == 0 || n > MAX_KEYS {
                    return Err(Error::Malformed("key count"));
                }
                let mut list = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let kind = p.u16()?;
                    let bits = p.u16()?;
                    let _flags = p.u32()?;
                    if kind != 1 || bits != 512 {
                        return Err(Error::Structure("a key is not ECC P-256"));
                    }
                    let key: Point = p.array()?;
                    let m = p.u32()?;
                    if m > MAX_LIST {
                        return Err(Error::Malformed("usage count"));
                    }
                    let usages = (0..m).map(|_| p.u32()).collect::<Result<_, _>>()?;
                    list.push(CertKey { key, usages });
                }
                keys = Some(list);
            }
            TAG_FEATURE => {
                let n = p.u32()?;
                if n > MAX_LIST {
                    return Err(Error::Malformed("feature count"));
                }
                features = (0..n).map(|_| p.u32()).collect::<Result<_, _>>()?;
            }
            TAG_MANUFACTURER => {
                let _flags = p.u32()?;
                let mut s = || -> Result<String, Error> {
                    let n = p.u32()? as usize;
                    let padded = n.checked_add(3).ok_or(Error::Malformed("string"))? & !3;
                    let b = p.take(padded)?;
                    let text = b[..n].split(|c| *c == 0).next().unwrap_or_default();
                    Ok(String::from_utf8_lossy(text).into_owned())
                };
                manufacturer = Some(Manufacturer {
                    name: s()?,
                    model_name: s()?,
                    model_number: s()?,
                });
            }
            TAG_SIGNATURE => {
                let kind = p.u16()?;
                let sig_len = p.u16()?;
                if kind != 1 || sig_len != 64 {
                    return Err(Error::Structure("signature is not ECDSA P-256"));
                }
                let sig: [u8; 64] = p.array()?;
                let bits = p.u32()?;
                if bits != 512 {
                    return Err(Error::Structure("issuer key is not P-256"));
                }
                signature = Some((sig, p.array::<64>()?));
            }
            // Other attributes (DEVICE, DOMAIN, PC, SECURITY_VERSION, …) are covered by the
            // signature and carry nothing Tessera enforces; real clients carry some flagged
            // must-understand, so they are not refused.
            _ => {
                p.rest();
            }
        }
        p.finish()
            .map_err(|_| Error::Malformed("an attribute longer than its content"))?;
    }
    let (signature, issuer_key) = signature.ok_or(Error::Malformed("no signature attribute"))?;
    Ok(Certificate {
        basic: basic.ok_or(Error::Malformed("no BASIC attribute"))?,
        keys: keys.ok_or(Error::Malformed("no KEY attribute"))?,
        features,
        manufacturer,
        signature,
        issuer_key,
        signed: offset..offset + signed_len,
        range: offset..offset + cert.len(),
    })
}

/// The certificates of a parsed chain's bytes, each as its own byte string (for building
/// a new chain on top of an existing group chain).
pub fn split_chain(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let certs = parse_chain(bytes)?;
    Ok(certs
        .iter()
        .map(|c| bytes[c.range.clone()].to_vec())
        .collect())
}
