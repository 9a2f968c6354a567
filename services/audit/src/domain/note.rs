//! Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with the
//! log's Ed25519 key.
//!
//! Each workspace's log is a log of its own to a verifier, so its origin is
//! `<origin prefix>/<workspace id>` and, as tlog-checkpoint asks, the key name in its
//! signature line is that origin. One key signs every workspace's checkpoints; the name
//! in the key id (`SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`) still makes a checkpoint
//! of one workspace useless as another's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _};
use sha2::{Digest, Sha256};

use crate::domain::tree::Hash;

/// The signed-note signature type of Ed25519.
const ED25519: u8 = 0x01;

/// What a checkpoint says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointBody {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
}

/// The key that signs every workspace's checkpoints, and the prefix of their origins.
#[derive(Clone)]
pub struct LogKey {
    signing: SigningKey,
    origin_prefix: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("origin_prefix", &self.origin_prefix)
            .field("public_key", &STANDARD.encode(self.public_key()))
            .finish()
    }
}

/// Whether `name` may be a key name (and so an origin): non-empty, without Unicode spaces,
/// `+` or control characters.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

impl LogKey {
    pub fn new(signing: SigningKey, origin_prefix: String) -> Self {
        Self {
            signing,
            origin_prefix,
        }
    }

    /// The origin (and key name) of a workspace's log.
    pub fn origin(&self, workspace_id: &str) -> String {
        format!("{}/{workspace_id}", self.origin_prefix)
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The signed-note key id of the key under `name`.
    pub fn key_id(&self, name: &str) -> u32 {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', ED25519]);
        hasher.update(self.public_key());
        let digest = hasher.finalize();
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    }

    /// `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`: what a verifier of the
    /// workspace's checkpoints is configured with.
    pub fn verifier_key(&self, workspace_id: &str) -> String {
        let name = self.origin(workspace_id);
        let mut key = vec![ED25519];
        key.extend_from_slice(&self.public_key());
        format!("{name}+{:08x}+{}", self.key_id(&name), STANDARD.encode(key))
    }

    /// The signed note of the checkpoint of `workspace_id`'s tree at `tree_size` with
    /// `root`.
    pub fn sign_checkpoint(&self, workspace_id: &str, tree_size: u64, root: &Hash) -> String {
        let origin = self.origin(workspace_id);
        let text = format!("{origin}\n{tree_size}\n{}\n", STANDARD.encode(root));
        let signature = self.signing.sign(text.as_bytes());
        let mut signed = self.key_id(&origin).to_be_bytes().to_vec();
        signed.extend_from_slice(&signature.to_bytes());
        format!("{text}\n\u{2014} {origin} {}\n", STANDARD.encode(signed))
    }

    /// Checks that `note` is a checkpoint of `workspace_id`'s log that this key signed, and
    /// answers what it says.
    pub fn open_checkpoint(
        &self,
        workspace_id: &str,
        note: &str,
    ) -> Result<CheckpointBody, String> {
        let origin = self.origin(workspace_id);
        let (text, signatures) = note
            .rsplit_once("\n\n")
            .ok_or("the note has no signature block")?;
        let text = format!("{text}\n");
        let prefix = format!("\u{2014} {origin} ");
        let key_id = self.key_id(&origin).to_be_bytes();
        let signature = signatures
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .find(|signed| signed.len() == 68 && signed[..4] == key_id)
            .ok_or("no signature of the log's key")?;
        let signature = Signature::from_slice(&signature[4..])
            .map_err(|_| "the signature is malformed".to_owned())?;
        self.signing
            .verifying_key()
            .verify(text.as_bytes(), &signature)
            .map_err(|_| "the signature does not verify".to_owned())?;
        let mut lines = text.lines();
        let (Some(found_origin), Some(size), Some(root)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err("the checkpoint has fewer than three lines".to_owned());
        };
        if found_origin != origin {
            return Err(format!(
                "the checkpoint is of '{found_origin}', not '{origin}'"
            ));
        }
        let tree_size = size
            .parse()
            .map_err(|_| format!("'{size}' is not a tree size"))?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|root| Hash::try_from(root).ok())
            .ok_or("the root hash is not 32 bytes of base64")?;
        Ok(CheckpointBody {
            origin,
            tree_size,
            root,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> LogKey {
        LogKey::new(SigningKey::from_bytes(&[7; 32]), "roster.test/audit".into())
    }

    #[test]
    fn a_checkpoint_is_three_lines_a_blank_line_and_a_signature() {
        let note = key().sign_checkpoint("acme", 3, &[1; 32]);
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], "roster.test/audit/acme");
        assert_eq!(lines[1], "3");
        assert_eq!(lines[2], STANDARD.encode([1u8; 32]));
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} roster.test/audit/acme "));
        assert_eq!(lines[5], "", "the note ends with a newline");
        assert_eq!(
            key().open_checkpoint("acme", &note).unwrap(),
            CheckpointBody {
                origin: "roster.test/audit/acme".into(),
                tree_size: 3,
                root: [1; 32]
            }
        );
    }

    #[test]
    fn another_workspace_or_an_edited_note_does_not_open() {
        let note = key().sign_checkpoint("acme", 3, &[1; 32]);
        assert!(key().open_checkpoint("other", &note).is_err());
        let edited = note.replacen("\n3\n", "\n4\n", 1);
        assert_eq!(
            key().open_checkpoint("acme", &edited).unwrap_err(),
            "the signature does not verify"
        );
        let stranger = LogKey::new(SigningKey::from_bytes(&[8; 32]), "roster.test/audit".into());
        assert!(stranger.open_checkpoint("acme", &note).is_err());
    }

    #[test]
    fn the_verifier_key_names_the_origin_and_key_id() {
        let key = key();
        let verifier = key.verifier_key("acme");
        let parts: Vec<&str> = verifier.split('+').collect();
        assert_eq!(parts[0], "roster.test/audit/acme");
        assert_eq!(
            parts[1],
            format!("{:08x}", key.key_id("roster.test/audit/acme"))
        );
        let raw = STANDARD.decode(parts[2]).unwrap();
        assert_eq!(raw[0], 0x01);
        assert_eq!(raw[1..], key.public_key());
        assert!(valid_key_name("roster.test/audit"));
        assert!(!valid_key_name("a b"));
        assert!(!valid_key_name("a+b"));
        assert!(!valid_key_name(""));
    }
}
