//! The rules of an upsert as one pure function, [`decide`]: what UpsertUser, a widget token
//! and every ImportUsers row do to a user and to the customer it names, decided against
//! stored state the caller read beforehand. No I/O: `upsert_in` reads that state for one
//! row in its transaction, an import batch holds it in memory for a thousand rows
//! (`import/batch.rs`), and both write what the [`Decision`] says. Neither has rules of its
//! own, so the two paths cannot drift apart.

use uuid::Uuid;

use super::super::customers::{CustomerChange, CustomerEffect, customer_change};
use super::super::users::{blank_user, undelete};
use super::{UpsertInput, UpsertOutcome, customer_required};
use crate::domain::values::email_key;
use crate::domain::{UserField, UserStatus};
use crate::entity::{customer, end_user};
use crate::error::Result;
use crate::store;

/// A key that only one live user of a workspace may hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(in crate::service) enum Key {
    ExternalId(String),
    Email(String),
}

impl Key {
    /// Whether `user` holds this key now, whatever its status.
    pub(in crate::service) fn held_by(&self, user: &end_user::Model) -> bool {
        match self {
            Key::ExternalId(id) => user.external_id == *id,
            Key::Email(key) => user.email_key == *key,
        }
    }
}

pub(in crate::service) fn is_retired(user: &end_user::Model) -> bool {
    UserStatus::parse(&user.status).is_some_and(UserStatus::is_retired)
}

/// The keys a user holds in the partial unique indexes (none while it is retired).
pub(in crate::service) fn live_keys(user: &end_user::Model) -> Vec<Key> {
    if is_retired(user) {
        return Vec::new();
    }
    held_keys(user)
}

/// The user's external id and e-mail key, where set.
fn held_keys(user: &end_user::Model) -> Vec<Key> {
    let mut keys = Vec::new();
    if !user.external_id.is_empty() {
        keys.push(Key::ExternalId(user.external_id.clone()));
    }
    if !user.email_key.is_empty() {
        keys.push(Key::Email(user.email_key.clone()));
    }
    keys
}

/// Stored users and customers as the caller holds them in memory.
pub(in crate::service) trait Known {
    /// Users of any status that hold `key` now. The caller must know every holder of the
    /// row's own keys and of the keys [`lookups`] names, or the decision is made blind.
    fn holders<'s>(&'s self, key: &Key) -> impl Iterator<Item = &'s end_user::Model>;
    /// The customer as stored, deleted or not; `None` when it does not exist.
    fn customer(&self, customer_id: &str) -> Option<&customer::Model>;
}

/// What a row is decided against besides the row itself.
pub(in crate::service) struct Stored<'a, K> {
    pub workspace_id: &'a str,
    /// The workspace's rule that every end-user but a guest belongs to a customer.
    pub require_customer: bool,
    /// The user the row's identity (source and key) names, merges followed; never an
    /// erased one. Matched before anything else.
    pub by_identity: Option<&'a end_user::Model>,
    pub known: &'a K,
}

// Manual impls: a derive would require `K: Clone`.
impl<K> Clone for Stored<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Stored<'_, K> {}

/// What one row does: the user as stored and as it is to be written, and the change to its
/// customer.
#[derive(Clone, Debug)]
pub(in crate::service) struct Decision {
    /// `None`: the row creates the user.
    pub before: Option<end_user::Model>,
    /// With its version and `updated_at` moved on when it changed.
    pub after: end_user::Model,
    pub outcome: UpsertOutcome,
    pub customer: CustomerChange,
    pub customer_effect: CustomerEffect,
}

/// The user a row means: the one its identity names, else the holder of its external id,
/// else of its e-mail, preferring a live holder to a deleted one (`pick_match`).
pub(in crate::service) fn matched<'k>(
    input: &UpsertInput,
    by_identity: Option<&'k end_user::Model>,
    known: &'k impl Known,
) -> Option<&'k end_user::Model> {
    if by_identity.is_some() {
        return by_identity;
    }
    if let Some(id) = input.values.get(UserField::ExternalId)
        && let Some(user) = store::users::pick_match(known.holders(&Key::ExternalId(id.to_owned())))
    {
        return Some(user);
    }
    let email = input.values.get(UserField::Email)?;
    store::users::pick_match(known.holders(&Key::Email(email_key(email))))
}

