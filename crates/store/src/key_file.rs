//! The secret key file: one key a line (`<id> <base64url key>`), the first sealing, the
//! others only opening (left there by an interrupted rotation). Readable by its owner only:
//! it is created with mode 0600 and refused when group or others may read it. It is
//! written whole to a temporary file beside it and renamed over it, so a reader sees the
//! old keys or the new ones, never a part.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::secrets::{KEY_LEN, Key};
use crate::{Error, Result};

const HEADER: &str = "# vpnaas secret keys: keep this file mode 0600 and back it up with the database\n\
# (without it the pre-shared keys cannot be read). The first key seals; any others only\n\
# open. Change it with `vpnaas secrets rotate-key`, never by hand.\n";

fn unusable(path: &Path, reason: impl Into<String>) -> Error {
    Error::KeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The keys of `path`, creating the file with one new key when it does not exist.
pub(crate) fn load_or_create(path: &Path) -> Result<Vec<Key>> {
    match fs::symlink_metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create(path)?;
            load(path)
        }
        Err(e) => Err(unusable(path, e.to_string())),
    }
}

/// The keys of an existing `path`.
pub(crate) fn load(path: &Path) -> Result<Vec<Key>> {
    let meta = fs::metadata(path).map_err(|e| unusable(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(unusable(path, "not a regular file"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unusable(
            path,
            format!("mode {mode:04o} lets group or others read it (chmod 600)"),
        ));
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| unusable(path, e.to_string()))?);
    let keys = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            parse_line(line).ok_or_else(|| unusable(path, format!("line {} is no key", n + 1)))
        })
        .collect::<Result<Vec<Key>>>()?;
    if keys.is_empty() {
        return Err(unusable(path, "holds no key"));
    }
    Ok(keys)
}

fn parse_line(line: &str) -> Option<Key> {
    let (id, material) = line.trim().split_once(' ')?;
    let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(material.trim()).ok()?);
    let material: [u8; KEY_LEN] = bytes.as_slice().try_into().ok()?;
    valid_id.then(|| Key::new(id.to_string(), Zeroizing::new(material)))
}

/// Writes a new file of one new key at `path`, unless another process made one first.
fn create(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| unusable(path, e.to_string()))?;
    }
    let temporary = write_temporary(path, &[Key::generate()?])?;
    // A hard link never replaces: of two servers starting at once, one key file wins.
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(key_file = %path.display(), "created the secret key file");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(unusable(path, e.to_string())),
    }
}

/// Replaces the file at `path` with `keys` (the first sealing).
pub(crate) fn replace(path: &Path, keys: &[Key]) -> Result<()> {
    let temporary = write_temporary(path, keys)?;
    fs::rename(&temporary, path).map_err(|e| {
        let _ = fs::remove_file(&temporary);
        unusable(path, e.to_string())
    })
}

/// A new file of `keys` beside `path`, mode 0600, on the disk.
fn write_temporary(path: &Path, keys: &[Key]) -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{nanos}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let mut text = Zeroizing::new(HEADER.to_string());
    for key in keys {
        text.push_str(&format!(
            "{} {}\n",
            key.id,
            URL_SAFE_NO_PAD.encode(key.material())
        ));
    }
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(unusable(path, e.to_string()));
    }
    Ok(temporary)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_missing_file_is_created_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/secret.key");
        let first = load_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&path).expect("load");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].id, again[0].id);
        assert_eq!(first[0].material(), again[0].material());
        let leftovers = fs::read_dir(path.parent().expect("dir"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left");
    }

    #[test]
    fn a_file_others_may_read_or_without_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        load_or_create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let refused = load(&path).expect_err("group-readable");
        assert!(refused.to_string().contains("0640"), "{refused}");
        fs::write(&path, "# nothing\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(
            load(&path)
                .expect_err("empty")
                .to_string()
                .contains("no key")
        );
        fs::write(&path, "abc not-a-key\n").expect("write");
        assert!(load(&path).is_err());
    }

    #[test]
    fn replacing_keeps_the_order_and_the_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        let old = load_or_create(&path).expect("create");
        let new = Key::generate().expect("key");
        let new_id = new.id.clone();
        replace(
            &path,
            &[
                new,
                Key::new(old[0].id.clone(), Zeroizing::new(*old[0].material())),
            ],
        )
        .expect("replace");
        let keys = load(&path).expect("load");
        assert_eq!(
            keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            [new_id.as_str(), old[0].id.as_str()]
        );
        assert_eq!(fs::metadata(&path).expect("meta").mode() & 0o777, 0o600);
    }
}
