//! SPEKE v2.0 / v2.1 request documents (CPIX 2.3 / 2.4) and their responses
//! (`docs/protocols.md`, "SPEKE"; the AWS SPEKE v2 API, constraints and encryption
//! contract; DASH-IF CPIX 2.3 §5). Pure: the document in, the filled document out.
//!
//! The response is the request with values filled in: every element and attribute the
//! encryptor sent is kept, `ContentKey/Data` is added, and each `DRMSystem` gets exactly the
//! signalling children it asked for (children that do not apply to the system are
//! removed). Elements are matched by namespace URI, never by prefix.

use super::delivery::{self, DocumentKeys, Recipient};
use crate::encoding::{b64_decode, b64_encode, hex_encode};
use crate::keyring::KeyId;
use crate::protocol::playready::header::HeaderKey;
use crate::protocol::signalling::{self, Scheme};
use crate::xml::{self, Element};
use std::collections::{HashMap, HashSet};

/// CPIX namespace.
pub const NS_CPIX: &str = "urn:dashif:org:cpix";
/// PSKC namespace (key containers).
pub const NS_PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// XML Encryption namespace.
pub const NS_ENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML Signature namespace.
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Most `DeliveryData` recipients in one request (SPEKE uses one; each costs RSA work).
pub const MAX_RECIPIENTS: usize = 4;

/// DRM system ids Tessera signals.
pub mod system {
    /// Widevine.
    pub const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
    /// PlayReady.
    pub const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
    /// FairPlay.
    pub const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";
    /// HLS AES-128 ("ClearKey AES-128" in AWS's list).
    pub const AES128: &str = "3ea8778f-7742-4bf9-b18b-e834b2acbd47";
    /// W3C common PSSH (Clear Key).
    pub const COMMON: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
}

/// Errors of the SPEKE contract; the message is what SPEKE clients log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `X-Speke-Version` missing or not 2.0 / 2.1.
    #[error("Unsupported SPEKE version")]
    SpekeVersion,
    /// Not XML, or unsafe XML.
    #[error("{0}")]
    Xml(#[from] xml::Error),
    /// No `CPIX@contentId`.
    #[error("Missing CPIX@contentId")]
    MissingContentId,
    /// No `CPIX@version`.
    #[error("Missing CPIX@version")]
    MissingVersion,
    /// `CPIX@version` does not pair with `X-Speke-Version`.
    #[error("Unsupported CPIX@version")]
    CpixVersion,
    /// A content key without a scheme.
    #[error("Missing ContentKey@commonEncryptionScheme for KID {0}")]
    MissingScheme(String),
    /// Content keys with different schemes.
    #[error("Non compliant ContentKey@commonEncryptionScheme combination")]
    MixedSchemes,
    /// Any other violation of the contract.
    #[error("{0}")]
    Invalid(String),
    /// Key delivery problems (certificate, crypto).
    #[error(transparent)]
    Delivery(#[from] delivery::Error),
}

impl Error {
    /// True for a malformed body (HTTP 400) rather than a contract violation (422).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Error::Xml(_))
    }

    /// True for Tessera's own failure (random numbers, a cipher), not the request's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Delivery(delivery::Error::Crypto))
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// SPEKE version, from `X-Speke-Version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// SPEKE 2.0, CPIX 2.3.
    V2_0,
    /// SPEKE 2.1, CPIX 2.4.
    V2_1,
}

impl Version {
    /// Parses the header value.
    pub fn parse(header: Option<&str>) -> Result<Self, Error> {
        match header.map(str::trim) {
            Some("2.0") => Ok(Version::V2_0),
            Some("2.1") => Ok(Version::V2_1),
            _ => Err(Error::SpekeVersion),
        }
    }

    /// The header value to echo.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2_0 => "2.0",
            Version::V2_1 => "2.1",
        }
    }

    fn cpix(self) -> &'static str {
        match self {
            Version::V2_0 => "2.3",
            Version::V2_1 => "2.4",
        }
    }
}

/// A requested key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// KID.
    pub kid: KeyId,
    /// Track type of its usage rule, if any.
    pub track_type: Option<String>,
    /// Period index of its usage rule's `KeyPeriodFilter`, if any.
    pub period: Option<u64>,
    /// The request has an empty `explicitIV`: the encryptor asks Tessera for the IV.
    pub wants_iv: bool,
}

/// A validated request: the tree to fill, and what it asks for.
#[derive(Debug)]
pub struct Request {
    tree: Element,
    /// SPEKE version.
    pub version: Version,
    /// `CPIX@contentId`.
    pub content_id: String,
    /// Keys, in document order.
    pub keys: Vec<KeyRequest>,
    /// The one encryption scheme of every key (`None` for HLS AES-128 in 2.1).
    pub scheme: Option<Scheme>,
    /// Each `DeliveryData`'s certificate key, read once at parse time.
    recipients: Vec<Recipient>,
}

fn cpix_children<'a>(el: &'a Element, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    el.children_named(NS_CPIX, local)
}

fn one_list<'a>(
    root: &'a Element,
    local: &str,
    required: bool,
) -> Result<Option<&'a Element>, Error> {
    let mut first = None;
    for e in root.elements().filter(|e| e.is(NS_CPIX, local)) {
        if first.is_some() {
            return Err(invalid(format!("CPIX has more than one {local}")));
        }
        first = Some(e);
    }
    if required && first.is_none() {
        return Err(invalid(format!("Missing {local}")));
    }
    Ok(first)
}

fn parse_kid(text: Option<&str>, what: &str) -> Result<KeyId, Error> {
    let text = text.ok_or_else(|| invalid(format!("Missing {what}@kid")))?;
    KeyId::parse(text).map_err(|_| invalid(format!("{what}@kid {text:?} is not a UUID")))
}

/// The scheme named by `commonEncryptionScheme`; SPEKE 2.1 also allows HLS method names.
fn scheme_of(text: &str, version: Version) -> Result<Option<Scheme>, Error> {
    if let Some(s) = Scheme::parse(text) {
        return Ok(Some(s));
    }
    match (version, text) {
        (Version::V2_1, "SAMPLE-AES") => Ok(Some(Scheme::Cbcs)),
        (Version::V2_1, "SAMPLE-AES-CTR") => Ok(Some(Scheme::Cenc)),
        (Version::V2_1, "AES-128") => Ok(None),
        _ => Err(invalid(format!(
            "Unsupported ContentKey@commonEncryptionScheme {text:?}"
        ))),
    }
}

