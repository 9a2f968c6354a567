use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_revocations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    /// The tokens' `sub`: an agent or service account id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    /// Tokens issued under a lower generation are revoked.
    #[sea_orm(primary_key, auto_increment = false)]
    pub min_generation: i64,
    pub revoked_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
