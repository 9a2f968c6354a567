use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_throttles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    /// `account:<e-mail key>` or `address:<ip>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub throttle_key: String,
    /// Attempts counted in the window, failed or still being checked.
    pub attempts: i64,
    pub window_started_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
