//! End to end in a real browser: Shaka Packager encrypts a generated clip with keys it fetches
//! from a dev-mode `tessera serve` (the Widevine-style key API, the public `widevine_test`
//! signer), headless Chromium (Debian's package) plays it with Shaka Player over W3C Clear Key
//! with licences from Tessera, and hls.js plays HLS AES-128 segmented by ffmpeg with a key
//! Tessera holds. `tests/browser/run.mjs` drives the browser (playwright-core) and reports;
//! this test decides.
//!
//! Needs `/usr/bin/chromium` (Debian `chromium`), Node.js and the pinned npm packages of
//! `tests/browser/package-lock.json`, all installed by `tests/setup.sh`; without them the test
//! fails naming that step.

use super::binary::{run, serve_dev, tessera};
use super::packager::{media, tool};
use super::support::browser::{browser_dir, chromium, npm_packages};
use super::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const SIGNER: (&str, &str, &str) = tessera::config::DEV_WIDEVINE_TEST_SIGNER;

/// Packages the clip's video and audio into `out` (static DASH) with `extra` flags.
fn package(out: &Path, extra: &[&str]) {
    std::fs::create_dir_all(out).unwrap();
    let clip = media().clip.display().to_string();
    let o = out.display().to_string();
    let stream = |kind: &str, short: &str, label: &str| {
        format!(
            "in={clip},stream={kind},init_segment={o}/{short}_init.mp4,segment_template={o}/{short}_$Number$.m4s{label}"
        )
    };
    let single_key = extra.contains(&"--single-key");
    let label = if single_key { ",drm_label=SD" } else { "" };
    let out = Command::new(&media().packager)
        .arg(stream("video", "v", label))
        .arg(stream("audio", "a", label))
        .args(["--segment_duration", "2", "--generate_static_live_mpd"])
        .arg("--mpd_output")
        .arg(out.join("manifest.mpd"))
        .args(extra.iter().filter(|a| **a != "--single-key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "packager: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn widevine<'a>(internal: &'a str, content_hex: &'a str, scheme: &'a str) -> Vec<String> {
    vec![
        "--enable_widevine_encryption".into(),
        "--key_server_url".into(),
        format!("{internal}/widevine/cenc/getcontentkey/demo"),
        "--content_id".into(),
        content_hex.into(),
        "--signer".into(),
        SIGNER.0.into(),
        "--aes_signing_key".into(),
        SIGNER.1.into(),
        "--aes_signing_iv".into(),
        SIGNER.2.into(),
        "--protection_scheme".into(),
        scheme.into(),
        "--clear_lead".into(),
        "0".into(),
    ]
}

/// HLS (MPEG-TS) segmented by ffmpeg, AES-128 with `key` when given; the key URI is `uri`.
fn hls(out: &Path, key: Option<(&[u8], &str)>) {
    std::fs::create_dir_all(out).unwrap();
    let mut cmd = Command::new(&media().ffmpeg);
    cmd.args(["-nostdin", "-y", "-loglevel", "error", "-i"])
        .arg(&media().clip)
        .args(["-c", "copy", "-hls_time", "2", "-hls_playlist_type", "vod"]);
    if let Some((key, uri)) = key {
        std::fs::write(out.join("key.bin"), key).unwrap();
        let info = out.join("key.info");
        std::fs::write(&info, format!("{uri}\n{}\n", out.join("key.bin").display())).unwrap();
        cmd.arg("-hls_key_info_file").arg(&info);
    }
    let status = cmd.arg(out.join("index.m3u8")).status().unwrap();
    assert!(status.success());
    // The key file is the packager's secret, not the player's: nothing serves it.
    let _ = std::fs::remove_file(out.join("key.bin"));
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(&mut tessera(args, dir));
    assert_eq!(code, 0, "tessera {args:?}: {err}");
    out.trim().to_owned()
}

/// An entitlement token of the dev `demo` tenant that expired two minutes ago (beyond the
/// 30 s leeway), signed with the dev key.
fn expired_token(content_id: &str) -> String {
    let now = now();
    let signer = tessera::auth::mint::Signer::hmac(
        Some("demo-hs256".into()),
        tessera::auth::jwt::Alg::HS256,
        tessera::config::DEV_DEMO_SECRET.trim().as_bytes(),
    )
    .unwrap();
    signer
        .sign(&json!({
            "iss": tessera::config::DEV_ISSUER, "aud": tessera::config::DEV_AUDIENCE,
            "iat": now - 600, "exp": now - 120, "jti": "expired-1",
            "tessera": {"content_ids": [content_id]}
        }))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_plays_what_tessera_protects_and_fails_cleanly_without_a_licence() {
    chromium();
    npm_packages();
    let dir = tempfile::tempdir().unwrap();
    let p = serve_dev(dir.path());
    let m = dir.path().join("media");
    let hex = |s: &str| tessera::encoding::hex_encode(s.as_bytes());

    // The streams: a clear reference, cenc and cbcs with separate audio and video keys, cenc
    // with key rotation, and one key for both tracks (to revoke).
    package(&m.join("clear"), &[]);
    for (name, scheme, extra) in [
        ("cenc", "cenc", &[][..]),
        ("cbcs", "cbcs", &[][..]),
        ("rotation", "cenc", &["--crypto_period_duration", "2"][..]),
        ("revoked", "cenc", &["--single-key"][..]),
    ] {
        let mut flags = widevine(&p.internal, &hex(&format!("browser-{name}")), scheme);
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        package(&m.join(name), &flags);
    }
    // The revoked stream's one key, revoked before anyone plays it.
    let init = tool(&["inspect", m.join("revoked/v_init.mp4").to_str().unwrap()]);
    let revoked_kid = init["default_kid"].as_str().unwrap().to_owned();
    cli(
        dir.path(),
        &["keys", "--server", &p.internal, "revoke", &revoked_kid],
    );

    // HLS AES-128: ffmpeg encrypts with a key created through the key API; the playlist
    // points at Tessera's key endpoint.
    let created: Value = serde_json::from_str(&cli(
        dir.path(),
        &[
            "keys",
            "--server",
            &p.internal,
            "create",
            "--content-id",
            "browser-hls",
            "--track",
            "SD",
        ],
    ))
    .unwrap();
    let hls_kid = created["keys"][0]["kid"].as_str().unwrap().to_owned();
    let hls_key =
        tessera::encoding::b64_decode(created["keys"][0]["key"].as_str().unwrap()).unwrap();
    hls(
        &m.join("hls"),
        Some((&hls_key, &format!("{}/hls/key/{hls_kid}", p.public))),
    );
    hls(&m.join("hls-clear"), None);

    let token = |content: &str| {
        cli(
            dir.path(),
            &[
                "token",
                "--tenant",
                "demo",
                "--content-id",
                content,
                "--ttl",
                "600",
            ],
        )
    };
    let license = format!("{}/clearkey/license", p.public);
    let dash = |name: &str, manifest: &str, token: Option<String>, reference: bool| {
        let mut s = json!({"name": name, "kind": "dash", "manifest": manifest,
            "license": license, "token": token, "deadline_ms": 20000});
        if reference {
            s["reference"] = json!("clear/manifest.mpd");
        }
        s
    };
    let hls_scenario = |name: &str, token: Option<String>, auth: &str, reference: bool| {
        let mut s = json!({"name": name, "kind": "hls", "manifest": "hls/index.m3u8",
            "token": token, "auth": auth, "deadline_ms": 20000});
        if reference {
            s["reference"] = json!("hls-clear/index.m3u8");
        }
        s
    };
    // Control: the clear stream against itself one second earlier must differ, or the frame
    // comparison could not fail.
    let mut control = dash("control", "clear/manifest.mpd", None, true);
    control["reference_at"] = json!(1.0);
    let scenarios = json!([
        dash(
            "cenc",
            "cenc/manifest.mpd",
            Some(token("browser-cenc")),
            true
        ),
        dash(
            "cbcs",
            "cbcs/manifest.mpd",
            Some(token("browser-cbcs")),
            true
        ),
        dash(
            "rotation",
            "rotation/manifest.mpd",
            Some(token("browser-rotation")),
            true
        ),
        hls_scenario("hls-header", Some(token("browser-hls")), "header", true),
        hls_scenario("hls-query", Some(token("browser-hls")), "query", false),
        dash("no-token", "cenc/manifest.mpd", None, false),
        dash(
            "not-entitled",
            "cenc/manifest.mpd",
            Some(token("browser-cbcs")),
            false
        ),
        dash(
            "expired",
            "cenc/manifest.mpd",
            Some(expired_token("browser-cenc")),
            false
        ),
        dash(
            "revoked",
            "revoked/manifest.mpd",
            Some(token("browser-revoked")),
            false
        ),
        hls_scenario("hls-no-token", None, "header", false),
        control,
    ]);
    let config = dir.path().join("browser.json");
    std::fs::write(
        &config,
        json!({"media": m, "scenarios": scenarios}).to_string(),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            Command::new("node")
                .arg(browser_dir().join("run.mjs"))
                .arg(config)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "run.mjs: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let r = &report["scenarios"];
    for (name, s) in r.as_object().unwrap() {
        eprintln!(
            "browser {name}: played {} error {} difference {} contrast {} in {} ms",
            s["played"], s["error"], s["difference"], s["contrast"], s["ms"]
        );
    }

    for name in ["cenc", "cbcs", "rotation", "hls-header", "hls-query"] {
        let s = &r[name];
        let played = &s["played"];
        assert!(
            played["currentTime"].as_f64().unwrap_or(0.0) >= 2.5,
            "{name} did not play: {s}"
        );
        assert!(played["frames"].as_u64().unwrap_or(0) > 0, "{name}: {s}");
        assert!(s.get("error").is_none(), "{name}: {s}");
        if s.get("reference_shown_at").is_some() {
            // The decrypted frame looks like the clear one (same decoder, same instant), and
            // is a picture, not a blank.
            let diff = s["difference"].as_f64().unwrap();
            assert!(
                diff < 4.0,
                "{name}: frame differs from the clear source by {diff}: {s}"
            );
            assert!(
                s["contrast"].as_f64().unwrap() > 20.0,
                "{name}: a blank frame? {s}"
            );
        }
    }
    let control = r["control"]["difference"].as_f64().unwrap();
    assert!(
        control > 8.0,
        "frames a second apart should differ: {}",
        r["control"]
    );
    // The licence and key requests the players made, and what Tessera answered.
    let statuses = |name: &str| -> Vec<u64> {
        r[name]["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["status"].as_u64().unwrap())
            .collect()
    };
    assert!(statuses("cenc").contains(&200));
    assert!(statuses("hls-query").contains(&200));
    for (name, status) in [
        ("no-token", 401),
        ("not-entitled", 403),
        ("expired", 401),
        ("hls-no-token", 401),
    ] {
        let s = &r[name];
        assert!(
            s.get("timeout").is_none(),
            "{name} hung instead of failing: {s}"
        );
        assert!(s.get("played").is_none(), "{name} played: {s}");
        let err = &s["error"];
        if name.starts_with("hls") {
            assert_eq!(err["code"], "keyLoadError", "{name}: {s}");
        } else {
            // Shaka's LICENSE_REQUEST_FAILED, carrying Tessera's HTTP status.
            assert_eq!(err["code"], 6007, "{name}: {s}");
            assert_eq!(err["status"], status, "{name}: {s}");
        }
        assert!(statuses(name).iter().all(|&st| st == status), "{name}: {s}");
    }
    // The revoked key: the player asks for every KID of the stream's common PSSH and Tessera
    // releases the others (the viewer is entitled to them) but never the revoked one, so
    // Shaka finds no playable stream: RESTRICTIONS_CANNOT_BE_MET (4012), not a hang.
    let s = &r["revoked"];
    assert!(
        s.get("played").is_none() && s.get("timeout").is_none(),
        "revoked: {s}"
    );
    assert_eq!(s["error"]["code"], 4012, "revoked: {s}");
    assert_eq!(statuses("revoked"), [200], "revoked: {s}");
    // Tessera counted the licences and key deliveries the players got.
    let metrics = call(
        &client(),
        "GET",
        &format!("{}/metrics", p.internal),
        &[],
        "",
    )
    .await;
    let text = String::from_utf8_lossy(&metrics.body);
    let count = |protocol: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "tessera_licenses_issued_total{{protocol=\"{protocol}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("clearkey") >= 3, "{text}");
    assert!(count("hls") >= 2, "{text}");
}
