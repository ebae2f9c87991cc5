//! FairPlay-style licences end to end, against a device simulator written here from the
//! profile (`docs/fairplay.md`) with OpenSSL, independently of the server's codecs. The
//! device holds only what `tessera devices fairplay` gives it (`{r2, dask, hu}` and the
//! public certificate), never the ASk.

use super::binary::{run, serve_dev, tessera};
use super::fairplay_device::*;
use super::support::*;
use openssl::hash::MessageDigest;
use serde_json::{Value, json};

/// A self-signed RSA-2048 certificate (DER) and its key.
fn certificate() -> (Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>) {
    certificate_bits(2048)
}

/// A self-signed RSA certificate (DER) of `bits` and its key.
fn certificate_bits(bits: u32) -> (Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>) {
    let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
    let pkey = openssl::pkey::PKey::from_rsa(rsa).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "fairplay-style test")
        .unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&pkey).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&pkey, MessageDigest::sha256()).unwrap();
    (b.build().to_der().unwrap(), pkey)
}

struct Setup {
    server: Server,
    device: Device,
    /// The RSA-1024 certificate of the second credential (same ASk): SPC version 1.
    cert_1024: Vec<u8>,
    kid: String,
    key: Vec<u8>,
    _keys: tempfile::TempDir,
}

/// A server whose `globex` tenant has a FairPlay-style credential (made here), a key for
/// `fp-movie`, and a device provisioned with `tessera devices fairplay`.
async fn setup() -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let mut extra = String::new();
    let mut cert_1024 = Vec::new();
    for (bits, name) in [(2048, "c2048"), (1024, "c1024")] {
        let (der, pkey) = certificate_bits(bits);
        if bits == 1024 {
            cert_1024 = der.clone();
        }
        let cert = keys.path().join(format!("{name}.der"));
        std::fs::write(&cert, der).unwrap();
        let key = keys.path().join(format!("{name}.pem"));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key)
                .unwrap();
            f.write_all(&pkey.private_key_to_pem_pkcs8().unwrap())
                .unwrap();
        }
        extra.push_str(&format!(
            "\n[[tenants.fairplay_credentials]]\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\nask = \"{}\"\nv3 = true\n",
            cert.display(),
            key.display(),
            "0f".repeat(16)
        ));
    }
    let server = Server::start_with(&extra, None).await;
    // The device, provisioned by the CLI from the same configuration.
    let cfg = keys.path().join("tessera.toml");
    std::fs::write(&cfg, format!("{}\n{extra}", base_toml(server.dir.path()))).unwrap();
    let dev = keys.path().join("device.json");
    let (code, out, err) = run(&mut tessera(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "devices",
            "fairplay",
            "--tenant",
            "globex",
            "--out",
            dev.to_str().unwrap(),
        ],
        keys.path(),
    ));
    assert_eq!(code, 0, "{out} {err}");
    let made = server.create_keys("globex", "fp-movie", &["SD"]).await;
    Setup {
        cert_1024,
        device: Device::load(&dev),
        kid: kid_of(&made, "SD"),
        key: key_of(&made, "SD"),
        server,
        _keys: keys,
    }
}

async fn post(s: &Server, token: Option<&str>, body: Vec<u8>, query: &str) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/octet-stream")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    s.call(
        "POST",
        &format!("{}/fairplay/license{query}", s.public),
        &headers,
        body,
    )
    .await
}

