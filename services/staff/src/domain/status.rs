//! Lifecycle states as stored (lower-case words) and as the rules read them.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentStatus {
    Invited,
    Active,
    Deactivated,
    /// Deactivated, then erased: only the id and what history needs are left. Final.
    Erased,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 4] = [
        AgentStatus::Invited,
        AgentStatus::Active,
        AgentStatus::Deactivated,
        AgentStatus::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Invited => "invited",
            AgentStatus::Active => "active",
            AgentStatus::Deactivated => "deactivated",
            AgentStatus::Erased => "erased",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// ACTIVE and INVITED agents hold a licensed seat.
    pub fn uses_seat(self) -> bool {
        matches!(self, AgentStatus::Invited | AgentStatus::Active)
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invitation's stored state. Expiry is not a state: it is decided against
/// `expires_at` when read, so no job has to mark invitations expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    /// A newer invitation to the same agent was sent.
    Superseded,
}

impl InvitationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Accepted => "accepted",
            InvitationState::Revoked => "revoked",
            InvitationState::Superseded => "superseded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            InvitationState::Pending,
            InvitationState::Accepted,
            InvitationState::Revoked,
            InvitationState::Superseded,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }
}
