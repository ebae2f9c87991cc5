//! Encrypted documents on the consuming side (CPIX 2.3 §6.3 "Content key encryption"; the
//! cryptography is `delivery.rs`'s): CPIX documents delivered to Tessera with their content
//! keys encrypted to its certificate.

use super::{Error, NS_CPIX, NS_ENC, NS_PSKC, OpenedKey, invalid, parse_kid};
use crate::encoding::b64_decode;
use crate::protocol::cpix::delivery::{self, DocumentKeys};
use crate::xml::{self, Element};

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
