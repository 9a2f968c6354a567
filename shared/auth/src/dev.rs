//! Key generation: persistent development keys and in-memory keys for tests.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::TryRngCore;
use rand::rngs::OsRng;

use crate::error::KeyError;
use crate::keys::KeySet;
use crate::sign::{TokenSigner, ed25519_pkcs8_der};

/// `kid` of the development signing key.
pub const DEV_KEY_ID: &str = "dev-1";

const DEV_SIGNING_KEY_FILE: &str = "dev-signing-key.pem";
const DEV_JWKS_FILE: &str = "dev-jwks.json";

/// Development key material; see [`load_or_create_dev_keys`].
#[derive(Clone, Debug)]
pub struct DevKeys {
    pub signer: TokenSigner,
    /// Public JWKS for [`KeySet::from_jwks_json`].
    pub jwks_json: String,
    /// Where `jwks_json` was written, for services configured with a JWKS path.
    pub jwks_path: PathBuf,
}

/// Development keys: `dir/dev-signing-key.pem` (Ed25519 PKCS#8 PEM, mode 0600 on unix) and
/// `dir/dev-jwks.json` (public JWKS, kid `dev-1`). Created on first call, loaded afterwards;
/// creates `dir` if missing.
///
/// Safe to call from several processes at once: the key file appears atomically and the
/// loser of a creation race loads the winner's key. The JWKS is derived from the key on every
/// call and rewritten when it differs, so it can never disagree with the key.
pub fn load_or_create_dev_keys(dir: &Path) -> Result<DevKeys, KeyError> {
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    let key_path = dir.join(DEV_SIGNING_KEY_FILE);
    let signer = match fs::read_to_string(&key_path) {
        Ok(pem) => load_dev_signer(&key_path, &pem)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_dev_signer(dir, &key_path)?,
        Err(e) => return Err(io_error("read", &key_path)(e)),
    };
    let jwks_json = signer.jwks_json()?;
    let jwks_path = dir.join(DEV_JWKS_FILE);
    if fs::read_to_string(&jwks_path).ok().as_deref() != Some(jwks_json.as_str()) {
        let temp = temp_path(dir, DEV_JWKS_FILE);
        let written = write_new_file(&temp, jwks_json.as_bytes(), false)
            .and_then(|()| fs::rename(&temp, &jwks_path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io_error("write", &jwks_path)(e));
        }
    }
    Ok(DevKeys {
        signer,
        jwks_json,
        jwks_path,
    })
}

/// A fresh in-memory Ed25519 signer, the matching [`KeySet`] and its JWKS JSON. For tests.
pub fn generate_ed25519(kid: &str) -> Result<(TokenSigner, KeySet, String), KeyError> {
    let signer = TokenSigner::from_ed25519_key(kid, &random_signing_key()?)?;
    let jwks_json = signer.jwks_json()?;
    let keys = KeySet::from_jwks_json(&jwks_json)?;
    Ok((signer, keys, jwks_json))
}

fn random_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

fn load_dev_signer(path: &Path, pem: &str) -> Result<TokenSigner, KeyError> {
    warn_if_readable_by_others(path);
    TokenSigner::from_ed25519_pkcs8_pem(DEV_KEY_ID, pem)
        .map_err(|e| KeyError::InvalidPrivateKey(format!("{}: {e}", path.display())))
}

fn create_dev_signer(dir: &Path, key_path: &Path) -> Result<TokenSigner, KeyError> {
    let signing_key = random_signing_key()?;
    let pem = ed25519_pkcs8_pem(&signing_key);
    let stored = create_private_file_once(dir, key_path, &pem)?;
    if stored != pem {
        return load_dev_signer(key_path, &stored);
    }
    tracing::info!(path = %key_path.display(), kid = DEV_KEY_ID, "created development signing key");
    TokenSigner::from_ed25519_key(DEV_KEY_ID, &signing_key)
}

