//! Stored rows and domain values to protobuf messages and back. Incoming messages are
//! destructured field by field, so a new proto field fails to compile until handled here.

use prost_types::Timestamp;
use roster_proto::directory::v1 as pb;

use crate::domain::user_fields::UserValues;
use crate::domain::values::FieldViolation;
use crate::domain::widget_token::{RegisteredWidgetKey, WidgetKeyAlgorithm, validate_public_key};
use crate::domain::{ChatAccess, CustomerStatus, IdentitySource, UserField, UserStatus};
use crate::entity::customer;
use crate::error::DirectoryError;
use crate::service::{
    ChatAccessDenial, DEFAULT_WIDGET_TOKEN_MAX_LIFETIME_SECONDS, MAX_WIDGET_GRACE_SECONDS,
    SettingsPatch, UserExport, UserView, WIDGET_TOKEN_MAX_LIFETIME_BOUNDS, WorkspaceSettings, etag,
    parse_etag,
};
use roster_service::relay::convert as relay_convert;

pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

pub fn optional_timestamp(us: Option<i64>) -> Option<Timestamp> {
    us.filter(|us| *us > 0).map(timestamp)
}

pub fn timestamp_us(field: &str, ts: &Timestamp) -> Result<i64, FieldViolation> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(FieldViolation::new(field, "nanos must be within 0..1e9"));
    }
    ts.seconds
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(i64::from(ts.nanos / 1_000)))
        .filter(|us| *us >= 0)
        .ok_or_else(|| FieldViolation::new(field, "is out of range"))
}

pub fn user_status(status: &str) -> pb::UserStatus {
    match UserStatus::parse(status) {
        Some(UserStatus::Active) => pb::UserStatus::Active,
        Some(UserStatus::Unconfirmed) => pb::UserStatus::Unconfirmed,
        Some(UserStatus::Deactivated) => pb::UserStatus::Deactivated,
        Some(UserStatus::Guest) => pb::UserStatus::Guest,
        Some(UserStatus::Deleted) => pb::UserStatus::Deleted,
        Some(UserStatus::Merged) => pb::UserStatus::Merged,
        Some(UserStatus::Erased) => pb::UserStatus::Erased,
        None => pb::UserStatus::Unspecified,
    }
}

pub fn identity_source_to_pb(source: &str) -> pb::IdentitySource {
    match IdentitySource::parse(source) {
        Some(IdentitySource::Email) => pb::IdentitySource::Email,
        Some(IdentitySource::Widget) => pb::IdentitySource::Widget,
        Some(IdentitySource::Slack) => pb::IdentitySource::Slack,
        Some(IdentitySource::MsTeams) => pb::IdentitySource::Msteams,
        Some(IdentitySource::Csv) => pb::IdentitySource::Csv,
        None => pb::IdentitySource::Unspecified,
    }
}

pub fn identity_source(field: &str, value: i32) -> Result<IdentitySource, FieldViolation> {
    match pb::IdentitySource::try_from(value) {
        Ok(pb::IdentitySource::Email) => Ok(IdentitySource::Email),
        Ok(pb::IdentitySource::Widget) => Ok(IdentitySource::Widget),
        Ok(pb::IdentitySource::Slack) => Ok(IdentitySource::Slack),
        Ok(pb::IdentitySource::Msteams) => Ok(IdentitySource::MsTeams),
        Ok(pb::IdentitySource::Csv) => Ok(IdentitySource::Csv),
        Ok(pb::IdentitySource::Unspecified) => Err(FieldViolation::new(field, "is required")),
        Err(_) => Err(FieldViolation::new(
            field,
            format!("{value} is not an IdentitySource"),
        )),
    }
}

pub fn user(view: UserView) -> pb::User {
    let UserView { user, identities } = view;
    pb::User {
        user_id: user.user_id.to_string(),
        workspace_id: user.workspace_id,
        external_id: user.external_id,
        email: user.email,
        name: user.name,
        avatar_url: user.avatar_url,
        customer_id: user.customer_id,
        status: user_status(&user.status) as i32,
        title: user.title,
        first_name: user.first_name,
        last_name: user.last_name,
        phone: user.phone,
        mobile: user.mobile,
        fax: user.fax,
        street: user.street,
        zip: user.zip,
        city: user.city,
        country: user.country,
        notes: user.notes,
        identities: identities
            .into_iter()
            .map(|(source, key)| pb::Identity {
                source: identity_source_to_pb(&source) as i32,
                key,
            })
            .collect(),
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
        confirmed_at: optional_timestamp(user.confirmed_at),
        last_activity_at: optional_timestamp(Some(user.last_activity_at)),
        deleted_at: optional_timestamp(user.deleted_at),
        conversation_count: user.conversation_count,
        merged_into_user_id: user
            .merged_into
            .map(|id| id.to_string())
            .unwrap_or_default(),
        etag: etag(user.version),
    }
}

