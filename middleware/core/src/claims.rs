//! The access-token claims: the one definition shared by the server that signs tokens
//! and every service that checks them.

use serde::{Deserialize, Serialize};

/// Built-in organization roles, strongest first. A stronger role satisfies a check for a
/// weaker one; custom roles satisfy only a check for themselves.
pub const BUILT_IN_ORG_ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

/// The claims of a Gatehouse access token (RFC 9068 plus `tid`, `sid` and, for
/// organization-scoped tokens, the organization fields).
///
/// Times are seconds since the Unix epoch. A token whose numeric claims are not
/// numbers does not deserialize, so it never validates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: `{PUBLIC_URL}/t/{slug}`.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// Tenant id.
    pub tid: String,
    /// Session id.
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    pub amr: Vec<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Authentication context class: `aal1` (one factor) or `aal2` (two factors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Organization id (organization-scoped tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Organization slug (organization-scoped tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    /// The user's role in the organization (organization-scoped tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    /// Permissions (`resource:action`) the role grants in the organization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

impl Claims {
    /// The scopes, split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Whether the token grants `permission` (exact match on `resource:action`).
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Whether the token's organization role is `role` or, for built-in roles, a
    /// stronger one (`owner` satisfies `admin`, `member` and `viewer`).
    pub fn has_org_role(&self, role: &str) -> bool {
        let Some(held) = self.org_role.as_deref() else { return false };
        if held == role {
            return true;
        }
        let rank = |r: &str| BUILT_IN_ORG_ROLES.iter().position(|b| *b == r);
        matches!((rank(held), rank(role)), (Some(h), Some(r)) if h <= r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str, role: Option<&str>) -> Claims {
        Claims {
            iss: "https://id.example/t/acme".into(),
            sub: "usr_1".into(),
            aud: "tnt_1".into(),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            tid: "tnt_1".into(),
            sid: "ses_1".into(),
            scope: scope.into(),
            amr: vec!["pwd".into()],
            auth_time: 1,
            acr: None,
            org_id: role.map(|_| "org_1".into()),
            org_slug: None,
            org_role: role.map(Into::into),
            permissions: vec!["docs:read".into()],
        }
    }

    #[test]
    fn scopes_match_whole_words_only() {
        let c = claims("openid  docs:read", None);
        assert!(c.has_scope("docs:read"));
        assert!(c.has_scope("openid"));
        assert!(!c.has_scope("docs"));
        assert!(!c.has_scope(""));
    }

    #[test]
    fn built_in_roles_are_ordered_and_custom_roles_exact() {
        assert!(claims("", Some("owner")).has_org_role("viewer"));
        assert!(claims("", Some("admin")).has_org_role("member"));
        assert!(!claims("", Some("member")).has_org_role("admin"));
        assert!(claims("", Some("billing")).has_org_role("billing"));
        assert!(!claims("", Some("billing")).has_org_role("viewer"));
        assert!(!claims("", Some("owner")).has_org_role("billing"));
        assert!(!claims("", None).has_org_role("viewer"));
    }

    #[test]
    fn organization_fields_are_optional_and_numbers_must_be_numbers() {
        let c = claims("", None);
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("org_id").is_none() && json.get("permissions").is_some());
        let mut bad = json.clone();
        bad["exp"] = serde_json::json!("9999999999");
        assert!(serde_json::from_value::<Claims>(bad).is_err());
        assert_eq!(serde_json::from_value::<Claims>(json).unwrap(), c);
    }
}
