//! The `AcquireLicenseResponse` and SOAP faults (docs/playready.md §2.8, §1.3).
//!
//! Written with fixed templates, not a serializer: the optional response signature covers
//! the `LicenseResponse` element byte for byte, in the form a namespace-default
//! re-serialisation produces (no prefixes, no attributes, no whitespace, explicit end tags,
//! text only base64 and digits), which is also its exclusive canonical form. So the bytes
//! Tessera hashes are the bytes a verifier re-serialises. Pure.

use super::challenge::{NS_DS, NS_P, SOAP11, SOAP12};
use crate::crypto::ecc::{self, Signer};
use crate::crypto::sha256;
use crate::encoding::b64_encode;

const NS_M: &str = super::challenge::NS_M;

/// The SOAP version of an exchange: a response (or fault) is written in the request's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Soap {
    /// SOAP 1.1 (what PlayReady clients send); also for faults before the version is known.
    #[default]
    V11,
    /// SOAP 1.2.
    V12,
}

impl Soap {
    /// The envelope namespace.
    pub fn ns(self) -> &'static str {
        match self {
            Soap::V11 => SOAP11,
            Soap::V12 => SOAP12,
        }
    }

    /// The media type of its messages.
    pub fn content_type(self) -> &'static str {
        match self {
            Soap::V11 => "text/xml; charset=utf-8",
            Soap::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// A response signer: the SERVER certificate chain and the key of its SIGN_RESPONSE usage.
#[derive(Debug)]
pub struct ResponseSigner {
    /// The chain (BCert), sent base64 in `SigningCertificateChain`.
    pub chain_b64: String,
    /// Its leaf key.
    pub signer: Signer,
}

/// What goes into a response.
#[derive(Debug)]
pub struct Response<'a> {
    /// XMR licences.
    pub licenses: &'a [Vec<u8>],
    /// The challenge's `LicenseNonce`, echoed (base64 as received, validated by the parser).
    pub nonce: Option<&'a str>,
    /// 16 random bytes.
    pub response_id: [u8; 16],
}