/// Parses and validates a request document. `max_keys` bounds the keys of one request.
pub fn parse(body: &[u8], speke_version: Option<&str>, max_keys: usize) -> Result<Request, Error> {
    let version = Version::parse(speke_version)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Xml(xml::Error::Malformed("empty body".into())));
    }
    let tree = xml::parse(body)?;
    if !tree.is(NS_CPIX, "CPIX") {
        return Err(invalid("the root element is not {urn:dashif:org:cpix}CPIX"));
    }
    let content_id = tree
        .attr("contentId")
        .filter(|c| !c.is_empty())
        .ok_or(Error::MissingContentId)?
        .to_owned();
    if content_id.len() > crate::protocol::keyapi::message::MAX_CONTENT_ID
        || content_id.chars().any(char::is_control)
    {
        return Err(invalid(
            "CPIX@contentId must be 1..=256 bytes without control characters",
        ));
    }
    let cpix_version = tree.attr("version").ok_or(Error::MissingVersion)?;
    if cpix_version != version.cpix() {
        return Err(Error::CpixVersion);
    }

    // Content keys: unique KIDs, one scheme for all.
    let key_list = one_list(&tree, "ContentKeyList", true)?.unwrap_or(&tree);
    let mut kids: Vec<KeyId> = Vec::new();
    let mut unique: HashSet<KeyId> = HashSet::new();
    // The scheme of the first key; every other must name the same scheme (by meaning: `cbcs`
    // and 2.1's `SAMPLE-AES` are one scheme).
    let mut first_scheme: Option<Option<Scheme>> = None;
    for ck in cpix_children(key_list, "ContentKey") {
        let kid = parse_kid(ck.attr("kid"), "ContentKey")?;
        if !unique.insert(kid) {
            return Err(invalid(format!("ContentKey {kid} is listed twice")));
        }
        if kids.len() == max_keys {
            return Err(invalid(format!(
                "at most {max_keys} ContentKey elements per request"
            )));
        }
        let s = ck
            .attr("commonEncryptionScheme")
            .ok_or_else(|| Error::MissingScheme(kid.to_string()))?;
        let this = scheme_of(s, version)?;
        match first_scheme {
            Some(first) if first != this => return Err(Error::MixedSchemes),
            _ => first_scheme = Some(this),
        }
        if let Some(iv) = ck.attr("explicitIV")
            && !iv.is_empty()
            && b64_decode(iv).map_or(true, |v| v.len() != 16)
        {
            return Err(invalid(format!(
                "ContentKey@explicitIV of {kid} must be 16 bytes of base64"
            )));
        }
        kids.push(kid);
    }
    let scheme = first_scheme.ok_or_else(|| invalid("ContentKeyList has no ContentKey"))?;

    // Periods.
    let mut periods: HashMap<&str, Option<u64>> = HashMap::new();
    if let Some(list) = one_list(&tree, "ContentKeyPeriodList", false)? {
        for p in cpix_children(list, "ContentKeyPeriod") {
            let id = p
                .attr("id")
                .filter(|i| !i.is_empty())
                .ok_or_else(|| invalid("Missing ContentKeyPeriod@id"))?;
            let index = p
                .attr("index")
                .map(|i| {
                    i.parse::<u64>()
                        .map_err(|_| invalid(format!("ContentKeyPeriod@index {i:?}")))
                })
                .transpose()?;
            if periods.insert(id, index).is_some() {
                return Err(invalid(format!("ContentKeyPeriod {id:?} is listed twice")));
            }
        }
    }

    // Usage rules: every KID declared, track types unique (per period), ALL alone.
    let rules = one_list(&tree, "ContentKeyUsageRuleList", true)?.unwrap_or(&tree);
    let mut keys: Vec<KeyRequest> = kids
        .iter()
        .map(|&kid| KeyRequest {
            kid,
            track_type: None,
            period: None,
            wants_iv: false,
        })
        .collect();
    for (k, ck) in keys.iter_mut().zip(cpix_children(key_list, "ContentKey")) {
        k.wants_iv = ck.attr("explicitIV") == Some("");
    }
    let mut seen: HashSet<(String, Vec<String>)> = HashSet::new();
    let mut rule_count = 0;
    let mut has_all = false;
    for rule in cpix_children(rules, "ContentKeyUsageRule") {
        rule_count += 1;
        let kid = parse_kid(rule.attr("kid"), "ContentKeyUsageRule")?;
        let at = kids
            .iter()
            .position(|k| *k == kid)
            .ok_or_else(|| invalid(format!("ContentKeyUsageRule names unknown KID {kid}")))?;
        let track = rule
            .attr("intendedTrackType")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("Missing ContentKeyUsageRule@intendedTrackType"))?;
        let video: Vec<&Element> = cpix_children(rule, "VideoFilter").collect();
        let audio: Vec<&Element> = cpix_children(rule, "AudioFilter").collect();
        if video.is_empty() && audio.is_empty() {
            return Err(invalid(format!(
                "ContentKeyUsageRule {track} needs a VideoFilter or an AudioFilter"
            )));
        }
        let mut period_ids = Vec::new();
        for f in cpix_children(rule, "KeyPeriodFilter") {
            let id = f
                .attr("periodId")
                .ok_or_else(|| invalid("Missing KeyPeriodFilter@periodId"))?;
            let index = periods
                .get(id)
                .ok_or_else(|| invalid(format!("KeyPeriodFilter names unknown period {id:?}")))?;
            keys[at].period = *index;
            period_ids.push(id.to_owned());
        }
        if track == "ALL" {
            has_all = true;
            let empty = |e: &&Element| e.attrs.is_empty() && e.children.is_empty();
            if video.len() != 1
                || audio.len() != 1
                || !video.iter().all(empty)
                || !audio.iter().all(empty)
            {
                return Err(invalid(
                    "intendedTrackType ALL needs exactly one empty VideoFilter and one empty AudioFilter",
                ));
            }
        }
        if !seen.insert((track.to_owned(), period_ids)) {
            return Err(invalid(format!(
                "intendedTrackType {track} is used by more than one rule"
            )));
        }
        keys[at].track_type = Some(track.to_owned());
    }
    if rule_count == 0 {
        return Err(invalid(
            "ContentKeyUsageRuleList has no ContentKeyUsageRule",
        ));
    }
    if has_all && seen.iter().any(|(t, _)| t != "ALL") {
        return Err(invalid(
            "intendedTrackType ALL (one key for every track) cannot be combined with other rules",
        ));
    }

    // DRM systems: known systems, declared KIDs, FairPlay only with cbcs.
    let systems = one_list(&tree, "DRMSystemList", true)?.unwrap_or(&tree);
    let mut pairs = HashSet::new();
    let mut system_count = 0;
    for d in cpix_children(systems, "DRMSystem") {
        system_count += 1;
        let kid = parse_kid(d.attr("kid"), "DRMSystem")?;
        if !kids.contains(&kid) {
            return Err(invalid(format!("DRMSystem names unknown KID {kid}")));
        }
        let id = d
            .attr("systemId")
            .ok_or_else(|| invalid("Missing DRMSystem@systemId"))?
            .to_ascii_lowercase();
        match id.as_str() {
            system::WIDEVINE | system::PLAYREADY | system::COMMON => {
                if scheme.is_none() {
                    return Err(invalid(format!(
                        "DRMSystem {id} needs a CENC scheme, not AES-128"
                    )));
                }
            }
            system::FAIRPLAY => {
                if scheme != Some(Scheme::Cbcs) {
                    return Err(invalid(
                        "FairPlay (94ce86fb-07ff-4f43-adb8-93d2fa968ca2) requires commonEncryptionScheme cbcs",
                    ));
                }
            }
            system::AES128 => {}
            _ => return Err(invalid(format!("Unsupported DRMSystem@systemId {id}"))),
        }
        if !pairs.insert((kid, id.clone())) {
            return Err(invalid(format!(
                "DRMSystem {id} for KID {kid} is listed twice"
            )));
        }
        // One of each signalling child (HLS: one per playlist kind): each is filled with
        // kilobytes, so repeats would let a small request build a huge answer.
        let mut asked: HashSet<&str> = HashSet::new();
        for c in d.elements().filter(|e| e.ns.as_deref() == Some(NS_CPIX)) {
            let slot = match (c.local.as_str(), c.attr("playlist")) {
                ("HLSSignalingData", None | Some("media")) => "HLS media",
                ("HLSSignalingData", Some("master" | "multiVariant")) => "HLS master",
                ("HLSSignalingData", Some(p)) => {
                    return Err(invalid(format!("HLSSignalingData@playlist {p:?}")));
                }
                (other, _) => other,
            };
            if !asked.insert(slot) {
                return Err(invalid(format!(
                    "DRMSystem {id} for KID {kid} asks for {slot} more than once"
                )));
            }
        }
    }
    if system_count == 0 {
        return Err(invalid("DRMSystemList has no DRMSystem"));
    }

    // Recipients of encrypted keys.
    let mut recipients = Vec::new();
    if let Some(list) = one_list(&tree, "DeliveryDataList", false)? {
        for dd in cpix_children(list, "DeliveryData") {
            let cert = dd
                .child(NS_CPIX, "DeliveryKey")
                .and_then(|k| k.child(NS_DS, "X509Data"))
                .and_then(|x| x.child(NS_DS, "X509Certificate"))
                .ok_or_else(|| {
                    invalid("DeliveryData needs DeliveryKey/X509Data/X509Certificate")
                })?;
            let text: String = cert.text().split_ascii_whitespace().collect();
            let der = b64_decode(&text)
                .map_err(|_| invalid("DeliveryKey X509Certificate is not base64"))?;
            if recipients.len() == MAX_RECIPIENTS {
                return Err(invalid(format!(
                    "at most {MAX_RECIPIENTS} DeliveryData recipients per request"
                )));
            }
            recipients.push(Recipient::from_certificate(&der)?);
        }
        if recipients.is_empty() {
            return Err(invalid("DeliveryDataList has no DeliveryData"));
        }
    }
    Ok(Request {
        tree,
        version,
        content_id,
        keys,
        scheme,
        recipients,
    })
}

