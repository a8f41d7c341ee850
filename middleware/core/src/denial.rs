//! Framework-free HTTP answers for refused requests (RFC 6750 and problem+json), so the
//! axum and actix adapters stay thin and answer identically.

use crate::claims::Claims;
use crate::error::VerifyError;

/// A requirement a route puts on an already valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// The token's `scope` contains this scope.
    Scope(&'a str),
    /// The token's `permissions` contain this permission.
    Permission(&'a str),
    /// The token's `org_role` is this role (or a stronger built-in one).
    OrgRole(&'a str),
}

impl Requirement<'_> {
    /// Checks the requirement.
    pub fn check(&self, claims: &Claims) -> Result<(), Denial> {
        let ok = match self {
            Self::Scope(s) => claims.has_scope(s),
            Self::Permission(p) => claims.has_permission(p),
            Self::OrgRole(r) => claims.has_org_role(r),
        };
        if ok { Ok(()) } else { Err(Denial::insufficient(*self)) }
    }
}

/// How to refuse a request: status, `WWW-Authenticate`, and a problem+json body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status (401, 403 or 503).
    pub status: u16,
    /// The `WWW-Authenticate` header value, when one is due.
    pub www_authenticate: Option<String>,
    /// Stable machine code (`invalid_token`, `insufficient_scope`, `unavailable`).
    pub code: &'static str,
    /// Human-readable detail (never echoes the token).
    pub detail: String,
}

impl Denial {
    /// The answer to a token that failed verification. A missing token gets a bare
    /// challenge (RFC 6750 §3.1: no error code when no credentials were sent); an
    /// outage gets 503, so a verifier that cannot decide never lets a request through.
    pub fn from_error(error: &VerifyError) -> Self {
        match error {
            VerifyError::Missing => Self {
                status: 401,
                www_authenticate: Some("Bearer".into()),
                code: "invalid_token",
                detail: "A bearer token is required.".into(),
            },
            VerifyError::Unavailable(_) => Self {
                status: 503,
                www_authenticate: None,
                code: "unavailable",
                detail: "The token cannot be checked right now.".into(),
            },
            other => Self {
                status: 401,
                www_authenticate: Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    other.to_string().replace('"', "'")
                )),
                code: "invalid_token",
                detail: format!("The access token was refused: {other}."),
            },
        }
    }

    /// The answer to a valid token that lacks what the route needs.
    pub fn insufficient(requirement: Requirement<'_>) -> Self {
        let (www, detail) = match requirement {
            Requirement::Scope(s) => (
                format!("Bearer error=\"insufficient_scope\", scope=\"{s}\""),
                format!("This route needs the scope `{s}`."),
            ),
            Requirement::Permission(p) => {
                ("Bearer error=\"insufficient_scope\"".to_owned(), format!("This route needs the permission `{p}`."))
            }
            Requirement::OrgRole(r) => (
                "Bearer error=\"insufficient_scope\"".to_owned(),
                format!("This route needs the organization role `{r}` or a stronger one."),
            ),
        };
        Self { status: 403, www_authenticate: Some(www), code: "insufficient_scope", detail }
    }

    /// The problem+json body (RFC 9457, with Gatehouse's `code`).
    pub fn body(&self) -> String {
        let title = match self.status {
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Service Unavailable",
        };
        serde_json::json!({
            "type": "about:blank",
            "title": title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        })
        .to_string()
    }
}

/// The token of an `Authorization: Bearer …` header value (scheme case-insensitive).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, VerifyError> {
    let value = authorization.ok_or(VerifyError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(VerifyError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(VerifyError::Missing);
    }
    let token = token.trim();
    if token.is_empty() { Err(VerifyError::Malformed) } else { Ok(token) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(VerifyError::Missing));
        assert_eq!(bearer_token(Some("Basic dXNlcg==")), Err(VerifyError::Missing));
        assert_eq!(bearer_token(Some("Bearer ")), Err(VerifyError::Malformed));
    }

    #[test]
    fn denials_follow_rfc_6750() {
        let missing = Denial::from_error(&VerifyError::Missing);
        assert_eq!((missing.status, missing.www_authenticate.as_deref()), (401, Some("Bearer")));
        let expired = Denial::from_error(&VerifyError::Expired);
        assert!(expired.www_authenticate.unwrap().starts_with("Bearer error=\"invalid_token\""));
        let down = Denial::from_error(&VerifyError::Unavailable("x".into()));
        assert_eq!(down.status, 503);
        let scope = Denial::insufficient(Requirement::Scope("docs:read"));
        assert_eq!(scope.status, 403);
        assert!(scope.www_authenticate.unwrap().contains("scope=\"docs:read\""));
        let body: serde_json::Value =
            serde_json::from_str(&Denial::insufficient(Requirement::OrgRole("admin")).body()).unwrap();
        assert_eq!(body["code"], "insufficient_scope");
    }
}
