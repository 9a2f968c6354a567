use sea_orm::entity::prelude::*;

/// A workspace's custom role (the built-in ones are code, not rows).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: Uuid,
    /// What agents' `role` column and tokens carry.
    pub name: String,
    /// Lower-cased name: unique in the workspace.
    pub name_key: String,
    pub description: String,
    /// JSON array of permission names, sorted.
    pub permissions: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
