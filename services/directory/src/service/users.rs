use rand::Rng;
use roster_db::outbox;
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use uuid::Uuid;

use super::customers::customer_unusable;
use super::{Actor, Directory, RequestKey, check_etag, in_write_txn};
use crate::domain::changes::{is_personal_user_field, user_changes};
use crate::domain::filter::UserFilter;
use crate::domain::order::UserOrder;
use crate::domain::user_fields::{UserValues, refresh_derived};
use crate::domain::{ChatAccess, IdentitySource, UserField, UserStatus};
use crate::entity::end_user;
use crate::error::{DirectoryError, END_USER_RESOURCE, Result, reason};
use crate::store;
use crate::store::search::{UserQuery, cursor_after};
use roster_core::paging::{Cursor, query_fingerprint};

/// A user with its identities, as the API returns it.
#[derive(Clone, Debug)]
pub struct UserView {
    pub user: end_user::Model,
    /// (source, key) pairs, ordered by source then key.
    pub identities: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub enum Lookup {
    ExternalId(String),
    Email(String),
    Identity(IdentitySource, String),
}

impl Lookup {
    /// The key as `ResourceInfo` names a user that was looked up by it.
    fn key_name(&self) -> String {
        match self {
            Lookup::ExternalId(id) => format!("external_id:{id}"),
            Lookup::Email(email) => format!("email:{email}"),
            Lookup::Identity(source, key) => format!("identity:{}:{key}", source.as_str()),
        }
    }
}

fn status_of(user: &end_user::Model) -> Result<UserStatus> {
    UserStatus::parse(&user.status).ok_or_else(|| {
        DirectoryError::Internal(format!(
            "end-user {} has unknown status '{}'",
            user.user_id, user.status
        ))
    })
}

pub(super) fn blank_user(
    workspace_id: &str,
    user_id: Uuid,
    status: UserStatus,
    now: i64,
) -> end_user::Model {
    let mut user = end_user::Model {
        workspace_id: workspace_id.to_owned(),
        user_id,
        external_id: String::new(),
        email: String::new(),
        email_key: String::new(),
        name: String::new(),
        avatar_url: String::new(),
        customer_id: String::new(),
        status: status.as_str().to_owned(),
        restore_status: None,
        title: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        phone: String::new(),
        mobile: String::new(),
        fax: String::new(),
        street: String::new(),
        zip: String::new(),
        city: String::new(),
        country: String::new(),
        notes: String::new(),
        search_text: String::new(),
        created_at: now,
        updated_at: now,
        confirmed_at: None,
        last_activity_at: 0,
        deleted_at: None,
        deactivated_at: None,
        conversation_count: 0,
        merged_into: None,
        version: 1,
    };
    refresh_derived(&mut user);
    user
}

impl Directory {
    pub(super) async fn view<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: end_user::Model,
    ) -> Result<UserView> {
        let mut identities =
            store::identities::of_users(conn, &user.workspace_id, &[user.user_id]).await?;
        let identities = identities.remove(&user.user_id).unwrap_or_default();
        Ok(UserView {
            user,
            identities: identities
                .into_iter()
                .map(|i| (i.source, i.identity_key))
                .collect(),
        })
    }

    pub async fn get_user(&self, workspace_id: &str, user_id: Uuid) -> Result<UserView> {
        let (user, identities) =
            store::views::user_with_identities(self.db.conn(), workspace_id, user_id)
                .await?
                .ok_or_else(|| DirectoryError::user_not_found(user_id))?;
        Ok(UserView { user, identities })
    }