/// Creates `path` in `dir` holding `contents`, readable by its owner only (mode 0600 on
/// unix), unless it exists; returns what the file holds afterwards, which differs from
/// `contents` when another process created it first. For development key material that
/// must be the same for every process sharing a data directory.
///
/// # Errors
///
/// The file could not be written or read.
pub fn create_private_file_once(
    dir: &Path,
    path: &Path,
    contents: &str,
) -> Result<String, KeyError> {
    let file_name = path
        .file_name()
        .map_or_else(|| "key".into(), |name| name.to_string_lossy());
    let temp = temp_path(dir, &file_name);
    write_new_file(&temp, contents.as_bytes(), true).map_err(|e| {
        let _ = fs::remove_file(&temp);
        io_error("write", &temp)(e)
    })?;
    // A hard link, unlike rename, refuses to replace an existing file, so two processes
    // creating keys at once cannot end up with different keys.
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(contents.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::read_to_string(path).map_err(io_error("read", path))
        }
        Err(e) => Err(io_error("create", path)(e)),
    }
}

fn ed25519_pkcs8_pem(signing_key: &SigningKey) -> String {
    let mut der = ed25519_pkcs8_der(signing_key);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    der.fill(0);
    pem
}

fn write_new_file(path: &Path, contents: &[u8], private: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "development signing key is accessible to other users; run chmod 600");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |source| KeyError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{PrincipalKind, TokenRequest, TokenVerifier, VerifierSettings, unix_now};
    use std::time::Duration;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            TempDir(std::env::temp_dir().join(format!("roster-auth-{}", uuid::Uuid::new_v4())))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn request() -> TokenRequest {
        TokenRequest {
            subject: "directory".into(),
            kind: PrincipalKind::Service,
            workspaces: [("*".to_owned(), crate::WorkspaceAccess::new("service", &[]))].into(),
            generation: 0,
            ttl: Duration::from_secs(300),
            issuer: "roster-staff".into(),
            audience: "roster".into(),
        }
    }

    #[test]
    fn dev_keys_are_created_then_reloaded() {
        let dir = TempDir::new();
        let nested = dir.0.join("keys");
        let created = load_or_create_dev_keys(&nested).unwrap();
        let reloaded = load_or_create_dev_keys(&nested).unwrap();

        assert_eq!(created.signer.kid(), DEV_KEY_ID);
        assert_eq!(reloaded.signer.kid(), DEV_KEY_ID);
        assert_eq!(created.jwks_json, reloaded.jwks_json);
        assert_eq!(created.jwks_path, nested.join(DEV_JWKS_FILE));
        assert_eq!(
            fs::read_to_string(&created.jwks_path).unwrap(),
            created.jwks_json
        );

        let jwks: serde_json::Value = serde_json::from_str(&created.jwks_json).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], "dev-1");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["use"], "sig");

        let now = unix_now();
        for (signer, jwks_path) in [
            (&created.signer, &reloaded.jwks_path),
            (&reloaded.signer, &created.jwks_path),
        ] {
            let keys = KeySet::from_jwks_file(jwks_path).unwrap();
            let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
            let token = signer.mint_for(&request(), now).unwrap();
            assert_eq!(verifier.verify(&token).unwrap().subject, "directory");
        }
    }

    #[cfg(unix)]
    #[test]
    fn dev_signing_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        load_or_create_dev_keys(&dir.0).unwrap();
        let mode = fs::metadata(dir.0.join(DEV_SIGNING_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn stale_jwks_is_rewritten_from_the_key() {
        let dir = TempDir::new();
        let first = load_or_create_dev_keys(&dir.0).unwrap();
        fs::write(&first.jwks_path, "{\"keys\": []}").unwrap();
        let second = load_or_create_dev_keys(&dir.0).unwrap();
        assert_eq!(
            fs::read_to_string(&second.jwks_path).unwrap(),
            first.jwks_json
        );
    }

    #[test]
    fn written_pem_is_readable_by_the_signer_and_openssl_layout() {
        let key = random_signing_key().unwrap();
        let pem = ed25519_pkcs8_pem(&key);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
        let signer = TokenSigner::from_ed25519_pkcs8_pem("k", &pem).unwrap();
        let direct = TokenSigner::from_ed25519_key("k", &key).unwrap();
        assert_eq!(signer.jwks_json().unwrap(), direct.jwks_json().unwrap());
    }

    #[test]
    fn generated_keys_differ_each_time() {
        let (_, _, first) = generate_ed25519("k").unwrap();
        let (_, _, second) = generate_ed25519("k").unwrap();
        assert_ne!(first, second);
    }
}
