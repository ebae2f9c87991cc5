//! PlayReady-style licences with pyplayready 0.8.5, the third-party client
//! (tests/interop/playready_client.py, installed from PyPI by tests/setup.sh): devices made by
//! `tessera devices playready`, challenges built by pyplayready, licences parsed by it, keys
//! compared with what the key API created. The refusal paths the client cannot produce
//! (XML bombs, oversized bodies, no token) are driven with the crate's device simulator.

use super::binary;
use super::support::interop;
use super::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use tessera::keyring::KeyId;
use tessera::protocol::playready::header::{self, AlgId, HeaderKey};
use tessera::protocol::playready::provision::Device;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// `tessera devices playready` with `args`; returns its JSON summary.
///
/// pyplayready 0.8.5 re-encodes the keys it loads with `Util.to_bytes`, which drops leading
/// zero bytes (two at a time): for a key whose d, x or y starts with two zero bytes (one in
/// about 10,900) it writes a short public key into challenges and compares short bytes with
/// full-width ones in licences, and fails. That is the client's defect, so the command is run
/// again (its outputs removed) until every key pyplayready will load is full width. What
/// Tessera makes and what the client sends are unchanged.
fn tessera_devices(args: &[&str]) -> Value {
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .map(|i| Path::new(args[i + 1]).to_path_buf())
    };
    let (new_root, out, group_out) = (
        value_of("--new-root"),
        value_of("--out"),
        value_of("--group-out"),
    );
    let full_width = |v: &[u8]| v.chunks(32).all(|c| c[..2] != [0, 0]);
    for _ in 0..8 {
        let run = Command::new(BIN)
            .args(["devices", "playready"])
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut keys: Vec<Vec<u8>> = Vec::new();
        if let Some(prd) = &out {
            let device = Device::from_prd(&std::fs::read(prd).unwrap()).unwrap();
            for k in [&device.sign, &device.encrypt] {
                keys.push(k.scalar().to_vec());
                keys.push(k.public().to_vec());
            }
        }
        if let Some(dir) = &group_out {
            let d: [u8; 32] = std::fs::read(dir.join("zgpriv.dat")).unwrap()[..32]
                .try_into()
                .unwrap();
            let group = tessera::crypto::ecc::EccPrivateKey::from_scalar(&d).unwrap();
            keys.push(d.to_vec());
            keys.push(group.public().to_vec());
        }
        if keys.iter().all(|k| full_width(k)) {
            return serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
        }
        for path in [&new_root, &group_out].into_iter().flatten() {
            std::fs::remove_dir_all(path).unwrap();
        }
        if let Some(prd) = &out {
            std::fs::remove_file(prd).unwrap();
        }
    }
    panic!("no device with full-width keys in 8 attempts");
}

