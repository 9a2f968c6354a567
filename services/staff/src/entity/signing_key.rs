use sea_orm::entity::prelude::*;

/// A token-signing key (`migration/m20261220_000001_create_signing_keys.rs`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// The JOSE algorithm (`EdDSA`).
    pub algorithm: String,
    /// The PKCS#8 PEM sealed with the staff KEK, the `kid` as associated data.
    pub private_key_sealed: String,
    /// The public JWK as JSON, as the JWKS publishes it.
    pub public_jwk: String,
    pub created_at: i64,
    /// When it stopped signing; NULL for the signing key.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS; NULL for the signing key.
    pub unpublish_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
