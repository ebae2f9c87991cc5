//! DRM system signalling (`docs/protocols.md`, "SPEKE"): the PSSH, DASH `ContentProtection`
//! data, HLS key lines, key URIs and Smooth Streaming headers each `DRMSystem` asks for.

use super::{Context, Error, NS_CPIX, invalid, parse_kid, system};
use crate::encoding::{b64_encode, hex_encode};
use crate::keyring::KeyId;
use crate::protocol::playready::header::HeaderKey;
use crate::protocol::signalling::{self, Scheme};
use crate::xml::Element;
use std::collections::HashMap;

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

/// One system's signalling: each requested child filled, the inapplicable ones removed.
pub(super) fn fill_system(
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