    pub async fn lookup_user(&self, workspace_id: &str, lookup: &Lookup) -> Result<UserView> {
        let conn = self.db.conn();
        let found = match lookup {
            Lookup::ExternalId(external_id) => {
                store::users::find_by_external_id(conn, workspace_id, external_id).await?
            }
            Lookup::Email(email) => store::users::find_by_email(conn, workspace_id, email).await?,
            Lookup::Identity(source, key) => {
                match store::identities::owner(conn, workspace_id, *source, key).await? {
                    Some(user_id) => store::users::get(conn, workspace_id, user_id).await?,
                    None => None,
                }
            }
        };
        let user = found.ok_or_else(|| {
            DirectoryError::not_found(
                reason::END_USER_NOT_FOUND,
                (END_USER_RESOURCE, lookup.key_name()),
                "no end-user in this workspace matches that key",
            )
        })?;
        self.view(conn, user).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn list_users(
        &self,
        workspace_id: &str,
        filter_text: &str,
        filter: &UserFilter,
        order_text: &str,
        order: UserOrder,
        show_deleted: bool,
        page_size: u64,
        page_token: &str,
    ) -> Result<(Vec<UserView>, String)> {
        let show = if show_deleted { "all" } else { "live" };
        let fingerprint = query_fingerprint(&["users", filter_text, order_text, show]);
        let cursor = Cursor::decode(page_token, &fingerprint)?;
        let conn = self.db.conn();
        let query = UserQuery {
            workspace_id,
            filter,
            order,
            show_deleted,
            cursor: cursor.as_ref(),
            limit: page_size + 1,
        };
        let mut users = store::search::list_users(conn, &query).await?;
        let next = if users.len() as u64 > page_size {
            users.truncate(page_size as usize);
            users
                .last()
                .map(|(last, _)| cursor_after(last, order, fingerprint).encode())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let views = users
            .into_iter()
            .map(|(user, identities)| UserView { user, identities })
            .collect();
        Ok((views, next))
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        values: UserValues,
        status: UserStatus,
        request: Option<RequestKey>,
    ) -> Result<UserView> {
        let now = self.now_us();
        let mut user = blank_user(workspace_id, Uuid::now_v7(), status, now);
        values.apply(&mut user);
        if user.external_id.is_empty() && user.email.is_empty() {
            return Err(DirectoryError::invalid(
                "user",
                "external_id or email is required",
            ));
        }
        if status == UserStatus::Active {
            user.confirmed_at = Some(now);
        }
        let conn = self.db.conn();
        if let Some(result) = self.replayed(conn, workspace_id, request.as_ref()).await? {
            return self.replayed_user(conn, workspace_id, &result).await;
        }
        self.check_require_customer(conn, &user).await?;
        // No read-before-write for duplicates: the partial unique indexes decide, and a
        // violation is explained afterwards. The request id is recorded with the user, so a
        // retry racing the first attempt meets it at the request_ids key. Nor for the
        // customer: every insert is conditional on it being live and locks it while it
        // writes, so DeleteCustomer cannot slip in between (`WhileLive`).
        let live = store::customers::WhileLive::customer(workspace_id, &user.customer_id);
        let written = self
            .insert_atomically_counting(false, || {
                let event = self.event(
                    actor,
                    workspace_id,
                    "end_user.created",
                    ("end_user", user.user_id.to_string()),
                    user_changes(None, &user),
                );
                let mut inserts = vec![live.insert(user.clone().into_active_model().reset_all())?];
                if let Some(key) = &request {
                    let row = self.request_row(workspace_id, key, user.user_id.to_string());
                    inserts.push(live.insert(row.into_active_model().reset_all())?);
                }
                inserts.push(live.insert(outbox::to_active_model(&event)?)?);
                Ok(((), inserts))
            })
            .await;
        match written {
            Ok(((), 0)) if live.is_guarded() => {
                let found = store::customers::get(conn, workspace_id, &user.customer_id).await?;
                Err(customer_unusable(&user.customer_id, found.as_ref()))
            }
            Ok(_) => Ok(UserView {
                user,
                identities: Vec::new(),
            }),
            Err(DirectoryError::Database(roster_db::DbError::UniqueViolation { .. })) => {
                self.resolve_duplicate(&user, request.as_ref()).await
            }
            Err(other) => Err(other),
        }
    }

    /// Answers a unique-index violation on create: a concurrent retry with the same request
    /// id gets the user the first attempt created, whichever index it ran into first (the
    /// retry carries the same e-mail, so that index may fire before the request id's);
    /// otherwise the caller learns who holds the external id or e-mail.
    async fn resolve_duplicate(
        &self,
        user: &end_user::Model,
        request: Option<&RequestKey>,
    ) -> Result<UserView> {
        let conn = self.db.conn();
        if let Some(result) = self.replayed(conn, &user.workspace_id, request).await? {
            return self.replayed_user(conn, &user.workspace_id, &result).await;
        }
        store::users::ensure_unique_keys(conn, user).await?;
        Err(DirectoryError::AlreadyExists(
            "another live end-user in this workspace has this external id or e-mail".into(),
        ))
    }

    /// The user a replayed request created or changed, as it is now.
    async fn replayed_user<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        result: &str,
    ) -> Result<UserView> {
        let user_id = replayed_user_id(result)?;
        let user = store::users::require(conn, workspace_id, user_id).await?;
        self.view(conn, user).await
    }

    /// Enforces "every end-user belongs to a customer" when the workspace asks for it, and
    /// that a named customer is live (only import paths create or restore customers on the
    /// fly), locking it until the caller's transaction ends so it stays live.
    pub(super) async fn check_customer_rule<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: &end_user::Model,
    ) -> Result<()> {
        self.check_require_customer(conn, user).await?;
        if !user.customer_id.is_empty() {
            self.lock_live_customer(conn, &user.workspace_id, &user.customer_id)
                .await?;
        }
        Ok(())
    }

