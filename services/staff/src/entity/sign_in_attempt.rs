use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    /// A UUIDv7: attempts page newest first by id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub attempt_id: Uuid,
    /// None when the e-mail matched no agent.
    pub agent_id: Option<Uuid>,
    /// Lower-cased, as typed.
    pub email: String,
    /// `password` or `sso`.
    pub method: String,
    /// `SignInOutcome::as_str`.
    pub outcome: String,
    pub ip: String,
    pub user_agent: String,
    pub at: i64,
    /// The SSO connection of an `sso` attempt, once the request named one.
    pub sso_connection_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
