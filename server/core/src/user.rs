//! Users of a tenant: email addresses (parsed and normalised), status, profile.

use crate::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An email address: kept as given for display, and normalised for uniqueness and
/// lookup: the domain lowercased and converted to ASCII (IDNA), the local part
/// lowercased. `Alice@Example.COM` and `alice@example.com` are one account, as users of
/// every major identity product expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    /// Parses an address, refusing anything that cannot receive mail or could smuggle
    /// control characters into headers and logs.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let display = raw.trim();
        if display.is_empty() || display.chars().count() > 254 {
            return Err("must be an email address of at most 254 characters".into());
        }
        if display.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("may not contain spaces or control characters".into());
        }
        let (local, domain) = display.rsplit_once('@').ok_or("must contain @")?;
        if local.is_empty() || local.chars().count() > 64 || local.contains('@') || local.contains('"') {
            return Err("has an invalid part before @".into());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err("has an invalid part before @".into());
        }
        let host = match url::Host::parse(domain) {
            Ok(url::Host::Domain(ascii)) if ascii.contains('.') && ascii.split('.').all(is_dns_label) => ascii,
            _ => return Err("has an invalid domain".into()),
        };
        Ok(Self { display: display.to_owned(), normalized: format!("{}@{host}", local.to_lowercase()) })
    }

    /// Rebuilds an email read from storage (already valid).
    pub fn from_stored(display: String, normalized: String) -> Self {
        Self { display, normalized }
    }

    /// As the user typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The lookup form.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The part before the last `@`, lowercased (for the password policy).
    pub fn local_part(&self) -> &str {
        self.normalized.rsplit_once('@').map_or("", |(local, _)| local)
    }
}

/// An ASCII DNS label: 1-63 letters, digits and inner hyphens.
fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// May sign in.
    Active,
    /// May not sign in; every session is revoked.
    Disabled,
}

impl UserStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A user as stored. The password hash never leaves the services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Opaque id.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Email address.
    pub email: Email,
    /// Whether the address was proven.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Sign-in status.
    pub status: UserStatus,
    /// Argon2id PHC string (or an imported hash), if the user has a password.
    pub password_hash: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Last successful sign-in.
    pub last_login_at: Option<OffsetDateTime>,
    /// Optional profile fields.
    pub profile: UserProfile,
    /// Data the user's own apps may read (shown to the user).
    pub public_metadata: serde_json::Value,
    /// Data only the tenant's servers see (never shown to the user).
    pub private_metadata: serde_json::Value,
}

impl User {
    /// A new active account created by signing up at `now`: unverified, no password,
    /// no profile or metadata yet (callers set what their flow proves or provides).
    pub fn signing_up(tenant_id: &TenantId, email: Email, name: Option<String>, now: OffsetDateTime) -> Self {
        Self {
            id: UserId::generate(),
            tenant_id: tenant_id.clone(),
            email,
            email_verified: false,
            name,
            status: UserStatus::Active,
            password_hash: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            profile: UserProfile::default(),
            public_metadata: serde_json::json!({}),
            private_metadata: serde_json::json!({}),
        }
    }
}

/// Optional profile fields of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    /// Unique per tenant: 3-32 lowercase letters, digits, `.`, `_`, `-`.
    pub username: Option<String>,
    /// E.164 phone number, e.g. `+4930123456`.
    pub phone: Option<String>,
    /// Whether the user proved the number by an SMS code (then it can sign them in).
    pub phone_verified: bool,
    /// `https` URL of a picture.
    pub picture: Option<String>,
    /// BCP 47 language tag, e.g. `de-CH`.
    pub locale: Option<String>,
}

/// Largest metadata document, serialised.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Checks optional profile fields, naming each bad one.
pub fn check_profile(p: &UserProfile) -> Result<(), Vec<crate::error::FieldError>> {
    use crate::error::FieldError;
    let mut errors = Vec::new();
    if let Some(u) = &p.username
        && !((3..=32).contains(&u.len())
            && u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')))
    {
        errors.push(FieldError::new("username", "3-32 lowercase letters, digits, '.', '_' or '-'"));
    }
    if let Some(phone) = &p.phone {
        let digits = phone.strip_prefix('+').unwrap_or_default();
        let ok =
            (7..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            errors.push(FieldError::new("phone", "must be an E.164 number such as +4930123456"));
        }
    }
    if let Some(picture) = &p.picture
        && !(picture.len() <= 2048 && url::Url::parse(picture).is_ok_and(|u| u.scheme() == "https"))
    {
        errors.push(FieldError::new("picture", "must be an https URL"));
    }
    if let Some(locale) = &p.locale {
        let mut parts = locale.split('-');
        let language = parts.next().unwrap_or_default();
        let ok = locale.len() <= 35
            && (2..=3).contains(&language.len())
            && language.bytes().all(|b| b.is_ascii_alphabetic())
            && parts.all(|part| (2..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            errors.push(FieldError::new("locale", "must be a language tag such as de or de-CH"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks a metadata document: a JSON object of at most [`MAX_METADATA_BYTES`].
pub fn check_metadata(field: &str, value: &serde_json::Value) -> Result<(), crate::error::FieldError> {
    if !value.is_object() {
        return Err(crate::error::FieldError::new(field, "must be a JSON object"));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(crate::error::FieldError::new(field, "must be at most 8 KiB"));
    }
    Ok(())
}

/// Filters for listing users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Normalised email starts with this (already lowercased).
    pub email_prefix: Option<String>,
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Created at or after.
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    pub created_before: Option<OffsetDateTime>,
}

/// The least string above every string that starts with `prefix`, in code point order
/// (the order of UTF-8 bytes: SQLite's `BINARY` collation, Postgres's `"C"`), so a
/// prefix search is the range `prefix <= s < bound` of an index; `None` when no string
/// bounds it (an empty prefix, or one of only the highest code point).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next code point, over the surrogates (which are not chars).
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Checks a display name: at most 200 characters, no control characters.
pub fn check_user_name(name: Option<String>) -> Result<Option<String>, String> {
    let Some(name) = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else { return Ok(None) };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("must be at most 200 characters, no control characters".into());
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_bounded_by_its_last_code_point_plus_one() {
        let bound = prefix_upper_bound;
        assert_eq!(bound("ann"), Some("ano".into()));
        assert_eq!(bound("a@z"), Some("a@{".into()));
        assert_eq!(bound("jos\u{e9}"), Some("jos\u{ea}".into()));
        assert_eq!(bound("x\u{d7ff}"), Some("x\u{e000}".into()));
        assert_eq!(bound("x\u{10ffff}"), Some("y".into()));
        assert_eq!(bound("\u{10ffff}\u{10ffff}"), None);
        assert_eq!(bound(""), None);
        // Every string with the prefix sorts below the bound, byte-wise as in "C".
        for s in ["ann", "anna@example.com", "ann\u{10ffff}\u{10ffff}"] {
            assert!(s.as_bytes() < bound("ann").unwrap().as_bytes());
        }
    }

    #[test]
    fn emails_normalise_case_and_international_domains() {
        let a = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "Alice@Example.COM");
        assert_eq!(a.normalized(), "alice@example.com");
        let u = Email::parse("Jürgen@Bücher.DE").unwrap();
        assert_eq!(u.normalized(), "jürgen@xn--bcher-kva.de");
        assert_eq!(Email::parse("JÜRGEN@bücher.de").unwrap().normalized(), u.normalized());
        assert_eq!(u.local_part(), "jürgen");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a\r\nBcc: x@y.z",
            ".a@example.com",
            "a..b@example.com",
            "\"q\"@example.com",
            "a@-.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
