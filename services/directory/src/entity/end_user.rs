use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "end_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub external_id: String,
    pub email: String,
    /// Lower-cased e-mail: the key for case-insensitive matching and uniqueness.
    pub email_key: String,
    pub name: String,
    pub avatar_url: String,
    pub customer_id: String,
    pub status: String,
    /// What a deactivated or deleted user was before (guest, unconfirmed or active); see
    /// `service::users::settled_status` for how it is read back.
    pub restore_status: Option<String>,
    pub title: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub mobile: String,
    pub fax: String,
    pub street: String,
    pub zip: String,
    pub city: String,
    pub country: String,
    pub notes: String,
    /// Lower-cased e-mail, name and external id, for the trigram search indexes.
    pub search_text: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub confirmed_at: Option<i64>,
    /// 0 means never.
    pub last_activity_at: i64,
    pub deleted_at: Option<i64>,
    /// When the user was deactivated; kept through a deletion, so undelete brings a
    /// deactivated user back deactivated.
    pub deactivated_at: Option<i64>,
    pub conversation_count: i64,
    pub merged_into: Option<Uuid>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
