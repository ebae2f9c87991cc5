//! HTTP request and response shapes of the licence endpoint (`docs/fairplay.md` §10.2,
//! §10.4): raw SPC, base64 text, `spc=` forms, flat JSON, Apple's SDK JSON and WebKit's test
//! JSON. The body is sniffed, never trusted by `Content-Type` (real players mislabel it).
//! Pure.

use super::Error;
use crate::encoding::{Plus, b64_encode, percent_decode};

/// Largest request body (a 64 KiB SPC plus base64 and JSON overhead).
pub const MAX_BODY: usize = 96 * 1024;

/// How the SPC came, so the CKC can go back the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Raw bytes.
    Raw,
    /// Base64 text.
    Base64,
    /// `spc=...` form: answered `<ckc>BASE64</ckc>`.
    Form,
    /// Flat JSON; the key the SPC came under (`spc` or `SpcMessage`...).
    Json(String),
    /// Apple SDK JSON (`fairplay-streaming-request` / `create-ckc`), with the item id.
    AppleSdk(serde_json::Value),
    /// WebKit test JSON (`streaming-keys`), with the item id.
    WebKit(serde_json::Value),
}

/// A decoded request: the SPC, its shape, and the asset hint the body carried, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// SPC bytes.
    pub spc: Vec<u8>,
    /// Shape to answer in.
    pub shape: Shape,
    /// `assetId`, `contentId` or `uri` from the body.
    pub hint: Option<String>,
}

/// Base64 in either alphabet, padding optional, whitespace ignored, a space taken as `+`
/// (forms whose base64 was not escaped).
fn b64(text: &str) -> Result<Vec<u8>, Error> {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r' | '\t'))
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let trimmed = clean.trim_end_matches('=');
    let padded = format!("{trimmed}{}", "=".repeat((4 - trimmed.len() % 4) % 4));
    crate::encoding::b64_decode(&padded).map_err(|_| Error::Parser("body is not an SPC"))
}

fn is_spc(b: &[u8]) -> bool {
    matches!(b.get(..4), Some([0, 0, 0, 1..=3]))
}

/// Decodes a request body in any of the known shapes.
pub fn decode(body: &[u8]) -> Result<Decoded, Error> {
    if body.len() > MAX_BODY {
        return Err(Error::Param("request body too large"));
    }
    if is_spc(body) {
        return Ok(Decoded {
            spc: body.to_vec(),
            shape: Shape::Raw,
            hint: None,
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::Parser("body is not an SPC"))?
        .trim();
    // Percent-decoding keeps `+` as `+`: several clients send base64 unescaped.
    let text = if text
        .as_bytes()
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"spc%3d"))
    {
        percent_decode(text, Plus::Literal)
    } else {
        text.to_owned()
    };
    let out = if text.starts_with('{') {
        decode_json(&text)?
    } else if text.starts_with("spc=") || text.contains("&spc=") {
        let mut spc = None;
        let mut hint = None;
        for pair in text.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "spc" => spc = Some(percent_decode(v, Plus::Literal)),
                "assetId" | "asset_id" | "contentId" => {
                    hint = Some(percent_decode(v, Plus::Literal))
                }
                _ => {}
            }
        }
        Decoded {
            spc: b64(&spc.ok_or(Error::Parser("form without spc"))?)?,
            shape: Shape::Form,
            hint,
        }
    } else {
        Decoded {
            spc: b64(&text)?,
            shape: Shape::Base64,
            hint: None,
        }
    };
    if !is_spc(&out.spc) {
        return Err(Error::SpcVersion(
            out.spc
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_be_bytes),
        ));
    }
    Ok(out)
}

fn decode_json(text: &str) -> Result<Decoded, Error> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| Error::Parser("malformed JSON"))?;
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    if let Some(req) = v.get("fairplay-streaming-request") {
        // One item per request: a batch is answered one SPC at a time by its clients.
        let (items, webkit) = match (req.get("create-ckc"), req.get("streaming-keys")) {
            (Some(i), _) => (i, false),
            (None, Some(i)) => (i, true),
            _ => return Err(Error::Parser("no create-ckc or streaming-keys")),
        };
        let item = match items.as_array().map(Vec::as_slice) {
            Some([one]) => one,
            _ => return Err(Error::Param("exactly one item per request")),
        };
        let spc = b64(&s(item, "spc").ok_or(Error::Parser("item without spc"))?)?;
        let id = item.get("id").cloned().unwrap_or(serde_json::Value::Null);
        return Ok(Decoded {
            spc,
            shape: if webkit {
                Shape::WebKit(id)
            } else {
                Shape::AppleSdk(id)
            },
            hint: s(item, "uri"),
        });
    }
    for key in ["spc", "SpcMessage", "spcMessage", "spc-message"] {
        if let Some(spc) = s(&v, key) {
            return Ok(Decoded {
                spc: b64(&spc)?,
                shape: Shape::Json(key.to_owned()),
                hint: ["assetId", "asset_id", "contentId", "uri"]
                    .iter()
                    .find_map(|k| s(&v, k)),
            });
        }
    }
    Err(Error::Parser("JSON without an spc"))
}

