//! Request documents (AWS SPEKE v2 API constraints; DASH-IF CPIX 2.3 §5): the document is
//! parsed once, checked against the SPEKE contract, and kept as the tree the response fills.

use super::{Error, KeyRequest, MAX_RECIPIENTS, NS_CPIX, NS_DS, Request, Version};
use super::{invalid, parse_kid, system};
use crate::encoding::b64_decode;
use crate::keyring::KeyId;
use crate::protocol::cpix::delivery::Recipient;
use crate::protocol::signalling::Scheme;
use crate::xml::{self, Element};
use std::collections::{HashMap, HashSet};

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
