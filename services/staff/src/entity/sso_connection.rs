use sea_orm::entity::prelude::*;

/// A workspace's OpenID Connect connection.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: Uuid,
    pub display_name: String,
    /// Lower-cased display name: unique in the workspace.
    pub display_name_key: String,
    /// `domain::sso::Provider::as_str`.
    pub provider: String,
    pub issuer: String,
    pub client_id: String,
    /// JSON array of lower-case domains.
    pub allowed_email_domains: String,
    /// The provider's JWK Set, as given.
    pub jwks: String,
    /// A role's name, as `agents.role` holds it.
    pub default_role: String,
    /// `domain::sso::ProvisioningMode::as_str`.
    pub provisioning_mode: String,
    pub enabled: bool,
    /// The latest test since `issuer`, `client_id` and `jwks` last changed.
    pub last_test_at: Option<i64>,
    pub last_test_succeeded: Option<bool>,
    pub last_test_failure: String,
    pub last_test_by_kind: String,
    pub last_test_by_id: String,
    pub last_test_subject: String,
    pub last_test_email: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