/// The profile values of a `User` message paired with their fields; output-only fields
/// are ignored, as AIP-203 asks.
pub fn user_values(message: pb::User) -> Vec<(UserField, String)> {
    let pb::User {
        user_id: _,
        workspace_id: _,
        external_id,
        email,
        name,
        avatar_url,
        customer_id,
        status: _,
        title,
        first_name,
        last_name,
        phone,
        mobile,
        fax,
        street,
        zip,
        city,
        country,
        notes,
        identities: _,
        created_at: _,
        updated_at: _,
        confirmed_at: _,
        last_activity_at: _,
        deleted_at: _,
        conversation_count: _,
        merged_into_user_id: _,
        etag: _,
    } = message;
    vec![
        (UserField::ExternalId, external_id),
        (UserField::Email, email),
        (UserField::Name, name),
        (UserField::AvatarUrl, avatar_url),
        (UserField::CustomerId, customer_id),
        (UserField::Title, title),
        (UserField::FirstName, first_name),
        (UserField::LastName, last_name),
        (UserField::Phone, phone),
        (UserField::Mobile, mobile),
        (UserField::Fax, fax),
        (UserField::Street, street),
        (UserField::Zip, zip),
        (UserField::City, city),
        (UserField::Country, country),
        (UserField::Notes, notes),
    ]
}

/// The profile values an UpdateUser changes, chosen by its update mask (AIP-134, see
/// `api::update_mask`).
pub fn masked_user_values(
    message: pb::User,
    mask: Option<prost_types::FieldMask>,
) -> Result<UserValues, DirectoryError> {
    let given = user_values(message);
    let updatable = UserField::ALL.map(UserField::name);
    let wanted = super::update_mask::fields_to_update(mask, "user", &updatable, |name| {
        given
            .iter()
            .any(|(field, value)| field.name() == name && !value.is_empty())
    })?;
    let given = given
        .into_iter()
        .filter(|(field, _)| wanted.iter().any(|name| name == field.name()));
    Ok(UserValues::check("user.", given, true)?)
}

pub fn customer_status_to_pb(status: &str) -> pb::CustomerStatus {
    match CustomerStatus::parse(status) {
        Some(CustomerStatus::Active) => pb::CustomerStatus::Active,
        Some(CustomerStatus::Inactive) => pb::CustomerStatus::Inactive,
        Some(CustomerStatus::InactiveTemporarily) => pb::CustomerStatus::InactiveTemporarily,
        None => pb::CustomerStatus::Unspecified,
    }
}

pub fn customer_status(field: &str, value: i32) -> Result<CustomerStatus, FieldViolation> {
    match pb::CustomerStatus::try_from(value) {
        Ok(pb::CustomerStatus::Active) => Ok(CustomerStatus::Active),
        Ok(pb::CustomerStatus::Inactive) => Ok(CustomerStatus::Inactive),
        Ok(pb::CustomerStatus::InactiveTemporarily) => Ok(CustomerStatus::InactiveTemporarily),
        Ok(pb::CustomerStatus::Unspecified) => Err(FieldViolation::new(field, "is required")),
        Err(_) => Err(FieldViolation::new(
            field,
            format!("{value} is not a CustomerStatus"),
        )),
    }
}

/// A `Customer` message as CreateCustomer and UpdateCustomer read it: the id and etag
/// checked, the writable values as sent (each call checks the ones it writes), output-only
/// fields ignored (AIP-203).
pub struct CustomerInput {
    pub customer_id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub notes: String,
    pub expected_version: Option<i64>,
}

impl TryFrom<pb::Customer> for CustomerInput {
    type Error = DirectoryError;

    fn try_from(message: pb::Customer) -> Result<Self, DirectoryError> {
        let pb::Customer {
            customer_id,
            workspace_id: _,
            name,
            status: _,
            domains,
            notes,
            created_at: _,
            updated_at: _,
            etag,
            deleted_at: _,
        } = message;
        Ok(CustomerInput {
            customer_id: crate::domain::values::customer_id("customer.customer_id", &customer_id)?,
            name,
            domains,
            notes,
            expected_version: parse_etag("customer.etag", &etag)?,
        })
    }
}