/// The CKC in the request's shape: (content type, body).
pub fn encode(shape: &Shape, ckc: &[u8]) -> (&'static str, Vec<u8>) {
    let b = b64_encode(ckc);
    match shape {
        Shape::Raw => ("application/octet-stream", ckc.to_vec()),
        Shape::Base64 => ("text/plain", b.into_bytes()),
        Shape::Form => ("text/plain", format!("<ckc>{b}</ckc>").into_bytes()),
        Shape::Json(key) => {
            let out_key = if key.eq_ignore_ascii_case("spcmessage") {
                "CkcMessage"
            } else {
                "ckc"
            };
            ("application/json", serde_json::json!({ out_key: b }).to_string().into_bytes())
        }
        Shape::AppleSdk(id) => (
            "application/json",
            serde_json::json!({"fairplay-streaming-response": {"create-ckc": [{"id": id, "status": 0, "ckc": b}]}})
                .to_string()
                .into_bytes(),
        ),
        Shape::WebKit(id) => (
            "application/json",
            serde_json::json!({"fairplay-streaming-response": {"streaming-keys": [{"id": id, "ckc": b}]}})
                .to_string()
                .into_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spc() -> Vec<u8> {
        let mut s = vec![0, 0, 0, 2];
        s.extend_from_slice(&[0xfb; 40]);
        s
    }

    #[test]
    fn every_shape_decodes_and_answers_in_kind() {
        let raw = spc();
        let b = b64_encode(&raw);
        let url_safe = b
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned();
        let cases: Vec<(Vec<u8>, Shape, Option<&str>)> = vec![
            (raw.clone(), Shape::Raw, None),
            (b.clone().into_bytes(), Shape::Base64, None),
            (url_safe.into_bytes(), Shape::Base64, None),
            (format!("spc={b}&assetId=skd://abc").into_bytes(), Shape::Form, Some("skd://abc")),
            (format!("spc={}", b.replace('+', "%2B")).into_bytes(), Shape::Form, None),
            (format!("spc%3D{}", b.replace('+', "%2B").replace('/', "%2F")).into_bytes(), Shape::Form, None),
            (serde_json::json!({"spc": b, "assetId": "x1"}).to_string().into_bytes(), Shape::Json("spc".into()), Some("x1")),
            (serde_json::json!({"SpcMessage": b}).to_string().into_bytes(), Shape::Json("SpcMessage".into()), None),
            (serde_json::json!({"fairplay-streaming-request": {"create-ckc": [{"id": 7, "spc": b}]}}).to_string().into_bytes(), Shape::AppleSdk(serde_json::json!(7)), None),
            (serde_json::json!({"fairplay-streaming-request": {"version": 1, "streaming-keys": [{"id": "a", "uri": "skd://k", "spc": b}]}}).to_string().into_bytes(), Shape::WebKit(serde_json::json!("a")), Some("skd://k")),
        ];
        for (body, shape, hint) in cases {
            let d =
                decode(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
            assert_eq!(d.spc, raw);
            assert_eq!(d.shape, shape);
            assert_eq!(d.hint.as_deref(), hint);
        }
        // Answers mirror the request.
        assert_eq!(encode(&Shape::Form, &[1, 2]).1, b"<ckc>AQI=</ckc>");
        assert_eq!(
            encode(&Shape::Json("SpcMessage".into()), &[1]).1,
            br#"{"CkcMessage":"AQ=="}"#
        );
        assert_eq!(
            encode(&Shape::Raw, &[9]),
            ("application/octet-stream", vec![9])
        );
    }

    #[test]
    fn refusals() {
        // A certificate sent in place of the SPC (it starts 0x308204D3).
        let cert = b64_encode(&[0x30, 0x82, 0x04, 0xd3, 0, 0]);
        assert_eq!(decode(cert.as_bytes()).unwrap_err().code(), -42580);
        assert!(decode(b"{not json").is_err());
        assert!(decode(br#"{"other": 1}"#).is_err());
        assert!(decode(b"\xff\xfe").is_err());
        assert!(decode(&vec![b'A'; MAX_BODY + 1]).is_err());
        // Found by the fuzzer: multi-byte text where the `spc%3D` prefix would be.
        assert!(decode(&[0, 0, 0, 0xd5, 0xaf, 0xda, 0xa2]).is_err());
        let two = serde_json::json!({"fairplay-streaming-request": {"create-ckc": [{"spc": "AAAAAg=="}, {"spc": "AAAAAg=="}]}});
        assert!(decode(two.to_string().as_bytes()).is_err());
    }
}
