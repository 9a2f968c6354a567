//! Widget secrets at rest: sealed with a key-encryption key (KEK) from configuration, so
//! that a dump of the database alone cannot mint widget tokens.
//!
//! A sealed secret is `kek1:<key id>:<base64url(nonce ‖ ciphertext)>`, XChaCha20-Poly1305
//! with a random 192-bit nonce (random nonces are safe at that size) and the workspace id
//! as associated data, so a sealed secret copied into another workspace's row does not
//! open. The key id lets the KEK rotate: the first key of the keyring seals, every key
//! opens; re-seal by rotating each workspace's widget secret, then drop the old key.
//!
//! The keyring comes from `ROSTER_DIRECTORY_WIDGET_KEK_FILE` or, without it, from a
//! development key created under the data directory on first use.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

const FORMAT: &str = "kek1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Separates this use of the KEK from any other it may get later.
const CONTEXT: &[u8] = b"roster.directory.widget_secret\0";

/// The development KEK's file under the data directory, and its key id.
pub const DEV_KEK_FILE: &str = "dev-widget-kek";
pub const DEV_KEK_ID: &str = "dev-1";

/// Key-encryption keys for widget secrets; the first one seals.
#[derive(Clone)]
pub struct WidgetKeyring {
    keys: Arc<Vec<Kek>>,
}

struct Kek {
    id: String,
    key: SecretBox<[u8; KEY_BYTES]>,
}

impl fmt::Debug for WidgetKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|kek| kek.id.as_str()).collect();
        f.debug_struct("WidgetKeyring")
            .field("key_ids", &ids)
            .finish()
    }
}

/// Why a stored secret does not open. Every case is the server's problem (its data or its
/// configuration), never the caller's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the widget secret is stored in plaintext, from before secrets were encrypted; restart the directory to seal it"
    )]
    Plaintext,
    #[error("the widget secret is not a sealed value this service wrote")]
    Malformed,
    #[error(
        "the widget secret was sealed with key-encryption key '{0}', which is not configured (ROSTER_DIRECTORY_WIDGET_KEK_FILE)"
    )]
    UnknownKey(String),
    #[error(
        "the widget secret does not open with key-encryption key '{0}': the key differs from the one that sealed it, or the row was altered"
    )]
    DoesNotOpen(String),
    #[error("sealing the widget secret failed")]
    Seal,
}

/// Where operators point the directory at its key-encryption keys.
pub const WIDGET_KEK_FILE_VAR: &str = "ROSTER_DIRECTORY_WIDGET_KEK_FILE";

impl WidgetKeyring {
    /// The keyring `ROSTER_DIRECTORY_WIDGET_KEK_FILE` names, else the development key under
    /// `data_dir`.
    ///
    /// # Errors
    ///
    /// The variable is not a path, or [`WidgetKeyring::load`] fails.
    pub fn from_env(data_dir: &Path) -> anyhow::Result<Self> {
        let kek_file = roster_settings::env_opt::<std::path::PathBuf>(WIDGET_KEK_FILE_VAR)?;
        Self::load(kek_file.as_deref(), data_dir)
    }