/// `[playready]` with `dir`'s root, server key and signing chain, plus `extra` lines.
fn playready_toml(dir: &Path, signed: bool, extra: &str) -> String {
    let signing = if signed {
        format!(
            "signing_chain_file = \"{d}/signing-chain.bin\"\nsigning_key_file = \"{d}/signing-key.pem\"",
            d = dir.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"
[playready]
server_key_file = "{d}/server-key.pem"
roots = ["{d}/root-public.pem"]
{signing}
{extra}
"#,
        d = dir.display()
    )
}

/// Base64 of a PlayReady PSSH box naming `kids`.
fn pssh(kids: &[&str], alg: AlgId) -> String {
    let keys: Vec<HeaderKey<'_>> = kids
        .iter()
        .map(|k| HeaderKey {
            kid: KeyId::parse(k).unwrap(),
            key: None,
        })
        .collect();
    let pro = header::pro(&header::wrmheader(
        &keys,
        alg,
        Some("https://x/playready/license"),
    ));
    tessera::encoding::b64_encode(&tessera::protocol::signalling::playready_pssh(&pro))
}

/// Runs the pyplayready driver; returns its JSON report and exit code.
async fn pyplayready(args: Vec<String>) -> (i32, Value) {
    let mut cmd = Command::new(interop::python());
    cmd.arg(interop::script("playready_client.py")).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

async fn license(
    server: &Server,
    root: &Path,
    device: &Path,
    wrmheader: &str,
    extra: &[&str],
) -> (i32, Value) {
    let mut args: Vec<String> = [
        "license",
        "--device",
        device.to_str().unwrap(),
        "--server-key",
        root.join("server-public.pem").to_str().unwrap(),
        "--url",
        &format!("{}/playready/license", server.public),
        "--wrmheader",
        wrmheader,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    pyplayready(args).await
}

/// The `(kid, key)` pairs pyplayready recovered, sorted.
fn got(r: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn expect(keys: &[Value], tracks: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tracks
        .iter()
        .map(|t| {
            (
                kid_of(keys, t),
                tessera::encoding::hex_encode(&key_of(keys, t)),
            )
        })
        .collect();
    v.sort();
    v
}

/// The fault's code (the `faultstring` prefix) and PlayReady status.
fn fault(r: &Value) -> (String, String) {
    let f = &r["fault"];
    let text = f["faultstring"].as_str().unwrap_or_else(|| panic!("{r}"));
    (
        text.split(':').next().unwrap().to_owned(),
        f["status_code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn pyplayready_gets_exactly_the_entitled_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let prd = dir.path().join("device.prd");
    let summary = tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        prd.to_str().unwrap(),
    ]);
    assert_eq!(summary["security_level"], 2000);
    let server = Server::start_with(&playready_toml(&root, true, ""), None).await;
    let keys = server
        .create_keys("acme", "film", &["SD", "HD", "AUDIO"])
        .await;
    let (sd, hd, audio) = (
        kid_of(&keys, "SD"),
        kid_of(&keys, "HD"),
        kid_of(&keys, "AUDIO"),
    );
    let all = pssh(&[&sd, &hd, &audio], AlgId::AesCtr);
    let token = player_token("acme", json!({"kids": [sd, audio]}));

    // Bearer token, signed response: exactly the entitled keys, as AES-CTR.
    let (code, r) = license(&server, &root, &prd, &all, &["--token", &token]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(got(&r), expect(&keys, &["SD", "AUDIO"]), "{r}");
    assert_eq!(r["signed"], true);
    assert!(
        r["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["key_type"] == 1 && k["cipher_type"] == 3)
    );

    // The token in CustomData (no Authorization header), a 'cbcs' header: AES-CBC keys.
    let custom = format!("<Token>{token}</Token>");
    let cbcs = pssh(&[&sd, &hd], AlgId::AesCbc);
    let (code, r) = license(&server, &root, &prd, &cbcs, &["--custom-data", &custom]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(got(&r), expect(&keys, &["SD"]), "{r}");
    assert_eq!(r["keys"][0]["key_type"], 5);

    // The PSSH the key API hands packagers works as is (revocation lists sent, as the
    // client's own CLI does).
    let from_api =
        keys.iter().find(|k| k["track"] == "AUDIO").unwrap()["signalling"]["playready_pssh"]
            .as_str()
            .unwrap()
            .to_owned();
    let (code, r) = license(
        &server,
        &root,
        &prd,
        &from_api,
        &["--token", &token, "--rev-lists"],
    )
    .await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(got(&r), expect(&keys, &["AUDIO"]));

    // The response signature is checked by the client: a changed byte is caught.
    let (code, r) = license(
        &server,
        &root,
        &prd,
        &all,
        &["--token", &token, "--tamper-response"],
    )
    .await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("Digest mismatch"),
        "{r}"
    );

    // Every release is audited with the device it went to; metrics count the licences.
    // The audit writer is a thread of its own: poll until it caught up.
    let device = format!(
        "\"device\":\"playready:{}\"",
        summary["cert_id"].as_str().unwrap()
    );
    let releases = |audit: &str| {
        audit
            .lines()
            .filter(|l| {
                l.contains("\"key.release\"") && l.contains("\"playready\"") && l.contains(&device)
            })
            .count()
    };
    let mut audit = String::new();
    for _ in 0..100 {
        audit = std::fs::read_to_string(server.dir.path().join("audit.jsonl")).unwrap_or_default();
        if releases(&audit) >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(releases(&audit), 4, "{audit}");
    assert!(
        server
            .metrics()
            .await
            .contains("tessera_licenses_issued_total{protocol=\"playready\"} 4")
    );
}

#[tokio::test]
async fn pyplayready_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let good = dir.path().join("good.prd");
    let revoked = dir.path().join("revoked.prd");
    let model = dir.path().join("model.prd");
    let foreign = dir.path().join("foreign.prd");
    let weak = dir.path().join("weak.prd");
    tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        good.to_str().unwrap(),
    ]);
    let r = root.to_str().unwrap();
    let rev = tessera_devices(&["--root", r, "--out", revoked.to_str().unwrap()]);
    tessera_devices(&[
        "--root",
        r,
        "--out",
        model.to_str().unwrap(),
        "--model",
        "Leaky Box 1",
    ]);
    tessera_devices(&[
        "--root",
        r,
        "--out",
        weak.to_str().unwrap(),
        "--security-level",
        "150",
    ]);
    tessera_devices(&[
        "--new-root",
        dir.path().join("other").to_str().unwrap(),
        "--out",
        foreign.to_str().unwrap(),
    ]);
    let extra = format!(
        "revoked_certificate_ids = [\"{}\"]\nrevoked_models = [\"Leaky Box 1\"]",
        rev["cert_id"].as_str().unwrap()
    );
    let server = Server::start_with(&playready_toml(&root, false, &extra), None).await;
    let keys = server.create_keys("acme", "film", &["SD", "HD"]).await;
    let (sd, hd) = (kid_of(&keys, "SD"), kid_of(&keys, "HD"));
    let sd_only = pssh(&[&sd], AlgId::AesCtr);
    let token = player_token("acme", json!({"kids": [sd]}));
    let t = ["--token", token.as_str(), "--expect-fault"];
    let refused = |r: &Value| {
        assert_eq!(r["http_status"], 500, "{r}");
        fault(r)
    };
    let service = "0x8004C604".to_owned();
    let invalid = "0x8004C601".to_owned();
    for (device, want) in [
        (&foreign, "device_chain_untrusted"),
        (&revoked, "device_revoked"),
        (&model, "device_revoked"),
    ] {
        let (_, r) = license(&server, &root, device, &sd_only, &t).await;
        assert_eq!(refused(&r), (want.to_owned(), service.clone()), "{r}");
    }
    for (mode, want) in [
        ("la", "challenge_signature_invalid"),
        ("signature", "challenge_signature_invalid"),
        ("cipher", "client_data_invalid"),
        ("wmrm", "challenge_not_for_this_server"),
    ] {
        let (_, r) = license(
            &server,
            &root,
            &good,
            &sd_only,
            &[&t[..], &["--tamper", mode]].concat(),
        )
        .await;
        assert_eq!(
            refused(&r),
            (want.to_owned(), invalid.clone()),
            "{mode}: {r}"
        );
    }
    // Not entitled, and an expired token.
    let (_, r) = license(&server, &root, &good, &pssh(&[&hd], AlgId::AesCtr), &t).await;
    let (code, status) = refused(&r);
    assert_eq!(
        (code.as_str(), status),
        ("no_entitled_keys", service.clone())
    );
    assert!(
        r["fault"]["faultstring"]
            .as_str()
            .unwrap()
            .contains("not_entitled")
    );
    let expired = signer("acme")
        .sign(&claims(
            "acme",
            json!({"exp": now() - 600, "tessera": {"kids": [sd]}}),
        ))
        .unwrap();
    let (_, r) = license(
        &server,
        &root,
        &good,
        &sd_only,
        &["--token", &expired, "--expect-fault"],
    )
    .await;
    assert_eq!(refused(&r).0, "token_expired");
    // A test-grade (SL150) device and a policy asking for SL2000 (software decode).
    let hw = player_token(
        "acme",
        json!({"kids": [sd], "policy": {"min_security_level": "SW_SECURE_DECODE"}}),
    );
    let (_, r) = license(
        &server,
        &root,
        &weak,
        &sd_only,
        &["--token", &hw, "--expect-fault"],
    )
    .await;
    assert!(
        r["fault"]["faultstring"]
            .as_str()
            .unwrap()
            .contains("security_level_too_low"),
        "{r}"
    );
    let (code, r) = license(&server, &root, &good, &sd_only, &["--token", &hw]).await;
    assert_eq!(code, 0, "{r}");
    // And the good device, same server, same token: the refusals were about the others.
    let (code, r) = license(&server, &root, &good, &sd_only, &["--token", &token]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(got(&r), expect(&keys, &["SD"]));
    assert_eq!(r["signed"], false);
    let m = server.metrics().await;
    assert!(
        m.contains("tessera_auth_denials_total{reason=\"device_revoked\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("tessera_auth_denials_total{reason=\"challenge_signature_invalid\"} 2"),
        "{m}"
    );
}

/// pyplayready's own chain verifier accepts Tessera's model chain: its `create-device`
/// issues a device under the group files `--group-out` writes, and that device gets keys.
#[tokio::test]
async fn pyplayready_issues_devices_under_a_tessera_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let group = dir.path().join("group");
    let ours = dir.path().join("ours.prd");
    let theirs = dir.path().join("theirs.prd");
    tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
        "--group-out",
        group.to_str().unwrap(),
    ]);
    let root_public = root.join("root-public.pem");
    let (code, r) = pyplayready(
        [
            "inspect-device",
            "--device",
            ours.to_str().unwrap(),
            "--root-public",
            root_public.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert_eq!((code, &r["chain_verified"]), (0, &json!(true)), "{r}");
    let (code, r) = pyplayready(
        [
            "build-device",
            "--group-key",
            group.join("zgpriv.dat").to_str().unwrap(),
            "--group-cert",
            group.join("bgroupcert.dat").to_str().unwrap(),
            "--root-public",
            root_public.to_str().unwrap(),
            "--out",
            theirs.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert_eq!(code, 0, "{r}");
    // The device pyplayready made is one Tessera trusts.
    let loaded = Device::from_prd(&std::fs::read(&theirs).unwrap()).unwrap();
    assert_eq!(loaded.security_level, 2000);
    let server = Server::start_with(&playready_toml(&root, true, ""), None).await;
    let keys = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"kids": [sd]}));
    let (code, r) = license(
        &server,
        &root,
        &theirs,
        &pssh(&[&sd], AlgId::AesCtr),
        &["--token", &token],
    )
    .await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(got(&r), expect(&keys, &["SD"]));
}

/// Refusals the real client cannot produce, with the crate's device simulator: no token,
/// XML bombs, oversized bodies, a challenge signed by a key other than the device's, an
/// unconfigured server. Each is a SOAP fault (or 413), refused before any key is looked up.
#[tokio::test]
async fn malformed_and_hostile_challenges_get_faults() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let prd = dir.path().join("d.prd");
    tessera_devices(&[
        "--new-root",
        root.to_str().unwrap(),
        "--out",
        prd.to_str().unwrap(),
    ]);
    let server = Server::start_with(&playready_toml(&root, false, ""), None).await;
    let keys = server.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"kids": [sd]}));
    let device = Device::from_prd(&std::fs::read(&prd).unwrap()).unwrap();
    let server_key = tessera::crypto::ecc::public_from_pem(
        &std::fs::read(root.join("server-public.pem")).unwrap(),
    )
    .unwrap();
    let wrm = header::wrmheader(
        &[HeaderKey {
            kid: KeyId::parse(&sd).unwrap(),
            key: None,
        }],
        AlgId::AesCtr,
        None,
    );
    let url = format!("{}/playready/license", server.public);
    let auth = format!("Bearer {token}");
    let post = |body: String, bearer: bool| {
        let url = url.clone();
        let auth = auth.clone();
        let server = &server;
        async move {
            let mut h = vec![("content-type", "text/xml; charset=utf-8")];
            if bearer {
                h.push(("authorization", auth.as_str()));
            }
            server.call("POST", &url, &h, body).await
        }
    };
    let code = |r: &Resp| -> String {
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("<soap:Fault>"), "{text}");
        let s = text.split("<faultstring>").nth(1).unwrap();
        s.split(':').next().unwrap().to_owned()
    };

    // The simulator's challenge works (the baseline for the negatives below).
    let ok = device
        .challenge(&server_key, &wrm, None, now() as u64)
        .unwrap();
    let r = post(ok.clone(), true).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let opened = device.open_response(&r.body).unwrap();
    assert_eq!(
        tessera::encoding::hex_encode(&*opened[0].key),
        tessera::encoding::hex_encode(&key_of(&keys, "SD"))
    );
    // No token anywhere.
    let r = post(ok.clone(), false).await;
    assert_eq!((r.status, code(&r).as_str()), (500, "token_missing"));
    // Billion laughs and a deep document: refused by the parser, fast.
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"{}\">{}]><l>&j;</l>",
        "x".repeat(10),
        (b'b'..=b'j')
            .map(|c| format!(
                "<!ENTITY {} \"{}\">",
                c as char,
                format!("&{};", (c - 1) as char).repeat(10)
            ))
            .collect::<String>()
    );
    let t = std::time::Instant::now();
    let r = post(bomb, true).await;
    assert_eq!((r.status, code(&r).as_str()), (500, "request_invalid"));
    let deep = "<a>".repeat(5000) + &"</a>".repeat(5000);
    let r = post(deep, true).await;
    assert_eq!((r.status, code(&r).as_str()), (500, "request_invalid"));
    // Generous for a loaded 2-core machine; an expanding parser would take minutes.
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    // Oversized, by declared length and by streamed bytes.
    assert_eq!(
        status_for_declared_length(&server.public, "/playready/license", &[], 10 << 20).await,
        413
    );
    let r = post(format!("<a>{}</a>", "x".repeat(70 * 1024)), true).await;
    assert_eq!(r.status, 413);
    // A challenge signed by a key that is not the device certificate's.
    let mut impostor = Device::from_prd(&std::fs::read(&prd).unwrap()).unwrap();
    impostor.sign = tessera::crypto::ecc::EccPrivateKey::generate().unwrap();
    let r = post(
        impostor
            .challenge(&server_key, &wrm, None, now() as u64)
            .unwrap(),
        true,
    )
    .await;
    assert_eq!(code(&r), "device_key_mismatch");
    // A WRMHEADER version nobody wrote.
    let v9 = device
        .challenge(
            &server_key,
            &wrm.replace("4.3.0.0", "9.0.0.0"),
            None,
            now() as u64,
        )
        .unwrap();
    let r = post(v9, true).await;
    assert_eq!(code(&r), "request_invalid");
    assert!(String::from_utf8_lossy(&r.body).contains("0x8004C60B"));
    // SOAP 1.2 in, SOAP 1.2 out: the licence, and a Sender fault as 400.
    let v12 = ok.replace(
        "http://schemas.xmlsoap.org/soap/envelope/",
        "http://www.w3.org/2003/05/soap-envelope",
    );
    let r = post(v12.clone(), true).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/soap+xml; charset=utf-8")
    );
    assert!(
        String::from_utf8_lossy(&r.body)
            .contains("xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"")
    );
    assert_eq!(device.open_response(&r.body).unwrap().len(), 1);
    let r = post(v12, false).await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("<soap:Value>soap:Sender</soap:Value>"));
    // Not configured: 404 with a fault.
    let plain = Server::start().await;
    let r = plain
        .call(
            "POST",
            &format!("{}/playready/license", plain.public),
            &[],
            ok,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[test]
fn server_public_key_and_check_config() {
    let dir = tempfile::tempdir().unwrap();
    // Dev mode prints the committed dev key.
    let (code, out, err) = binary::run(&mut binary::tessera(
        &["devices", "playready", "--server-public-key"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    ));
    assert_eq!(code, 0, "{err}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/keys/dev/playready/server-public.pem"
    ))
    .unwrap();
    assert_eq!(
        tessera::crypto::ecc::public_from_pem(out.as_bytes()).unwrap(),
        tessera::crypto::ecc::public_from_pem(committed.as_bytes()).unwrap()
    );
    // check-config refuses half-configured and malformed settings.
    let root = dir.path().join("root");
    tessera_devices(&["--new-root", root.to_str().unwrap()]);
    let junk = dir.path().join("junk.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for (extra, want) in [
        (
            format!(
                "[playready]\nroots = [\"{}/root-public.pem\"]",
                root.display()
            ),
            "server_key_file",
        ),
        (
            format!(
                "[playready]\nserver_key_file = \"{}/server-key.pem\"",
                root.display()
            ),
            "no roots",
        ),
        (
            playready_toml(&root, false, "revoked_certificate_ids = [\"abc\"]"),
            "32 hex digits",
        ),
        (
            playready_toml(
                &root,
                false,
                &format!(
                    "signing_chain_file = \"{}/signing-chain.bin\"",
                    root.display()
                ),
            ),
            "go together",
        ),
        (
            format!(
                "[playready]\nserver_key_file = \"{}\"\nroots = [\"{}/root-public.pem\"]",
                junk.display(),
                root.display()
            ),
            "not a PEM P-256 private key",
        ),
    ] {
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, format!("{}\n{extra}", base_toml(dir.path()))).unwrap();
        let (code, _, err) = binary::run(&mut binary::tessera(
            &["--config", cfg.to_str().unwrap(), "check-config"],
            dir.path(),
        ));
        assert_ne!(code, 0, "{extra}");
        assert!(err.contains(want), "{extra}: {err}");
    }
}
