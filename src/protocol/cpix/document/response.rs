//! Response documents (AWS SPEKE v2 encryption contract; DASH-IF CPIX 2.3 §5): the request
//! tree with its keys filled in, in the clear or encrypted to the request's recipients under
//! fresh document keys, and each `DRMSystem` filled by `systems.rs`.

use super::systems::fill_system;
use super::{Context, Error, NS_CPIX, NS_ENC, NS_PSKC, Request, invalid, parse_kid};
use crate::encoding::b64_encode;
use crate::keyring::KeyId;
use crate::protocol::cpix::delivery::{self, DocumentKeys};
use crate::xml::{self, Element};
use std::collections::HashMap;

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
