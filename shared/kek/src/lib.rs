//! Secrets at rest: sealed with a key-encryption key (KEK) from configuration, so that a
//! dump of a service's database alone does not give away what it seals (the directory's
//! widget secrets, the staff service's token-signing keys).
//!
//! A sealed value is `kek1:<key id>:<base64url(nonce ‖ ciphertext)>`, XChaCha20-Poly1305
//! with a random 192-bit nonce (random nonces are safe at that size). The associated data
//! is the use's *context* (`roster.directory.widget_secret`), a NUL, and what the value
//! belongs to (a workspace id, a key id): a value copied into another row, or read for
//! another use, does not open. The key id lets the KEK rotate: the first key of the
//! keyring seals, every key opens; re-seal what the old key sealed, then drop it.
//!
//! A service names its keyring file with a variable of its own ([`KekFile`]); without it,
//! a development key is created under the data directory on first use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretSlice};

const FORMAT: &str = "kek1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// The key id of a development KEK.
pub const DEV_KEK_ID: &str = "dev-1";

/// Key-encryption keys; the first one seals.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<Vec<Kek>>,
}

struct Kek {
    id: String,
    key: SecretBox<[u8; KEY_BYTES]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// Why a stored value does not open. Every case is the server's problem (its data or its
/// configuration), never a caller's; each user of the keyring words it for its own value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed value at all: plaintext from before sealing existed.
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the value is not a sealed value this service wrote")]
    Malformed,
    #[error("the value was sealed with key-encryption key '{0}', which is not configured")]
    UnknownKey(String),
    #[error(
        "the value does not open with key-encryption key '{0}': the key differs from the one that sealed it, or the row was altered"
    )]
    DoesNotOpen(String),
    #[error("sealing failed")]
    Seal,
}

/// Where a service finds its keyring: the variable naming the file and, without it, the
/// development key's file under the data directory.
#[derive(Clone, Copy, Debug)]
pub struct KekFile {
    /// `ROSTER_STAFF_KEK_FILE`.
    pub variable: &'static str,
    /// `dev-staff-kek`, under the data directory.
    pub dev_file: &'static str,
    /// What the keys seal, for log lines: "token-signing keys".
    pub seals: &'static str,
}

impl KekFile {
    /// The keyring the variable names, else the development key under `data_dir`.
    ///
    /// # Errors
    ///
    /// The variable is not a path, or [`KekFile::load`] fails.
    pub fn from_env(&self, data_dir: &Path) -> anyhow::Result<Keyring> {
        let file = roster_settings::env_opt::<PathBuf>(self.variable)?;
        self.load(file.as_deref(), data_dir)
    }

    /// The keyring in `file` when given, else the development key under `data_dir`
    /// (created on first use, by one process even when several start at once).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or holds no valid key.
    pub fn load(&self, file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Keyring> {
        let variable = self.variable;
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{variable}: reading {}", path.display()))?;
                Keyring::parse(&text)
                    .map_err(|problem| anyhow::anyhow!("{variable} {}: {problem}", path.display()))
            }
            None => self.load_or_create_dev(data_dir),
        }
    }

    fn load_or_create_dev(&self, data_dir: &Path) -> anyhow::Result<Keyring> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join(self.dev_file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_BYTES];
                rand::rng().fill_bytes(&mut key);
                let line = format!("{DEV_KEK_ID} {}\n", STANDARD.encode(key));
                key.fill(0);
                let stored = roster_auth::create_private_file_once(data_dir, &path, &line)?;
                if stored == line {
                    tracing::info!(path = %path.display(), "created the development key-encryption key for {}", self.seals);
                }
                stored
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        tracing::info!(path = %path.display(), "sealing {} with the development key-encryption key; set {} in production", self.seals, self.variable);
        Keyring::parse(&text).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
    }
}

impl Keyring {
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