fn is_plain(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// Builds the SOAP response, signed when `signer` is given.
pub fn build(
    r: &Response<'_>,
    signer: Option<&ResponseSigner>,
    soap: Soap,
) -> Result<String, ecc::Error> {
    let mut lr =
        String::with_capacity(512 + r.licenses.iter().map(|l| l.len() * 4 / 3).sum::<usize>());
    lr.push_str(r#"<LicenseResponse xmlns=""#);
    lr.push_str(NS_P);
    lr.push_str(r#""><Version>1</Version><Licenses>"#);
    for l in r.licenses {
        lr.push_str("<License>");
        lr.push_str(&b64_encode(l));
        lr.push_str("</License>");
    }
    lr.push_str("</Licenses>");
    // The nonce is echoed only when it is plain base64 (the parser checked it decodes): the
    // signed form must not need escaping.
    if let Some(n) = r.nonce.filter(|n| is_plain(n)) {
        lr.push_str("<LicenseNonce>");
        lr.push_str(n);
        lr.push_str("</LicenseNonce>");
    }
    lr.push_str("<ResponseID>");
    lr.push_str(&b64_encode(&r.response_id));
    lr.push_str("</ResponseID>");
    if let Some(s) = signer {
        lr.push_str("<SigningCertificateChain>");
        lr.push_str(&s.chain_b64);
        lr.push_str("</SigningCertificateChain>");
    }
    lr.push_str("</LicenseResponse>");

    let mut out = String::with_capacity(lr.len() + 1024);
    out.push_str(r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap=""#);
    out.push_str(soap.ns());
    out.push_str(r#"" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body><AcquireLicenseResponse xmlns=""#);
    out.push_str(NS_P);
    out.push_str(r#""><AcquireLicenseResult><Response xmlns=""#);
    out.push_str(NS_M);
    out.push_str(r#"">"#);
    out.push_str(&lr);
    if let Some(s) = signer {
        let mut si = String::with_capacity(600);
        si.push_str(r#"<SignedInfo xmlns=""#);
        si.push_str(NS_DS);
        si.push_str(r##""><CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"></CanonicalizationMethod><SignatureMethod Algorithm="http://schemas.microsoft.com/DRM/2007/03/protocols#ecdsa-sha256"></SignatureMethod><Reference URI="#SignedData"><DigestMethod Algorithm="http://schemas.microsoft.com/DRM/2007/03/protocols#sha256"></DigestMethod><DigestValue>"##);
        si.push_str(&b64_encode(&sha256(lr.as_bytes())));
        si.push_str("</DigestValue></Reference></SignedInfo>");
        let sig = s.signer.sign(si.as_bytes())?;
        out.push_str(r#"<Signature xmlns=""#);
        out.push_str(NS_DS);
        out.push_str(r#"">"#);
        out.push_str(&si);
        out.push_str("<SignatureValue>");
        out.push_str(&b64_encode(&sig));
        out.push_str("</SignatureValue></Signature>");
    }
    out.push_str(
        "</Response></AcquireLicenseResult></AcquireLicenseResponse></soap:Body></soap:Envelope>",
    );
    Ok(out)
}

/// PlayReady server status codes used in faults.
pub mod status {
    /// The server failed (or a refusal with no closer code).
    pub const INTERNAL_ERROR: u32 = 0x8004_C600;
    /// The challenge is malformed, unsigned or not for this server.
    pub const INVALID_MESSAGE: u32 = 0x8004_C601;
    /// A service-specific refusal (entitlement, device trust): the fault string says which.
    pub const SERVICE_SPECIFIC: u32 = 0x8004_C604;
    /// The protocol version is not supported.
    pub const PROTOCOL_VERSION_MISMATCH: u32 = 0x8004_C60B;
}

/// Whether a fault with this status is the sender's (SOAP 1.1 `Client`, 1.2 `Sender`) rather
/// than the server's.
pub fn sender_fault(status: u32) -> bool {
    status != status::INTERNAL_ERROR
}

/// A SOAP fault with a PlayReady status code, in the exchange's SOAP version. `text` is
/// escaped. The `detail/Exception/StatusCode` element carries no namespace: clients read it
/// without one.
pub fn fault(soap: Soap, status: u32, code: &str, text: &str) -> String {
    let mut out = String::with_capacity(640 + text.len());
    out.push_str(r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap=""#);
    out.push_str(soap.ns());
    out.push_str(r#""><soap:Body><soap:Fault>"#);
    let reason = escape(&format!("{code}: {text}"));
    let detail = format!("<Exception><StatusCode>0x{status:08X}</StatusCode></Exception>");
    match soap {
        // SOAP 1.1 §4.4.1: Client for a message the sender must change, Server otherwise.
        Soap::V11 => {
            out.push_str("<faultcode>soap:");
            out.push_str(if sender_fault(status) {
                "Client"
            } else {
                "Server"
            });
            out.push_str("</faultcode><faultstring>");
            out.push_str(&reason);
            out.push_str("</faultstring><detail>");
            out.push_str(&detail);
            out.push_str("</detail>");
        }
        // SOAP 1.2 Part 1 §5.4.
        Soap::V12 => {
            out.push_str("<soap:Code><soap:Value>soap:");
            out.push_str(if sender_fault(status) {
                "Sender"
            } else {
                "Receiver"
            });
            out.push_str(r#"</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">"#);
            out.push_str(&reason);
            out.push_str("</soap:Text></soap:Reason><soap:Detail>");
            out.push_str(&detail);
            out.push_str("</soap:Detail>");
        }
    }
    out.push_str("</soap:Fault></soap:Body></soap:Envelope>");
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ecc::EccPrivateKey;

    #[test]
    fn signed_response_verifies_over_the_license_response_bytes() {
        let key = EccPrivateKey::generate().unwrap();
        let signer = ResponseSigner {
            chain_b64: "Q0hBSQ==".into(),
            signer: key.signer().unwrap(),
        };
        let licenses = vec![vec![1u8, 2, 3], vec![4u8; 40]];
        let soap = build(
            &Response {
                licenses: &licenses,
                nonce: Some("AAECAwQFBgcICQoLDA0ODw=="),
                response_id: [9; 16],
            },
            Some(&signer),
            Soap::V11,
        )
        .unwrap();
        let doc = crate::xml::parse(soap.as_bytes()).unwrap();
        let resp = doc
            .elements()
            .next()
            .and_then(|b| b.elements().next())
            .and_then(|a| a.elements().next())
            .and_then(|r| r.elements().next())
            .unwrap();
        assert!(resp.is(NS_M, "Response"));
        let lr = resp.child(NS_P, "LicenseResponse").unwrap();
        let lr_bytes = &soap.as_bytes()[lr.span.clone()];
        assert!(lr_bytes.starts_with(br#"<LicenseResponse xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><Version>1</Version><Licenses><License>AQID</License>"#));
        let sig = resp.child(NS_DS, "Signature").unwrap();
        let si = sig.child(NS_DS, "SignedInfo").unwrap();
        let digest = si
            .child(NS_DS, "Reference")
            .and_then(|r| r.child(NS_DS, "DigestValue"))
            .unwrap()
            .text();
        assert_eq!(digest, b64_encode(&sha256(lr_bytes)));
        let value =
            crate::encoding::b64_decode(&sig.child(NS_DS, "SignatureValue").unwrap().text())
                .unwrap();
        assert!(ecc::verify(
            key.public(),
            &soap.as_bytes()[si.span.clone()],
            &value
        ));
        assert_eq!(
            lr.child(NS_P, "LicenseNonce").unwrap().text(),
            "AAECAwQFBgcICQoLDA0ODw=="
        );
        // Unsigned: no chain, no signature.
        let plain = build(
            &Response {
                licenses: &licenses,
                nonce: Some("not<plain"),
                response_id: [9; 16],
            },
            None,
            Soap::V12,
        )
        .unwrap();
        assert!(!plain.contains("Signature") && !plain.contains("LicenseNonce"));
        assert!(
            crate::xml::parse(plain.as_bytes())
                .unwrap()
                .is(SOAP12, "Envelope")
        );
    }

    #[test]
    fn faults_escape_and_carry_the_status() {
        let f = fault(
            Soap::V11,
            status::SERVICE_SPECIFIC,
            "not_entitled",
            "a <b> & \"c\"",
        );
        assert!(f.contains("<faultcode>soap:Client</faultcode>"));
        assert!(f.contains("not_entitled: a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(f.contains("<StatusCode>0x8004C604</StatusCode>"));
        assert!(crate::xml::parse(f.as_bytes()).is_ok());
        let f = fault(Soap::V12, status::INTERNAL_ERROR, "internal", "x");
        let doc = crate::xml::parse(f.as_bytes()).unwrap();
        assert!(doc.is(SOAP12, "Envelope"));
        assert!(f.contains("<soap:Value>soap:Receiver</soap:Value>"));
        assert!(f.contains("<soap:Detail><Exception><StatusCode>0x8004C600</StatusCode>"));
    }
}
