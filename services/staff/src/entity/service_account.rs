use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_accounts")]
pub struct Model {
    /// The workspace that created the account and manages it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub service_account_id: Uuid,
    pub name: String,
    /// Lower-cased name, unique in the workspace.
    pub name_key: String,
    pub description: String,
    /// JSON array of the workspace ids it acts in; `["*"]` for every workspace.
    pub workspaces: String,
    /// JSON array of permission names.
    pub permissions: String,
    /// Hex SHA-256 of the client secret.
    pub secret_hash: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_by_kind: String,
    pub created_by_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub revoked_at: Option<i64>,
    /// Tokens issued under a lower generation are revoked.
    pub token_generation: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