/// # Errors
///
/// The stored domains do not parse (FAILED_PRECONDITION, repaired by setting them again).
pub fn customer(model: customer::Model) -> Result<pb::Customer, DirectoryError> {
    let domains = serde_json::from_str(&model.domains).map_err(|error| {
        DirectoryError::unreadable_stored_value(
            &model.workspace_id,
            &format!("the stored domains of customer '{}'", model.customer_id),
            &error.to_string(),
            "set them again with UpdateCustomer",
        )
    })?;
    Ok(pb::Customer {
        customer_id: model.customer_id,
        workspace_id: model.workspace_id,
        name: model.name,
        status: customer_status_to_pb(&model.status) as i32,
        domains,
        notes: model.notes,
        created_at: Some(timestamp(model.created_at)),
        updated_at: Some(timestamp(model.updated_at)),
        etag: etag(model.version),
        deleted_at: optional_timestamp(model.deleted_at),
    })
}

/// An export as its message: the audit service's events as recorded, then the outbox's
/// as the relay will deliver them.
///
/// # Errors
///
/// The customer's stored domains do not parse.
pub fn user_export(export: UserExport) -> Result<pb::UserExport, DirectoryError> {
    let UserExport {
        user: view,
        customer: customer_model,
        merged,
        recorded,
        pending,
        export_event,
    } = export;
    let source = crate::startup::SERVICE.name;
    let mut audit_events = recorded;
    audit_events.extend(
        pending
            .iter()
            .map(|event| relay_convert::audit_event(event, source)),
    );
    Ok(pb::UserExport {
        user: Some(user(view)),
        customer: customer_model.map(customer).transpose()?,
        merged_users: merged.into_iter().map(user).collect(),
        audit_events,
        exported_at: Some(timestamp(export_event.occurred_at_us)),
        export_event_id: export_event.event_id.to_string(),
    })
}

pub fn chat_access_to_pb(access: ChatAccess) -> pb::ChatAccess {
    match access {
        ChatAccess::Anyone => pb::ChatAccess::Anyone,
        ChatAccess::Identified => pb::ChatAccess::Identified,
        ChatAccess::Confirmed => pb::ChatAccess::Confirmed,
    }
}

pub fn chat_access(field: &str, value: i32) -> Result<ChatAccess, FieldViolation> {
    match pb::ChatAccess::try_from(value) {
        Ok(pb::ChatAccess::Anyone | pb::ChatAccess::Unspecified) => Ok(ChatAccess::Anyone),
        Ok(pb::ChatAccess::Identified) => Ok(ChatAccess::Identified),
        Ok(pb::ChatAccess::Confirmed) => Ok(ChatAccess::Confirmed),
        Err(_) => Err(FieldViolation::new(
            field,
            format!("{value} is not a ChatAccess"),
        )),
    }
}

pub fn chat_access_denial_to_pb(denial: Option<ChatAccessDenial>) -> pb::ChatAccessDenialReason {
    match denial {
        None => pb::ChatAccessDenialReason::Unspecified,
        Some(ChatAccessDenial::UserDeactivated) => pb::ChatAccessDenialReason::UserDeactivated,
        Some(ChatAccessDenial::UserRetired) => pb::ChatAccessDenialReason::UserRetired,
        Some(ChatAccessDenial::GuestNotAdmitted) => pb::ChatAccessDenialReason::GuestNotAdmitted,
        Some(ChatAccessDenial::EmailNotConfirmed) => pb::ChatAccessDenialReason::EmailNotConfirmed,
        Some(ChatAccessDenial::CustomerInactive) => pb::ChatAccessDenialReason::CustomerInactive,
    }
}

pub fn settings(settings: WorkspaceSettings) -> pb::WorkspaceSettings {
    let WorkspaceSettings {
        workspace_id,
        chat_access,
        require_customer,
        widget_keys,
        widget_secret_set,
        previous_secret_expires_at: _,
        widget_secret_grace_seconds,
        widget_token_max_lifetime_seconds,
        updated_at,
        version,
    } = settings;
    pb::WorkspaceSettings {
        workspace_id,
        chat_access: chat_access_to_pb(chat_access) as i32,
        require_customer,
        widget_keys: widget_keys
            .into_iter()
            .map(|key| pb::WidgetKey {
                kid: key.kid,
                algorithm: key.algorithm.as_str().to_owned(),
                public_key_pem: key.public_key_pem,
            })
            .collect(),
        widget_secret_set,
        widget_secret_grace_seconds,
        updated_at: optional_timestamp(Some(updated_at)),
        etag: etag(version),
        widget_token_max_lifetime_seconds,
    }
}

