//! Who may do what: every authorization decision of the HTTP API is made here.
//!
//! | operation | roles | scope |
//! |---|---|---|
//! | look a permit up | customs, authority-officer, authority-admin, secretariat, auditor | own Party is the issuer, importer, exporter or addressee; the Secretariat and auditors see all |
//! | read a message's status | authority-officer, authority-admin, secretariat, auditor | own Party sent it or is its addressee |
//! | list, create, remove, unlock users; create API clients | authority-admin (own Party; not secretariat or auditor roles), secretariat (any) | |
//! | read audit events and a permit's timeline | authority-officer, authority-admin, secretariat, auditor | own Party acted, issued the permit or is its addressee; the Secretariat and auditors see all |
//! | verify the audit chain; place and lift legal holds | secretariat, auditor | |
//! | record an annual report's date | secretariat (any Party), authority-admin (own Party) | |

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Principal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Secretariat,
    AuthorityAdmin,
    AuthorityOfficer,
    Customs,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Self::Secretariat,
        Self::AuthorityAdmin,
        Self::AuthorityOfficer,
        Self::Customs,
        Self::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secretariat => "secretariat",
            Self::AuthorityAdmin => "authority-admin",
            Self::AuthorityOfficer => "authority-officer",
            Self::Customs => "customs",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Roles that see every Party's records.
    pub fn is_global(self) -> bool {
        matches!(self, Self::Secretariat | Self::Auditor)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| {
            format!(
                "unknown role {text:?}: expected one of {}",
                Self::ALL.map(Role::as_str).join(", ")
            )
        })
    }
}

pub const PERMIT_READERS: &[Role] = &[
    Role::Customs,
    Role::AuthorityOfficer,
    Role::AuthorityAdmin,
    Role::Secretariat,
    Role::Auditor,
];
pub const MESSAGE_READERS: &[Role] = &[
    Role::AuthorityOfficer,
    Role::AuthorityAdmin,
    Role::Secretariat,
    Role::Auditor,
];
pub const USER_MANAGERS: &[Role] = &[Role::AuthorityAdmin, Role::Secretariat];
pub const AUDIT_READERS: &[Role] = &[
    Role::AuthorityOfficer,
    Role::AuthorityAdmin,
    Role::Secretariat,
    Role::Auditor,
];
pub const AUDIT_CHECKERS: &[Role] = &[Role::Secretariat, Role::Auditor];

impl Principal {
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|role| roles.contains(role))
    }

    /// Whether this caller sees every Party's records.
    pub fn is_global(&self) -> bool {
        self.roles.iter().any(|role| role.is_global())
    }

    /// Whether this caller may see a record that concerns the given Parties.
    pub fn sees_any_of<'a>(&self, parties: impl IntoIterator<Item = &'a str>) -> bool {
        if self.is_global() {
            return true;
        }
        let Some(own) = self.party.as_deref() else {
            return false;
        };
        parties.into_iter().any(|party| party == own)
    }

    /// Returns the Party whose audit events this caller is limited to, or `None` for
    /// callers who read every Party's events. Call only after checking [`AUDIT_READERS`].
    pub fn audit_scope(&self) -> Option<&str> {
        if self.is_global() {
            None
        } else {
            // A user without a Party and without a global role matches no event.
            Some(self.party.as_deref().unwrap_or(""))
        }
    }

    /// Whether this caller may record the annual-report date of `party`.
    pub fn may_record_annual_report(&self, party: &str) -> bool {
        self.roles.contains(&Role::Secretariat)
            || (self.roles.contains(&Role::AuthorityAdmin) && self.party.as_deref() == Some(party))
    }

    /// Whether this caller may create or change a user of `party` with `roles`.
    pub fn may_manage_user(&self, party: Option<&str>, roles: &[Role]) -> bool {
        if self.roles.contains(&Role::Secretariat) {
            return true;
        }
        self.roles.contains(&Role::AuthorityAdmin)
            && party.is_some()
            && party == self.party.as_deref()
            && !roles.iter().any(|role| role.is_global())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(party: Option<&str>, roles: &[Role]) -> Principal {
        Principal {
            username: "someone".to_owned(),
            full_name: "Some One".to_owned(),
            party: party.map(str::to_owned),
            roles: roles.to_vec(),
            client_id: None,
        }
    }

    #[test]
    fn officer_sees_only_own_party() {
        let officer = principal(Some("CH"), &[Role::AuthorityOfficer]);
        assert!(officer.sees_any_of(["DE", "CH"]));
        assert!(!officer.sees_any_of(["DE", "FR"]));
    }

    #[test]
    fn secretariat_and_auditor_see_all() {
        assert!(principal(None, &[Role::Secretariat]).sees_any_of(["DE"]));
        assert!(principal(None, &[Role::Auditor]).sees_any_of(["DE"]));
    }

    #[test]
    fn admin_manages_only_own_party_and_no_global_roles() {
        let admin = principal(Some("CH"), &[Role::AuthorityAdmin]);
        assert!(admin.may_manage_user(Some("CH"), &[Role::Customs]));
        assert!(!admin.may_manage_user(Some("DE"), &[Role::Customs]));
        assert!(!admin.may_manage_user(Some("CH"), &[Role::Secretariat]));
        assert!(!admin.may_manage_user(None, &[Role::Auditor]));
        let customs = principal(Some("CH"), &[Role::Customs]);
        assert!(!customs.may_manage_user(Some("CH"), &[Role::Customs]));
    }
}
