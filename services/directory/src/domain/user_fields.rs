//! The end-user fields a caller may set, in one table: their API names, how each value is
//! checked, and where it lives in the stored row. Update masks, upserts, imports and
//! audit diffs all go through this list, so a new field is added in one place.

use super::values::{self, Checked, FieldViolation};
use crate::entity::end_user;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserField {
    ExternalId,
    Email,
    Name,
    AvatarUrl,
    CustomerId,
    Title,
    FirstName,
    LastName,
    Phone,
    Mobile,
    Fax,
    Street,
    Zip,
    City,
    Country,
    Notes,
}

impl UserField {
    pub const ALL: [UserField; 16] = [
        UserField::ExternalId,
        UserField::Email,
        UserField::Name,
        UserField::AvatarUrl,
        UserField::CustomerId,
        UserField::Title,
        UserField::FirstName,
        UserField::LastName,
        UserField::Phone,
        UserField::Mobile,
        UserField::Fax,
        UserField::Street,
        UserField::Zip,
        UserField::City,
        UserField::Country,
        UserField::Notes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UserField::ExternalId => "external_id",
            UserField::Email => "email",
            UserField::Name => "name",
            UserField::AvatarUrl => "avatar_url",
            UserField::CustomerId => "customer_id",
            UserField::Title => "title",
            UserField::FirstName => "first_name",
            UserField::LastName => "last_name",
            UserField::Phone => "phone",
            UserField::Mobile => "mobile",
            UserField::Fax => "fax",
            UserField::Street => "street",
            UserField::Zip => "zip",
            UserField::City => "city",
            UserField::Country => "country",
            UserField::Notes => "notes",
        }
    }

    pub fn parse(name: &str) -> Option<UserField> {
        UserField::ALL
            .into_iter()
            .find(|field| field.name() == name)
    }

    /// Checks and normalises a non-empty value. `path` is the field's path in the request
    /// (`user.email`, `row 7: email`) for the violation.
    pub fn check(self, path: &str, value: &str) -> Checked<String> {
        match self {
            UserField::ExternalId => values::external_id(path, value),
            UserField::Email => values::email(path, value),
            UserField::Name => values::text(path, value, values::MAX_NAME_CHARS, false),
            UserField::AvatarUrl => values::url(path, value),
            UserField::CustomerId => values::customer_id(path, value),
            UserField::Phone | UserField::Mobile | UserField::Fax => values::phone(path, value),
            UserField::Notes => values::text(path, value, values::MAX_NOTES_CHARS, true),
            UserField::Title
            | UserField::FirstName
            | UserField::LastName
            | UserField::Street
            | UserField::Zip
            | UserField::City
            | UserField::Country => values::text(path, value, values::MAX_TEXT_CHARS, false),
        }
    }

    pub fn get(self, user: &end_user::Model) -> &str {
        match self {
            UserField::ExternalId => &user.external_id,
            UserField::Email => &user.email,
            UserField::Name => &user.name,
            UserField::AvatarUrl => &user.avatar_url,
            UserField::CustomerId => &user.customer_id,
            UserField::Title => &user.title,
            UserField::FirstName => &user.first_name,
            UserField::LastName => &user.last_name,
            UserField::Phone => &user.phone,
            UserField::Mobile => &user.mobile,
            UserField::Fax => &user.fax,
            UserField::Street => &user.street,
            UserField::Zip => &user.zip,
            UserField::City => &user.city,
            UserField::Country => &user.country,
            UserField::Notes => &user.notes,
        }
    }

    /// Sets the value and keeps the derived columns (e-mail key, search text) in step.
    pub fn set(self, user: &mut end_user::Model, value: String) {
        let slot = match self {
            UserField::ExternalId => &mut user.external_id,
            UserField::Email => &mut user.email,
            UserField::Name => &mut user.name,
            UserField::AvatarUrl => &mut user.avatar_url,
            UserField::CustomerId => &mut user.customer_id,
            UserField::Title => &mut user.title,
            UserField::FirstName => &mut user.first_name,
            UserField::LastName => &mut user.last_name,
            UserField::Phone => &mut user.phone,
            UserField::Mobile => &mut user.mobile,
            UserField::Fax => &mut user.fax,
            UserField::Street => &mut user.street,
            UserField::Zip => &mut user.zip,
            UserField::City => &mut user.city,
            UserField::Country => &mut user.country,
            UserField::Notes => &mut user.notes,
        };
        *slot = value;
        refresh_derived(user);
    }
}

/// Recomputes the columns derived from others.
pub fn refresh_derived(user: &mut end_user::Model) {
    user.email_key = values::email_key(&user.email);
    user.search_text = search_text(&user.email, &user.name, &user.external_id);
}

/// What the trigram indexes search: e-mail, name and external id, lower-cased. A newline
/// separates them so a match cannot straddle two fields.
pub fn search_text(email: &str, name: &str, external_id: &str) -> String {
    format!(
        "{}\n{}\n{}",
        email.to_lowercase(),
        name.to_lowercase(),
        external_id.to_lowercase()
    )
}

/// A set of checked values, keyed by field. Used by create, update and upsert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserValues(Vec<(UserField, String)>);

impl UserValues {
    /// Checks every given value; empty values are kept as "clear this field" only when
    /// `keep_empty` is set (update masks), and dropped otherwise (creates and upserts).
    pub fn check(
        prefix: &str,
        given: impl IntoIterator<Item = (UserField, String)>,
        keep_empty: bool,
    ) -> Result<UserValues, Vec<FieldViolation>> {
        let mut values = Vec::new();
        let mut violations = Vec::new();
        for (field, raw) in given {
            let path = format!("{prefix}{}", field.name());
            if raw.trim().is_empty() {
                if keep_empty {
                    values.push((field, String::new()));
                }
                continue;
            }
            match field.check(&path, &raw) {
                Ok(value) => values.push((field, value)),
                Err(violation) => violations.push(violation),
            }
        }
        if violations.is_empty() {
            Ok(UserValues(values))
        } else {
            Err(violations)
        }
    }

    pub fn get(&self, field: UserField) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, field: UserField, value: String) {
        match self.0.iter_mut().find(|(f, _)| *f == field) {
            Some(slot) => slot.1 = value,
            None => self.0.push((field, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (UserField, &str)> {
        self.0.iter().map(|(f, v)| (*f, v.as_str()))
    }

    /// Writes the values into a row; returns whether anything changed.
    pub fn apply(&self, user: &mut end_user::Model) -> bool {
        let mut changed = false;
        for (field, value) in self.iter() {
            if field.get(user) != value {
                field.set(user, value.to_owned());
                changed = true;
            }
        }
        changed
    }
}
