//! The audit service's schema, owned by this service alone. Migrations run for real in
//! tests (never `create_table_from_entity`), so what is tested is what production gets.

mod m20261224_000001_create_audit_log;

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261224_000001_create_audit_log::Migration)]
    }
}