#[tokio::test]
async fn every_request_shape_and_container_version_gets_the_key() {
    let s = setup().await;
    let token = player_token("globex", json!({"content_ids": ["fp-movie"]}));
    let skd = format!("skd://{}", s.kid);
    let b64 = tessera::encoding::b64_encode;
    let unb64 = |t: &str| tessera::encoding::b64_decode(t).unwrap();
    // (name, container version, asset id bytes, body from the SPC, CKC from the answer)
    type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    type Unwrap = Box<dyn Fn(&Resp) -> Vec<u8>>;
    let utf16: Vec<u8> = skd.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cases: Vec<(&str, u32, Vec<u8>, Wrap, Unwrap)> = vec![
        (
            "raw v2",
            2,
            skd.clone().into_bytes(),
            Box::new(|s| s.to_vec()),
            Box::new(|r| r.body.to_vec()),
        ),
        (
            "raw v3",
            3,
            skd.clone().into_bytes(),
            Box::new(|s| s.to_vec()),
            Box::new(|r| r.body.to_vec()),
        ),
        (
            "content id",
            2,
            b"fp-movie".to_vec(),
            Box::new(|s| s.to_vec()),
            Box::new(|r| r.body.to_vec()),
        ),
        (
            "utf-16 asset",
            2,
            utf16,
            Box::new(|s| s.to_vec()),
            Box::new(|r| r.body.to_vec()),
        ),
        (
            "base64",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| b64(s).into_bytes()),
            Box::new(move |r| unb64(std::str::from_utf8(&r.body).unwrap())),
        ),
        (
            "form",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| {
                format!("spc={}&assetId={}", b64(s), "ignored-when-equal").into_bytes()
            }),
            Box::new(move |r| {
                let t = std::str::from_utf8(&r.body).unwrap();
                unb64(t.trim_start_matches("<ckc>").trim_end_matches("</ckc>"))
            }),
        ),
        (
            "json",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| json!({"spc": b64(s)}).to_string().into_bytes()),
            Box::new(move |r| unb64(r.json()["ckc"].as_str().unwrap())),
        ),
        (
            ".net json",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| json!({"SpcMessage": b64(s)}).to_string().into_bytes()),
            Box::new(move |r| unb64(r.json()["CkcMessage"].as_str().unwrap())),
        ),
        (
            "apple sdk json",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| {
                json!({"fairplay-streaming-request": {"create-ckc": [{"id": 1, "spc": b64(s)}]}})
                    .to_string()
                    .into_bytes()
            }),
            Box::new(move |r| {
                unb64(
                    r.json()["fairplay-streaming-response"]["create-ckc"][0]["ckc"]
                        .as_str()
                        .unwrap(),
                )
            }),
        ),
        (
            "webkit json",
            2,
            skd.clone().into_bytes(),
            Box::new(move |s| {
                json!({"fairplay-streaming-request": {"version": 1, "streaming-keys": [{"id": 1, "uri": "", "spc": b64(s)}]}}).to_string().into_bytes()
            }),
            Box::new(move |r| {
                unb64(
                    r.json()["fairplay-streaming-response"]["streaming-keys"][0]["ckc"]
                        .as_str()
                        .unwrap(),
                )
            }),
        ),
    ];
    let v1_device = Device {
        cert: s.cert_1024.clone(),
        ..Device::load_clone(&s.device)
    };
    for (name, version, asset, wrap, unwrap) in cases {
        let device = if version == 1 { &v1_device } else { &s.device };
        let (spc, p) = device.spc(version, &asset, &[]);
        let body = wrap(&spc);
        // The form's asset hint must not contradict the SPC: send the real one.
        let body = if name == "form" {
            String::from_utf8(body)
                .unwrap()
                .replace("ignored-when-equal", &skd)
                .into_bytes()
        } else {
            body
        };
        let r = post(&s.server, Some(&token), body, "").await;
        assert_eq!(
            r.status,
            200,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let (key, t) = s
            .device
            .open(&p, &unwrap(&r))
            .unwrap_or_else(|e| panic!("{name}: {e} ({} bytes)", r.body.len()));
        assert_eq!(key, s.key, "{name}");
        assert_eq!(
            t.get(&TRANSACTION_ID),
            Some(&vec![0x11; 8]),
            "{name}: return request"
        );
        // Another playback's secrets cannot open it.
        let (_, other) = s.device.spc(2, &asset, &[]);
        assert!(s.device.open(&other, &unwrap(&r)).is_err());
    }
    let m = s.server.metrics().await;
    assert!(
        m.contains(r#"tessera_licenses_issued_total{protocol="fairplay"} 10"#),
        "{m}"
    );
}

#[tokio::test]
async fn certificate_policy_and_refusals() {
    let s = setup().await;
    let skd = format!("skd://{}", s.kid);
    // The certificate, in the three formats players expect.
    async fn cert(s: &Server, q: &str) -> Resp {
        s.call(
            "GET",
            &format!("{}/fairplay/certificate?tenant=globex{q}", s.public),
            &[],
            "",
        )
        .await
    }
    let der = cert(&s.server, "").await;
    assert_eq!(
        (der.status, der.header("content-type")),
        (200, Some("application/pkix-cert"))
    );
    assert_eq!(der.body.to_vec(), s.device.cert);
    let b = cert(&s.server, "&format=base64").await;
    assert_eq!(
        tessera::encoding::b64_decode(std::str::from_utf8(&b.body).unwrap()).unwrap(),
        s.device.cert
    );
    let j = cert(&s.server, "&format=json").await;
    assert_eq!(
        tessera::encoding::b64_decode(j.json()["certificate"].as_str().unwrap()).unwrap(),
        s.device.cert
    );
    let none = s
        .server
        .call(
            "GET",
            &format!("{}/fairplay/certificate?tenant=acme", s.server.public),
            &[],
            "",
        )
        .await;
    assert_eq!(none.status, 404);

    // A lease from the token's policy, sent because the SPC reports a playback state.
    let lease = player_token(
        "globex",
        json!({"content_ids": ["fp-movie"], "policy": {"license_duration_secs": 600}}),
    );
    let mut state = 0u32.to_be_bytes().to_vec();
    state.extend_from_slice(&0xf4dee5a2u32.to_be_bytes());
    state.extend_from_slice(&7u64.to_be_bytes());
    let (spc, p) = s
        .device
        .spc(2, skd.as_bytes(), &[(PLAYBACK_STATE, state.clone())]);
    let r = post(&s.server, Some(&lease), spc, "").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, t) = s.device.open(&p, &r.body).unwrap();
    let d = t.get(&KEY_DURATION).expect("key duration TLLV");
    assert_eq!(&d[0..4], &600u32.to_be_bytes());
    assert_eq!(&d[8..12], &0x1a4bde7eu32.to_be_bytes(), "lease");
    // Rental, an offline key for a device that announces offline-key support, HDCP type 1.
    let check = |policy: Value, caps: u128| {
        let token = player_token(
            "globex",
            json!({"content_ids": ["fp-movie"], "policy": policy}),
        );
        let mut st = 0u32.to_be_bytes().to_vec();
        st.extend_from_slice(&0xf4dee5a2u32.to_be_bytes());
        st.extend_from_slice(&7u64.to_be_bytes());
        let extra = vec![
            (PLAYBACK_STATE, st),
            (CAPABILITIES, caps.to_be_bytes().to_vec()),
        ];
        let (spc, p) = s.device.spc(2, skd.as_bytes(), &extra);
        (token, spc, p)
    };
    let (t, spc, p) = check(json!({"rental_duration_secs": 3600}), 0);
    let r = post(&s.server, Some(&t), spc, "").await;
    let (_, tl) = s.device.open(&p, &r.body).unwrap();
    assert_eq!(
        &tl[&KEY_DURATION][4..12],
        &[&3600u32.to_be_bytes()[..], &0x3dfe45a0u32.to_be_bytes()[..]].concat()[..]
    );
    let (t, spc, p) = check(
        json!({"can_persist": true, "license_duration_secs": 86400, "playback_duration_secs": 7200}),
        0b10,
    );
    let r = post(&s.server, Some(&t), spc, "").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, tl) = s.device.open(&p, &r.body).unwrap();
    let offline = &tl[&OFFLINE_KEY];
    assert_eq!(
        (offline.len(), &offline[24..28]),
        (32, &86400u32.to_be_bytes()[..])
    );
    let (t, spc, p) = check(json!({"hdcp": {"SD": "V2.2"}}), 1);
    let r = post(&s.server, Some(&t), spc, "").await;
    let (_, tl) = s.device.open(&p, &r.body).unwrap();
    assert_eq!(
        &tl[&HDCP][..8],
        &0x285a0863bba8e1d3u64.to_be_bytes(),
        "HDCP type 1"
    );
    // Playback stopped: no CKC.
    state[4..8].copy_from_slice(&0x5991bf20u32.to_be_bytes());
    let (spc, _) = s.device.spc(2, skd.as_bytes(), &[(PLAYBACK_STATE, state)]);
    assert_eq!(post(&s.server, Some(&lease), spc, "").await.status, 204);

    let token = player_token("globex", json!({"content_ids": ["fp-movie"]}));
    let other = player_token("globex", json!({"content_ids": ["another-movie"]}));
    let (good, _) = s.device.spc(2, skd.as_bytes(), &[]);
    let fps = |r: &Resp| r.header("x-fps-status").unwrap_or("").to_owned();
    let r = post(&s.server, None, good.clone(), "").await;
    assert_eq!((r.status, fps(&r).as_str()), (401, "-42604"));
    let r = post(&s.server, Some(&other), good.clone(), "").await;
    assert_eq!((r.status, fps(&r).as_str()), (403, "-42604"));
    let (unknown, _) = s
        .device
        .spc(2, b"skd://00000000-0000-0000-0000-000000000001", &[]);
    let r = post(&s.server, Some(&token), unknown, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (404, "-42584"));
    // The SPC's asset and a body hint naming another key.
    let form = format!(
        "spc={}&assetId=skd://00000000-0000-0000-0000-000000000002",
        tessera::encoding::b64_encode(&good)
    );
    let r = post(&s.server, Some(&token), form.into_bytes(), "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42585"));
    // An SPC for a certificate Tessera does not hold: one uniform error, JSON when asked in JSON.
    let stranger = Device {
        cert: certificate().0,
        ..Device::load_clone(&s.device)
    };
    let (foreign, _) = stranger.spc(2, skd.as_bytes(), &[]);
    let r = post(
        &s.server,
        Some(&token),
        json!({"spc": tessera::encoding::b64_encode(&foreign)})
            .to_string()
            .into_bytes(),
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["status"], -42605);
    // v3 transport integrity: any flipped bit is refused before decryption.
    let (mut v3, _) = s.device.spc(3, skd.as_bytes(), &[]);
    let at = v3.len() - 40;
    v3[at] ^= 1;
    let r = post(&s.server, Some(&token), v3, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42589"));
    // A certificate posted in place of an SPC, and garbage.
    let r = post(
        &s.server,
        Some(&token),
        tessera::encoding::b64_encode(&s.device.cert).into_bytes(),
        "",
    )
    .await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42580"));
    let r = post(&s.server, Some(&token), b"hello".to_vec(), "").await;
    assert_eq!(r.status, 400);
    // Missing and duplicate TLLVs, a protocol version other than the best common one, a
    // truncated SPC, a tampered wrapped key.
    let (missing, _) = s.device.spc_with(2, skd.as_bytes(), &[], &[R2]);
    let r = post(&s.server, Some(&token), missing, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42583"));
    let (dup, _) = s
        .device
        .spc(2, skd.as_bytes(), &[(ANTI_REPLAY, vec![1; 16])]);
    let r = post(&s.server, Some(&token), dup, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42591"));
    let (ver, _) = s.device.spc_with(
        2,
        skd.as_bytes(),
        &[(VERSION_USED, 2u32.to_be_bytes().to_vec())],
        &[VERSION_USED],
    );
    let r = post(&s.server, Some(&token), ver, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42590"));
    let r = post(
        &s.server,
        Some(&token),
        good[..good.len() - 16].to_vec(),
        "",
    )
    .await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42581"));
    let mut wrapped = good.clone();
    wrapped[100] ^= 1;
    let r = post(&s.server, Some(&token), wrapped, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42605"));
    // A device provisioned under another ASk: its DASk does not open [SK..R1].
    let impostor = Device {
        dask: vec![0x33; 16],
        ..Device::load_clone(&s.device)
    };
    let (spc, _) = impostor.spc(2, skd.as_bytes(), &[]);
    let r = post(&s.server, Some(&token), spc, "").await;
    assert_eq!((r.status, fps(&r).as_str()), (400, "-42589"));
}

/// Dev mode: `tessera devices fairplay` with no config provisions a device for the embedded
/// test credential that dev-mode `serve` uses.
#[tokio::test]
async fn dev_mode_device_gets_a_licence() {
    let dir = tempfile::tempdir().unwrap();
    let p = serve_dev(dir.path());
    let dev = dir.path().join("device.json");
    let (code, _, err) = run(&mut tessera(
        &["devices", "fairplay", "--out", dev.to_str().unwrap()],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let device = Device::load(&dev);
    let c = client();
    let cert = call(
        &c,
        "GET",
        &format!("{}/fairplay/certificate", p.public),
        &[],
        "",
    )
    .await;
    assert_eq!(cert.body.to_vec(), device.cert);
    let (code, out, err) = run(&mut tessera(
        &[
            "keys",
            "--server",
            &p.internal,
            "create",
            "--content-id",
            "fp-dev",
            "--track",
            "SD",
        ],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let kid = made["keys"][0]["kid"].as_str().unwrap().to_owned();
    let key = tessera::encoding::b64_decode(made["keys"][0]["key"].as_str().unwrap()).unwrap();
    let (code, token, _) = run(&mut tessera(
        &["token", "--tenant", "demo", "--kid", &kid, "--ttl", "60"],
        dir.path(),
    ));
    assert_eq!(code, 0);
    let (spc, pb) = device.spc(2, format!("skd://{kid}").as_bytes(), &[]);
    let r = call(
        &c,
        "POST",
        &format!("{}/fairplay/license", p.public),
        &[("authorization", &format!("Bearer {}", token.trim()))],
        spc,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(device.open(&pb, &r.body).unwrap().0, key);
}
