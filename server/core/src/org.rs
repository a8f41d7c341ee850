//! Organizations inside a tenant (the tenant's own customers), their members, roles and
//! permissions, and invitations.

use crate::error::FieldError;
use crate::ids::{InvitationId, OrganizationId, UserId};
use crate::secret::SecretHash;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Deepest nesting: a root organization has depth 0, its children 1, … up to 4.
pub const MAX_DEPTH: u32 = 4;
/// The role whose holders may not all leave.
pub const OWNER: &str = "owner";

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Organization {
    /// Opaque id (`org_…`).
    pub id: OrganizationId,
    /// URL name, unique in the tenant.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Logo (https URL).
    pub logo_url: Option<String>,
    /// Free-form JSON (at most 8 KiB).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The parent, for nested units.
    pub parent_id: Option<OrganizationId>,
    /// 0 for a root organization, the parent's depth + 1 otherwise.
    pub depth: u32,
    /// What users with a verified email at one of its verified domains may do.
    pub domain_join: DomainJoin,
    /// The role such users join with.
    pub domain_join_role: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a verified domain does for users with a verified email there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DomainJoin {
    /// Nothing.
    #[default]
    Off,
    /// They join automatically when their email is verified (and may join on request).
    AutoJoin,
    /// The organization is offered to them (`organizations/discoverable`); they join on request.
    Offer,
}

impl DomainJoin {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::AutoJoin => "auto_join",
            Self::Offer => "offer",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Off, Self::AutoJoin, Self::Offer].into_iter().find(|d| d.as_str() == s)
    }
}

/// A domain claimed by an organization, proven by a DNS TXT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrgDomain {
    /// The organization.
    pub org_id: OrganizationId,
    /// The domain (lowercase).
    pub domain: String,
    /// The value to publish in a TXT record at `_gatehouse-challenge.<domain>`.
    pub verification_token: String,
    /// When the record was found.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    /// When it was claimed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The DNS name whose TXT records prove a domain.
pub fn challenge_name(domain: &str) -> String {
    format!("_gatehouse-challenge.{domain}")
}

/// Checks a domain name: lowercase labels of letters, digits and `-`, at least two.
pub fn check_domain(domain: &str) -> Result<(), FieldError> {
    let labels: Vec<&str> = domain.split('.').collect();
    let ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok { Ok(()) } else { Err(FieldError::new("domain", "must be a lowercase domain name such as example.com")) }
}

/// A user's membership of an organization: one role each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Membership {
    /// The organization.
    pub org_id: OrganizationId,
    /// The member.
    pub user_id: UserId,
    /// The role's key (`owner`, `admin`, `member`, `viewer` or a custom role).
    pub role: String,
    /// When the user joined.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A role: a named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Role {
    /// Key used in memberships (`owner`, `billing-manager`, …).
    pub key: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Permission strings `resource:action`; `*` and `resource:*` are wildcards.
    pub permissions: Vec<String>,
    /// Built in (cannot be changed or deleted).
    pub built_in: bool,
}

/// The built-in roles and their permissions.
pub fn built_in_roles() -> Vec<Role> {
    let role = |key: &str, name: &str, permissions: &[&str]| Role {
        key: key.into(),
        name: name.into(),
        description: None,
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        built_in: true,
    };
    vec![
        role(OWNER, "Owner", &["*"]),
        role(
            "admin",
            "Admin",
            &["org:read", "org:update", "members:read", "members:invite", "members:update", "members:remove"],
        ),
        role("member", "Member", &["org:read", "members:read"]),
        role("viewer", "Viewer", &["org:read"]),
    ]
}

/// The built-in role with this key.
pub fn built_in_role(key: &str) -> Option<Role> {
    built_in_roles().into_iter().find(|r| r.key == key)
}

/// The permission of `granted` that grants `wanted`, if any: an exact match, `*`, or
/// `resource:*` for `resource:action`.
pub fn granting<'a>(granted: &'a [String], wanted: &str) -> Option<&'a str> {
    let resource = wanted.split_once(':').map(|(r, _)| r);
    granted
        .iter()
        .map(String::as_str)
        .find(|g| *g == wanted || *g == "*" || resource.is_some_and(|r| g.strip_suffix(":*") == Some(r)))
}

/// Checks a permission string: `resource:action`, lowercase letters, digits, `_`, `-`
/// and `.`, with `*` allowed as the whole action (or as the whole permission).
pub fn check_permission(p: &str) -> Result<(), String> {
    let word = |w: &str| {
        !w.is_empty()
            && w.len() <= 64
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    };
    match p.split_once(':') {
        _ if p == "*" => Ok(()),
        Some((resource, action)) if word(resource) && (action == "*" || word(action)) => Ok(()),
        _ => Err("must be resource:action (lowercase; `*` as the action for all)".into()),
    }
}

/// Checks a slug (organization or role key): 2 to 63 of `a-z`, `0-9`, `-`, starting
/// with a letter, no trailing or doubled `-`.
pub fn check_slug(field: &str, s: &str) -> Result<(), FieldError> {
    let ok = (2..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be 2 to 63 of a-z, 0-9 and single dashes, starting with a letter"))
    }
}

/// An invitation to join an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Invitation {
    /// Opaque id (`inv_…`).
    pub id: InvitationId,
    /// The organization.
    pub org_id: OrganizationId,
    /// The invited address (normalised).
    pub email: String,
    /// The role granted on acceptance.
    pub role: String,
    /// Hash of the invitation token.
    #[serde(skip)]
    pub token_hash: SecretHash,
    /// Who invited (an operator or key id, or a user id).
    pub invited_by: Option<String>,
    /// Sent.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub accepted_at: Option<OffsetDateTime>,
    /// Revoked (or superseded by a newer invitation).
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_grant_what_they_name_and_nothing_else() {
        let granted = vec!["billing:*".to_owned(), "org:read".to_owned()];
        assert_eq!(granting(&granted, "billing:refund"), Some("billing:*"));
        assert_eq!(granting(&granted, "org:read"), Some("org:read"));
        assert_eq!(granting(&granted, "org:update"), None);
        assert_eq!(granting(&granted, "billingx:refund"), None);
        assert_eq!(granting(&["*".to_owned()], "anything:at-all"), Some("*"));
        for ok in ["a:b", "docs:read", "billing:*", "*", "api.v2:write_all"] {
            assert!(check_permission(ok).is_ok(), "{ok}");
        }
        for bad in ["", "read", "Docs:read", "a:", ":b", "a:b:c", "a:*b", "a b:c"] {
            assert!(check_permission(bad).is_err(), "{bad}");
        }
        assert!(check_slug("slug", "acme-eu").is_ok());
        for bad in ["a", "1acme", "acme-", "ac--me", "Acme"] {
            assert!(check_slug("slug", bad).is_err(), "{bad}");
        }
    }
}
