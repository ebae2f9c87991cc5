//! BCert certificates and chains (docs/playready.md §2.5, §2.6, §1.4): the
//! binary device-certificate format of PlayReady-style clients, parsed, verified up to the
//! operator's own P-256 roots, and built (for `tessera devices playready` and the
//! response-signing chain).
//!
//! A chain is `"CHAI" | version | length | flags | count | certificates…` (leaf first); a
//! certificate is `"CERT" | version | length | signed length | attributes…`, each attribute
//! `flags(u16) | tag(u16) | length(u32, header included) | payload`, all big-endian. The
//! signature attribute comes last and covers every byte before it; it carries the issuer's
//! public key, so a chain is checked link by link and its top must be signed by a root,
//! which never appears in the chain itself.
//!
//! Verification is pure (the caller passes the time). A verified chain is cached by the
//! SHA-256 of its bytes ([`Trust`]), as the Widevine-style chains are: a chain enters the
//! cache only after a challenge signed with its leaf key verified, and expiry and revocation
//! are re-checked on every request, cached or not.

use crate::crypto::ecc::{self, EccPrivateKey, Point};
use crate::crypto::sha256;
use crate::license::policy::SecurityLevel;
use std::collections::HashSet;
use std::ops::Range;

/// Most certificates in a chain (§2.6).
pub const MAX_CHAIN: usize = 6;
/// Largest chain accepted, bytes (a real device chain is about 1.3 KB).
pub const MAX_CHAIN_BYTES: usize = 16 * 1024;
const MAX_KEYS: u32 = 8;
const MAX_LIST: u32 = 64;

/// Certificate types (BASIC `cert_type`).
pub mod cert_type {
    /// A client device.
    pub const DEVICE: u32 = 2;
    /// An issuer (model or intermediate).
    pub const ISSUER: u32 = 4;
    /// A licence server.
    pub const SERVER: u32 = 11;
}

/// Key usages.
pub mod usage {
    /// Signs challenges.
    pub const SIGN: u32 = 1;
    /// Receives content keys.
    pub const ENCRYPT_KEY: u32 = 2;
    /// Issues any certificate.
    pub const ISSUER_ALL: u32 = 4;
    /// Issues individualized certificates.
    pub const ISSUER_INDIV: u32 = 5;
    /// Issues device certificates (a model certificate's key).
    pub const ISSUER_DEVICE: u32 = 6;
    /// Signs licence responses.
    pub const SIGN_RESPONSE: u32 = 20;
}

/// Feature ids (FEATURE attribute).
pub mod feature {
    /// The device has a secure clock.
    pub const SECURE_CLOCK: u32 = 4;
    /// The device processes revocation lists.
    pub const SUPPORTS_CRLS: u32 = 9;
    /// PlayReady 3 features.
    pub const SUPPORTS_PR3_FEATURES: u32 = 13;
}

const TAG_BASIC: u16 = 0x0001;
const TAG_DEVICE: u16 = 0x0004;
const TAG_FEATURE: u16 = 0x0005;
const TAG_KEY: u16 = 0x0006;
const TAG_MANUFACTURER: u16 = 0x0007;
const TAG_SIGNATURE: u16 = 0x0008;
const FLAG_MUST_UNDERSTAND: u16 = 0x0001;
/// BASIC flags bit 0: an extended-data signature is present (not supported here).
const BASIC_EXTDATA: u32 = 1;
/// "Never expires".
pub const NEVER: u32 = 0xFFFF_FFFF;

/// Why a chain is refused. The codes name the failed check in faults and metrics.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not a BCert chain, or a length that does not add up.
    #[error("malformed certificate chain: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_CHAIN`] certificates, or none.
    #[error("a certificate chain has 1 to {MAX_CHAIN} certificates")]
    Length,
    /// Types, keys or usages do not form a valid chain.
    #[error("bad certificate chain: {0}")]
    Structure(&'static str),
    /// A signature in the chain does not verify.
    #[error("a signature in the certificate chain does not verify")]
    Signature,
    /// The top of the chain is not signed by a configured root.
    #[error("the certificate chain does not lead to a trusted root")]
    UntrustedRoot,
    /// A certificate has expired.
    #[error("a certificate in the chain has expired")]
    Expired,
    /// A certificate id or the model is revoked.
    #[error("the device is revoked ({0})")]
    Revoked(&'static str),
    /// The challenge is signed with a key that is not the device's SIGN key.
    #[error("the challenge is not signed by the device certificate's key")]
    KeyMismatch,
}

impl Error {
    /// Machine-readable code for faults and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed(_) | Error::Length | Error::Structure(_) => "device_chain_invalid",
            Error::Signature => "device_chain_signature",
            Error::UntrustedRoot => "device_chain_untrusted",
            Error::Expired => "device_certificate_expired",
            Error::Revoked(_) => "device_revoked",
            Error::KeyMismatch => "device_key_mismatch",
        }
    }
}

