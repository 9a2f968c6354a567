//! What an agent may do in its workspace and why, and what a caller may grant.
//!
//! One pure function, [`effective_access`], decides an agent's permissions from its role,
//! its teams and its extra grants, so ExplainAccess, GetEffectivePermissions, the audit
//! events' permission sets and (later) the tokens Login issues cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::roles::RoleGrant;

/// A team as its members hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamGrant {
    pub team_id: Uuid,
    pub name: String,
    pub permissions: BTreeSet<String>,
}

/// Why an agent holds a permission.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Its role (built-in or custom) carries it.
    Role { role_id: String, name: String },
    /// A team it is a member of carries it.
    Team { team_id: Uuid, name: String },
    /// It was granted to the agent alone.
    Extra,
}

/// An agent's effective access in one workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectiveAccess {
    /// The role's name, as tokens carry it.
    pub role: String,
    /// Every permission held.
    pub permissions: BTreeSet<String>,
    /// Each held permission's reasons, role first, then teams by name, then the extra grant.
    pub sources: BTreeMap<String, Vec<Source>>,
}

impl EffectiveAccess {
    /// Why the agent holds `permission`; empty when it does not.
    pub fn sources_of(&self, permission: &str) -> &[Source] {
        self.sources.get(permission).map_or(&[], Vec::as_slice)
    }
}

/// An agent's permissions: its role's ∪ its teams' ∪ its extra grants, each with every
/// reason it is held.
pub fn effective_access(
    role: &RoleGrant,
    teams: &[TeamGrant],
    extra: &[String],
) -> EffectiveAccess {
    let mut sources: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    for permission in &role.permissions {
        sources
            .entry(permission.clone())
            .or_default()
            .push(Source::Role {
                role_id: role.role_id.clone(),
                name: role.name.clone(),
            });
    }
    let mut teams: Vec<&TeamGrant> = teams.iter().collect();
    teams.sort_by(|a, b| {
        (a.name.to_lowercase(), a.team_id).cmp(&(b.name.to_lowercase(), b.team_id))
    });
    for team in teams {
        for permission in &team.permissions {
            sources
                .entry(permission.clone())
                .or_default()
                .push(Source::Team {
                    team_id: team.team_id,
                    name: team.name.clone(),
                });
        }
    }
    for permission in extra.iter().collect::<BTreeSet<_>>() {
        sources
            .entry(permission.clone())
            .or_default()
            .push(Source::Extra);
    }
    EffectiveAccess {
        role: role.name.clone(),
        permissions: sources.keys().cloned().collect(),
        sources,
    }
}

/// What a caller holds in a workspace, and so what it may grant there: nobody grants a
/// role, team permission or extra permission they do not hold themself. Built from the
/// caller's token by `api::authz::granter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granter {
    admin: bool,
    held: BTreeSet<String>,
}

/// A refused grant: what was to be granted and the permissions the caller lacks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotHeld {
    pub what: String,
    /// Empty when only the admin role may grant it.
    pub missing: Vec<String>,
}

impl NotHeld {
    pub fn message(&self) -> String {
        if self.missing.is_empty() {
            format!("granting {} needs the admin role", self.what)
        } else {
            format!(
                "granting {} needs holding what it grants; the caller lacks {}",
                self.what,
                self.missing.join(", ")
            )
        }
    }
}

impl Granter {
    pub fn new(admin: bool, held: BTreeSet<String>) -> Self {
        Granter { admin, held }
    }

    /// Checks that the caller holds every one of `permissions`, granted as `what` (a phrase
    /// such as "the role 'Team Lead'").
    pub fn may_grant<'a>(
        &self,
        what: impl FnOnce() -> String,
        permissions: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), NotHeld> {
        if self.admin {
            return Ok(());
        }
        let missing: BTreeSet<String> = permissions
            .into_iter()
            .filter(|permission| !self.held.contains(*permission))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NotHeld {
                what: what(),
                missing: missing.into_iter().collect(),
            })
        }
    }

    /// A role may be granted by who holds all it carries; the admin role by admins only,
    /// since it also carries every permission yet to come.
    pub fn may_grant_role(&self, role: &RoleGrant) -> Result<(), NotHeld> {
        let what = || format!("the role '{}'", role.name);
        if role.is_admin() && !self.admin {
            return Err(NotHeld {
                what: what(),
                missing: Vec::new(),
            });
        }
        self.may_grant(what, &role.permissions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Role;
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn team(name: &str, permissions: &[&str]) -> TeamGrant {
        TeamGrant {
            team_id: Uuid::now_v7(),
            name: name.to_owned(),
            permissions: set(permissions),
        }
    }

    #[test]
    fn access_is_role_teams_and_extra_with_every_reason() {
        let lead = RoleGrant {
            role_id: Uuid::now_v7().to_string(),
            name: "Team Lead".into(),
            built_in: None,
            permissions: set(&["tickets.work", "macros.manage"]),
        };
        let billing = team("Billing", &["billing.manage", "macros.manage"]);
        let vip = team("vip", &["tickets.view_all"]);
        let access = effective_access(
            &lead,
            &[vip.clone(), billing.clone()],
            &["macros.manage".into(), "data.export".into()],
        );
        assert_eq!(access.role, "Team Lead");
        assert_eq!(
            access.permissions,
            set(&[
                "billing.manage",
                "data.export",
                "macros.manage",
                "tickets.view_all",
                "tickets.work"
            ])
        );
        assert_eq!(
            access.sources_of("macros.manage"),
            [
                Source::Role {
                    role_id: lead.role_id.clone(),
                    name: "Team Lead".into()
                },
                Source::Team {
                    team_id: billing.team_id,
                    name: "Billing".into()
                },
                Source::Extra,
            ]
        );
        assert_eq!(access.sources_of("data.export"), [Source::Extra]);
        assert!(access.sources_of("tickets.delete").is_empty());
    }

    #[test]
    fn the_admin_role_holds_every_catalogue_permission_and_a_viewer_none() {
        let admin = effective_access(&RoleGrant::built_in(Role::Admin), &[], &[]);
        assert_eq!(
            admin.permissions.len(),
            roster_auth::catalogues::all_permissions().count()
        );
        let viewer = effective_access(&RoleGrant::built_in(Role::Viewer), &[], &[]);
        assert!(viewer.permissions.is_empty());
        assert_eq!(viewer.role, "viewer");
    }

    #[test]
    fn grants_need_holding_what_is_granted() {
        let admin = Granter::new(true, BTreeSet::new());
        assert!(
            admin
                .may_grant_role(&RoleGrant::built_in(Role::Admin))
                .is_ok()
        );
        let manager = Granter::new(
            false,
            set(&["end_users.write", "macros.use", "tickets.work"]),
        );
        assert!(
            manager
                .may_grant_role(&RoleGrant::built_in(Role::Agent))
                .is_ok()
        );
        assert!(
            manager
                .may_grant_role(&RoleGrant::built_in(Role::Viewer))
                .is_ok()
        );
        let refused = manager
            .may_grant_role(&RoleGrant::built_in(Role::Admin))
            .unwrap_err();
        assert!(refused.message().contains("admin role"));
        let refused = manager
            .may_grant(
                || "the team 'Billing'".into(),
                &set(&["billing.manage", "tickets.work"]),
            )
            .unwrap_err();
        assert_eq!(refused.missing, ["billing.manage"]);
        assert!(refused.message().contains("'Billing'"));
    }
}
