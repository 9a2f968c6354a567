//! Invitation secrets and the rule for accepting one.
//!
//! A secret is 256 random bits (base64url, 43 characters) and is stored only as its
//! SHA-256. A fast hash is enough here, unlike for passwords: nobody can guess or
//! dictionary-attack 256 random bits, so the slow hashing passwords need buys nothing, and
//! a plain digest lets AcceptInvitation find the invitation by an indexed lookup.

use super::InvitationState;
pub use super::secret::{hash as secret_hash, new as new_secret};

/// Invitations expire after 7 days.
pub const LIFETIME_US: i64 = 7 * 24 * 3600 * 1_000_000;

/// Why an invitation cannot be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAcceptable {
    Used,
    Revoked,
    Superseded,
    Expired,
}

/// Whether an invitation in `state` expiring at `expires_at` can be accepted at `now`:
/// up to the microsecond before `expires_at`, not at it.
pub fn acceptable(state: InvitationState, expires_at: i64, now: i64) -> Result<(), NotAcceptable> {
    match state {
        InvitationState::Accepted => Err(NotAcceptable::Used),
        InvitationState::Revoked => Err(NotAcceptable::Revoked),
        InvitationState::Superseded => Err(NotAcceptable::Superseded),
        InvitationState::Pending if now >= expires_at => Err(NotAcceptable::Expired),
        InvitationState::Pending => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed_to_hex() {
        let mut rng = rand::rng();
        let (a, b) = (new_secret(&mut rng), new_secret(&mut rng));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }

    #[test]
    fn pending_invitations_are_acceptable_until_they_expire() {
        let expires = 1_000;
        assert_eq!(acceptable(InvitationState::Pending, expires, 999), Ok(()));
        assert_eq!(
            acceptable(InvitationState::Pending, expires, 1_000),
            Err(NotAcceptable::Expired)
        );
        assert_eq!(
            acceptable(InvitationState::Accepted, expires, 0),
            Err(NotAcceptable::Used)
        );
        assert_eq!(
            acceptable(InvitationState::Revoked, expires, 0),
            Err(NotAcceptable::Revoked)
        );
        assert_eq!(
            acceptable(InvitationState::Superseded, expires, 0),
            Err(NotAcceptable::Superseded)
        );
    }
}
