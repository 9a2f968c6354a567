//! Widget secrets at rest: sealed with the directory's key-encryption keys
//! (`roster_kek`), so that a dump of the database alone cannot mint widget tokens. The
//! workspace id is the associated data, so a sealed secret copied into another workspace's
//! row does not open. Re-seal after a KEK rotation by rotating each workspace's widget
//! secret, then drop the old key.
//!
//! The keyring comes from `ROSTER_DIRECTORY_WIDGET_KEK_FILE` or, without it, from a
//! development key created under the data directory on first use.

use std::path::Path;

use roster_kek::{KekFile, Keyring};
use secrecy::{ExposeSecret, SecretString};

/// Separates this use of the KEK from any other.
const CONTEXT: &str = "roster.directory.widget_secret";

/// Where operators point the directory at its key-encryption keys.
pub const WIDGET_KEK_FILE_VAR: &str = "ROSTER_DIRECTORY_WIDGET_KEK_FILE";

/// The development KEK's file under the data directory, and its key id.
pub const DEV_KEK_FILE: &str = "dev-widget-kek";
pub const DEV_KEK_ID: &str = roster_kek::DEV_KEK_ID;

const KEK_FILE: KekFile = KekFile {
    variable: WIDGET_KEK_FILE_VAR,
    dev_file: DEV_KEK_FILE,
    seals: "widget secrets",
};

/// Key-encryption keys for widget secrets; the first one seals.
#[derive(Clone, Debug)]
pub struct WidgetKeyring(Keyring);

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

impl From<roster_kek::SealError> for SealError {
    fn from(error: roster_kek::SealError) -> Self {
        match error {
            roster_kek::SealError::NotSealed => SealError::Plaintext,
            roster_kek::SealError::Malformed => SealError::Malformed,
            roster_kek::SealError::UnknownKey(id) => SealError::UnknownKey(id),
            roster_kek::SealError::DoesNotOpen(id) => SealError::DoesNotOpen(id),
            roster_kek::SealError::Seal => SealError::Seal,
        }
    }
}

impl WidgetKeyring {
    /// The keyring `ROSTER_DIRECTORY_WIDGET_KEK_FILE` names, else the development key under
    /// `data_dir`.
    ///
    /// # Errors
    ///
    /// The variable is not a path, or [`WidgetKeyring::load`] fails.
    pub fn from_env(data_dir: &Path) -> anyhow::Result<Self> {
        KEK_FILE.from_env(data_dir).map(Self)
    }

    /// The keyring in `kek_file` when given, else the development key under `data_dir`
    /// (created on first use).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or holds no valid key.
    pub fn load(kek_file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Self> {
        KEK_FILE.load(kek_file, data_dir).map(Self)
    }

    /// The file format of [`roster_kek::Keyring::parse`].
    ///
    /// # Errors
    ///
    /// A sentence naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        Keyring::parse(text).map(Self)
    }

    /// A keyring of one fresh random key, for tests.
    ///
    /// # Errors
    ///
    /// `id` is not a valid key id.
    pub fn generate(id: &str) -> Result<Self, String> {
        Keyring::generate(id).map(Self)
    }

    /// Seals `secret` for `workspace_id` with the primary key.
    ///
    /// # Errors
    ///
    /// [`SealError::Seal`] if the cipher fails, which it does not for inputs of sane size.
    pub fn seal(&self, workspace_id: &str, secret: &str) -> Result<String, SealError> {
        Ok(self
            .0
            .seal(CONTEXT, workspace_id.as_bytes(), secret.as_bytes())?)
    }

    /// Opens what [`seal`](Self::seal) wrote for the same workspace, with whichever
    /// configured key sealed it.
    ///
    /// # Errors
    ///
    /// Any [`SealError`] but `Seal`.
    pub fn open(&self, workspace_id: &str, stored: &str) -> Result<SecretString, SealError> {
        let plaintext = self.0.open(CONTEXT, workspace_id.as_bytes(), stored)?;
        let secret = std::str::from_utf8(plaintext.expose_secret())
            .map_err(|_| SealError::Malformed)?
            .to_owned();
        Ok(SecretString::from(secret))
    }

    /// The keyring in the file format [`parse`](Self::parse) reads; for tests only.
    #[doc(hidden)]
    #[must_use]
    pub fn export_for_tests(&self) -> String {
        self.0.export_for_tests()
    }

    /// Whether `stored` is a plaintext secret from before sealing existed.
    #[must_use]
    pub fn is_plaintext(stored: &str) -> bool {
        !Keyring::is_sealed(stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn widget_secrets_open_only_in_their_workspace_and_say_what_failed() {
        let keyring = WidgetKeyring::generate("k1").unwrap();
        let sealed = keyring.seal("acme", "wsec_abc").unwrap();
        assert!(sealed.starts_with("kek1:k1:"), "{sealed}");
        assert_eq!(
            keyring.open("acme", &sealed).unwrap().expose_secret(),
            "wsec_abc"
        );
        assert_eq!(
            keyring.open("other", &sealed).unwrap_err(),
            SealError::DoesNotOpen("k1".into())
        );
        assert_eq!(
            keyring.open("acme", "wsec_abc").unwrap_err(),
            SealError::Plaintext
        );
        assert!(WidgetKeyring::is_plaintext("wsec_abc"));
        assert!(!WidgetKeyring::is_plaintext(&sealed));
        let unknown = WidgetKeyring::generate("k2")
            .unwrap()
            .open("acme", &sealed)
            .unwrap_err();
        assert!(
            unknown.to_string().contains(WIDGET_KEK_FILE_VAR),
            "{unknown}"
        );
    }

    #[test]
    fn secrets_sealed_in_the_stored_format_still_open() {
        // The format rows written before the keyring moved to `roster_kek` hold: XChaCha20-
        // Poly1305 over the secret, with the context, a NUL and the workspace id as
        // associated data, built here with the cipher alone.
        use base64::Engine as _;
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let key = [1u8; 32];
        let nonce = [9u8; 24];
        let ciphertext = chacha20poly1305::XChaCha20Poly1305::new(&key.into())
            .encrypt(
                &chacha20poly1305::XNonce::from(nonce),
                Payload {
                    msg: b"wsec_abc",
                    aad: b"roster.directory.widget_secret\0acme",
                },
            )
            .unwrap();
        let stored = format!(
            "kek1:k1:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode([nonce.as_slice(), &ciphertext].concat())
        );
        let keyring = WidgetKeyring::parse(&format!(
            "k1 {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))
        .unwrap();
        assert_eq!(
            keyring.open("acme", &stored).unwrap().expose_secret(),
            "wsec_abc"
        );
    }
}
