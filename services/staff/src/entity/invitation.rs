use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub invitation_id: Uuid,
    pub agent_id: Uuid,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    pub secret_hash: String,
    /// pending, accepted, revoked or superseded.
    pub state: String,
    pub invited_by_kind: String,
    pub invited_by_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it stopped being pending.
    pub ended_at: Option<i64>,
    pub request_id: Option<String>,
    pub request_fingerprint: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
