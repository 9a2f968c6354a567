//! SeaORM reads and writes. Functions take any `ConnectionTrait`, so the service layer
//! decides what runs inside which transaction.

pub mod bulk;
pub mod customers;
pub mod identities;
pub mod request_ids;
pub mod search;
pub mod settings;
pub mod users;
pub mod views;

use sea_orm::{ActiveModelTrait, EntityTrait, Iterable, ModelTrait};

/// The columns that differ between two versions of a row, as an update that writes only
/// them (so an unchanged search column does not re-index, and the audit diff and the SQL
/// agree on what changed).
pub(crate) fn changed_columns<M, A>(before: &M, after: &M) -> A
where
    M: ModelTrait,
    A: ActiveModelTrait<Entity = M::Entity>,
{
    let mut changes = A::default();
    for column in <M::Entity as EntityTrait>::Column::iter() {
        let value = after.get(column);
        if before.get(column) != value {
            changes.set(column, value);
        }
    }
    changes
}