/// What the signalling needs besides the keys.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// `provider` in Widevine PSSH data.
    pub widevine_provider: &'a str,
    /// Base URL of the public listener (licence and key URLs).
    pub public_url: &'a str,
}

/// Picks the prefix the root declares for `ns`, declaring `preferred` (or a free variant)
/// when it has none: new elements are written with a prefix, never into a default namespace.
fn prefix(root: &mut Element, ns: &str, preferred: &str) -> String {
    if let Some(p) = root.declared_prefix(ns).filter(|p| !p.is_empty()) {
        return p.to_owned();
    }
    let mut candidate = preferred.to_owned();
    let mut n = 1;
    while root.declares(&candidate) {
        candidate = format!("{preferred}{n}");
        n += 1;
    }
    root.declare(&candidate, ns);
    candidate
}

struct Prefixes {
    cpix: String,
    pskc: String,
    enc: Option<String>,
}

impl Prefixes {
    fn el(&self, which: &str, local: &str) -> Element {
        match which {
            "cpix" => Element::new(&self.cpix, NS_CPIX, local),
            "pskc" => Element::new(&self.pskc, NS_PSKC, local),
            _ => Element::new(self.enc.as_deref().unwrap_or("enc"), NS_ENC, local),
        }
    }

    fn with_text(&self, which: &str, local: &str, text: String) -> Element {
        let mut e = self.el(which, local);
        e.set_text(text);
        e
    }

    /// `EncryptionMethod` + `CipherData/CipherValue`.
    fn cipher(&self, algorithm: &str, value: &[u8]) -> [Element; 2] {
        let mut method = self.el("enc", "EncryptionMethod");
        method.set_attr("Algorithm", algorithm);
        let mut data = self.el("enc", "CipherData");
        data.push(self.with_text("enc", "CipherValue", b64_encode(value)));
        [method, data]
    }
}

