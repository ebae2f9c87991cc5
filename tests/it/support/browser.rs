//! The browser end-to-end test's tools: Debian's Chromium, Node.js and the pinned npm
//! packages of `tests/browser/package-lock.json` (playwright-core, shaka-player, hls.js,
//! pngjs), all installed by `tests/setup.sh`. The tests install nothing: a missing piece fails
//! the test with a message naming the setup step.

use super::RUN_SETUP;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/browser`: the page, `run.mjs` and the npm lockfile.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Debian's Chromium.
pub fn chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing (no /usr/bin/chromium): {RUN_SETUP}"
    );
}

/// Node.js and the npm packages `npm ci` installed from the lockfile (the stamp is a copy of
/// the lockfile it installed).
pub fn npm_packages() {
    let dir = browser_dir();
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap();
    let stamp = dir.join("node_modules/.tessera-installed");
    match std::fs::read_to_string(&stamp) {
        Ok(installed) if installed == lock => {}
        Ok(_) => panic!(
            "tests/browser/node_modules was installed from another package-lock.json: {RUN_SETUP}"
        ),
        Err(_) => panic!(
            "the npm packages of tests/browser/package-lock.json are missing (no \
             tests/browser/node_modules): {RUN_SETUP}"
        ),
    }
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js is missing (no `node` on PATH): {RUN_SETUP}"
    );
}
