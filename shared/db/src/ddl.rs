//! Migrations that are one DDL statement each way.

use sea_orm::{ConnectionTrait as _, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, SchemaManager};

/// A migration of one statement up and one down, in a transaction on both backends
/// (SQLite DDL is transactional too; SeaORM would otherwise run it outside one).
pub struct OneStatement {
    /// Recorded in `seaql_migrations`: never change it once released.
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

impl MigrationName for OneStatement {
    fn name(&self) -> &str {
        self.name
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for OneStatement {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(self.up).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.down)
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
