//! The Python environments for interop tests: venvs under the target directory
//! (`CARGO_TARGET_TMPDIR`) with the pinned third-party clients of
//! `tests/interop/*requirements.txt`, made by `tests/setup.sh` (about 20 s each, needs PyPI).
//! The tests install nothing: a venv that is missing, or was made from another version of its
//! requirements file, fails the test that needs it with a message naming the setup step.

use super::RUN_SETUP;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The venv's python for pywidevine (`tests/interop/requirements.txt`).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| venv("interop-venv", "requirements.txt"))
}

/// The venv's python for Shaka Packager and its bundled ffmpeg
/// (`tests/interop/packager-requirements.txt`).
pub fn packager_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| venv("packager-venv", "packager-requirements.txt"))
}

/// The venv's python for the `cpix` SPEKE client (`tests/interop/speke-requirements.txt`;
/// its own venv: `cpix` needs a newer `construct` than pywidevine allows).
pub fn speke_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| venv("speke-venv", "speke-requirements.txt"))
}

/// A script under `tests/interop/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// The venv `dir` under the target directory, as `tests/setup.sh` made it from
/// `requirements` (its stamp is a copy of the requirements file it installed). Panics when it
/// is missing or stale: an interop test that cannot reach its client must fail, not pass
/// silently.
fn venv(dir: &str, requirements: &str) -> PathBuf {
    let requirements = script(requirements);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    match std::fs::read_to_string(&stamp) {
        Ok(installed) if installed == wanted && python.exists() => python,
        Ok(installed) if installed != wanted => panic!(
            "the Python venv {} was made from another version of {}: {RUN_SETUP}",
            venv.display(),
            requirements.display()
        ),
        _ => panic!(
            "the Python venv {} (the pinned clients of {}) is missing: {RUN_SETUP}, with the \
             CARGO_TARGET_DIR of this test run",
            venv.display(),
            requirements.display()
        ),
    }
}
