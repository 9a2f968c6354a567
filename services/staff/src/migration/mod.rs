//! The staff service's schema, owned by this service alone. Migrations run for real in
//! tests (never `create_table_from_entity`), so what is tested is what production gets.

mod m20261210_000001_create_staff;
mod m20261215_000002_sign_in;
mod m20261216_000003_service_accounts;
mod m20261217_000004_token_revocations;
mod m20261220_000001_create_signing_keys;
mod m20261220_000010_roles_teams;
mod m20261222_000001_request_ids;
mod m20261222_000001_sso;

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(roster_db::outbox::CreateOutboxTable),
            Box::new(m20261210_000001_create_staff::Migration),
            Box::new(m20261215_000002_sign_in::Migration),
            Box::new(m20261216_000003_service_accounts::Migration),
            Box::new(m20261217_000004_token_revocations::Migration),
            Box::new(m20261220_000001_create_signing_keys::Migration),
            Box::new(m20261220_000010_roles_teams::Migration),
            Box::new(m20261222_000001_request_ids::Migration),
            Box::new(m20261222_000001_sso::Migration),
            Box::new(roster_db::delivery::AddDeliveryState),
            Box::new(roster_db::outbox::ADD_TRACEPARENT),
            Box::new(roster_db::delivery::ADD_WORKSPACE_DUE_INDEX),
        ]
    }
}
