//! The directory's schema, owned by this service alone. Migrations run for real in tests
//! (never `create_table_from_entity`), so what is tested is what production gets.

mod m20261123_000002_create_directory;
mod m20261202_000003_status_history_and_erasure;
mod m20261202_000004_widget_token_lifetime;
mod m20261202_000005_request_ids;
mod m20261202_000006_customer_soft_delete;

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(roster_db::outbox::CreateOutboxTable),
            Box::new(m20261123_000002_create_directory::Migration),
            Box::new(m20261202_000003_status_history_and_erasure::Migration),
            Box::new(m20261202_000004_widget_token_lifetime::Migration),
            Box::new(m20261202_000005_request_ids::Migration),
            Box::new(m20261202_000006_customer_soft_delete::Migration),
            Box::new(roster_db::delivery::AddDeliveryState),
            Box::new(roster_db::outbox::ADD_TRACEPARENT),
            Box::new(roster_db::delivery::ADD_WORKSPACE_DUE_INDEX),
        ]
    }
}
