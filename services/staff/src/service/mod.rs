//! The staff service's operations. Each write runs in one transaction
//! (`roster_db::in_write_txn!`, which retries lost races) and appends its audit events to
//! the outbox in that same transaction. Changes that take a seat or may remove the last
//! active admin lock the workspace's row first (`store::workspaces::lock`). `bulk` runs
//! many single changes in one such transaction. `keys` holds the platform's token-signing
//! keys.

mod access;
mod agents;
mod bulk;
mod denials;
mod erasure;
mod invitations;
pub mod keys;
mod request_ids;
mod revocations;
mod roles;
mod service_accounts;
mod sign_in;
mod sso;
mod teams;
mod tokens;

use std::sync::Arc;

use roster_core::{Actor, Clock};
use roster_db::Db;
use roster_db::outbox::{AuditEvent, FieldChange};
use serde_json::Value;
use uuid::Uuid;

pub use access::load_effective_access;
pub use agents::{
    AgentPatch, ProfilePatch, TeamsChange, Updated, extra_permissions as agents_extra_permissions,
};
pub use bulk::{
    AgentAction, AgentResult, BulkChanged, BulkInvited, BulkOptions, InviteResult, ItemError,
};
pub use invitations::{Invited, NewInvitation, RequestKey};
pub use request_ids::REQUEST_ID_WINDOW_US;
pub use roles::{NewRole, RolePatch, RoleView};
pub use service_accounts::{
    NewServiceAccount, SERVICE_ACCOUNT_RESOURCE, WithSecret, listed as service_account_list,
};
pub use sign_in::{PasswordSignIn, Session, SignInPolicy};
pub use sso::{NewSsoConnection, SsoConnectionPatch, SsoSignIn, TestedConnection};
pub use teams::{MembersChanged, TeamPatch, TeamView};
pub use tokens::{AccessToken, AccessTokens};

use crate::entity::agent;

/// The staff service's operations over its database.
#[derive(Clone)]
pub struct Staff {
    db: Db,
    clock: Arc<dyn Clock>,
    keys: keys::Keyring,
    tokens: AccessTokens,
    sign_in: SignInPolicy,
}

/// An agent with its teams, as every call answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub agent: agent::Model,
    pub team_ids: Vec<Uuid>,
}

/// A workspace's seats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub seat_limit: i64,
    pub counts: crate::store::workspaces::Counts,
}

impl Staff {
    pub fn new(db: Db, clock: Arc<dyn Clock>, keys: keys::Keyring, sign_in: SignInPolicy) -> Self {
        let tokens = AccessTokens::new(
            keys.clone(),
            sign_in.issuer.clone(),
            sign_in.audience.clone(),
        );
        Self {
            db,
            clock,
            keys,
            tokens,
            sign_in,
        }
    }

    /// The token-signing keys.
    pub fn keys(&self) -> &keys::Keyring {
        &self.keys
    }

    fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    fn event(
        &self,
        actor: &Actor,
        workspace_id: &str,
        action: &str,
        target: (&str, String),
        changes: Vec<FieldChange>,
    ) -> AuditEvent {
        AuditEvent::new(actor, workspace_id, action, target, changes, self.now_us())
    }
}

/// The audit event's `outcome` for an attempt that failed (a wrong password, a spent
/// refresh token, refused client credentials); changes succeed with "success".
const FAILURE: &str = "failure";

/// One field of an audit event.
fn change(field: &str, before: Option<Value>, after: Option<Value>) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        before,
        after,
    }
}

/// What admin events say about the agent they touch, so a reader of the audit log needs no
/// lookup (and still knows who it was after the agent changed its e-mail or name).
fn agent_context(agent: &agent::Model) -> Vec<FieldChange> {
    vec![
        change(
            "agent.email",
            Some(agent.email.clone().into()),
            Some(agent.email.clone().into()),
        ),
        change(
            "agent.name",
            Some(agent.name.clone().into()),
            Some(agent.name.clone().into()),
        ),
    ]
}