    /// "Every end-user belongs to a customer", when the workspace asks for it.
    async fn check_require_customer<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: &end_user::Model,
    ) -> Result<()> {
        if user.customer_id.is_empty()
            && user.status != UserStatus::Guest.as_str()
            && self
                .current_rules(conn, &user.workspace_id)
                .await?
                .require_customer
        {
            return Err(DirectoryError::failed_precondition(
                reason::CUSTOMER_REQUIRED,
                "this workspace requires every end-user to belong to a customer; set customer_id",
            ));
        }
        Ok(())
    }

    /// Reads a user, applies `change`, and writes it with its audit event, all in one
    /// transaction. `change` may refuse with an error (wrong state for the call).
    pub(super) async fn change_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
        action: &str,
        change: impl Fn(&mut end_user::Model, i64) -> Result<()>,
    ) -> Result<UserView> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::users::require(conn, workspace_id, user_id).await?;
            check_etag(expected_version, before.version)?;
            let now = self.now_us();
            let mut after = before.clone();
            change(&mut after, now)?;
            if after == before {
                return self.view(conn, before).await;
            }
            after.version += 1;
            after.updated_at = now;
            let mut events = Vec::new();
            // A user that joins a customer, or comes back to life in one (UndeleteUser),
            // needs it live; one that stays live in it is counted by DeleteCustomer.
            let retired = |user: &end_user::Model| {
                UserStatus::parse(&user.status).is_some_and(UserStatus::is_retired)
            };
            if after.customer_id != before.customer_id {
                self.check_customer_rule(conn, &after).await?;
            } else if retired(&before) && !retired(&after) && !after.customer_id.is_empty() {
                self.lock_live_customer(conn, workspace_id, &after.customer_id)
                    .await?;
            }
            store::users::ensure_unique_keys(conn, &after).await?;
            if !store::users::update(conn, &before, &after).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            events.push(self.event(
                actor,
                workspace_id,
                action,
                ("end_user", user_id.to_string()),
                user_changes(Some(&before), &after),
            ));
            outbox::append(conn, &events).await?;
            self.view(conn, after).await
        })
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
        values: UserValues,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.updated",
            |user, _| {
                let status = status_of(user)?;
                if status.is_retired() {
                    return Err(DirectoryError::failed_precondition(
                        reason::END_USER_STATUS,
                        format!("end-user {} is {status}; it cannot be edited", user.user_id),
                    ));
                }
                if status == UserStatus::Guest
                    && (values.get(UserField::Email).is_some_and(|e| !e.is_empty()))
                {
                    return Err(DirectoryError::failed_precondition(
                        reason::END_USER_STATUS,
                        "guests get an e-mail through IdentifyGuest",
                    ));
                }
                let old_email = user.email_key.clone();
                values.apply(user);
                if user.external_id.is_empty()
                    && user.email.is_empty()
                    && status != UserStatus::Guest
                {
                    return Err(DirectoryError::invalid(
                        "update_mask",
                        "an end-user needs an external_id or an email; both would be empty",
                    ));
                }
                // A new address has not been confirmed by anyone, whatever the status: a
                // deactivated user must not come back active with it.
                if user.email_key != old_email && !user.email.is_empty() {
                    user.confirmed_at = None;
                    if status == UserStatus::Active {
                        user.status = UserStatus::Unconfirmed.as_str().to_owned();
                    }
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn deactivate_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.deactivated",
            |user, now| match status_of(user)? {
                UserStatus::Deactivated => Ok(()),
                status if status.is_retired() => Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!(
                        "end-user {} is {status}; it cannot be deactivated",
                        user.user_id
                    ),
                )),
                status => {
                    user.restore_status = Some(status.as_str().to_owned());
                    user.status = UserStatus::Deactivated.as_str().to_owned();
                    user.deactivated_at = Some(now);
                    Ok(())
                }
            },
        )
        .await
    }

    pub async fn reactivate_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.reactivated",
            |user, _| match status_of(user)? {
                UserStatus::Deactivated => {
                    user.status = settled_status(user).as_str().to_owned();
                    user.restore_status = None;
                    user.deactivated_at = None;
                    Ok(())
                }
                status if status.is_retired() => Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!(
                        "end-user {} is {status}; use UndeleteUser for deleted users",
                        user.user_id
                    ),
                )),
                _ => Ok(()),
            },
        )
        .await
    }

    pub async fn delete_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.deleted",
            |user, now| match status_of(user)? {
                UserStatus::Deleted => Ok(()),
                status if status.is_retired() => Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!(
                        "end-user {} is {status}; it cannot be deleted",
                        user.user_id
                    ),
                )),
                // Deactivation stays marked on the user and its `restore_status` stays what
                // deactivation saved, so undelete can bring both back.
                UserStatus::Deactivated => {
                    user.status = UserStatus::Deleted.as_str().to_owned();
                    user.deleted_at = Some(now);
                    Ok(())
                }
                status => {
                    user.restore_status = Some(status.as_str().to_owned());
                    user.status = UserStatus::Deleted.as_str().to_owned();
                    user.deleted_at = Some(now);
                    Ok(())
                }
            },
        )
        .await
    }

    pub async fn undelete_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.undeleted",
            |user, _| match status_of(user)? {
                UserStatus::Deleted => {
                    undelete(user);
                    Ok(())
                }
                status => Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!("end-user {} is {status}, not deleted", user.user_id),
                )),
            },
        )
        .await
    }

    pub async fn confirm_user_email(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.email_confirmed",
            |user, now| match status_of(user)? {
                UserStatus::Unconfirmed => {
                    user.status = UserStatus::Active.as_str().to_owned();
                    user.confirmed_at = Some(now);
                    Ok(())
                }
                UserStatus::Active => Ok(()),
                status => Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!(
                        "end-user {} is {status}; only unconfirmed users can confirm an e-mail",
                        user.user_id
                    ),
                )),
            },
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn record_activity(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
        occurred_at_us: Option<i64>,
        conversations: i64,
        request: Option<RequestKey>,
    ) -> Result<UserView> {
        // A retry racing its first call meets it at the request id's key; run again, it
        // finds the recorded result.
        in_write_txn!(self, retry_unique = request.is_some(), |txn| {
            let conn = &*txn;
            if let Some(result) = self.replayed(conn, workspace_id, request.as_ref()).await? {
                return self.replayed_user(conn, workspace_id, &result).await;
            }
            let before = store::users::require(conn, workspace_id, user_id).await?;
            check_etag(expected_version, before.version)?;
            let status = status_of(&before)?;
            if status.is_retired() {
                return Err(DirectoryError::failed_precondition(
                    reason::END_USER_STATUS,
                    format!("end-user {user_id} is {status}; activity cannot be recorded"),
                ));
            }
            let now = self.now_us();
            let at = occurred_at_us.unwrap_or(now);
            store::users::add_activity(conn, workspace_id, user_id, at, conversations, now).await?;
            let after = store::users::require(conn, workspace_id, user_id).await?;
            let event = self.event(
                actor,
                workspace_id,
                "end_user.activity_recorded",
                ("end_user", user_id.to_string()),
                user_changes(Some(&before), &after),
            );
            outbox::append(conn, &[event]).await?;
            self.record_request(conn, workspace_id, request.as_ref(), user_id.to_string())
                .await?;
            self.view(conn, after).await
        })
    }

    pub async fn create_guest(
        &self,
        actor: &Actor,
        workspace_id: &str,
        name: String,
        request: Option<RequestKey>,
    ) -> Result<UserView> {
        let conn = self.db.conn();
        if let Some(result) = self.replayed(conn, workspace_id, request.as_ref()).await? {
            return self.replayed_user(conn, workspace_id, &result).await;
        }
        let rules = self.current_rules(conn, workspace_id).await?;
        if rules.chat_access != ChatAccess::Anyone {
            return Err(DirectoryError::failed_precondition(
                reason::GUESTS_NOT_ADMITTED,
                "this workspace does not admit guests (chat access is not ANYONE)",
            ));
        }
        let written = self
            .insert_atomically(true, || {
                let now = self.now_us();
                let mut user = blank_user(workspace_id, Uuid::now_v7(), UserStatus::Guest, now);
                // Nine random digits, as the chatbot shows guests; a collision hits the
                // unique index and the write is retried with new digits.
                let digits: u32 = rand::rng().random_range(100_000_000..1_000_000_000);
                user.external_id = format!("g-{digits}");
                user.name = name.clone();
                refresh_derived(&mut user);
                let event = self.event(
                    actor,
                    workspace_id,
                    "end_user.guest_created",
                    ("end_user", user.user_id.to_string()),
                    user_changes(None, &user),
                );
                let mut inserts = vec![store::users::insert_statement(&user)];
                if let Some(key) = &request {
                    inserts.push(self.request_statement(
                        workspace_id,
                        key,
                        user.user_id.to_string(),
                    ));
                }
                inserts.push(outbox::insert_statement(&[event])?);
                Ok((user, inserts))
            })
            .await;
        match written {
            Ok(user) => Ok(UserView {
                user,
                identities: Vec::new(),
            }),
            // A retry that raced its first call lost at the request id's key.
            Err(error @ DirectoryError::Database(roster_db::DbError::UniqueViolation { .. })) => {
                match self.replayed(conn, workspace_id, request.as_ref()).await? {
                    Some(result) => self.replayed_user(conn, workspace_id, &result).await,
                    None => Err(error),
                }
            }
            Err(other) => Err(other),
        }
    }

    pub async fn identify_guest(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
        values: UserValues,
        email_verified: bool,
    ) -> Result<UserView> {
        self.change_user(
            actor,
            workspace_id,
            user_id,
            expected_version,
            "end_user.identified",
            |user, now| {
                let status = status_of(user)?;
                if status != UserStatus::Guest {
                    return Err(DirectoryError::failed_precondition(
                        reason::END_USER_STATUS,
                        format!("end-user {user_id} is {status}, not a guest"),
                    ));
                }
                values.apply(user);
                if user.external_id.starts_with("g-") && values.get(UserField::ExternalId).is_none()
                {
                    user.external_id.clear();
                    if user.email.is_empty() {
                        return Err(DirectoryError::invalid(
                            "external_id",
                            "external_id or email is required to identify a guest",
                        ));
                    }
                    refresh_derived(user);
                }
                if email_verified && !user.email.is_empty() {
                    user.status = UserStatus::Active.as_str().to_owned();
                    user.confirmed_at = Some(now);
                } else {
                    user.status = UserStatus::Unconfirmed.as_str().to_owned();
                }
                Ok(())
            },
        )
        .await
    }

    /// Erases a person: the user and every user merged into it (directly or down a chain
    /// of merges), whose records held the same person's data. Each gets an
    /// `end_user.erased` event and an erasure request for the audit service
    /// (`outbox::ERASURE_REQUESTED`), and the pending events about them lose their personal
    /// values in the same transaction.
    pub async fn erase_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<UserView> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let subject = store::users::require(conn, workspace_id, user_id).await?;
            check_etag(expected_version, subject.version)?;
            let mut people = vec![subject];
            people.extend(store::users::merged_chain(conn, workspace_id, user_id).await?);
            let ids: Vec<String> = people.iter().map(|u| u.user_id.to_string()).collect();
            outbox::redact_pending(conn, workspace_id, "end_user", &ids, is_personal_user_field)
                .await?;
            let now = self.now_us();
            let mut events = Vec::new();
            let mut erased_subject = None;
            for before in people {
                let after = if before.status == UserStatus::Erased.as_str() {
                    before
                } else {
                    self.erase_one(conn, actor, before, now, &mut events)
                        .await?
                };
                if after.user_id == user_id {
                    erased_subject = Some(after);
                }
            }
            if !events.is_empty() {
                outbox::append(conn, &events).await?;
            }
            let user = erased_subject.ok_or_else(|| DirectoryError::user_not_found(user_id))?;
            Ok(UserView {
                user,
                identities: Vec::new(),
            })
        })
    }

    /// Scrubs one user for good and adds its `end_user.erased` event to `events`.
    async fn erase_one<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        before: end_user::Model,
        now: i64,
        events: &mut Vec<outbox::AuditEvent>,
    ) -> Result<end_user::Model> {
        let workspace_id = before.workspace_id.as_str();
        let mut after = blank_user(
            workspace_id,
            before.user_id,
            UserStatus::Erased,
            before.created_at,
        );
        after.updated_at = now;
        after.deleted_at = Some(now);
        after.version = before.version + 1;
        store::identities::delete_all(conn, workspace_id, before.user_id).await?;
        if !store::users::update(conn, &before, &after).await? {
            return Err(DirectoryError::Database(roster_db::DbError::Conflict));
        }
        // The event names the fields that were scrubbed but never their values: an audit
        // trail must not keep what erasure removed.
        let scrubbed = user_changes(Some(&before), &after)
            .into_iter()
            .map(|change| outbox::FieldChange {
                field: change.field,
                before: None,
                after: None,
            })
            .collect();
        events.push(self.event(
            actor,
            workspace_id,
            "end_user.erased",
            ("end_user", before.user_id.to_string()),
            scrubbed,
        ));
        // The audit service erases the person from its log when the relay delivers this
        // request (EraseSubject, the row's id naming the erasure): committed with the
        // erasure, so it cannot be lost. A request, not a record of the caller, so it
        // carries no address or user agent.
        let mut request = self.event(
            actor,
            workspace_id,
            outbox::ERASURE_REQUESTED,
            ("end_user", before.user_id.to_string()),
            Vec::new(),
        );
        request.peer_ip = None;
        request.user_agent = None;
        events.push(request);
        Ok(after)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn merge_users(
        &self,
        actor: &Actor,
        workspace_id: &str,
        (source_id, source_version): (Uuid, Option<i64>),
        (target_id, target_version): (Uuid, Option<i64>),
        request: Option<RequestKey>,
    ) -> Result<(UserView, UserView)> {
        if source_id == target_id {
            return Err(DirectoryError::invalid(
                "target_user_id",
                "must differ from source_user_id",
            ));
        }
        in_write_txn!(self, retry_unique = request.is_some(), |txn| {
            let conn = &*txn;
            if self
                .replayed(conn, workspace_id, request.as_ref())
                .await?
                .is_some()
            {
                let target = store::users::require(conn, workspace_id, target_id).await?;
                let source = store::users::require(conn, workspace_id, source_id).await?;
                return Ok((
                    self.view(conn, target).await?,
                    self.view(conn, source).await?,
                ));
            }
            let source_before = store::users::require(conn, workspace_id, source_id).await?;
            let target_before = store::users::require(conn, workspace_id, target_id).await?;
            check_etag(source_version, source_before.version)?;
            check_etag(target_version, target_before.version)?;
            for (role, user) in [("source", &source_before), ("target", &target_before)] {
                let status = status_of(user)?;
                if status.is_retired() {
                    return Err(DirectoryError::failed_precondition(
                        reason::END_USER_STATUS,
                        format!(
                            "the {role} end-user {} is {status}; it cannot be merged",
                            user.user_id
                        ),
                    ));
                }
            }
            let now = self.now_us();
            let mut target = target_before.clone();
            target.conversation_count += source_before.conversation_count;
            target.last_activity_at = target.last_activity_at.max(source_before.last_activity_at);
            target.created_at = target.created_at.min(source_before.created_at);
            // The target keeps its own values; the source fills only the gaps.
            for field in UserField::ALL {
                if field.get(&target).is_empty()
                    && field != UserField::ExternalId
                    && field != UserField::Email
                {
                    field.set(&mut target, field.get(&source_before).to_owned());
                }
            }
            target.version += 1;
            target.updated_at = now;

            // The source keeps its id, its link and its timestamps; its values went to the
            // target or are dropped, so erasing the person later leaves no copy behind.
            let mut source = blank_user(
                workspace_id,
                source_id,
                UserStatus::Merged,
                source_before.created_at,
            );
            source.merged_into = Some(target_id);
            source.confirmed_at = source_before.confirmed_at;
            source.last_activity_at = source_before.last_activity_at;
            source.deleted_at = source_before.deleted_at;
            source.version = source_before.version + 1;
            source.updated_at = now;
            // The source's keys may now be given to the target without a unique clash.
            if !store::users::update(conn, &source_before, &source).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            if target.email.is_empty() && !source_before.email.is_empty() {
                UserField::Email.set(&mut target, source_before.email.clone());
            }
            if target.external_id.is_empty() && !source_before.external_id.is_empty() {
                UserField::ExternalId.set(&mut target, source_before.external_id.clone());
            }
            if !store::users::update(conn, &target_before, &target).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            let moved =
                store::identities::move_all(conn, workspace_id, source_id, target_id).await?;
            let mut target_event = user_changes(Some(&target_before), &target);
            target_event.push(outbox::FieldChange {
                field: "merged_from_user_id".into(),
                before: None,
                after: Some(serde_json::json!({ "user_id": source_id.to_string(), "identities_moved": moved })),
            });
            let events = [
                self.event(
                    actor,
                    workspace_id,
                    "end_user.merged",
                    ("end_user", source_id.to_string()),
                    user_changes(Some(&source_before), &source),
                ),
                self.event(
                    actor,
                    workspace_id,
                    "end_user.merge_received",
                    ("end_user", target_id.to_string()),
                    target_event,
                ),
            ];
            outbox::append(conn, &events).await?;
            self.record_request(conn, workspace_id, request.as_ref(), target_id.to_string())
                .await?;
            let target = self.view(conn, target).await?;
            let source = self.view(conn, source).await?;
            Ok((target, source))
        })
    }
}

