//! The orders the directory's lists are served in (AIP-132 `order_by`). Page sizes, the
//! parsing of `order_by` and the keyset page tokens are `roster_core::paging`'s.

use roster_core::paging::Order;

use super::values::Checked;

/// What ListUsers sorts by, before the tie-breaker `user_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    Email,
    Status,
    Conversations,
    #[default]
    CreatedAt,
    LastActivityAt,
}

impl SortKey {
    pub fn is_text(self) -> bool {
        matches!(self, SortKey::Email | SortKey::Status)
    }
}

pub type UserOrder = Order<SortKey>;

pub fn user_order(value: &str) -> Checked<UserOrder> {
    Order::parse(
        value,
        &[
            ("email", SortKey::Email),
            ("status", SortKey::Status),
            ("conversations", SortKey::Conversations),
            ("conversation_count", SortKey::Conversations),
            ("created_at", SortKey::CreatedAt),
            ("last_activity_at", SortKey::LastActivityAt),
        ],
        "email, status, conversations, created_at or last_activity_at",
    )
}

/// What ListCustomers sorts by, before the tie-breaker `customer_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerSortKey {
    #[default]
    CustomerId,
    Name,
    CreatedAt,
    UpdatedAt,
}

pub type CustomerOrder = Order<CustomerSortKey>;

pub fn customer_order(value: &str) -> Checked<CustomerOrder> {
    Order::parse(
        value,
        &[
            ("customer_id", CustomerSortKey::CustomerId),
            ("name", CustomerSortKey::Name),
            ("created_at", CustomerSortKey::CreatedAt),
            ("updated_at", CustomerSortKey::UpdatedAt),
        ],
        "customer_id, name, created_at or updated_at",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_knows_its_own_fields() {
        assert_eq!(user_order("").ok(), Some(UserOrder::default()));
        assert_eq!(UserOrder::default().key, SortKey::CreatedAt);
        assert_eq!(
            user_order("conversation_count desc").ok(),
            Some(UserOrder {
                key: SortKey::Conversations,
                descending: true
            })
        );
        assert!(user_order("name").is_err());
        assert_eq!(
            customer_order("Name desc").ok(),
            Some(CustomerOrder {
                key: CustomerSortKey::Name,
                descending: true
            })
        );
        assert_eq!(CustomerOrder::default().key, CustomerSortKey::CustomerId);
        assert!(customer_order("email").is_err());
    }
}
