use sea_orm::entity::prelude::*;

/// The key that signs checkpoints (one row, `slot` 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: i32,
    /// The 32-byte Ed25519 seed sealed with the audit KEK (`kek1:…`).
    pub private_key_sealed: String,
    pub public_key: Vec<u8>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
