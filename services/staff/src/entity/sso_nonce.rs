use sea_orm::entity::prelude::*;

/// The nonce of an ID token accepted once, kept until the token expires.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_nonces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: Uuid,
    /// SHA-256 of the nonce, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub nonce_hash: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
