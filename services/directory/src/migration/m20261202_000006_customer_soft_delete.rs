//! Customers are soft-deleted (AIP-164): `deleted_at` marks them, GetCustomer still returns
//! them, lists hide them unless asked, and UndeleteCustomer or an import brings them back.
//! Also the indexes that serve ListCustomers' orders, each ending in the tie-breaker
//! `customer_id` so a keyset page is one index range.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000006_customer_soft_delete"
    }
}

const STATEMENTS: [&str; 4] = [
    "ALTER TABLE customers ADD COLUMN deleted_at BIGINT NULL",
    "CREATE INDEX customers_by_name ON customers (workspace_id, name, customer_id)",
    "CREATE INDEX customers_by_created ON customers (workspace_id, created_at, customer_id)",
    "CREATE INDEX customers_by_updated ON customers (workspace_id, updated_at, customer_id)",
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
