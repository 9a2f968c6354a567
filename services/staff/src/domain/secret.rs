//! Random bearer secrets (invitations, refresh tokens, service-account secrets) and what is
//! stored of them.
//!
//! A secret is 256 random bits and is stored only as its SHA-256. A fast hash is enough,
//! unlike for passwords: nobody can guess or dictionary-attack 256 random bits, so the slow
//! hashing passwords need buys nothing, while a plain digest keeps a lookup cheap.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// A fresh secret from `rng`: 43 base64url characters.
pub fn new(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a secret: its SHA-256 in hex.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `secret` is the one `stored` was made from, in time independent of where they
/// differ.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_only_their_own_hash_matches() {
        let mut rng = rand::rng();
        let (a, b) = (new(&mut rng), new(&mut rng));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert!(!matches(&a, "not a hash"));
    }
}
