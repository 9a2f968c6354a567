use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: String,
    pub name: String,
    pub status: String,
    /// JSON array of lower-cased domains.
    pub domains: String,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// Unix microseconds when the customer was soft-deleted; `None` while it is live.
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
