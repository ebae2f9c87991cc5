//! The browser end-to-end test's tools: Debian's Chromium and the pinned npm packages of
//! `tests/browser/package-lock.json` (playwright-core, shaka-player, hls.js, pngjs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/browser`: the page, `run.mjs` and the npm lockfile.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Debian's Chromium, installed with apt when missing (as root, or through sudo).
pub fn chromium() {
    if Path::new("/usr/bin/chromium").exists() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut apt = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    let status = apt
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        status.is_ok_and(|s| s.success()) && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium and could not install it: apt-get install chromium"
    );
}

/// `npm ci` from the lockfile, once per lockfile version.
pub fn npm_packages() {
    let dir = browser_dir();
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap();
    let stamp = dir.join("node_modules/.tessera-installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("npm (Node.js) is needed for the browser tests: {e}"));
    assert!(
        out.status.success(),
        "npm ci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(stamp, lock).unwrap();
}