/// What [`decide`] looks up beyond the holders of the row's own keys, once the caller knows
/// the row's match: the holders of the keys the user ends up with (the row may keep its
/// match's external id or e-mail) and the customer it ends up in. For a caller that reads
/// state row by row rather than holding it all.
pub(in crate::service) fn lookups(
    input: &UpsertInput,
    matched: Option<&end_user::Model>,
) -> (Vec<Key>, Option<String>) {
    let mut after = match matched {
        Some(user) => user.clone(),
        None => blank_user("", Uuid::nil(), UserStatus::Active, 0),
    };
    input.values.apply(&mut after);
    let customer = (!after.customer_id.is_empty()).then(|| after.customer_id.clone());
    (held_keys(&after), customer)
}

/// Another live user than `user` holding one of its keys: ALREADY_EXISTS naming it (the
/// partial unique indexes enforce the same under concurrency; this says who holds what).
fn ensure_unique_keys(known: &impl Known, user: &end_user::Model) -> Result<()> {
    for key in live_keys(user) {
        let holder = known
            .holders(&key)
            .find(|other| other.user_id != user.user_id && !is_retired(other));
        if let Some(holder) = holder {
            return Err(match key {
                Key::ExternalId(_) => store::users::external_id_taken(user, holder.user_id),
                Key::Email(_) => store::users::email_taken(user, holder.user_id),
            });
        }
    }
    Ok(())
}