/// Fills the request with `keys` (positional, as [`Request::keys`]) and returns the response
/// document. With recipients, keys are encrypted to them under fresh document keys. `ivs`
/// (positional too) fills the `explicitIV` of keys whose request left it empty.
pub fn respond(
    mut request: Request,
    keys: &[[u8; 16]],
    ivs: &[[u8; 16]],
    ctx: &Context<'_>,
) -> Result<String, Error> {
    let iv_of: HashMap<KeyId, &[u8; 16]> =
        request.keys.iter().map(|k| k.kid).zip(ivs.iter()).collect();
    let by_kid: HashMap<KeyId, &[u8; 16]> = request
        .keys
        .iter()
        .map(|k| k.kid)
        .zip(keys.iter())
        .collect();
    let tree = &mut request.tree;
    // SPEKE v2 documents carry contentId; a v1 `id` must not come back.
    tree.attrs.retain(|a| !(a.ns.is_none() && a.local == "id"));
    let encrypted = !request.recipients.is_empty();
    let p = Prefixes {
        cpix: prefix(tree, NS_CPIX, "cpix"),
        pskc: prefix(tree, NS_PSKC, "pskc"),
        enc: encrypted.then(|| prefix(tree, NS_ENC, "enc")),
    };
    let document_keys = if encrypted {
        Some(DocumentKeys::generate()?)
    } else {
        None
    };

    for list in tree.elements_mut() {
        if list.ns.as_deref() != Some(NS_CPIX) {
            continue;
        }
        match list.local.as_str() {
            "DeliveryDataList" => {
                let dk = document_keys
                    .as_ref()
                    .ok_or_else(|| invalid("no document keys"))?;
                for (dd, recipient) in list
                    .elements_mut()
                    .filter(|e| e.is(NS_CPIX, "DeliveryData"))
                    .zip(&request.recipients)
                {
                    let wrapped = dk.wrap(recipient)?;
                    dd.remove_elements(|e| {
                        e.is(NS_CPIX, "DocumentKey") || e.is(NS_CPIX, "MACMethod")
                    });
                    let mut document_key = p.el("cpix", "DocumentKey");
                    document_key.set_attr("Algorithm", delivery::AES256_CBC);
                    let mut value = p.el("pskc", "EncryptedValue");
                    for c in p.cipher(delivery::RSA_OAEP, &wrapped.document_key) {
                        value.push(c);
                    }
                    let mut secret = p.el("pskc", "Secret");
                    secret.push(value);
                    document_key.push(p.el("cpix", "Data")).push(secret);
                    let mut mac = p.el("cpix", "MACMethod");
                    mac.set_attr("Algorithm", delivery::HMAC_SHA512);
                    let key = mac.push(p.el("cpix", "Key"));
                    for c in p.cipher(delivery::RSA_OAEP, &wrapped.mac_key) {
                        key.push(c);
                    }
                    // Schema order: DeliveryKey, DocumentKey, MACMethod, then the rest.
                    let at = dd
                        .children
                        .iter()
                        .position(
                            |n| matches!(n, xml::Node::Element(e) if e.is(NS_CPIX, "DeliveryKey")),
                        )
                        .map_or(0, |i| i + 1);
                    dd.children.insert(at, xml::Node::Element(mac));
                    dd.children.insert(at, xml::Node::Element(document_key));
                }
            }
            "ContentKeyList" => {
                for ck in list.elements_mut().filter(|e| e.is(NS_CPIX, "ContentKey")) {
                    let kid = parse_kid(ck.attr("kid"), "ContentKey")?;
                    let key = by_kid.get(&kid).ok_or_else(|| invalid("key missing"))?;
                    if ck.attr("explicitIV") == Some("")
                        && let Some(iv) = iv_of.get(&kid)
                    {
                        ck.set_attr("explicitIV", b64_encode(&iv[..]));
                    }
                    ck.remove_elements(|e| e.is(NS_CPIX, "Data"));
                    let mut secret = p.el("pskc", "Secret");
                    match &document_keys {
                        None => {
                            secret.push(p.with_text("pskc", "PlainValue", b64_encode(&key[..])));
                        }
                        Some(dk) => {
                            let sealed = dk.seal(key)?;
                            let mut value = p.el("pskc", "EncryptedValue");
                            for c in p.cipher(delivery::AES256_CBC, &sealed.cipher_value) {
                                value.push(c);
                            }
                            secret.push(value);
                            secret.push(p.with_text("pskc", "ValueMAC", b64_encode(&sealed.mac)));
                        }
                    }
                    let mut data = p.el("cpix", "Data");
                    data.push(secret);
                    // `Data` comes first in a ContentKey.
                    ck.children.insert(0, xml::Node::Element(data));
                }
            }
            "DRMSystemList" => {
                for d in list.elements_mut().filter(|e| e.is(NS_CPIX, "DRMSystem")) {
                    fill_system(d, &request.content_id, request.scheme, &by_kid, ctx)?;
                }
            }
            _ => {}
        }
    }
    Ok(xml::write(&request.tree))
}

/// A system's signalling values; `None` where the child does not apply to the system.
#[derive(Default)]
struct Signals {
    /// PSSH box, base64.
    pssh: Option<String>,
    /// DASH `ContentProtection` children (XML text).
    cpd: Option<String>,
    /// HLS key line after its tag.
    hls: Option<String>,
    /// The key URI (`URIExtXKey`).
    uri: Option<String>,
    /// PlayReady Object, base64 (Smooth Streaming).
    smooth: Option<String>,
}

/// A content key recovered from an encrypted document.
pub type OpenedKey = (KeyId, zeroize::Zeroizing<[u8; 16]>);

