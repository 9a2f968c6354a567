//! Passwords: the policy and argon2id hashing.
//!
//! The policy follows NIST SP 800-63B: length matters, composition rules do not. Hashing
//! uses the argon2 crate's defaults (argon2id, version 19, m = 19 MiB, t = 2, p = 1: the
//! OWASP recommendation) with a random salt per hash; the PHC string stored carries the
//! parameters, so raising them later leaves old hashes verifiable.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use roster_core::FieldViolation;

pub const MIN_CHARS: usize = 10;
/// Bounds the work an attacker can make one request cost.
pub const MAX_CHARS: usize = 128;

/// Checks a new password against the policy; the password is never echoed.
pub fn check(field: &str, password: &str) -> Result<(), FieldViolation> {
    let chars = password.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
        return Err(FieldViolation::new(
            field,
            format!("must be {MIN_CHARS} to {MAX_CHARS} characters long (it is {chars})"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh salt. CPU-bound for tens of
/// milliseconds: call it off the async workers.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| format!("argon2 hashing failed: {error}"))
}

/// Whether `password` is the one `stored` (a PHC string) was made from. As slow as
/// [`hash`], with the parameters `stored` names: call it off the async workers. A stored
/// value that does not parse matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of no one's password, checked when an e-mail matches no agent so that answer
/// takes as long as a wrong password's and timing does not reveal who has an account.
pub fn decoy_hash() -> &'static str {
    static DECOY: LazyLock<String> = LazyLock::new(|| {
        let mut random = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
        hash(&format!("{random:?}")).unwrap_or_default()
    });
    &DECOY
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use argon2::password_hash::PasswordVerifier as _;
    use argon2::password_hash::phc::PasswordHash;

    use super::*;

    #[test]
    fn the_policy_bounds_length_and_refuses_control_characters() {
        assert!(check("password", "correct horse").is_ok());
        assert!(check("password", "short").is_err());
        assert!(check("password", &"x".repeat(129)).is_err());
        assert!(check("password", &"x".repeat(128)).is_ok());
        assert!(check("password", "ten chars\u{0}!").is_err());
        // Counted in characters, not bytes.
        assert!(check("password", "ééééééééé").is_err());
    }

    #[test]
    fn verify_accepts_only_the_password_and_the_decoy_matches_nothing() {
        let stored = hash("correct horse").unwrap();
        assert!(verify("correct horse", &stored));
        assert!(!verify("correct horsf", &stored));
        assert!(!verify("correct horse", "not a phc string"));
        assert!(decoy_hash().starts_with("$argon2id$"));
        assert!(!verify("", decoy_hash()));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let (a, b) = (
            hash("correct horse").unwrap(),
            hash("correct horse").unwrap(),
        );
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt per hash");
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }
}
