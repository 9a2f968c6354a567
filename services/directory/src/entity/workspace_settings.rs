use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspace_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    pub chat_access: String,
    pub require_customer: bool,
    /// The HS256 widget secret, sealed with the key-encryption key (`widget_kek`).
    pub widget_secret: Option<String>,
    /// The rotated-out secret while its grace period lasts, sealed like `widget_secret`.
    pub previous_widget_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub widget_secret_grace_seconds: i64,
    /// JSON array of registered public keys.
    pub widget_keys: String,
    pub updated_at: i64,
    pub widget_token_max_lifetime_seconds: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
