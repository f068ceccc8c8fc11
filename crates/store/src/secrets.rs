//! Secrets at rest: the server's keys and the sealing of secret attributes.
//!
//! The attributes an attribute map marks secret (a connection's `psk`) are stored as
//! envelopes `enc:v1:<key id>:<base64url(nonce ‖ ciphertext)>`, sealed with
//! XChaCha20-Poly1305 under a random 192-bit nonce each, the associated data naming the
//! record and attribute (so a sealed value copied to another row does not open). The store
//! seals in [`crate::Transaction::put`] and opens in every read, so a [`crate::Record`]
//! holds clear text and no use case ever sees an envelope. The envelope names its key, so
//! a value sealed under an older key (or none: a database written before sealing existed)
//! is recognised and sealed again under the current key when the store opens.
//!
//! A [`Keyring`] holds the keys: the first seals, the others only open (during a rotation).
//! One read from a key file re-reads the file when it meets a key it does not hold, or
//! when the database says another key now seals: servers sharing a key file follow a
//! rotation without restarting.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use vpnaas_model::Kind;
use zeroize::Zeroizing;

use crate::key_file;
use crate::{Error, Result};

/// What every sealed value starts with (its version included).
const PREFIX: &str = "enc:v1:";
/// Bytes of an XChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of a key.
pub(crate) const KEY_LEN: usize = 32;

/// One key: its id (named in every envelope it sealed) and its cipher.
pub(crate) struct Key {
    pub(crate) id: String,
    material: Zeroizing<[u8; KEY_LEN]>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Key {
    // Only the id: the material never leaves the key file and this memory.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key from its id and material.
    pub(crate) fn new(id: String, material: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let cipher = XChaCha20Poly1305::new(&(*material).into());
        Key {
            id,
            material,
            cipher,
        }
    }

    /// A new random key with a new random id.
    pub(crate) fn generate() -> Result<Self> {
        let material = Zeroizing::new(random::<KEY_LEN>()?);
        let id: String = random::<4>()?.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Key::new(id, material))
    }

    /// The key's bytes, for its file only.
    pub(crate) fn material(&self) -> &[u8; KEY_LEN] {
        &self.material
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    <[u8; N]>::try_generate().map_err(|e| Error::Keys(format!("no randomness: {e}")))
}

/// The server's keys; the first seals. Never printed.
pub struct Keyring {
    keys: RwLock<Vec<Key>>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// One new random key, kept in memory only (tests, throw-away stores).
    pub fn ephemeral() -> Result<Self> {
        Ok(Keyring {
            keys: RwLock::new(vec![Key::generate()?]),
            file: None,
        })
    }

    /// The keys of `path`, which is created (mode 0600, one new key) when missing. A file
    /// that group or others may read, or that holds no key, is refused.
    pub fn from_file(path: &Path) -> Result<Self> {
        let keys = key_file::load_or_create(path)?;
        Ok(Keyring {
            keys: RwLock::new(keys),
            file: Some(path.to_path_buf()),
        })
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> String {
        self.read(|keys| keys[0].id.clone())
    }

    /// Whether the ring holds key `id`.
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.read(|keys| keys.iter().any(|k| k.id == id))
    }

    fn read<T>(&self, f: impl FnOnce(&[Key]) -> T) -> T {
        // A poisoned lock still holds whole keys: replacing them is one assignment.
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        f(&keys)
    }

    /// Re-reads the key file, if the ring came from one. True when it did.
    fn reload(&self) -> Result<bool> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let keys = key_file::load(path)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        tracing::info!(key_file = %path.display(), "re-read the secret key file");
        Ok(true)
    }

    /// Makes `id` the sealing key, as the database says it is: re-reads the key file when
    /// its first key is another one.
    pub(crate) fn follow(&self, id: &str) -> Result<()> {
        if self.current_id() == id {
            return Ok(());
        }
        if self.reload()? && self.current_id() == id {
            return Ok(());
        }
        Err(Error::Keys(format!(
            "the database's secrets are sealed with key {id}, the key file's first key is {}: \
             give every server the same key file",
            self.current_id()
        )))
    }

