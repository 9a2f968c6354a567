//! Request ids (AIP-155) of creates and counter changes, bound to the request's content: a
//! retry with the same id and content gets the first call's result, the same id with other
//! content is refused. Purged after `service::REQUEST_ID_WINDOW_US`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "request_ids")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The RPC that used the id (`CreateUser`, `RecordActivity`, …).
    pub operation: String,
    /// Hex SHA-256 of the request's canonical content; empty for ids recorded before
    /// content was bound, which match any content.
    pub fingerprint: String,
    /// What the first call produced, for the retry to return: the id of the user or
    /// customer it created or changed, or a digest of the secret it issued.
    pub result: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
