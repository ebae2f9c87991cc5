//! The Python environments for interop tests: venvs under the target directory with the
//! pinned third-party clients of `tests/interop/*requirements.txt`, created on first use
//! (about 20 s each, needs PyPI) and reused while the requirements file is unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// Creates (or reuses, while its requirements file is unchanged) a venv under the target
/// directory. Panics with the pip output on failure: an interop test that cannot reach its
/// client must fail, not pass silently.
fn venv(dir: &str, requirements: &str) -> PathBuf {
    let requirements = script(requirements);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).unwrap();
    python
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
