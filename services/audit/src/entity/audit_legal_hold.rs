use sea_orm::entity::prelude::*;

/// A legal hold: pruning stops for the whole log (`subject_id` empty) or for the events by
/// or about one subject.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_legal_holds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub hold_id: Uuid,
    pub subject_id: String,
    pub reason: String,
    /// The placing principal's subject.
    pub placed_by: String,
    pub placed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
