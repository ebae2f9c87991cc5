//! Unit tests of the CPIX documents: the DASH-IF vectors, the recorded SPEKE exchanges and
//! the contract's refusals.

use super::*;
use crate::crypto::rsa::RsaPrivateKey;
use crate::encoding::{b64_decode, b64_encode, hex_encode};

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
