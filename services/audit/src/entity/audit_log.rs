use sea_orm::entity::prelude::*;

/// A workspace's log head.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    /// Leaves below it may be pruned (retention); 0 keeps everything.
    pub min_index: i64,
    /// How long events are kept, in microseconds; `None` keeps them for ever.
    pub retention_us: Option<i64>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