/// The user id a request id recorded as its result.
pub(super) fn replayed_user_id(result: &str) -> Result<Uuid> {
    Uuid::parse_str(result).map_err(|_| {
        DirectoryError::Internal(format!("request id result '{result}' is not a user id"))
    })
}

/// Back to the status the user had before deletion: deactivated if it was (still
/// remembering what it was before that), otherwise its settled status. Every path that
/// un-deletes (UndeleteUser, UpsertUser, imports) goes through here.
pub(super) fn undelete(user: &mut end_user::Model) {
    user.deleted_at = None;
    if user.deactivated_at.is_some() {
        user.status = UserStatus::Deactivated.as_str().to_owned();
    } else {
        user.status = settled_status(user).as_str().to_owned();
        user.restore_status = None;
    }
}

/// The status a deactivated or deleted user returns to. Only guests are remembered in
/// `restore_status`: between active and unconfirmed `confirmed_at` decides, since it is what
/// chat access trusts, so no chain of calls can turn an unconfirmed user active.
fn settled_status(user: &end_user::Model) -> UserStatus {
    if user.restore_status.as_deref() == Some(UserStatus::Guest.as_str()) {
        UserStatus::Guest
    } else if user.confirmed_at.is_some() {
        UserStatus::Active
    } else {
        UserStatus::Unconfirmed
    }
}
