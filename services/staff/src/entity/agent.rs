use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: Uuid,
    pub email: String,
    /// Lower-cased e-mail: unique in the workspace, and what partial matches search.
    pub email_key: String,
    pub name: String,
    /// Lower-cased name, for ordering and partial matches.
    pub name_key: String,
    pub avatar_url: String,
    pub role: String,
    /// JSON array of permission names.
    pub extra_permissions: String,
    pub status: String,
    /// JSON object of `NotificationPreferences`.
    pub notification_preferences: String,
    pub signature: String,
    /// "", "light" or "dark".
    pub theme: String,
    pub language: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub deactivation_reason: String,
    /// 0 = never signed in.
    pub last_sign_in_at: i64,
    pub version: i64,
    /// Successful sign-ins.
    pub sign_in_count: i64,
    /// Tokens issued under a lower generation are revoked.
    pub token_generation: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
