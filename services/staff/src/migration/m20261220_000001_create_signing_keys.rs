//! The keys the staff service signs access tokens with.
//!
//! A platform table, without `workspace_id`: a key signs tokens for every workspace (one
//! issuer, one JWKS that every verifier fetches), so no workspace owns it. It stays a
//! handful of rows (the signing key and the retired ones still published), read whole.
//!
//! `retired_at` is when a key stopped signing and `unpublish_at` when it leaves the JWKS
//! (the longest token it signed has expired by then); both are NULL for the signing key.
//! At most one key signs: the partial unique index on `retired_at IS NULL` makes replicas
//! that create or rotate keys at the same time collide, and the loser retries into the
//! winner's key. The private key is sealed with the staff KEK (`kek1:…`), never stored
//! in the clear.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261220_000001_create_signing_keys"
    }
}

const STATEMENTS: &[&str] = &[
    "CREATE TABLE signing_keys (
        kid TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        private_key_sealed TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retired_at BIGINT NULL,
        unpublish_at BIGINT NULL,
        PRIMARY KEY (kid)
    )",
    "CREATE UNIQUE INDEX signing_keys_one_signing ON signing_keys ((retired_at IS NULL))
        WHERE retired_at IS NULL",
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        for statement in STATEMENTS {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
