use sea_orm::entity::prelude::*;

/// A provider's person linked to an agent through one connection.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: Uuid,
    /// The provider's `sub`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub agent_id: Uuid,
    /// The e-mail the provider vouched for when the link was made.
    pub email: String,
    pub linked_at: i64,
    pub last_sign_in_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