/// Decides one upsert: matches the row, applies its values, and settles the customer it
/// names. A user the row creates gets `new_user_id`. An error belongs to the row (ALREADY_EXISTS,
/// FAILED_PRECONDITION, PERMISSION_DENIED) and nothing of it is to be written.
pub(in crate::service) fn decide(
    input: &UpsertInput,
    stored: Stored<'_, impl Known>,
    new_user_id: Uuid,
    now: i64,
) -> Result<Decision> {
    let Stored {
        workspace_id,
        require_customer,
        by_identity,
        known,
    } = stored;
    let before = matched(input, by_identity, known).cloned();
    let mut after = match &before {
        Some(user) => user.clone(),
        None => blank_user(workspace_id, new_user_id, UserStatus::Active, now),
    };
    input.values.apply(&mut after);
    let outcome = match &before {
        None => {
            after.confirmed_at = Some(now);
            UpsertOutcome::Created
        }
        Some(_) if after.status == UserStatus::Deleted.as_str() => {
            undelete(&mut after);
            UpsertOutcome::Undeleted
        }
        Some(before) if *before != after => UpsertOutcome::Updated,
        Some(_) => UpsertOutcome::Unchanged,
    };
    let customer_changed = before
        .as_ref()
        .is_none_or(|b| b.customer_id != after.customer_id);
    // A user that joins a customer, or comes back to one, needs it live; one that stays in
    // its customer keeps it live by being counted by DeleteCustomer.
    let (customer, customer_effect) = if after.customer_id.is_empty() {
        if require_customer && after.status != UserStatus::Guest.as_str() {
            return Err(customer_required());
        }
        (CustomerChange::Keep, CustomerEffect::default())
    } else if customer_changed
        || input.customer_name.is_some()
        || outcome == UpsertOutcome::Undeleted
    {
        customer_change(
            known.customer(&after.customer_id),
            workspace_id,
            &after.customer_id,
            input.customer_name.as_deref(),
            input.customer_renames,
            now,
        )?
    } else {
        (CustomerChange::Keep, CustomerEffect::default())
    };
    match outcome {
        UpsertOutcome::Created => ensure_unique_keys(known, &after)?,
        UpsertOutcome::Updated | UpsertOutcome::Undeleted => {
            after.version += 1;
            after.updated_at = now;
            ensure_unique_keys(known, &after)?;
        }
        UpsertOutcome::Unchanged => {}
    }
    Ok(Decision {
        before,
        after,
        outcome,
        customer,
        customer_effect,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use tonic::Code;

    use super::super::super::customers::{CustomerRenames, imported_customer};
    use super::*;
    use crate::domain::user_fields::UserValues;

    const WS: &str = "ws";
    const NOW: i64 = 1_000_000;
    const EARLIER: i64 = 500;

    /// Users and customers in vectors; lookups scan them.
    #[derive(Default)]
    struct View {
        users: Vec<end_user::Model>,
        customers: Vec<customer::Model>,
    }

    impl Known for View {
        fn holders<'s>(&'s self, key: &Key) -> impl Iterator<Item = &'s end_user::Model> {
            let key = key.clone();
            self.users.iter().filter(move |user| key.held_by(user))
        }

        fn customer(&self, customer_id: &str) -> Option<&customer::Model> {
            self.customers
                .iter()
                .find(|customer| customer.customer_id == customer_id)
        }
    }

    fn stored_user(external_id: &str, email: &str, status: UserStatus) -> end_user::Model {
        let mut user = blank_user(WS, Uuid::now_v7(), UserStatus::Active, EARLIER);
        UserValues::check(
            "",
            [
                (UserField::ExternalId, external_id.to_owned()),
                (UserField::Email, email.to_owned()),
            ],
            false,
        )
        .unwrap()
        .apply(&mut user);
        user.confirmed_at = Some(EARLIER);
        if status == UserStatus::Deleted {
            user.restore_status = Some(user.status.clone());
            user.deleted_at = Some(EARLIER);
        }
        user.status = status.as_str().to_owned();
        user
    }

    fn row(given: &[(UserField, &str)]) -> UpsertInput {
        UpsertInput {
            identity: None,
            values: UserValues::check(
                "",
                given
                    .iter()
                    .map(|(field, value)| (*field, (*value).to_owned())),
                false,
            )
            .unwrap(),
            customer_name: None,
            customer_renames: CustomerRenames::Apply,
        }
    }

    fn decide_in(view: &View, input: &UpsertInput) -> Result<Decision> {
        decide_with(view, input, None, false)
    }

    fn decide_with(
        view: &View,
        input: &UpsertInput,
        by_identity: Option<&end_user::Model>,
        require_customer: bool,
    ) -> Result<Decision> {
        let stored = Stored {
            workspace_id: WS,
            require_customer,
            by_identity,
            known: view,
        };
        decide(input, stored, Uuid::nil(), NOW)
    }

    #[test]
    fn a_row_nobody_holds_creates_a_confirmed_user_with_the_given_id() {
        let decision = decide_in(
            &View::default(),
            &row(&[(UserField::ExternalId, "u1"), (UserField::Name, "Ann")]),
        )
        .unwrap();
        assert_eq!(decision.outcome, UpsertOutcome::Created);
        assert!(decision.before.is_none());
        let user = &decision.after;
        assert_eq!(
            (user.user_id, user.external_id.as_str(), user.name.as_str()),
            (Uuid::nil(), "u1", "Ann")
        );
        assert_eq!((user.confirmed_at, user.version), (Some(NOW), 1));
    }

    #[test]
    fn a_change_moves_the_version_on_and_the_same_values_change_nothing() {
        let user = stored_user("u1", "a@example.com", UserStatus::Active);
        let view = View {
            users: vec![user.clone()],
            ..View::default()
        };
        let renamed = decide_in(
            &view,
            &row(&[(UserField::ExternalId, "u1"), (UserField::Name, "Ann")]),
        )
        .unwrap();
        assert_eq!(renamed.outcome, UpsertOutcome::Updated);
        assert_eq!(renamed.before.as_ref(), Some(&user));
        assert_eq!(
            (renamed.after.version, renamed.after.updated_at),
            (user.version + 1, NOW)
        );
        let same = decide_in(&view, &row(&[(UserField::Email, "A@example.com")])).unwrap();
        assert_eq!(
            same.outcome,
            UpsertOutcome::Updated,
            "the e-mail's case changed"
        );
        let same = decide_in(&view, &row(&[(UserField::Email, "a@example.com")])).unwrap();
        assert_eq!(same.outcome, UpsertOutcome::Unchanged);
        assert_eq!(same.after, user);
    }

    #[test]
    fn external_id_first_then_email_and_identity_before_both() {
        let by_id = stored_user("u1", "one@example.com", UserStatus::Active);
        let by_email = stored_user("u2", "two@example.com", UserStatus::Active);
        let by_identity = stored_user("u3", "three@example.com", UserStatus::Active);
        let view = View {
            users: vec![by_id.clone(), by_email.clone(), by_identity.clone()],
            ..View::default()
        };
        let input = row(&[
            (UserField::ExternalId, "u1"),
            (UserField::Email, "x@example.com"),
        ]);
        let decision = decide_in(&view, &input).unwrap();
        assert_eq!(decision.after.user_id, by_id.user_id);
        let input = row(&[
            (UserField::ExternalId, "u9"),
            (UserField::Email, "two@example.com"),
        ]);
        let decision = decide_in(&view, &input).unwrap();
        assert_eq!(decision.after.user_id, by_email.user_id);
        assert_eq!(decision.after.external_id, "u9");
        let input = row(&[(UserField::Name, "Three")]);
        let decision = decide_with(&view, &input, Some(&by_identity), false).unwrap();
        assert_eq!(
            (decision.after.user_id, decision.outcome),
            (by_identity.user_id, UpsertOutcome::Updated)
        );
    }

    #[test]
    fn a_live_holder_wins_over_a_deleted_one_and_a_deleted_match_comes_back() {
        let deleted = stored_user("u1", "old@example.com", UserStatus::Deleted);
        let view = View {
            users: vec![deleted.clone()],
            ..View::default()
        };
        let decision = decide_in(&view, &row(&[(UserField::ExternalId, "u1")])).unwrap();
        assert_eq!(decision.outcome, UpsertOutcome::Undeleted);
        assert_eq!(decision.after.user_id, deleted.user_id);
        assert_eq!(decision.after.status, UserStatus::Active.as_str());
        assert_eq!(decision.after.deleted_at, None);

        let live = stored_user("u1", "new@example.com", UserStatus::Active);
        let view = View {
            users: vec![deleted, live.clone()],
            ..View::default()
        };
        let decision = decide_in(&view, &row(&[(UserField::ExternalId, "u1")])).unwrap();
        assert_eq!(
            (decision.after.user_id, decision.outcome),
            (live.user_id, UpsertOutcome::Unchanged)
        );
    }

    #[test]
    fn a_key_another_live_user_holds_fails_the_row() {
        let ann = stored_user("u1", "ann@example.com", UserStatus::Active);
        let bob = stored_user("u2", "bob@example.com", UserStatus::Active);
        let view = View {
            users: vec![ann.clone(), bob.clone()],
            ..View::default()
        };
        let error = decide_in(
            &view,
            &row(&[
                (UserField::ExternalId, "u1"),
                (UserField::Email, "bob@example.com"),
            ]),
        )
        .unwrap_err();
        assert_eq!(error.code(), Code::AlreadyExists);
        assert!(
            error.to_string().contains(&bob.user_id.to_string()),
            "{error}"
        );

        // A deleted holder keeps no key.
        let mut gone = bob;
        gone.status = UserStatus::Deleted.as_str().to_owned();
        let view = View {
            users: vec![ann, gone],
            ..View::default()
        };
        let decision = decide_in(
            &view,
            &row(&[
                (UserField::ExternalId, "u1"),
                (UserField::Email, "bob@example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(decision.outcome, UpsertOutcome::Updated);
    }

    #[test]
    fn the_workspace_rule_wants_a_customer_except_for_guests() {
        let input = row(&[(UserField::ExternalId, "u1")]);
        let error = decide_with(&View::default(), &input, None, true).unwrap_err();
        assert_eq!(error.code(), Code::FailedPrecondition);
        let guest = stored_user("u1", "", UserStatus::Guest);
        let view = View {
            users: vec![guest],
            ..View::default()
        };
        let decision = decide_with(&view, &input, None, true).unwrap();
        assert_eq!(decision.outcome, UpsertOutcome::Unchanged);
    }

    #[test]
    fn a_named_customer_is_created_restored_or_renamed_as_allowed() {
        let mut input = row(&[(UserField::ExternalId, "u1"), (UserField::CustomerId, "c1")]);
        input.customer_name = Some("Acme".to_owned());
        let decision = decide_in(&View::default(), &input).unwrap();
        match &decision.customer {
            CustomerChange::Create(created) => assert_eq!(created.name, "Acme"),
            other => panic!("{other:?}"),
        }
        assert!(decision.customer_effect.created);

        let mut deleted = imported_customer(WS, "c1", Some("Old"), EARLIER);
        deleted.deleted_at = Some(EARLIER);
        let view = View {
            customers: vec![deleted],
            ..View::default()
        };
        let decision = decide_in(&view, &input).unwrap();
        match &decision.customer {
            CustomerChange::Update { after, .. } => {
                assert_eq!((after.name.as_str(), after.deleted_at), ("Acme", None));
            }
            other => panic!("{other:?}"),
        }
        assert!(decision.customer_effect.undeleted);

        input.customer_renames = CustomerRenames::Skip;
        let decision = decide_in(&view, &input).unwrap();
        assert!(decision.customer_effect.rename_skipped);
        match &decision.customer {
            CustomerChange::Update { after, .. } => assert_eq!(after.name, "Old"),
            other => panic!("{other:?}"),
        }

        input.customer_renames = CustomerRenames::Refuse;
        let error = decide_in(&view, &input).unwrap_err();
        assert_eq!(error.code(), Code::PermissionDenied);
    }

    #[test]
    fn a_user_staying_in_its_customer_leaves_it_alone_unless_it_comes_back() {
        let mut user = stored_user("u1", "", UserStatus::Active);
        user.customer_id = "c1".to_owned();
        let mut deleted_customer = imported_customer(WS, "c1", None, EARLIER);
        deleted_customer.deleted_at = Some(EARLIER);
        let view = View {
            users: vec![user.clone()],
            customers: vec![deleted_customer],
        };
        let input = row(&[(UserField::ExternalId, "u1"), (UserField::Name, "Ann")]);
        let decision = decide_in(&view, &input).unwrap();
        assert!(matches!(decision.customer, CustomerChange::Keep));

        // Undeleting the user brings its customer back with it, though the row names none.
        let mut gone = user;
        gone.restore_status = Some(gone.status.clone());
        gone.status = UserStatus::Deleted.as_str().to_owned();
        gone.deleted_at = Some(EARLIER);
        let view = View {
            users: vec![gone],
            customers: view.customers,
        };
        let decision = decide_in(&view, &input).unwrap();
        assert_eq!(decision.outcome, UpsertOutcome::Undeleted);
        assert!(decision.customer_effect.undeleted);
        assert!(matches!(decision.customer, CustomerChange::Update { .. }));
    }

    #[test]
    fn lookups_name_the_keys_and_customer_the_user_ends_up_with() {
        let mut user = stored_user("u1", "ann@example.com", UserStatus::Active);
        user.customer_id = "c1".to_owned();
        let input = row(&[(UserField::Email, "Ann.New@example.com")]);
        let (keys, customer) = lookups(&input, Some(&user));
        assert_eq!(
            keys,
            [
                Key::ExternalId("u1".to_owned()),
                Key::Email("ann.new@example.com".to_owned())
            ]
        );
        assert_eq!(customer.as_deref(), Some("c1"));
        let (keys, customer) = lookups(&input, None);
        assert_eq!(keys, [Key::Email("ann.new@example.com".to_owned())]);
        assert_eq!(customer, None);
    }
}