    /// Seals `clear` under the current key, bound to `context`.
    pub(crate) fn seal(&self, context: &str, clear: &str) -> Result<String> {
        let nonce = random::<NONCE_LEN>()?;
        self.read(|keys| {
            let key = &keys[0];
            let payload = Payload {
                msg: clear.as_bytes(),
                aad: context.as_bytes(),
            };
            let sealed = key
                .cipher
                .encrypt(&XNonce::from(nonce), payload)
                .map_err(|_| Error::Keys("sealing failed".into()))?;
            let mut bytes = nonce.to_vec();
            bytes.extend_from_slice(&sealed);
            Ok(format!(
                "{PREFIX}{}:{}",
                key.id,
                URL_SAFE_NO_PAD.encode(bytes)
            ))
        })
    }

    /// Opens an envelope sealed with `context`; `None` when the text is no envelope.
    fn open(&self, context: &str, text: &str) -> Result<Option<String>, String> {
        let Some((key_id, data)) = envelope(text) else {
            return Ok(None);
        };
        if !self.holds(key_id) {
            self.reload().map_err(|e| e.to_string())?;
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| "sealed value is not base64".to_string())?;
        if bytes.len() < NONCE_LEN {
            return Err("sealed value is too short".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| "bad nonce".to_string())?;
        self.read(|keys| {
            let key = keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| format!("sealed with key {key_id}, which the key file lacks"))?;
            let payload = Payload {
                msg: sealed,
                aad: context.as_bytes(),
            };
            let clear = key
                .cipher
                .decrypt(&nonce, payload)
                .map_err(|_| format!("sealed value does not open with key {key_id}"))?;
            String::from_utf8(clear)
                .map(Some)
                .map_err(|_| "sealed value is not UTF-8".to_string())
        })
    }
}

/// The key id and data of an envelope; `None` for any other text.
fn envelope(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix(PREFIX)?.split_once(':')
}

/// The names of the secret attributes of `kind`, from its attribute map.
pub(crate) fn secret_attributes(kind: Kind) -> impl Iterator<Item = &'static str> {
    vpnaas_model::resource::attributes(kind)
        .iter()
        .filter(|a| a.secret)
        .map(|a| a.name)
}

/// Whether records of `kind` hold secrets.
pub(crate) fn has_secrets(kind: Kind) -> bool {
    secret_attributes(kind).next().is_some()
}

/// What binds a sealed value to its place: the kind, id and attribute.
fn context(kind: Kind, id: &str, attribute: &str) -> String {
    format!("vpnaas/{}/{id}/{attribute}", kind.store_name())
}

/// What to do with each secret value of a document.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Seal every value (a document about to be written: its values are clear).
    Seal,
    /// Open every envelope (a document just read).
    Open,
    /// Seal again whatever is clear or sealed under another key than the current one.
    Reseal,
}