    /// The keyring in `kek_file` when given, else the development key under `data_dir`
    /// (created on first use).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or holds no valid key.
    pub fn load(kek_file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Self> {
        match kek_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "ROSTER_DIRECTORY_WIDGET_KEK_FILE: reading {}",
                        path.display()
                    )
                })?;
                Self::parse(&text).map_err(|problem| {
                    anyhow::anyhow!(
                        "ROSTER_DIRECTORY_WIDGET_KEK_FILE {}: {problem}",
                        path.display()
                    )
                })
            }
            None => Self::load_or_create_dev(data_dir),
        }
    }

    fn load_or_create_dev(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join(DEV_KEK_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_BYTES];
                rand::rng().fill_bytes(&mut key);
                let line = format!("{DEV_KEK_ID} {}\n", STANDARD.encode(key));
                key.fill(0);
                let stored = roster_auth::create_private_file_once(data_dir, &path, &line)?;
                if stored == line {
                    tracing::info!(path = %path.display(), "created the development key-encryption key for widget secrets");
                }
                stored
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        tracing::info!(path = %path.display(), "sealing widget secrets with the development key-encryption key; set ROSTER_DIRECTORY_WIDGET_KEK_FILE in production");
        Self::parse(&text).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
    }

    /// One key per line, `<key id> <base64 of 32 bytes>` (`openssl rand -base64 32`); the
    /// first seals, all open. Blank lines and lines starting with `#` are ignored.
    ///
    /// # Errors
    ///
    /// A sentence naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<Kek> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let (id, encoded) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line {number}: expected '<key id> <base64 key>'"))?;
            let mut decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| format!("line {number}: the key is not base64"))?;
            let key = <[u8; KEY_BYTES]>::try_from(decoded.as_slice()).map_err(|_| {
                format!(
                    "line {number}: the key must be {KEY_BYTES} bytes (openssl rand -base64 32)"
                )
            });
            decoded.fill(0);
            let kek = Kek::new(id, key?).map_err(|problem| format!("line {number}: {problem}"))?;
            if keys.iter().any(|known| known.id == kek.id) {
                return Err(format!("line {number}: key id '{}' appears twice", kek.id));
            }
            keys.push(kek);
        }
        if keys.is_empty() {
            return Err("no key; add a line '<key id> <base64 of 32 random bytes>'".to_owned());
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// A keyring of one fresh random key, for tests.
    ///
    /// # Errors
    ///
    /// `id` is not a valid key id.
    pub fn generate(id: &str) -> Result<Self, String> {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        Ok(Self {
            keys: Arc::new(vec![Kek::new(id, key)?]),
        })
    }

    /// Seals `secret` for `workspace_id` with the primary key.
    ///
    /// # Errors
    ///
    /// [`SealError::Seal`] if the cipher fails, which it does not for inputs of sane size.
    pub fn seal(&self, workspace_id: &str, secret: &str) -> Result<String, SealError> {
        let kek = self.keys.first().ok_or(SealError::Seal)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(workspace_id);
        let ciphertext = kek
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!(
            "{FORMAT}:{}:{}",
            kek.id,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens what [`seal`](Self::seal) wrote for the same workspace, with whichever
    /// configured key sealed it.
    ///
    /// # Errors
    ///
    /// Any [`SealError`] but `Seal`.
    pub fn open(&self, workspace_id: &str, stored: &str) -> Result<SecretString, SealError> {
        let Some(rest) = stored
            .strip_prefix(FORMAT)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return Err(if stored.contains(':') {
                SealError::Malformed
            } else {
                SealError::Plaintext
            });
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let kek = self
            .keys
            .iter()
            .find(|kek| kek.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let sealed = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Malformed)?;
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = <[u8; NONCE_BYTES]>::try_from(nonce).map_err(|_| SealError::Malformed)?;
        let aad = associated_data(workspace_id);
        let mut plaintext = kek
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen(kek.id.clone()))?;
        let secret = String::from_utf8(plaintext.clone()).map_err(|_| SealError::Malformed);
        plaintext.fill(0);
        Ok(SecretString::from(secret?))
    }

    /// The keyring in the file format [`parse`](Self::parse) reads. It exposes the keys:
    /// for tests that build a rotated keyring from existing ones, nothing else.
    #[doc(hidden)]
    #[must_use]
    pub fn export_for_tests(&self) -> String {
        self.keys
            .iter()
            .map(|kek| format!("{} {}\n", kek.id, STANDARD.encode(kek.key.expose_secret())))
            .collect()
    }

    /// Whether `stored` is a plaintext secret from before sealing existed.
    #[must_use]
    pub fn is_plaintext(stored: &str) -> bool {
        !stored.starts_with(FORMAT)
    }
}

impl Kek {
    fn new(id: &str, mut key: [u8; KEY_BYTES]) -> Result<Self, String> {
        // The id is stored between colons in every sealed secret.
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            key.fill(0);
            return Err(format!(
                "key id '{id}' must be 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            key: SecretBox::new(Box::new(key)),
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.expose_secret().into())
    }
}

fn associated_data(workspace_id: &str) -> Vec<u8> {
    let mut aad = CONTEXT.to_vec();
    aad.extend_from_slice(workspace_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_workspace_and_with_their_key() {
        let keyring = WidgetKeyring::generate("k1").unwrap();
        let sealed = keyring.seal("acme", "wsec_abc").unwrap();
        assert!(sealed.starts_with("kek1:k1:"), "{sealed}");
        assert!(!sealed.contains("wsec_abc"));
        assert_eq!(
            keyring.open("acme", &sealed).unwrap().expose_secret(),
            "wsec_abc"
        );
        assert_eq!(
            keyring.open("other", &sealed).unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        let other = WidgetKeyring::generate("k1").unwrap();
        assert_eq!(
            other.open("acme", &sealed).unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        let renamed = WidgetKeyring::generate("k2").unwrap();
        assert_eq!(
            renamed.open("acme", &sealed).unwrap_err(),
            SealError::UnknownKey("k1".into())
        );
        assert_eq!(
            keyring.open("acme", "wsec_abc").unwrap_err(),
            SealError::Plaintext
        );
        assert_eq!(
            keyring.open("acme", "kek1:k1:!!").unwrap_err(),
            SealError::Malformed
        );
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = format!("old {}", STANDARD.encode([1u8; 32]));
        let new = format!("new {}", STANDARD.encode([2u8; 32]));
        let before = WidgetKeyring::parse(&old).unwrap();
        let sealed_before = before.seal("acme", "s1").unwrap();
        let after = WidgetKeyring::parse(&format!("# rotated\n{new}\n\n{old}\n")).unwrap();
        assert_eq!(
            after.open("acme", &sealed_before).unwrap().expose_secret(),
            "s1"
        );
        assert!(after.seal("acme", "s2").unwrap().starts_with("kek1:new:"));
    }

    #[test]
    fn bad_keyring_files_say_which_line() {
        let short = format!("k {}", STANDARD.encode([1u8; 16]));
        let duplicate = format!("k {0}\nk {0}", STANDARD.encode([1u8; 32]));
        let colon = format!("a:b {}", STANDARD.encode([1u8; 32]));
        for (text, expected) in [
            ("", "no key"),
            ("# only a comment", "no key"),
            ("lonely", "line 1"),
            ("k not-base64!", "not base64"),
            (short.as_str(), "32 bytes"),
            (duplicate.as_str(), "twice"),
            (colon.as_str(), "key id"),
        ] {
            let problem = WidgetKeyring::parse(text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keyring = WidgetKeyring::parse(&format!("k1 {}", STANDARD.encode([7u8; 32]))).unwrap();
        assert_eq!(
            format!("{keyring:?}"),
            "WidgetKeyring { key_ids: [\"k1\"] }"
        );
    }
}
