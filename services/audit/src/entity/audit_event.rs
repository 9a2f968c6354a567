use sea_orm::entity::prelude::*;

/// One recorded event; see `domain::event::Recorded`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub leaf_index: i64,
    pub event_id: Uuid,
    pub occurred_at: i64,
    pub recorded_at: i64,
    pub source_service: String,
    pub schema_version: i32,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
    /// JSON array of the changed fields' names.
    pub change_fields: String,
    /// JSON object: slot name → base64 commitment.
    pub commitments: String,
    /// JSON object: slot name → {salt, value}; NULL when nothing personal remains.
    pub personal_values: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
