//! The `tessera` executable itself: dev-mode quick start, restarts over the same data
//! directory, the wrong master key, `check-config`, `token`, and SIGTERM.

use crate::support::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

pub(crate) struct Proc {
    child: Child,
    pub(crate) public: String,
    pub(crate) internal: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn tessera(args: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_LOG_LEVEL", "warn");
    c
}

/// Starts `tessera serve` and waits for its "listening" line.
pub(crate) fn serve(mut cmd: Command) -> Result<Proc, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(|a| format!("http://{a}"))
                    .unwrap()
            };
            Ok(Proc {
                public: field("public="),
                internal: field("internal="),
                child,
            })
        }
        Err(_) => {
            // A server that never got to listen may be blocked, not exited.
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn sigterm(p: &mut Proc) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = p.child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tessera did not exit after SIGTERM");
}

/// Dev-mode `tessera serve` on ephemeral loopback ports, data under `dir/data`.
pub(crate) fn serve_dev(dir: &Path) -> Proc {
    let mut cmd = tessera(
        &[
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--internal-addr",
            "127.0.0.1:0",
        ],
        dir,
    );
    cmd.arg("--data-dir").arg(dir.join("data"));
    serve(cmd).unwrap()
}

pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dev_mode_quick_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = tessera(
        &[
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--internal-addr",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    cmd.arg("--data-dir").arg(&data);
    let mut p = serve(cmd).unwrap();
    // The packager side: create keys with a minted service token (the CLI does it).
    let (code, out, err) = run(&mut tessera(
        &[
            "keys",
            "--server",
            &p.internal,
            "create",
            "--content-id",
            "movie-1",
            "--track",
            "SD",
            "--track",
            "HD",
        ],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    // The player side: a token from `tessera token`, a licence from the public listener.
    let (code, token, _) = run(&mut tessera(
        &["token", "--tenant", "demo", "--kid", &kid, "--ttl", "60"],
        dir.path(),
    ));
    assert_eq!(code, 0);
    let c = client();
    let auth = format!("Bearer {}", token.trim());
    let r = call(
        &c,
        "POST",
        &format!("{}/clearkey/license", p.public),
        &[("authorization", &auth)],
        json!({"kids": [b64kid(&kid)]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["keys"][0]["k"].as_str().unwrap(),
        tessera::encoding::b64url_encode(
            &tessera::encoding::b64_decode(keys["keys"][0]["key"].as_str().unwrap()).unwrap()
        )
    );
    // Dev mode generated a 0600 master key inside the data directory.
    use std::os::unix::fs::PermissionsExt;
    let mk = std::fs::metadata(data.join(tessera::app::DEV_MASTER_KEY_FILE)).unwrap();
    assert_eq!(mk.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let status = sigterm(&mut p);
    assert!(status.success(), "graceful exit after SIGTERM: {status:?}");
    let stderr = {
        use std::io::Read;
        let mut s = String::new();
        p.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert!(
        stderr.contains("TESSERA DEV MODE"),
        "loud dev warning missing: {stderr}"
    );
}

#[test]
fn dev_mode_binds_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&mut tessera(
        &[
            "serve",
            "--public-addr",
            "0.0.0.0:0",
            "--internal-addr",
            "127.0.0.1:0",
        ],
        dir.path(),
    ));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("loopback"), "{err}");
}

fn production_config(dir: &Path, master_key_file: &Path) -> std::path::PathBuf {
    let text = base_toml(dir).replace(
        &format!("master_key = \"{MASTER}\""),
        &format!("master_key_file = \"{}\"", master_key_file.display()),
    );
    let path = dir.join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn write_key(path: &Path, hex: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn restart_keeps_keys_and_wrong_master_key_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mk = dir.path().join("master.key");
    write_key(&mk, MASTER, 0o600);
    let cfg = production_config(dir.path(), &mk);
    let cfg_s = cfg.to_str().unwrap();
    let mut p = serve(tessera(&["--config", cfg_s, "serve"], dir.path())).unwrap();
    let c = client();
    let svc = format!("Bearer {}", service_token("acme", &["admin"]));
    let r = call(
        &c,
        "POST",
        &format!("{}/v1/keys", p.internal),
        &[("authorization", &svc)],
        json!({"content_id": "m", "tracks": ["SD", "HD", "AUDIO"]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 201);
    // Signalling names the public listener, whose port is new after the restart: compare
    // the keys themselves.
    let keys_only = |v: &serde_json::Value| {
        let mut v = v.clone();
        for k in v.as_array_mut().unwrap() {
            k.as_object_mut().unwrap().remove("signalling");
        }
        v
    };
    let before = keys_only(&r.json()["keys"]);
    assert!(sigterm(&mut p).success());
    drop(p);

    let mut p = serve(tessera(&["--config", cfg_s, "serve"], dir.path())).unwrap();
    let r = call(
        &c,
        "GET",
        &format!("{}/v1/keys?content_id=m", p.internal),
        &[("authorization", &svc)],
        "",
    )
    .await;
    assert_eq!(
        keys_only(&r.json()["keys"]),
        before,
        "every key survives a restart"
    );
    let kid = before[1]["kid"].as_str().unwrap();
    let token = format!("Bearer {}", player_token("acme", json!({"kids": [kid]})));
    let r = call(
        &c,
        "POST",
        &format!("{}/clearkey/license", p.public),
        &[("authorization", &token)],
        json!({"kids": [b64kid(kid)]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(sigterm(&mut p).success());
    drop(p);

    // Another master key: refuse to start, say why.
    write_key(&mk, &"ab".repeat(32), 0o600);
    let err = serve(tessera(&["--config", cfg_s, "serve"], dir.path()))
        .err()
        .expect("must not start");
    assert!(err.contains("different master key"), "{err}");
    // A master key file others can read: refused.
    write_key(&mk, MASTER, 0o644);
    let err = serve(tessera(&["--config", cfg_s, "serve"], dir.path()))
        .err()
        .expect("must not start");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn check_config_validates_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let mk = dir.path().join("master.key");
    write_key(&mk, MASTER, 0o600);
    let cfg = production_config(dir.path(), &mk);
    let (code, out, err) = run(&mut tessera(
        &["check-config", "--config", cfg.to_str().unwrap()],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 tenant(s)"), "{out}");
    let (code, out, _) = run(&mut tessera(&["check-config"], dir.path()));
    assert_eq!(code, 0);
    assert!(out.contains("dev mode"));
    let broken = dir.path().join("broken.toml");
    for (text, why) in [
        (
            "[storage]\nmaster_key=\"0000000000000000000000000000000000000000000000000000000000000000\"\n[[tenants]]\nid = \"t\"\nissuers = [\"x\"]\n[[tenants.keys]]\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
            "audiences must not be empty",
        ),
        (
            "[storage]\nmaster_key=\"0000000000000000000000000000000000000000000000000000000000000000\"\n[[tenants]]\nid = \"t\"\nissuers = [\"x\"]\naudiences = [\"a\"]\n[[tenants.keys]]\nalgorithms = [\"RS256\"]\njwks_url = \"http://idp.example/jwks\"\n",
            "must be https",
        ),
        ("[server]\npublik_addr = \"127.0.0.1:1\"\n", "unknown field"),
        (
            "[[tenants]]\nid = \"Bad Id\"\nissuers = [\"x\"]\n[[tenants.keys]]\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n[storage]\nmaster_key = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
            "tenant id",
        ),
        (
            "[storage]\nmaster_key=\"0000000000000000000000000000000000000000000000000000000000000000\"\n[[tenants]]\nid = \"t\"\nissuers = [\"x\"]\naudiences = [\"a\"]\n[[tenants.keys]]\nalgorithms = [\"HS256\"]\nsecret = \"short\"\n",
            "at least 32 bytes",
        ),
        (
            "[storage]\nmaster_key=\"0000000000000000000000000000000000000000000000000000000000000000\"\n[[tenants]]\nid = \"t\"\nissuers = [\"x\"]\naudiences = [\"a\"]\n[[tenants.keys]]\nalgorithms = [\"HS256\", \"RS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
            "RS256",
        ),
    ] {
        std::fs::write(&broken, text).unwrap();
        let (code, _, err) = run(&mut tessera(
            &["check-config", "--config", broken.to_str().unwrap()],
            dir.path(),
        ));
        assert_eq!(code, 64, "{text}");
        assert!(err.contains(why), "{err:?} should mention {why:?}");
    }
    // See: review finding "a config parse error can print a secret".
    std::fs::write(&broken, "[storage]\nmaster_key = \"s3cr3t-m4ster\\q\"\n").unwrap();
    let (code, _, err) = run(&mut tessera(
        &["check-config", "--config", broken.to_str().unwrap()],
        dir.path(),
    ));
    assert_eq!(code, 64);
    assert!(err.contains("line 2") && !err.contains("s3cr3t"), "{err}");
    // Everything serving needs is checked before binding: secrets, TLS files, the log filter.
    let good = std::fs::read_to_string(&cfg).unwrap();
    let key_line = format!("master_key_file = \"{}\"", mk.display());
    for (find, replace, why) in [
        (key_line.as_str(), "master_key = \"00\"".to_owned(), "expected 64 hex digits"),
        (key_line.as_str(), format!("{key_line}\nmaster_key = \"{MASTER}\""), "not both"),
        ("drain_timeout_secs = 2", "drain_timeout_secs = 2\nmetrics_token = \"\"".to_owned(), "must not be empty"),
        ("drain_timeout_secs = 2", "drain_timeout_secs = 2\npublic_tls = { cert_file = \"/nonexistent.crt\", key_file = \"/nonexistent.key\" }".to_owned(), "nonexistent.crt"),
        ("[storage]", "[telemetry]\nlog_level = \"tessera=loud\"\n[storage]".to_owned(), "log_level"),
    ] {
        assert!(good.contains(find), "{find}");
        std::fs::write(&broken, good.replacen(find, &replace, 1)).unwrap();
        // (Without the helper's TESSERA_LOG_LEVEL, which would override the file's.)
        let (code, _, err) = run(
            tessera(&["check-config", "--config", broken.to_str().unwrap()], dir.path()).env_remove("TESSERA_LOG_LEVEL"),
        );
        assert_eq!(code, 64, "{replace}");
        assert!(err.contains(why), "{err:?} should mention {why:?}");
    }
    // The environment replaces the file's secret setting, whichever form either uses.
    std::fs::write(
        &broken,
        good.replacen(
            &key_line,
            "master_key_file = \"/nonexistent/master.key\"",
            1,
        ),
    )
    .unwrap();
    let (code, _, err) = run(tessera(
        &["check-config", "--config", broken.to_str().unwrap()],
        dir.path(),
    )
    .env("TESSERA_MASTER_KEY", MASTER));
    assert_eq!(code, 0, "{err}");
    // Environment overrides are validated too.
    let (code, _, err) =
        run(tessera(&["check-config"], dir.path()).env("TESSERA_PUBLIC_ADDR", "not-an-address"));
    assert_eq!(code, 64);
    assert!(err.contains("TESSERA_PUBLIC_ADDR"));
}

#[test]
fn token_command_mints_verifiable_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&mut tessera(
        &[
            "token",
            "--tenant",
            "demo",
            "--kid",
            "0123456789ABCDEF0123456789abcdef",
            "--content-id",
            "m",
            "--policy",
            "{\"can_persist\":true}",
            "--max-uses",
            "3",
            "--count",
            "2",
        ],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let tokens: Vec<&str> = out.lines().collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1], "each token is distinct");
    let payload: serde_json::Value = serde_json::from_slice(
        &tessera::encoding::b64url_decode(tokens[0].split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iss"], "tessera-dev");
    assert_eq!(
        payload["tessera"]["kids"][0],
        "01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(payload["tessera"]["policy"]["can_persist"], true);
    assert_eq!(payload["tessera"]["max_uses"], 3);
    assert!(payload["jti"].is_string());
    // The dev server's verifier accepts it.
    let cfg = tessera::config::Config::dev();
    let auth = tessera::auth::Authenticator::from_config(
        &cfg,
        std::sync::Arc::new(tessera::auth::replay::InMemoryReplayGuard::new(8)),
    )
    .unwrap();
    assert!(auth.verify(tokens[0]).is_ok());
    let (code, _, err) = run(&mut tessera(&["token", "--tenant", "nobody"], dir.path()));
    assert_eq!(code, 1);
    assert!(err.contains("no tenant"));
    let (code, _, err) = run(&mut tessera(
        &["token", "--policy", "{\"bogus\":1}"],
        dir.path(),
    ));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn flags_take_precedence_over_environment() {
    // Dev mode refuses 0.0.0.0 from the environment, unless a flag puts loopback back.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tessera(
        &[
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--internal-addr",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    cmd.arg("--data-dir")
        .arg(dir.path().join("d"))
        .env("TESSERA_PUBLIC_ADDR", "0.0.0.0:8080");
    let mut p = serve(cmd).unwrap();
    assert!(p.public.starts_with("http://127.0.0.1:"));
    assert!(sigterm(&mut p).success());
}

#[test]
fn the_example_configuration_validates() {
    let dir = tempfile::tempdir().unwrap();
    let example = format!("{}/deploy/config.example.toml", env!("CARGO_MANIFEST_DIR"));
    // Its master key file is a deployment path; the environment supplies one here.
    let (code, out, err) = run(tessera(&["check-config", "--config", &example], dir.path())
        .env("TESSERA_MASTER_KEY", MASTER));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"));
    let (code, _, err) = run(&mut tessera(
        &["check-config", "--config", &example],
        dir.path(),
    ));
    assert_eq!(code, 64);
    assert!(err.contains("/run/secrets/tessera/master.key"), "{err}");
}

/// Dev mode serves Widevine-style licences under the committed test root, to a device that
/// `tessera devices widevine` makes under that root by default (run from the repository
/// root, as the README does), in privacy mode with the committed service certificate.
#[tokio::test]
async fn dev_mode_widevine_with_the_committed_test_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = serve_dev(dir.path());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = run(&mut tessera(
        &[
            "keys",
            "--server",
            &p.internal,
            "create",
            "--content-id",
            "film",
            "--track",
            "SD",
        ],
        dir.path(),
    ));
    assert_eq!(code, 0, "{err}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let key = tessera::encoding::b64_decode(keys["keys"][0]["key"].as_str().unwrap()).unwrap();
    let wvd = dir.path().join("dev.wvd");
    let (code, _, err) = run(&mut tessera(
        &["devices", "widevine", "--out", wvd.to_str().unwrap()],
        repo,
    ));
    assert_eq!(code, 0, "{err}");
    let (code, token, _) = run(&mut tessera(
        &["token", "--tenant", "demo", "--kid", &kid, "--ttl", "60"],
        dir.path(),
    ));
    assert_eq!(code, 0);
    let out = Command::new(crate::support::interop::python())
        .arg(repo.join("tests/interop/widevine_client.py"))
        .arg("--wvd")
        .arg(&wvd)
        .args(["--url", &format!("{}/widevine/license", p.public)])
        .args([
            "--token",
            token.trim(),
            "--kid",
            &kid,
            "--privacy",
            "--root-cert",
        ])
        .arg(repo.join("keys/dev/widevine/root-cert.bin"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["provider_id"], "tessera-dev", "{report}");
    let k = tessera::keyring::KeyId::parse(&kid).unwrap();
    assert_eq!(
        report["keys"],
        json!([{"kid": tessera::encoding::hex_encode(k.as_bytes()), "key": tessera::encoding::hex_encode(&key)}]),
        "{report}"
    );
}

/// Makes `path` a FIFO that yields `content` to exactly one reader: a second open of it
/// blocks forever, so a startup that reads a file twice never gets to listen.
fn once_only_file(path: &Path, content: Vec<u8>) {
    let ok = Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
    let path = path.to_owned();
    std::thread::spawn(move || {
        use std::io::Write;
        // Blocks until the server opens it for reading, once.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(&content);
        }
    });
}

// See: issue 14, "each key or certificate file is read and parsed up to three times".
#[test]
fn serve_reads_every_configured_file_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let keys = repo.join("keys/dev");
    let tls = repo.join("tests/vectors/tls");
    let mut files = Vec::new();
    let mut once = |name: &str, content: Vec<u8>| {
        let p = d.join(name);
        once_only_file(&p, content);
        files.push(p.clone());
        p.display().to_string()
    };
    let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();
    let master = once("master.key", format!("{MASTER}\n").into_bytes());
    let token_secret = once("acme.secret", ACME_SECRET.as_bytes().to_vec());
    let cert = once("tls.crt", read(tls.join("server.crt")));
    let key = once("tls.key", read(tls.join("server.key")));
    let wv_root = once("wv-root.pem", read(keys.join("widevine/root-public.pem")));
    let wv_cert = once(
        "wv-service.bin",
        read(keys.join("widevine/service-cert.bin")),
    );
    let wv_key = once(
        "wv-service.pem",
        read(keys.join("widevine/service-key.pem")),
    );
    let pr_server = once("pr-server.pem", read(keys.join("playready/server-key.pem")));
    let pr_root = once("pr-root.pem", read(keys.join("playready/root-public.pem")));
    let pr_chain = once(
        "pr-chain.bin",
        read(keys.join("playready/signing-chain.bin")),
    );
    let pr_sign = once("pr-sign.pem", read(keys.join("playready/signing-key.pem")));
    let fp_cert = once("fp.der", read(keys.join("fairplay/cert-2048.der")));
    let fp_key = once("fp.pem", read(keys.join("fairplay/key-2048.pem")));
    let fp_ask = once("fp.ask", read(keys.join("fairplay/ask.hex")));
    let signer = once(
        "signer.key",
        b"1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9".to_vec(),
    );
    let text = base_toml(d)
        .replace(
            &format!("master_key = \"{MASTER}\""),
            &format!("master_key_file = \"{master}\""),
        )
        .replace(
            &format!("secret = \"{ACME_SECRET}\""),
            &format!("secret_file = \"{token_secret}\""),
        )
        .replace(
            "drain_timeout_secs = 2",
            &format!(
                "drain_timeout_secs = 2\npublic_tls = {{ cert_file = \"{cert}\", key_file = \"{key}\" }}"
            ),
        )
        + &format!(
            r#"
[[tenants.widevine_signers]]
name = "once"
aes_key_file = "{signer}"
aes_iv = "d58ce954203b7c9a9a9d467f59839249"

[[tenants.fairplay_credentials]]
certificate_file = "{fp_cert}"
private_key_file = "{fp_key}"
ask_file = "{fp_ask}"

[widevine]
roots = ["{wv_root}"]
service_certificate_file = "{wv_cert}"
service_private_key_file = "{wv_key}"

[playready]
server_key_file = "{pr_server}"
roots = ["{pr_root}"]
signing_chain_file = "{pr_chain}"
signing_key_file = "{pr_sign}"
"#
        );
    let cfg = d.join("once.toml");
    std::fs::write(&cfg, text).unwrap();
    let started = serve(tessera(&["serve", "--config", cfg.to_str().unwrap()], d));
    assert!(
        started.is_ok(),
        "tessera did not start (a file read twice blocks on its FIFO): {}",
        started.err().unwrap_or_default()
    );
    assert_eq!(files.len(), 15);
}

// See: issue 14, "App::build opens the store (creating the data directory) before
// validation".
#[test]
fn nothing_is_created_on_disk_before_the_configuration_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = base_toml(dir.path()) + "[widevine]\nroots = [\"/nonexistent/widevine-root.pem\"]\n";
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, text).unwrap();
    for cmd in ["check-config", "serve"] {
        let (code, _, err) = run(&mut tessera(
            &[cmd, "--config", cfg.to_str().unwrap()],
            dir.path(),
        ));
        assert_eq!(code, 64, "{cmd}: {err}");
        assert!(err.contains("widevine-root.pem"), "{cmd}: {err}");
        assert!(!data.exists(), "{cmd} created {}", data.display());
    }
    // The library's own entry point likewise.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = tessera::config::Config::from_toml(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let err = rt.block_on(tessera::app::App::build(cfg)).unwrap_err();
    assert!(err.to_string().contains("widevine-root.pem"), "{err}");
    assert!(!data.exists(), "App::build created {}", data.display());
    assert!(!dir.path().join("audit.jsonl").exists());
}