/// The BASIC attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Basic {
    /// Certificate id.
    pub cert_id: [u8; 16],
    /// 150, 2000 or 3000.
    pub security_level: u32,
    /// Flags (bit 0: extended data present).
    pub flags: u32,
    /// [`cert_type`].
    pub cert_type: u32,
    /// SHA-256 of the certificate's first public key.
    pub key_digest: [u8; 32],
    /// Unix seconds, or [`NEVER`].
    pub expiration: u32,
    /// Client id.
    pub client_id: [u8; 16],
}

/// One key of the KEY attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertKey {
    /// `X‖Y`.
    pub key: Point,
    /// [`usage`] values.
    pub usages: Vec<u32>,
}

/// The MANUFACTURER attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manufacturer {
    /// Manufacturer name.
    pub name: String,
    /// Model name (revocation by model matches it).
    pub model_name: String,
    /// Model number.
    pub model_number: String,
}

/// A parsed certificate. `signed` is the range (within the chain's bytes) its signature
/// covers.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// BASIC.
    pub basic: Basic,
    /// KEY.
    pub keys: Vec<CertKey>,
    /// FEATURE ids.
    pub features: Vec<u32>,
    /// MANUFACTURER.
    pub manufacturer: Option<Manufacturer>,
    /// The signature, `r‖s`.
    pub signature: [u8; 64],
    /// The issuer's public key.
    pub issuer_key: Point,
    /// Bytes the signature covers.
    pub signed: Range<usize>,
    /// The whole certificate.
    pub range: Range<usize>,
}