/// One system's signalling: each requested child filled, the inapplicable ones removed.
fn fill_system(
    d: &mut Element,
    content_id: &str,
    scheme: Option<Scheme>,
    keys: &HashMap<KeyId, &[u8; 16]>,
    ctx: &Context<'_>,
) -> Result<(), Error> {
    let kid = parse_kid(d.attr("kid"), "DRMSystem")?;
    let key = keys.get(&kid).ok_or_else(|| invalid("key missing"))?;
    let id = d.attr("systemId").unwrap_or_default().to_ascii_lowercase();
    let kid_hex = hex_encode(kid.as_bytes());
    let Signals {
        pssh,
        cpd,
        hls,
        uri,
        smooth,
    } = match id.as_str() {
        system::WIDEVINE => {
            let data = signalling::widevine_pssh_data(
                &[kid],
                ctx.widevine_provider,
                content_id.as_bytes(),
                scheme,
                None,
            );
            let pssh = b64_encode(&signalling::widevine_pssh(&data));
            let uri = format!("data:text/plain;base64,{pssh}");
            Signals {
                pssh: Some(pssh.clone()),
                cpd: Some(signalling::cenc_pssh_element(&pssh)),
                hls: Some(format!(
                    r#"METHOD=SAMPLE-AES,URI="{uri}",KEYID=0x{kid_hex},KEYFORMAT="urn:uuid:{}",KEYFORMATVERSIONS="1""#,
                    system::WIDEVINE
                )),
                uri: Some(uri),
                smooth: None,
            }
        }
        system::PLAYREADY => {
            let la_url = format!("{}/playready/license", ctx.public_url);
            let pro = signalling::playready_pro(
                &[HeaderKey {
                    kid,
                    key: Some(key),
                }],
                scheme.unwrap_or(Scheme::Cenc),
                Some(&la_url),
            );
            let pro_b64 = b64_encode(&pro);
            let pssh = b64_encode(&signalling::playready_pssh(&pro));
            let uri = format!("data:text/plain;charset=UTF-16;base64,{pro_b64}");
            Signals {
                pssh: Some(pssh.clone()),
                cpd: Some(format!(
                    "{}{}",
                    signalling::cenc_pssh_element(&pssh),
                    signalling::mspr_pro_element(&pro_b64)
                )),
                hls: Some(format!(
                    r#"METHOD=SAMPLE-AES,URI="{uri}",KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1""#
                )),
                uri: Some(uri),
                smooth: Some(pro_b64),
            }
        }
        system::FAIRPLAY => {
            let uri = format!("skd://{kid}");
            Signals {
                hls: Some(format!(
                    r#"METHOD=SAMPLE-AES,URI="{uri}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#
                )),
                uri: Some(uri),
                ..Signals::default()
            }
        }
        system::AES128 => {
            let uri = format!("{}/hls/key/{kid}", ctx.public_url);
            Signals {
                hls: Some(format!(
                    r#"METHOD=AES-128,URI="{uri}",KEYFORMAT="identity",KEYFORMATVERSIONS="1""#
                )),
                uri: Some(uri),
                ..Signals::default()
            }
        }
        system::COMMON => {
            let pssh = b64_encode(&signalling::common_pssh(&[kid]));
            Signals {
                pssh: Some(pssh.clone()),
                cpd: Some(signalling::cenc_pssh_element(&pssh)),
                ..Signals::default()
            }
        }
        _ => return Err(invalid(format!("Unsupported DRMSystem@systemId {id}"))),
    };
    let keep = |local: &str| match local {
        "PSSH" => pssh.is_some(),
        "ContentProtectionData" => cpd.is_some(),
        "HLSSignalingData" => hls.is_some(),
        "URIExtXKey" => uri.is_some(),
        "SmoothStreamingProtectionHeaderData" => smooth.is_some(),
        // Signalling Tessera does not produce (HDS, for one) is removed rather than echoed
        // empty: an encryptor treats an empty requested child as an error.
        _ => false,
    };
    d.remove_elements(|e| e.ns.as_deref() == Some(NS_CPIX) && !keep(&e.local));
    for child in d
        .elements_mut()
        .filter(|e| e.ns.as_deref() == Some(NS_CPIX))
    {
        let text = match child.local.as_str() {
            "PSSH" => pssh.clone(),
            "ContentProtectionData" => cpd.as_deref().map(|c| b64_encode(c.as_bytes())),
            "URIExtXKey" => uri.as_deref().map(|u| b64_encode(u.as_bytes())),
            "SmoothStreamingProtectionHeaderData" => smooth.clone(),
            "HLSSignalingData" => hls.as_deref().map(|line| {
                let tag = match child.attr("playlist") {
                    Some("master" | "multiVariant") => "#EXT-X-SESSION-KEY",
                    _ => "#EXT-X-KEY",
                };
                b64_encode(format!("{tag}:{line}").as_bytes())
            }),
            _ => None,
        };
        if let Some(text) = text {
            child.set_text(text);
        }
    }
    Ok(())
}

