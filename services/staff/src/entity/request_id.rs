use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "request_ids")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    /// The caller's idempotency key, a UUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The RPC that used it (`BulkInviteAgents`).
    pub operation: String,
    /// SHA-256 of the request's content without its key.
    pub fingerprint: String,
    /// What the call answered, as JSON of the operation's own shape.
    pub result: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
