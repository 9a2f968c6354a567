//! The named permissions a role can hold. Each service registers its own in a catalogue
//! (name and what it allows, for people choosing them), its authorization checks only
//! names from that catalogue, and the staff service's custom roles will offer the union of
//! every service's catalogue.

/// One permission, e.g. `end_users.delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// `<resource>.<verb>`, lower case: what tokens carry in `permissions`.
    pub name: &'static str,
    /// What holding it allows, in words an administrator picking a role understands.
    pub description: &'static str,
}

/// A service's permissions.
#[derive(Clone, Copy, Debug)]
pub struct PermissionCatalogue {
    /// The service that checks them (`directory`).
    pub service: &'static str,
    pub permissions: &'static [Permission],
}

impl PermissionCatalogue {
    /// The permission named `name`, if this service has it.
    pub fn get(&self, name: &str) -> Option<&'static Permission> {
        self.permissions
            .iter()
            .find(|permission| permission.name == name)
    }

    /// Names that break the catalogue's rules: not `<resource>.<verb>` in lower-case
    /// letters, digits and `_`, listed twice, or undescribed. Empty for a sound catalogue;
    /// each service tests its own.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, permission) in self.permissions.iter().enumerate() {
            let well_formed = permission
                .name
                .split_once('.')
                .is_some_and(|(resource, verb)| {
                    [resource, verb].iter().all(|part| {
                        !part.is_empty()
                            && part
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    })
                });
            if !well_formed {
                problems.push(format!("'{}' is not <resource>.<verb>", permission.name));
            }
            if self.permissions[..index]
                .iter()
                .any(|earlier| earlier.name == permission.name)
            {
                problems.push(format!("'{}' is listed twice", permission.name));
            }
            if permission.description.trim().is_empty() {
                problems.push(format!("'{}' has no description", permission.name));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: Permission = Permission {
        name: "end_users.delete",
        description: "Delete end-users",
    };

    #[test]
    fn a_sound_catalogue_has_no_problems_and_finds_its_names() {
        let catalogue = PermissionCatalogue {
            service: "test",
            permissions: &[GOOD],
        };
        assert!(catalogue.problems().is_empty());
        assert_eq!(catalogue.get("end_users.delete"), Some(&GOOD));
        assert_eq!(catalogue.get("end_users.erase"), None);
    }

    #[test]
    fn malformed_repeated_and_undescribed_names_are_problems() {
        let catalogue = PermissionCatalogue {
            service: "test",
            permissions: &[
                GOOD,
                GOOD,
                Permission {
                    name: "Delete",
                    description: "x",
                },
                Permission {
                    name: "a.b",
                    description: " ",
                },
            ],
        };
        assert_eq!(
            catalogue.problems(),
            [
                "'end_users.delete' is listed twice",
                "'Delete' is not <resource>.<verb>",
                "'a.b' has no description",
            ]
        );
    }
}