/// The content keys of a document encrypted to `private` (the consuming side: CPIX
/// documents delivered to Tessera). Every key's MAC is verified before any is returned.
pub fn open_encrypted(
    body: &[u8],
    private: &crate::crypto::rsa::RsaPrivateKey,
) -> Result<Vec<OpenedKey>, Error> {
    let tree = xml::parse(body)?;
    let cipher_value = |el: &Element| -> Result<Vec<u8>, Error> {
        let text: String = el
            .child(NS_ENC, "CipherData")
            .and_then(|c| c.child(NS_ENC, "CipherValue"))
            .ok_or_else(|| invalid("missing CipherData/CipherValue"))?
            .text()
            .split_ascii_whitespace()
            .collect();
        b64_decode(&text).map_err(|_| invalid("CipherValue is not base64"))
    };
    let mut document_keys = None;
    for dd in tree
        .children_named(NS_CPIX, "DeliveryDataList")
        .flat_map(|l| l.children_named(NS_CPIX, "DeliveryData"))
    {
        let doc = dd
            .child(NS_CPIX, "DocumentKey")
            .and_then(|d| d.child(NS_CPIX, "Data"))
            .and_then(|d| d.child(NS_PSKC, "Secret"))
            .and_then(|s| s.child(NS_PSKC, "EncryptedValue"))
            .ok_or_else(|| invalid("DeliveryData without DocumentKey"))?;
        let mac = dd
            .child(NS_CPIX, "MACMethod")
            .and_then(|m| m.child(NS_CPIX, "Key"))
            .ok_or_else(|| invalid("DeliveryData without MACMethod/Key"))?;
        let wrapped = delivery::Wrapped {
            document_key: cipher_value(doc)?,
            mac_key: cipher_value(mac)?,
        };
        // Several recipients: the one whose wrapped keys open with this private key.
        if let Ok(k) = DocumentKeys::unwrap(private, &wrapped) {
            document_keys = Some(k);
            break;
        }
    }
    let document_keys = document_keys.ok_or(Error::Delivery(delivery::Error::Unwrap))?;
    let mut out = Vec::new();
    for ck in tree
        .children_named(NS_CPIX, "ContentKeyList")
        .flat_map(|l| l.children_named(NS_CPIX, "ContentKey"))
    {
        let kid = parse_kid(ck.attr("kid"), "ContentKey")?;
        let secret = ck
            .child(NS_CPIX, "Data")
            .and_then(|d| d.child(NS_PSKC, "Secret"))
            .ok_or_else(|| invalid(format!("ContentKey {kid} has no Data/Secret")))?;
        let value = secret
            .child(NS_PSKC, "EncryptedValue")
            .ok_or_else(|| invalid(format!("ContentKey {kid} is not encrypted")))?;
        let mac_text: String = secret
            .child(NS_PSKC, "ValueMAC")
            .ok_or_else(|| invalid(format!("ContentKey {kid} has no ValueMAC")))?
            .text()
            .split_ascii_whitespace()
            .collect();
        let sealed = delivery::Sealed {
            cipher_value: cipher_value(value)?,
            mac: b64_decode(&mac_text).map_err(|_| invalid("ValueMAC is not base64"))?,
        };
        out.push((kid, document_keys.open(&sealed, &kid.to_string())?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rsa::RsaPrivateKey;

    const CTX: Context<'static> = Context {
        widevine_provider: "tessera",
        public_url: "https://keys.example",
    };

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn cert1_key() -> RsaPrivateKey {
        let pfx = openssl::pkcs12::Pkcs12::from_der(&vector("cpix/Cert1.pfx")).unwrap();
        let parsed = pfx.parse2("Cert1").unwrap();
        RsaPrivateKey::from_der(&parsed.pkey.unwrap().private_key_to_der().unwrap()).unwrap()
    }

    #[test]
    fn dash_if_encrypted_vectors_decrypt_to_the_published_keys() {
        let want = [
            (
                "bd5adf51-cf04-410f-aac3-ec63a69e929e",
                "3rWoHYasQubO6HbJGrGtLw==",
            ),
            (
                "d2920429-87ab-41e6-a4c5-a8c836b6312e",
                "O5w9FdZiwmQK4uIXzAziaQ==",
            ),
            (
                "e17ba4b8-faff-4d30-bcba-7485e3f2e884",
                "Cwu/3hSBBRQ7SurBdZD5ow==",
            ),
            (
                "0ae6b9ad-92d2-4ebe-882b-1d07dee70715",
                "FB6/Eck9Y9SXy6bY8UU/Mw==",
            ),
        ];
        let key = cert1_key();
        for file in [
            "cpix/EncryptedContentKeys.xml",
            "cpix/EncryptedContentKeysWithMultipleRecipients.xml",
        ] {
            let keys = open_encrypted(&vector(file), &key).unwrap();
            let got: Vec<(String, String)> = keys
                .iter()
                .map(|(k, v)| (k.to_string(), b64_encode(&v[..])))
                .collect();
            if file.ends_with("EncryptedContentKeys.xml") {
                let want: Vec<(String, String)> = want
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                assert_eq!(got, want);
            } else {
                assert!(!got.is_empty());
            }
        }
        assert!(matches!(
            open_encrypted(&vector("cpix/Invalid_WrongMac.xml"), &key),
            Err(Error::Delivery(delivery::Error::BadKey(_)))
        ));
        // Another private key opens nothing.
        let stranger = RsaPrivateKey::generate(2048).unwrap();
        assert!(matches!(
            open_encrypted(&vector("cpix/EncryptedContentKeys.xml"), &stranger),
            Err(Error::Delivery(delivery::Error::Unwrap))
        ));
    }

    #[test]
    fn the_documented_refusals_carry_the_documented_text() {
        for (name, header) in [
            ("err_mixed_schemes", Some("2.0")),
            ("err_unsupported_speke_version", Some("3.0")),
            ("err_wrong_cpix_version", Some("2.0")),
        ] {
            let want = String::from_utf8(vector(&format!("speke/{name}.response.txt"))).unwrap();
            let mut lines = want.lines();
            assert_eq!(lines.next(), Some("HTTP 422"));
            let err = parse(&vector(&format!("speke/{name}.request.xml")), header, 64).unwrap_err();
            assert_eq!(err.to_string(), lines.next().unwrap(), "{name}");
        }
        assert_eq!(parse(b"<a/>", None, 64).unwrap_err(), Error::SpekeVersion);
    }

    /// Every example request gets a response with the same structure as the recorded one:
    /// the same elements (by namespace and name) with values wherever the recorded one has
    /// them. Values differ: keys are fresh.
    #[test]
    fn example_requests_are_filled_like_the_recorded_responses() {
        for (name, version) in [
            ("speke20_clearkey_aes128_hls", "2.0"),
            ("speke20_wv_pr_cenc_vod", "2.0"),
            ("speke20_wv_pr_fp_cbcs", "2.0"),
            ("speke21_period_start_end_multivariant", "2.1"),
        ] {
            let req = parse(
                &vector(&format!("speke/{name}.request.xml")),
                Some(version),
                64,
            )
            .unwrap();
            let keys = vec![[0x11; 16]; req.keys.len()];
            let out = respond(req, &keys, &[], &CTX).unwrap();
            let got = xml::parse(out.as_bytes()).unwrap();
            let want = xml::parse(&vector(&format!("speke/{name}.response.xml"))).unwrap();
            fn shape(e: &Element, path: &str, out: &mut Vec<String>) {
                let here = format!("{path}/{}:{}", e.ns.as_deref().unwrap_or(""), e.local);
                let text = !e.text().trim().is_empty();
                out.push(format!("{here} text={text}"));
                for c in e.elements() {
                    shape(c, &here, out);
                }
            }
            let (mut g, mut w) = (Vec::new(), Vec::new());
            shape(&got, "", &mut g);
            shape(&want, "", &mut w);
            assert_eq!(g, w, "{name}");
            assert!(out.contains(":PlainValue>"), "prefixed PlainValue: {out}");
        }
    }

    #[test]
    fn signalling_values() {
        let body = r#"<CPIX xmlns="urn:dashif:org:cpix" contentId="c1" version="2.3" id="v1-id">
<ContentKeyList><ContentKey kid="ac1f4667-cd91-3ae3-3137-ac232b0e6617" commonEncryptionScheme="cbcs"/></ContentKeyList>
<DRMSystemList>
<DRMSystem kid="ac1f4667-cd91-3ae3-3137-ac232b0e6617" systemId="9a04f079-9840-4286-ab92-e65be0885f95"><PSSH/><ContentProtectionData/><HLSSignalingData playlist="media"/><SmoothStreamingProtectionHeaderData/></DRMSystem>
<DRMSystem kid="ac1f4667-cd91-3ae3-3137-ac232b0e6617" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2"><PSSH/><HLSSignalingData playlist="media"/><HLSSignalingData playlist="master"/><URIExtXKey/></DRMSystem>
<DRMSystem kid="ac1f4667-cd91-3ae3-3137-ac232b0e6617" systemId="1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"><PSSH/><ContentProtectionData/></DRMSystem>
</DRMSystemList>
<ContentKeyUsageRuleList><ContentKeyUsageRule kid="ac1f4667-cd91-3ae3-3137-ac232b0e6617" intendedTrackType="ALL"><VideoFilter/><AudioFilter/></ContentKeyUsageRule></ContentKeyUsageRuleList>
</CPIX>"#;
        let req = parse(body.as_bytes(), Some("2.0"), 64).unwrap();
        let out = respond(req, &[[2; 16]], &[], &CTX).unwrap();
        let root = xml::parse(out.as_bytes()).unwrap();
        assert!(root.attr("id").is_none(), "a v1 id is not echoed");
        assert!(root.declared_prefix(NS_PSKC).is_some_and(|p| !p.is_empty()));
        let systems: Vec<&Element> = root
            .child(NS_CPIX, "DRMSystemList")
            .unwrap()
            .children_named(NS_CPIX, "DRMSystem")
            .collect();
        let text = |e: &Element, local: &str| {
            let t = e.child(NS_CPIX, local).unwrap().text();
            String::from_utf8(b64_decode(&t).unwrap()).unwrap_or(t)
        };
        // PlayReady: the PRO names the KID as a little-endian GUID (VALUE).
        let smooth = b64_decode(
            &systems[0]
                .child(NS_CPIX, "SmoothStreamingProtectionHeaderData")
                .unwrap()
                .text(),
        )
        .unwrap();
        let header: String = char::decode_utf16(
            smooth[10..]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap())
        .collect();
        assert!(
            header.contains(r#"VALUE="Z0YfrJHN4zoxN6wjKw5mFw==""#),
            "{header}"
        );
        assert!(header.contains("<LA_URL>https://keys.example/playready/license</LA_URL>"));
        let cpd = text(systems[0], "ContentProtectionData");
        assert!(
            cpd.starts_with(r#"<cenc:pssh xmlns:cenc="urn:mpeg:cenc:2013">"#)
                && cpd.contains("<mspr:pro"),
            "{cpd}"
        );
        assert!(text(systems[0], "HLSSignalingData").starts_with(
            r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;charset=UTF-16;base64,"#
        ));
        // FairPlay: no PSSH; media and master carry the same skd URI.
        assert!(systems[1].child(NS_CPIX, "PSSH").is_none());
        let hls: Vec<String> = systems[1]
            .children_named(NS_CPIX, "HLSSignalingData")
            .map(|h| String::from_utf8(b64_decode(&h.text()).unwrap()).unwrap())
            .collect();
        assert_eq!(
            hls[0],
            r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://ac1f4667-cd91-3ae3-3137-ac232b0e6617",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#
        );
        assert_eq!(hls[1], hls[0].replace("#EXT-X-KEY", "#EXT-X-SESSION-KEY"));
        assert_eq!(
            text(systems[1], "URIExtXKey"),
            "skd://ac1f4667-cd91-3ae3-3137-ac232b0e6617"
        );
        // Common PSSH: version 1 with the KID.
        let pssh = b64_decode(&systems[2].child(NS_CPIX, "PSSH").unwrap().text()).unwrap();
        assert_eq!(pssh[8], 1);
        assert_eq!(
            hex_encode(&pssh[32..48]),
            "ac1f4667cd913ae33137ac232b0e6617"
        );
    }

    #[test]
    fn contract_refusals() {
        let doc = |keys: &str, systems: &str, rules: &str| {
            format!(
                r#"<c:CPIX xmlns:c="urn:dashif:org:cpix" contentId="x" version="2.3"><c:ContentKeyList>{keys}</c:ContentKeyList><c:DRMSystemList>{systems}</c:DRMSystemList><c:ContentKeyUsageRuleList>{rules}</c:ContentKeyUsageRuleList></c:CPIX>"#
            )
        };
        let k1 = r#"<c:ContentKey kid="11111111-1111-1111-1111-111111111111" commonEncryptionScheme="cenc"/>"#;
        let k2 = r#"<c:ContentKey kid="22222222-2222-2222-2222-222222222222" commonEncryptionScheme="cenc"/>"#;
        let wv1 = r#"<c:DRMSystem kid="11111111-1111-1111-1111-111111111111" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><c:PSSH/></c:DRMSystem>"#;
        let rule = |kid: &str, t: &str, f: &str| {
            format!(
                r#"<c:ContentKeyUsageRule kid="{kid}" intendedTrackType="{t}">{f}</c:ContentKeyUsageRule>"#
            )
        };
        let (a, b) = (
            "11111111-1111-1111-1111-111111111111",
            "22222222-2222-2222-2222-222222222222",
        );
        let ok = doc(k1, wv1, &rule(a, "VIDEO", "<c:VideoFilter/>"));
        assert!(parse(ok.as_bytes(), Some("2.0"), 64).is_ok());
        for (body, want) in [
            (
                ok.replace(r#" contentId="x""#, ""),
                "Missing CPIX@contentId",
            ),
            (ok.replace(r#" version="2.3""#, ""), "Missing CPIX@version"),
            (
                ok.replace(r#" commonEncryptionScheme="cenc""#, ""),
                "Missing ContentKey@commonEncryptionScheme for KID 11111111-1111-1111-1111-111111111111",
            ),
            (
                ok.replace(
                    "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
                    "80a6be7e-1448-4c37-9e70-d5aebe04c8d2",
                ),
                "Unsupported DRMSystem@systemId",
            ),
            (
                ok.replace(
                    "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
                    "94ce86fb-07ff-4f43-adb8-93d2fa968ca2",
                ),
                "requires commonEncryptionScheme cbcs",
            ),
            (
                ok.replace("<c:VideoFilter/>", ""),
                "needs a VideoFilter or an AudioFilter",
            ),
            (
                doc(
                    &format!("{k1}{k2}"),
                    wv1,
                    &format!(
                        "{}{}",
                        rule(a, "SD", "<c:VideoFilter/>"),
                        rule(b, "ALL", "<c:VideoFilter/><c:AudioFilter/>")
                    ),
                ),
                "cannot be combined",
            ),
            (
                doc(k1, wv1, &rule(a, "ALL", "<c:VideoFilter/>")),
                "exactly one empty VideoFilter",
            ),
            (
                doc(
                    &format!("{k1}{k2}"),
                    wv1,
                    &format!(
                        "{}{}",
                        rule(a, "SD", "<c:VideoFilter/>"),
                        rule(b, "SD", "<c:VideoFilter/>")
                    ),
                ),
                "used by more than one rule",
            ),
            (
                doc(k1, wv1, &rule(b, "SD", "<c:VideoFilter/>")),
                "unknown KID",
            ),
            (
                doc(
                    k1,
                    wv1,
                    &rule(
                        a,
                        "SD",
                        r#"<c:KeyPeriodFilter periodId="p9"/><c:VideoFilter/>"#,
                    ),
                ),
                "unknown period",
            ),
            (
                doc(
                    &format!("{k1}{k1}"),
                    wv1,
                    &rule(a, "SD", "<c:VideoFilter/>"),
                ),
                "listed twice",
            ),
            (
                doc(k1, "", &rule(a, "SD", "<c:VideoFilter/>")),
                "no DRMSystem",
            ),
            (
                ok.replace("urn:dashif:org:cpix", "urn:other"),
                "not {urn:dashif:org:cpix}CPIX",
            ),
            (
                ok.replace(
                    r#"commonEncryptionScheme="cenc""#,
                    r#"commonEncryptionScheme="cenc" explicitIV="AAAA""#,
                ),
                "explicitIV",
            ),
            (
                ok.replace("<c:PSSH/>", "<c:PSSH/><c:PSSH/>"),
                "asks for PSSH more than once",
            ),
        ] {
            let err = parse(body.as_bytes(), Some("2.0"), 64)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want:?} not in {err:?}\n{body}");
        }
        let two = doc(
            &format!("{k1}{k2}"),
            wv1,
            &rule(a, "SD", "<c:VideoFilter/>"),
        );
        assert!(
            parse(two.as_bytes(), Some("2.0"), 1)
                .unwrap_err()
                .to_string()
                .contains("at most 1")
        );
        assert!(parse(b"  ", Some("2.0"), 1).unwrap_err().is_malformed());
        assert!(
            parse(b"<!DOCTYPE x><x/>", Some("2.0"), 1)
                .unwrap_err()
                .is_malformed()
        );
        // 2.1 only: HLS method names.
        let hls = ok.replace(
            r#"commonEncryptionScheme="cenc""#,
            r#"commonEncryptionScheme="SAMPLE-AES""#,
        );
        assert!(parse(hls.as_bytes(), Some("2.0"), 64).is_err());
        assert!(
            parse(
                hls.replace(r#"version="2.3""#, r#"version="2.4""#)
                    .as_bytes(),
                Some("2.1"),
                64
            )
            .is_ok()
        );
    }

    #[test]
    fn explicit_iv_is_echoed_or_filled() {
        let body = |iv: &str| {
            format!(
                r#"<CPIX xmlns="urn:dashif:org:cpix" contentId="c" version="2.3"><ContentKeyList><ContentKey kid="11111111-1111-1111-1111-111111111111" commonEncryptionScheme="cbcs" explicitIV="{iv}"/></ContentKeyList><DRMSystemList><DRMSystem kid="11111111-1111-1111-1111-111111111111" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2"><HLSSignalingData playlist="media"/></DRMSystem></DRMSystemList><ContentKeyUsageRuleList><ContentKeyUsageRule kid="11111111-1111-1111-1111-111111111111" intendedTrackType="ALL"><VideoFilter/><AudioFilter/></ContentKeyUsageRule></ContentKeyUsageRuleList></CPIX>"#
            )
        };
        let sent = "AAECAwQFBgcICQoLDA0ODw==";
        let req = parse(body(sent).as_bytes(), Some("2.0"), 8).unwrap();
        assert!(!req.keys[0].wants_iv);
        let out = respond(req, &[[1; 16]], &[[5; 16]], &CTX).unwrap();
        assert!(
            out.contains(&format!(r#"explicitIV="{sent}""#)),
            "kept as sent"
        );
        let req = parse(body("").as_bytes(), Some("2.0"), 8).unwrap();
        assert!(req.keys[0].wants_iv);
        let out = respond(req, &[[1; 16]], &[[5; 16]], &CTX).unwrap();
        assert!(
            out.contains(&format!(r#"explicitIV="{}""#, b64_encode(&[5; 16]))),
            "{out}"
        );
    }

    #[test]
    fn encrypted_delivery_round_trip_and_weak_certificates() {
        let private = RsaPrivateKey::generate(2048).unwrap();
        let cert = self_signed(&private);
        let body = format!(
            r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" contentId="enc" version="2.3"><cpix:DeliveryDataList><cpix:DeliveryData id="r1"><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList><cpix:ContentKeyList><cpix:ContentKey kid="11111111-1111-1111-1111-111111111111" commonEncryptionScheme="cenc"/></cpix:ContentKeyList><cpix:DRMSystemList><cpix:DRMSystem kid="11111111-1111-1111-1111-111111111111" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH/></cpix:DRMSystem></cpix:DRMSystemList><cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="11111111-1111-1111-1111-111111111111" intendedTrackType="ALL"><cpix:VideoFilter/><cpix:AudioFilter/></cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList></cpix:CPIX>"#,
            b64_encode(&cert)
        );
        let req = parse(body.as_bytes(), Some("2.0"), 64).unwrap();
        let out = respond(req, &[[9; 16]], &[], &CTX).unwrap();
        assert!(!out.contains("PlainValue"));
        let keys = open_encrypted(out.as_bytes(), &private).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(*keys[0].1, [9; 16]);
        // RSA-1024 is refused.
        let weak = self_signed(&RsaPrivateKey::generate(1024).unwrap());
        let body = body.replace(&b64_encode(&cert), &b64_encode(&weak));
        let err = parse(body.as_bytes(), Some("2.0"), 64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("below the required RSA-2048"), "{err}");
    }

    fn self_signed(key: &RsaPrivateKey) -> Vec<u8> {
        crate::crypto::rsa::self_signed_certificate(key)
    }
}