/// The document `body` of record `kind`/`id` after `pass`; `None` when nothing changed.
pub(crate) fn transform(
    keyring: &Keyring,
    kind: Kind,
    id: &str,
    body: &str,
    pass: Pass,
) -> Result<Option<String>> {
    if !has_secrets(kind) {
        return Ok(None);
    }
    let corrupt = |reason: String| Error::Corrupt {
        kind,
        id: id.to_string(),
        reason,
    };
    let mut document: Map<String, Value> =
        serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
    let mut changed = false;
    for attribute in secret_attributes(kind) {
        let Some(Value::String(value)) = document.get_mut(attribute) else {
            continue;
        };
        let context = context(kind, id, attribute);
        let new = match pass {
            Pass::Seal => Some(keyring.seal(&context, value)?),
            Pass::Open => match keyring.open(&context, value).map_err(corrupt)? {
                Some(clear) => Some(clear),
                None => {
                    // Written by a server that did not seal yet: sealed at the next start.
                    tracing::warn!(%kind, id, attribute, "secret stored in clear");
                    None
                }
            },
            Pass::Reseal => match envelope(value) {
                Some((key_id, _)) if key_id == keyring.current_id() => None,
                Some(_) => {
                    let clear = keyring.open(&context, value).map_err(corrupt)?;
                    Some(keyring.seal(&context, clear.as_deref().unwrap_or_default())?)
                }
                None => Some(keyring.seal(&context, value)?),
            },
        };
        if let Some(new) = new {
            *value = new;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    serde_json::to_string(&document)
        .map(Some)
        .map_err(|e| corrupt(e.to_string()))
}

/// The document to store for `body`: its secrets sealed.
pub(crate) fn seal_body(keyring: &Keyring, kind: Kind, id: &str, body: String) -> Result<String> {
    Ok(transform(keyring, kind, id, &body, Pass::Seal)?.unwrap_or(body))
}

/// The document a reader gets for a stored `body`: its secrets opened.
pub(crate) fn open_body(keyring: &Keyring, kind: Kind, id: &str, body: String) -> Result<String> {
    Ok(transform(keyring, kind, id, &body, Pass::Open)?.unwrap_or(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: &str =
        r#"{"id":"c1","project_id":"p","name":"n","psk":"very-secret-key","mtu":1500}"#;

    fn ring() -> Keyring {
        Keyring::ephemeral().expect("key")
    }

    #[test]
    fn a_sealed_document_holds_no_clear_secret_and_opens_to_the_same_document() {
        let keyring = ring();
        let kind = Kind::SiteConnection;
        let sealed = seal_body(&keyring, kind, "c1", CONN.into()).expect("seal");
        assert!(!sealed.contains("very-secret-key"), "{sealed}");
        assert!(sealed.contains(&format!("\"enc:v1:{}:", keyring.current_id())));
        assert!(sealed.starts_with(r#"{"id":"c1","project_id":"p","name":"n","psk":"#));
        let opened = open_body(&keyring, kind, "c1", sealed.clone()).expect("open");
        assert_eq!(opened, CONN);
        let again = seal_body(&keyring, kind, "c1", CONN.into()).expect("seal");
        assert_ne!(again, sealed, "a new nonce for every value");
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_record_and_unaltered() {
        let keyring = ring();
        let kind = Kind::SiteConnection;
        let sealed = seal_body(&keyring, kind, "c1", CONN.into()).expect("seal");
        let moved = open_body(&keyring, kind, "c2", sealed.clone()).expect_err("other id");
        assert!(!moved.to_string().contains("very-secret"), "{moved}");
        let value: Value = serde_json::from_str(&sealed).expect("json");
        let text = value["psk"].as_str().expect("psk");
        let mut flipped = text.to_string();
        let last = if flipped.ends_with('A') { "B" } else { "A" };
        flipped.replace_range(flipped.len() - 1.., last);
        let tampered = sealed.replace(text, &flipped);
        assert!(open_body(&keyring, kind, "c1", tampered).is_err());
        assert!(open_body(&ring(), kind, "c1", sealed).is_err(), "other key");
    }

    #[test]
    fn kinds_without_secrets_are_stored_as_they_are() {
        let body = r#"{"id":"i","project_id":"p","name":"psk"}"#;
        let sealed = seal_body(&ring(), Kind::IkePolicy, "i", body.into()).expect("seal");
        assert_eq!(sealed, body);
    }

    #[test]
    fn resealing_touches_only_clear_values_and_those_of_other_keys() {
        let keyring = ring();
        let kind = Kind::SiteConnection;
        let clear = transform(&keyring, kind, "c1", CONN, Pass::Reseal).expect("reseal");
        let sealed = clear.expect("a clear value is sealed");
        let unchanged = transform(&keyring, kind, "c1", &sealed, Pass::Reseal).expect("again");
        assert!(unchanged.is_none(), "idempotent");
        let opened = open_body(&keyring, kind, "c1", CONN.into()).expect("clear reads");
        assert_eq!(opened, CONN);
    }
}