    /// The key ids, the sealing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|kek| kek.id.as_str()).collect()
    }

    /// Seals `plaintext` with the primary key for one use (`context`, a fixed name such as
    /// `roster.staff.signing_key`, without NUL) and the thing it belongs to
    /// (`associated`); only [`open`](Self::open) with the same two opens it.
    ///
    /// # Errors
    ///
    /// [`SealError::Seal`] if the context holds a NUL or the cipher fails (which it does
    /// not for inputs of sane size).
    pub fn seal(
        &self,
        context: &str,
        associated: &[u8],
        plaintext: &[u8],
    ) -> Result<String, SealError> {
        let kek = self.keys.first().ok_or(SealError::Seal)?;
        let aad = associated_data(context, associated)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = kek
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
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

    /// Opens what [`seal`](Self::seal) wrote for the same context and associated data,
    /// with whichever configured key sealed it.
    ///
    /// # Errors
    ///
    /// Any [`SealError`] but `Seal`.
    pub fn open(
        &self,
        context: &str,
        associated: &[u8],
        stored: &str,
    ) -> Result<SecretSlice<u8>, SealError> {
        let Some(rest) = stored
            .strip_prefix(FORMAT)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return Err(if stored.contains(':') {
                SealError::Malformed
            } else {
                SealError::NotSealed
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
        let aad = associated_data(context, associated).map_err(|_| SealError::Malformed)?;
        let plaintext = kek
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen(kek.id.clone()))?;
        Ok(SecretSlice::from(plaintext))
    }

    /// Whether `stored` is in the sealed format (plaintext from before sealing is not).
    #[must_use]
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(FORMAT)
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
}

impl Kek {
    fn new(id: &str, mut key: [u8; KEY_BYTES]) -> Result<Self, String> {
        // The id is stored between colons in every sealed value.
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

/// `context ‖ NUL ‖ associated`: the NUL keeps one use's context from running into
/// another's associated data, so no two (context, associated) pairs share a byte string.
fn associated_data(context: &str, associated: &[u8]) -> Result<Vec<u8>, SealError> {
    if context.contains('\0') {
        return Err(SealError::Seal);
    }
    let mut aad = Vec::with_capacity(context.len() + 1 + associated.len());
    aad.extend_from_slice(context.as_bytes());
    aad.push(0);
    aad.extend_from_slice(associated);
    Ok(aad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const USE: &str = "roster.test.secret";

    fn open_text(keyring: &Keyring, context: &str, associated: &str, stored: &str) -> String {
        let secret = keyring
            .open(context, associated.as_bytes(), stored)
            .unwrap();
        String::from_utf8(secret.expose_secret().to_vec()).unwrap()
    }

    #[test]
    fn sealed_values_open_only_for_their_use_owner_and_key() {
        let keyring = Keyring::generate("k1").unwrap();
        let sealed = keyring.seal(USE, b"acme", b"wsec_abc").unwrap();
        assert!(sealed.starts_with("kek1:k1:"), "{sealed}");
        assert!(!sealed.contains("wsec_abc"));
        assert_eq!(open_text(&keyring, USE, "acme", &sealed), "wsec_abc");
        assert_eq!(
            keyring.open(USE, b"other", &sealed).unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        assert_eq!(
            keyring
                .open("roster.test.other_use", b"acme", &sealed)
                .unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        let other = Keyring::generate("k1").unwrap();
        assert_eq!(
            other.open(USE, b"acme", &sealed).unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        let renamed = Keyring::generate("k2").unwrap();
        assert_eq!(
            renamed.open(USE, b"acme", &sealed).unwrap_err(),
            SealError::UnknownKey("k1".into())
        );
        assert_eq!(
            keyring.open(USE, b"acme", "wsec_abc").unwrap_err(),
            SealError::NotSealed
        );
        assert_eq!(
            keyring.open(USE, b"acme", "kek1:k1:!!").unwrap_err(),
            SealError::Malformed
        );
        assert_eq!(
            keyring.seal("bad\0context", b"acme", b"x").unwrap_err(),
            SealError::Seal
        );
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = format!("old {}", STANDARD.encode([1u8; 32]));
        let new = format!("new {}", STANDARD.encode([2u8; 32]));
        let before = Keyring::parse(&old).unwrap();
        let sealed_before = before.seal(USE, b"acme", b"s1").unwrap();
        let after = Keyring::parse(&format!("# rotated\n{new}\n\n{old}\n")).unwrap();
        assert_eq!(open_text(&after, USE, "acme", &sealed_before), "s1");
        assert!(
            after
                .seal(USE, b"acme", b"s2")
                .unwrap()
                .starts_with("kek1:new:")
        );
        assert_eq!(after.key_ids(), ["new", "old"]);
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
            let problem = Keyring::parse(text).unwrap_err();
            assert!(problem.contains(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keyring = Keyring::parse(&format!("k1 {}", STANDARD.encode([7u8; 32]))).unwrap();
        assert_eq!(format!("{keyring:?}"), "Keyring { key_ids: [\"k1\"] }");
    }

    #[test]
    fn the_development_key_is_made_once_and_a_file_wins() {
        let dir = std::env::temp_dir().join(format!("roster-kek-{}", std::process::id()));
        let spec = KekFile {
            variable: "ROSTER_TEST_KEK_FILE",
            dev_file: "dev-test-kek",
            seals: "test secrets",
        };
        let first = spec.load(None, &dir).unwrap();
        let second = spec.load(None, &dir).unwrap();
        let sealed = first.seal(USE, b"a", b"v").unwrap();
        assert_eq!(open_text(&second, USE, "a", &sealed), "v");
        let file = dir.join("configured");
        std::fs::write(&file, format!("prod {}\n", STANDARD.encode([3u8; 32]))).unwrap();
        assert_eq!(spec.load(Some(&file), &dir).unwrap().key_ids(), ["prod"]);
        let missing = spec
            .load(Some(&dir.join("missing")), &dir)
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("ROSTER_TEST_KEK_FILE: reading"),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