impl Certificate {
    /// The first key carrying `usage`.
    pub fn key_with(&self, usage: u32) -> Option<&Point> {
        self.keys
            .iter()
            .find(|k| k.usages.contains(&usage))
            .map(|k| &k.key)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(Error::Malformed("truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Parses a chain (no signature or trust checks: see [`verify_chain`]).
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<Certificate>, Error> {
    if bytes.len() > MAX_CHAIN_BYTES {
        return Err(Error::Malformed("chain too large"));
    }
    let mut r = Reader { buf: bytes, pos: 0 };
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
        let start = r.pos;
        if r.take(4)? != b"CERT" {
            return Err(Error::Malformed("no CERT header"));
        }
        let _version = r.u32()?;
        let len = r.u32()? as usize;
        let signed_len = r.u32()? as usize;
        if len < 16 || signed_len < 16 || signed_len > len {
            return Err(Error::Malformed("certificate length fields"));
        }
        r.pos = start;
        let cert = r.take(len)?;
        certs.push(parse_cert(cert, start, signed_len)?);
    }
    if !r.done() {
        return Err(Error::Malformed("bytes after the last certificate"));
    }
    Ok(certs)
}

fn parse_cert(cert: &[u8], offset: usize, signed_len: usize) -> Result<Certificate, Error> {
    let mut r = Reader { buf: cert, pos: 16 };
    let mut basic = None;
    let mut keys = None;
    let mut features = Vec::new();
    let mut manufacturer = None;
    let mut signature = None;
    let mut seen = HashSet::new();
    while !r.done() {
        let at = r.pos;
        let _flags = r.u16()?;
        let tag = r.u16()?;
        let len = r.u32()? as usize;
        if len < 8 {
            return Err(Error::Malformed("attribute length"));
        }
        let payload = r.take(len - 8)?;
        let mut p = Reader {
            buf: payload,
            pos: 0,
        };
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
            if at != signed_len || !r.done() {
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
            _ => p.pos = p.buf.len(),
        }
        if !p.done() {
            return Err(Error::Malformed("an attribute longer than its content"));
        }
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

/// A device whose chain verified.
#[derive(Clone, Debug)]
pub struct Device {
    /// The leaf key with usage SIGN: challenges are signed with it.
    pub sign_key: Point,
    /// The leaf key with usage ENCRYPT_KEY: content keys are encrypted to it.
    pub encrypt_key: Point,
    /// The leaf's security level (150, 2000, 3000).
    pub security_level: u32,
    /// Certificate ids of the chain, leaf first.
    pub cert_ids: Vec<[u8; 16]>,
    /// The model name, from the MANUFACTURER of the model certificate (the issuer right
    /// above the leaf: whoever holds the model key writes the leaf's freely), for
    /// revocation by model.
    pub model: Option<String>,
    /// Earliest expiry in the chain (Unix seconds); [`NEVER`] when none expires.
    pub expires_at: u32,
}

impl Device {
    /// The neutral security level of the device: SL3000 is hardware throughout; SL2000
    /// covers hardened software as well as hardware, so it counts as the safe end of that
    /// range, software crypto and decode; SL150 (and anything lower) is test-grade software.
    pub fn level(&self) -> SecurityLevel {
        match self.security_level {
            3000.. => SecurityLevel::HwSecureAll,
            2000.. => SecurityLevel::SwSecureDecode,
            _ => SecurityLevel::SwSecureCrypto,
        }
    }
}

/// Verifies a chain up to one of `roots` (§2.6; no time or revocation checks: see
/// [`Trust::verify`]). `want` is the leaf's required type; `sign_key`, when given, must be
/// the leaf's SIGN key. Every structural check (types, links, usages, levels, keys on the
/// curve, the root, the signing key) runs before the first signature verification, so a
/// chain that cannot verify costs no ECDSA operation.
pub fn verify_chain(
    bytes: &[u8],
    roots: &[Point],
    want: u32,
    sign_key: Option<&Point>,
) -> Result<Device, Error> {
    let certs = parse_chain(bytes)?;
    let leaf = &certs[0];
    if leaf.basic.cert_type != want {
        return Err(Error::Structure("the leaf has the wrong certificate type"));
    }
    let mut expires_at = NEVER;
    for (i, c) in certs.iter().enumerate() {
        if c.basic.flags & BASIC_EXTDATA != 0 {
            return Err(Error::Structure("extended data is not supported"));
        }
        if c.basic.key_digest != sha256(&c.keys[0].key) {
            return Err(Error::Structure("the BASIC key digest does not match"));
        }
        if !c.keys.iter().all(|k| ecc::is_point(&k.key)) {
            return Err(Error::Structure("a certificate key is not a P-256 point"));
        }
        expires_at = expires_at.min(c.basic.expiration);
        match certs.get(i + 1) {
            Some(parent) => {
                if parent.basic.cert_type != cert_type::ISSUER {
                    return Err(Error::Structure("an intermediate is not an ISSUER"));
                }
                let issuer =
                    parent
                        .keys
                        .iter()
                        .find(|k| k.key == c.issuer_key)
                        .ok_or(Error::Structure(
                            "a certificate's issuer key is not its parent's",
                        ))?;
                let may_issue = issuer.usages.iter().any(|u| match c.basic.cert_type {
                    cert_type::DEVICE => {
                        matches!(
                            *u,
                            usage::ISSUER_ALL | usage::ISSUER_DEVICE | usage::ISSUER_INDIV
                        )
                    }
                    _ => *u == usage::ISSUER_ALL,
                });
                if !may_issue {
                    return Err(Error::Structure("the issuer key may not issue this type"));
                }
                if c.basic.security_level > parent.basic.security_level {
                    return Err(Error::Structure(
                        "a certificate claims more than its issuer",
                    ));
                }
            }
            None => {
                if !roots.iter().any(|r| crate::crypto::ct_eq(r, &c.issuer_key)) {
                    return Err(Error::UntrustedRoot);
                }
            }
        }
    }
    let (sign, encrypt) = match want {
        cert_type::DEVICE => (
            *leaf
                .key_with(usage::SIGN)
                .ok_or(Error::Structure("the device has no SIGN key"))?,
            *leaf
                .key_with(usage::ENCRYPT_KEY)
                .ok_or(Error::Structure("the device has no ENCRYPT_KEY key"))?,
        ),
        _ => {
            let k = *leaf
                .key_with(usage::SIGN_RESPONSE)
                .ok_or(Error::Structure("the server has no SIGN_RESPONSE key"))?;
            (k, k)
        }
    };
    if sign_key.is_some_and(|k| !crate::crypto::ct_eq(k, &sign)) {
        return Err(Error::KeyMismatch);
    }
    for c in &certs {
        if !ecc::verify(&c.issuer_key, &bytes[c.signed.clone()], &c.signature) {
            return Err(Error::Signature);
        }
    }
    let model = certs.get(1).unwrap_or(leaf);
    Ok(Device {
        sign_key: sign,
        encrypt_key: encrypt,
        security_level: leaf.basic.security_level,
        cert_ids: certs.iter().map(|c| c.basic.cert_id).collect(),
        model: model.manufacturer.as_ref().map(|m| m.model_name.clone()),
        expires_at,
    })
}

/// What the operator trusts and revokes.
#[derive(Debug, Default)]
pub struct TrustConfig {
    /// Root public keys (`X‖Y`).
    pub roots: Vec<Point>,
    /// Revoked certificate ids (any position in the chain: a model certificate's id revokes
    /// the model).
    pub revoked_cert_ids: HashSet<[u8; 16]>,
    /// Revoked model names (MANUFACTURER `model_name` of the leaf).
    pub revoked_models: HashSet<String>,
}

/// A chain that verified, and whether it came from the cache.
pub type Verified = crate::protocol::chain_cache::Verified<Device>;

/// Verifies device chains and caches the verified ones.
#[derive(Debug)]
pub struct Trust {
    config: TrustConfig,
    cache: crate::protocol::chain_cache::ChainCache<Device>,
}

impl Trust {
    /// A verifier over `config` caching up to `cache_capacity` chains.
    pub fn new(config: TrustConfig, cache_capacity: usize) -> Self {
        Self {
            config,
            cache: crate::protocol::chain_cache::ChainCache::new(cache_capacity),
        }
    }

    /// Verifies a device chain at time `now` (from the cache when these exact bytes
    /// verified before), that `sign_key` is its SIGN key, then expiry and revocation.
    pub fn verify(&self, chain: &[u8], sign_key: &Point, now: u64) -> Result<Verified, Error> {
        let verified = self.cache.get_or_verify(chain, || {
            verify_chain(chain, &self.config.roots, cert_type::DEVICE, Some(sign_key))
        })?;
        // A cached chain was verified with the key of the challenge that cached it.
        if !crate::crypto::ct_eq(&verified.device.sign_key, sign_key) {
            return Err(Error::KeyMismatch);
        }
        self.admit(&verified.device, now)?;
        Ok(verified)
    }

    /// Caches a verified chain; call once the device has proved possession of its key.
    pub fn remember(&self, v: &Verified) {
        self.cache.remember(v);
    }

    fn admit(&self, d: &Device, now: u64) -> Result<(), Error> {
        if d.expires_at != NEVER && u64::from(d.expires_at) <= now {
            return Err(Error::Expired);
        }
        if d.cert_ids
            .iter()
            .any(|id| self.config.revoked_cert_ids.contains(id))
        {
            return Err(Error::Revoked("certificate id"));
        }
        if d.model
            .as_ref()
            .is_some_and(|m| self.config.revoked_models.contains(m))
        {
            return Err(Error::Revoked("model"));
        }
        Ok(())
    }
}

/// A certificate to build.
#[derive(Clone, Debug)]
pub struct CertSpec {
    /// Certificate id.
    pub cert_id: [u8; 16],
    /// 150, 2000 or 3000.
    pub security_level: u32,
    /// [`cert_type`].
    pub cert_type: u32,
    /// Client id.
    pub client_id: [u8; 16],
    /// Unix seconds or [`NEVER`].
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

/// The certificates of a parsed chain's bytes, each as its own byte string (for building
/// a new chain on top of an existing group chain).
pub fn split_chain(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let certs = parse_chain(bytes)?;
    Ok(certs
        .iter()
        .map(|c| bytes[c.range.clone()].to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn issuer(id: u8, key: &EccPrivateKey, usage: u32, level: u32) -> CertSpec {
        CertSpec {
            cert_id: [id; 16],
            security_level: level,
            cert_type: cert_type::ISSUER,
            client_id: [0; 16],
            expiration: NEVER,
            keys: vec![CertKey {
                key: *key.public(),
                usages: vec![usage],
            }],
            features: None,
            manufacturer: Some(Manufacturer {
                name: "Tessera".into(),
                model_name: "model-a".into(),
                model_number: "1".into(),
            }),
        }
    }

    struct Fixture {
        root: EccPrivateKey,
        chain: Vec<u8>,
        sign: EccPrivateKey,
        encrypt: EccPrivateKey,
    }

    fn fixture(level: u32, expiration: u32) -> Fixture {
        fixture_named(level, expiration, "model-a")
    }

    fn fixture_named(level: u32, expiration: u32, leaf_model: &str) -> Fixture {
        let root = EccPrivateKey::generate().unwrap();
        let inter = EccPrivateKey::generate().unwrap();
        let group = EccPrivateKey::generate().unwrap();
        let sign = EccPrivateKey::generate().unwrap();
        let encrypt = EccPrivateKey::generate().unwrap();
        let leaf = CertSpec {
            cert_id: [3; 16],
            security_level: level,
            cert_type: cert_type::DEVICE,
            client_id: [9; 16],
            expiration,
            keys: vec![
                CertKey {
                    key: *sign.public(),
                    usages: vec![usage::SIGN],
                },
                CertKey {
                    key: *encrypt.public(),
                    usages: vec![usage::ENCRYPT_KEY],
                },
            ],
            features: Some(vec![
                feature::SECURE_CLOCK,
                feature::SUPPORTS_CRLS,
                feature::SUPPORTS_PR3_FEATURES,
            ]),
            manufacturer: Some(Manufacturer {
                name: "Tessera".into(),
                model_name: leaf_model.into(),
                model_number: "1".into(),
            }),
        };
        let chain = chain(&[
            leaf.build(&group).unwrap(),
            issuer(2, &group, usage::ISSUER_DEVICE, 2000)
                .build(&inter)
                .unwrap(),
            issuer(1, &inter, usage::ISSUER_ALL, 3000)
                .build(&root)
                .unwrap(),
        ]);
        Fixture {
            root,
            chain,
            sign,
            encrypt,
        }
    }

    #[test]
    fn builds_the_documented_layout_and_verifies() {
        let f = fixture(2000, NEVER);
        let certs = parse_chain(&f.chain).unwrap();
        assert_eq!(certs.len(), 3);
        // §2.5: a device leaf is 364 signed bytes, 508 in all, with this manufacturer.
        let leaf_len = certs[0].signed.end + 144 - certs[0].signed.start;
        // Header, BASIC 88, DEVICE 20, FEATURE 24, KEY 172, MANUFACTURER 44: §2.5's 364
        // signed bytes (508 in all) for a leaf, 240 for an issuer.
        assert_eq!(certs[0].signed.len(), 16 + 88 + 20 + 24 + 172 + 44);
        assert_eq!(certs[0].signed.len(), 364);
        assert_eq!(leaf_len, 508);
        assert_eq!(certs[1].signed.len(), 240);
        assert_eq!(split_chain(&f.chain).unwrap().len(), 3);
        let d = verify_chain(&f.chain, &[*f.root.public()], cert_type::DEVICE, None).unwrap();
        assert_eq!(&d.sign_key, f.sign.public());
        assert_eq!(&d.encrypt_key, f.encrypt.public());
        assert_eq!(d.security_level, 2000);
        // SL2000 includes hardened software: never more than software decode.
        assert_eq!(d.level(), SecurityLevel::SwSecureDecode);
        assert_eq!(d.cert_ids, vec![[3; 16], [2; 16], [1; 16]]);
        assert_eq!(d.model.as_deref(), Some("model-a"));
        // The chain rebuilt from its parts is the same bytes.
        assert_eq!(chain(&split_chain(&f.chain).unwrap()), f.chain);
    }

    #[test]
    fn refusals() {
        let f = fixture(2000, NEVER);
        let roots = [*f.root.public()];
        let other = [*EccPrivateKey::generate().unwrap().public()];
        assert_eq!(
            verify_chain(&f.chain, &other, cert_type::DEVICE, None).unwrap_err(),
            Error::UntrustedRoot
        );
        assert!(matches!(
            verify_chain(&f.chain, &roots, cert_type::SERVER, None).unwrap_err(),
            Error::Structure(_)
        ));
        // Any flipped byte in a signed part breaks a signature or the structure.
        for at in [30, 100, 400, 600, 900] {
            let mut bad = f.chain.clone();
            bad[at] ^= 0x40;
            assert!(
                verify_chain(&bad, &roots, cert_type::DEVICE, None).is_err(),
                "{at}"
            );
        }
        // Truncation and trailing bytes.
        assert!(parse_chain(&f.chain[..f.chain.len() - 1]).is_err());
        let mut long = f.chain.clone();
        long.push(0);
        assert!(parse_chain(&long).is_err());
        // A leaf claiming more than its model: refused.
        let g = fixture(3000, NEVER);
        assert!(matches!(
            verify_chain(&g.chain, &[*g.root.public()], cert_type::DEVICE, None).unwrap_err(),
            Error::Structure(_)
        ));
    }

    /// The model name is the model certificate's: a holder of the model key who writes
    /// another name into a leaf is still revoked with the model.
    #[test]
    fn model_revocation_reads_the_model_certificate() {
        let f = fixture_named(2000, NEVER, "innocent");
        let t = Trust::new(
            TrustConfig {
                roots: vec![*f.root.public()],
                revoked_models: ["model-a".to_owned()].into(),
                ..Default::default()
            },
            2,
        );
        assert_eq!(
            t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
            Error::Revoked("model")
        );
    }

    #[test]
    fn signing_key_duplicates_and_off_curve_keys() {
        let f = fixture(2000, NEVER);
        let roots = [*f.root.public()];
        // The challenge's key must be the leaf's SIGN key (the ENCRYPT_KEY is not).
        assert_eq!(
            verify_chain(
                &f.chain,
                &roots,
                cert_type::DEVICE,
                Some(f.encrypt.public())
            )
            .unwrap_err(),
            Error::KeyMismatch
        );
        let t = Trust::new(
            TrustConfig {
                roots: roots.to_vec(),
                ..Default::default()
            },
            2,
        );
        let v = t.verify(&f.chain, f.sign.public(), 1).unwrap();
        t.remember(&v);
        // Also from the cache.
        assert_eq!(
            t.verify(&f.chain, f.encrypt.public(), 1).unwrap_err(),
            Error::KeyMismatch
        );
        // A leaf with an off-curve key or a duplicate attribute, validly signed by its
        // model: refused as malformed before any signature is checked.
        let group = EccPrivateKey::generate().unwrap();
        let mut spec = issuer(5, &group, usage::ISSUER_DEVICE, 2000);
        spec.keys[0].key[63] ^= 1;
        let bad = spec.build(&group).unwrap();
        assert!(matches!(
            verify_chain(&chain(&[bad]), &[*group.public()], cert_type::ISSUER, None),
            Err(Error::Structure(_))
        ));
        let good = issuer(5, &group, usage::ISSUER_DEVICE, 2000)
            .build(&group)
            .unwrap();
        // Duplicate the BASIC attribute (88 bytes after the 16-byte header), fixing the
        // length fields: the parser refuses it whatever the signature.
        let mut dup = good[..16 + 88].to_vec();
        dup.extend_from_slice(&good[16..16 + 88]);
        dup.extend_from_slice(&good[16 + 88..]);
        let total = dup.len() as u32;
        let signed = u32::from_be_bytes(good[12..16].try_into().unwrap()) + 88;
        dup[8..12].copy_from_slice(&total.to_be_bytes());
        dup[12..16].copy_from_slice(&signed.to_be_bytes());
        assert_eq!(
            parse_chain(&chain(&[dup])).unwrap_err(),
            Error::Malformed("a duplicate attribute")
        );
    }

    #[test]
    fn trust_expiry_revocation_and_cache() {
        let f = fixture(150, 2_000_000_000);
        let mut cfg = TrustConfig {
            roots: vec![*f.root.public()],
            ..Default::default()
        };
        let t = Trust::new(
            TrustConfig {
                roots: cfg.roots.clone(),
                ..Default::default()
            },
            2,
        );
        let v = t.verify(&f.chain, f.sign.public(), 1_000).unwrap();
        assert!(!v.cached());
        t.remember(&v);
        assert!(t.verify(&f.chain, f.sign.public(), 1_000).unwrap().cached());
        assert_eq!(
            t.verify(&f.chain, f.sign.public(), 2_000_000_000)
                .unwrap_err(),
            Error::Expired
        );
        cfg.revoked_cert_ids.insert([2; 16]);
        let t = Trust::new(cfg, 2);
        assert_eq!(
            t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
            Error::Revoked("certificate id")
        );
        let t = Trust::new(
            TrustConfig {
                roots: vec![*f.root.public()],
                revoked_models: ["model-a".to_owned()].into(),
                ..Default::default()
            },
            2,
        );
        assert_eq!(
            t.verify(&f.chain, f.sign.public(), 1_000).unwrap_err(),
            Error::Revoked("model")
        );
    }
}