/// What an UpdateWorkspaceSettings request changes, checked: built from its settings and
/// the paths of its `update_mask`. Every field is destructured, so a new `WorkspaceSettings`
/// field does not compile until it is handled here.
pub struct SettingsUpdate {
    pub patch: SettingsPatch,
    pub expected_version: Option<i64>,
}

impl TryFrom<(pb::WorkspaceSettings, &[String])> for SettingsUpdate {
    type Error = DirectoryError;

    /// Only the fields the mask names are read; output-only fields are ignored (AIP-203).
    fn try_from(
        (settings, paths): (pb::WorkspaceSettings, &[String]),
    ) -> Result<Self, Self::Error> {
        let pb::WorkspaceSettings {
            workspace_id: _,
            chat_access: access,
            require_customer,
            widget_keys,
            widget_secret_set: _,
            widget_secret_grace_seconds,
            updated_at: _,
            etag,
            widget_token_max_lifetime_seconds,
        } = settings;
        let mut patch = SettingsPatch::default();
        let mut violations = Vec::new();
        for path in paths {
            match path.strip_prefix("settings.").unwrap_or(path) {
                "chat_access" => match chat_access("settings.chat_access", access) {
                    Ok(access) => patch.chat_access = Some(access),
                    Err(violation) => violations.push(violation),
                },
                "require_customer" => patch.require_customer = Some(require_customer),
                "widget_secret_grace_seconds" => {
                    if (0..=MAX_WIDGET_GRACE_SECONDS).contains(&widget_secret_grace_seconds) {
                        patch.widget_secret_grace_seconds = Some(widget_secret_grace_seconds);
                    } else {
                        violations.push(FieldViolation::new(
                            "settings.widget_secret_grace_seconds",
                            format!("must be between 0 and {MAX_WIDGET_GRACE_SECONDS} (30 days)"),
                        ));
                    }
                }
                "widget_token_max_lifetime_seconds" => {
                    // Unset (0) is the default, as `*` sends for a field it resets.
                    let lifetime = match widget_token_max_lifetime_seconds {
                        0 => DEFAULT_WIDGET_TOKEN_MAX_LIFETIME_SECONDS,
                        seconds => seconds,
                    };
                    if WIDGET_TOKEN_MAX_LIFETIME_BOUNDS.contains(&lifetime) {
                        patch.widget_token_max_lifetime_seconds = Some(lifetime);
                    } else {
                        violations.push(FieldViolation::new(
                            "settings.widget_token_max_lifetime_seconds",
                            format!(
                                "must be between {} (a minute) and {} (30 days)",
                                WIDGET_TOKEN_MAX_LIFETIME_BOUNDS.start(),
                                WIDGET_TOKEN_MAX_LIFETIME_BOUNDS.end()
                            ),
                        ));
                    }
                }
                "widget_keys" => patch.widget_keys = Some(registered_widget_keys(&widget_keys, &mut violations)),
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("'{other}' cannot be updated; updatable: chat_access, require_customer, widget_keys, widget_secret_grace_seconds, widget_token_max_lifetime_seconds"),
                )),
            }
        }
        if !violations.is_empty() {
            return Err(DirectoryError::Invalid(violations));
        }
        Ok(Self {
            patch,
            expected_version: parse_etag("settings.etag", &etag)?,
        })
    }
}

/// The keys to register, each checked (algorithm, PEM, unique kid); problems go to
/// `violations` with the index of the key.
fn registered_widget_keys(
    keys: &[pb::WidgetKey],
    violations: &mut Vec<FieldViolation>,
) -> Vec<RegisteredWidgetKey> {
    let mut registered: Vec<RegisteredWidgetKey> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let pb::WidgetKey {
            kid,
            algorithm,
            public_key_pem,
        } = key;
        let field = format!("settings.widget_keys[{index}]");
        let Some(algorithm) = WidgetKeyAlgorithm::parse(algorithm) else {
            violations.push(FieldViolation::new(
                format!("{field}.algorithm"),
                format!("'{algorithm}' is not RS256 or ES256"),
            ));
            continue;
        };
        let key = RegisteredWidgetKey {
            kid: kid.clone(),
            algorithm,
            public_key_pem: public_key_pem.clone(),
        };
        if let Err(why) = validate_public_key(&key) {
            violations.push(FieldViolation::new(field, why));
            continue;
        }
        if registered.iter().any(|known| known.kid == key.kid) {
            violations.push(FieldViolation::new(
                format!("{field}.kid"),
                format!("'{}' is used twice", key.kid),
            ));
            continue;
        }
        registered.push(key);
    }
    registered
}
