//! Secrets in configuration: given by value or by `*_file`, never both; files must not be
//! group- or world-readable (STYLE C3). The wrapper's `Debug` is redacted.

use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Errors of reading a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Users other than the owner may read the file.
    #[error("{}: mode {mode:o} lets other users read a secret; chmod 600 it", path.display())]
    Shared {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Both the value and the file are set.
    #[error("{what}: give the value or the *_file, not both")]
    Both {
        /// The setting.
        what: String,
    },
}

/// A secret string (HS key, master key text, bearer token). Zeroized on drop.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Reads a secret file, refusing one that others can read. Trailing newlines are dropped
/// (editors add them); other whitespace is kept.
pub fn read_secret_file(path: &Path, allow_shared: bool) -> Result<Secret, Error> {
    let read = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 && !allow_shared {
            return Err(Error::Shared {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    let _ = (meta, allow_shared);
    let mut text = std::fs::read_to_string(path).map_err(read)?;
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    Ok(Secret::new(text))
}

/// Resolves a `(value, file)` pair: exactly one may be set.
pub fn resolve(
    what: &str,
    value: Option<&Secret>,
    file: Option<&Path>,
    allow_shared: bool,
) -> Result<Option<Secret>, Error> {
    match (value, file) {
        (Some(_), Some(_)) => Err(Error::Both { what: what.into() }),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(p)) => read_secret_file(p, allow_shared).map(Some),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_shared_files_and_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            read_secret_file(&p, false)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&p, false).unwrap().expose(), "secret");
        let v = Secret::new("x".into());
        assert!(resolve("k", Some(&v), Some(&p), false).is_err());
        assert_eq!(format!("{v:?}"), "Secret(<redacted>)");
    }
}
