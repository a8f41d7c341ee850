//! Tenants: slugs, settings with typed defaults, and their validation.

use crate::error::{FieldError, ServiceError};
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Slugs that would collide with routes or mislead users.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "console",
    "default",
    "gatehouse",
    "healthz",
    "internal",
    "login",
    "logout",
    "metrics",
    "oauth",
    "oauth2",
    "public",
    "readyz",
    "root",
    "signup",
    "static",
    "system",
    "tenant",
    "tenants",
    "v1",
    "well-known",
    "www",
];

/// A tenant's URL name: lowercase ASCII letters, digits and inner hyphens, 3 to 63 long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$", example = "acme")]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug, refusing anything outside the rules.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.len();
        if !(3..=63).contains(&len) {
            return Err("must be 3 to 63 characters long".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err("may contain only lowercase letters, digits and hyphens".into());
        }
        if raw.starts_with('-') || raw.ends_with('-') || raw.contains("--") {
            return Err("may not start or end with a hyphen or contain two in a row".into());
        }
        if RESERVED_SLUGS.contains(&raw) {
            return Err("is reserved".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantSlug {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<TenantSlug> for String {
    fn from(s: TenantSlug) -> String {
        s.0
    }
}

/// Who may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignupMode {
    /// Anyone may sign up.
    #[default]
    Open,
    /// Only invited people may sign up.
    InviteOnly,
}

/// Whether users use a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// No second factor is offered.
    Off,
    /// Users may enrol a second factor.
    #[default]
    Optional,
    /// Every user must use a second factor.
    Required,
}

/// What attestation (proof of the authenticator's make) registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum AttestationPolicy {
    /// None: the usual choice for consumer passkeys (privacy-friendly, any authenticator).
    #[default]
    None,
    /// Whatever the client is willing to convey (it may anonymise it).
    Indirect,
    /// The authenticator's own attestation statement.
    Direct,
}

/// Whether authenticators must verify the user (PIN, biometrics) on every ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// Required: a passkey sign-in is multi-factor on its own.
    #[default]
    Required,
    /// Asked for; an assertion without it counts as one factor (possession).
    Preferred,
}

/// Attestation statement formats an authenticator may present (WebAuthn registry names).
pub const ATTESTATION_FORMATS: [&str; 6] = ["none", "packed", "tpm", "android-key", "fido-u2f", "apple"];

/// Passkey (WebAuthn) settings of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PasskeySettings {
    /// Relying-party id: the domain passkeys are bound to, e.g. `example.com`
    /// (default: the host of `GATEHOUSE_PUBLIC_URL`).
    pub rp_id: Option<String>,
    /// Origins allowed to run passkey ceremonies; each must be the RP id or a subdomain of
    /// it (default: the public URL's origin plus `allowed_origins`).
    pub origins: Vec<String>,
    /// Attestation asked of authenticators at registration.
    pub attestation: AttestationPolicy,
    /// Attestation formats accepted at registration (empty: any).
    pub allowed_attestation_formats: Vec<String>,
    /// Authenticator models accepted, by AAGUID (empty: any). Only meaningful with
    /// `attestation: direct`; with `none`, browsers report a zero AAGUID.
    pub allowed_aaguids: Vec<String>,
    /// User verification policy.
    pub user_verification: UserVerification,
}

impl PasskeySettings {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(rp_id) = &self.rp_id
            && !is_domain(rp_id)
        {
            errors.push(FieldError::new("settings.passkeys.rp_id", "must be a lowercase domain such as example.com"));
        }
        for (i, origin) in self.origins.iter().enumerate() {
            let field = format!("settings.passkeys.origins[{i}]");
            if let Err(why) = check_origin(origin) {
                errors.push(FieldError::new(field, why));
                continue;
            }
            let host = url::Url::parse(origin).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            if let Some(rp_id) = &self.rp_id
                && host != *rp_id
                && !host.ends_with(&format!(".{rp_id}"))
            {
                errors.push(FieldError::new(field, "must be the rp_id or one of its subdomains"));
            }
        }
        for (i, format) in self.allowed_attestation_formats.iter().enumerate() {
            if !ATTESTATION_FORMATS.contains(&format.as_str()) {
                errors.push(FieldError::new(
                    format!("settings.passkeys.allowed_attestation_formats[{i}]"),
                    format!("must be one of {}", ATTESTATION_FORMATS.join(", ")),
                ));
            }
        }
        for (i, aaguid) in self.allowed_aaguids.iter().enumerate() {
            if !is_uuid(aaguid) {
                errors.push(FieldError::new(
                    format!("settings.passkeys.allowed_aaguids[{i}]"),
                    "must be a lowercase UUID (8-4-4-4-12 hex digits)",
                ));
            }
        }
        if self.origins.len() > 100 || self.allowed_aaguids.len() > 1000 {
            errors.push(FieldError::new("settings.passkeys", "at most 100 origins and 1000 AAGUIDs"));
        }
    }
}

fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The algorithm that signs a tenant's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    #[default]
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

/// Password rules for a tenant's users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length in characters (8 to 64).
    pub min_length: u32,
    /// Refuse passwords found in the bundled list of common and breached passwords.
    pub reject_common: bool,
    /// Refuse passwords that contain the local part of the user's email address.
    pub reject_email_local_part: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8, reject_common: true, reject_email_local_part: true }
    }
}

/// How the hosted pages and messages look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// Product name shown to users; the tenant name when absent.
    pub display_name: Option<String>,
    /// An `https` URL of the logo.
    pub logo_url: Option<String>,
    /// Main colour, `#rrggbb`.
    pub primary_color: Option<String>,
    /// Background colour, `#rrggbb`.
    pub background_color: Option<String>,
}

/// A tenant's settings. Every field has a default, so `{}` is a complete value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Browser origins allowed to call the tenant's auth API (CORS), e.g. `https://app.example.com`.
    pub allowed_origins: Vec<String>,
    /// Where the tenant's flows may redirect to (exact match).
    pub redirect_uris: Vec<String>,
    /// Who may sign up.
    pub signup: SignupMode,
    /// Whether an email must be verified before sign-in completes.
    pub require_verified_email: bool,
    /// Second-factor policy.
    pub mfa: MfaPolicy,
    /// Access-token signing algorithm.
    pub signing_alg: SigningAlg,
    /// Access-token lifetime in seconds (60 to 86 400).
    pub access_token_ttl_seconds: u32,
    /// Sliding refresh-token lifetime in seconds (300 to 31 536 000).
    pub refresh_token_ttl_seconds: u32,
    /// Absolute session lifetime in seconds, at least the sliding one.
    pub session_absolute_ttl_seconds: u32,
    /// A spent refresh token presented again within this many seconds (a racing browser
    /// tab) gets the same successor instead of ending the session (0 to 60).
    pub refresh_token_reuse_grace_seconds: u32,
    /// Rotate signing keys automatically when the active key is this many days old
    /// (0: only on request).
    pub signing_key_rotation_days: u32,
    /// Password rules.
    pub password_policy: PasswordPolicy,
    /// Look of pages and messages.
    pub branding: Branding,
    /// A magic link works only in the browser that asked for it (a cookie set when it
    /// was requested), so a link forwarded or intercepted cannot sign someone else in.
    pub magic_link_same_browser: bool,
    /// Passkeys.
    pub passkeys: PasskeySettings,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            redirect_uris: Vec::new(),
            signup: SignupMode::Open,
            require_verified_email: false,
            mfa: MfaPolicy::Optional,
            signing_alg: SigningAlg::ES256,
            access_token_ttl_seconds: 900,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            session_absolute_ttl_seconds: 90 * 24 * 3600,
            refresh_token_reuse_grace_seconds: 2,
            signing_key_rotation_days: 90,
            password_policy: PasswordPolicy::default(),
            branding: Branding::default(),
            magic_link_same_browser: false,
            passkeys: PasskeySettings::default(),
        }
    }
}

impl TenantSettings {
    /// Parses settings from JSON, filling defaults, and checks every rule.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ServiceError> {
        let settings: Self = serde_json::from_value(value)
            .map_err(|e| ServiceError::validation(vec![FieldError::new("settings", e.to_string())]))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Applies a JSON merge patch (RFC 7396) and validates the result.
    pub fn merged(&self, patch: &serde_json::Value) -> Result<Self, ServiceError> {
        let mut current = serde_json::to_value(self).map_err(ServiceError::internal)?;
        merge_patch(&mut current, patch);
        Self::from_json(current)
    }

    /// Checks every rule, collecting all failures.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let mut errors = Vec::new();
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                errors.push(FieldError::new(format!("settings.allowed_origins[{i}]"), why));
            }
        }
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                errors.push(FieldError::new(format!("settings.redirect_uris[{i}]"), why));
            }
        }
        if self.allowed_origins.len() > 100 || self.redirect_uris.len() > 100 {
            errors.push(FieldError::new("settings", "at most 100 origins and 100 redirect URIs"));
        }
        if !(60..=86_400).contains(&self.access_token_ttl_seconds) {
            errors.push(FieldError::new("settings.access_token_ttl_seconds", "must be 60 to 86400"));
        }
        if !(300..=31_536_000).contains(&self.refresh_token_ttl_seconds) {
            errors.push(FieldError::new("settings.refresh_token_ttl_seconds", "must be 300 to 31536000"));
        }
        if self.session_absolute_ttl_seconds < self.refresh_token_ttl_seconds {
            errors.push(FieldError::new(
                "settings.session_absolute_ttl_seconds",
                "must be at least refresh_token_ttl_seconds",
            ));
        }
        if self.signing_key_rotation_days > 3650 {
            errors.push(FieldError::new("settings.signing_key_rotation_days", "must be 0 to 3650"));
        }
        if self.refresh_token_reuse_grace_seconds > 60 {
            errors.push(FieldError::new("settings.refresh_token_reuse_grace_seconds", "must be 0 to 60"));
        }
        if !(8..=64).contains(&self.password_policy.min_length) {
            errors.push(FieldError::new("settings.password_policy.min_length", "must be 8 to 64"));
        }
        self.passkeys.validate(&mut errors);
        let branding = &self.branding;
        if branding.display_name.as_ref().is_some_and(|n| n.chars().count() > 100) {
            errors.push(FieldError::new("settings.branding.display_name", "at most 100 characters"));
        }
        if let Some(logo) = &branding.logo_url
            && !url::Url::parse(logo).is_ok_and(|u| u.scheme() == "https" && logo.len() <= 2048)
        {
            errors.push(FieldError::new("settings.branding.logo_url", "must be an https URL"));
        }
        for (field, colour) in
            [("primary_color", &branding.primary_color), ("background_color", &branding.background_color)]
        {
            if colour.as_ref().is_some_and(|c| !is_hex_colour(c)) {
                errors.push(FieldError::new(format!("settings.branding.{field}"), "must be #rrggbb"));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ServiceError::validation(errors)) }
    }
}

fn is_hex_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_origin(origin: &str) -> Result<(), String> {
    let url = url::Url::parse(origin).map_err(|_| "must be an origin such as https://app.example.com")?;
    let is_local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && is_local) {
        return Err("must use https (http only for localhost)".into());
    }
    if url.origin().ascii_serialization() != origin {
        return Err("must be a bare origin: scheme, host and optional port, no path".into());
    }
    Ok(())
}

fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|_| "must be an absolute URI")?;
    if url.fragment().is_some() {
        return Err("may not contain a fragment".into());
    }
    let is_local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_local => Ok(()),
        "http" => Err("must use https (http only for localhost)".into()),
        // Private-use schemes for native apps (RFC 8252) must contain a dot.
        s if s.contains('.') => Ok(()),
        _ => Err("must be https, http on localhost, or a reverse-domain native scheme".into()),
    }
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(patch_map) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(target_map) = target {
                for (key, value) in patch_map {
                    if value.is_null() {
                        target_map.remove(key);
                    } else {
                        merge_patch(target_map.entry(key.clone()).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    /// Opaque id.
    pub id: TenantId,
    /// URL name, unique forever (a deleted tenant's slug is never reused, so an old
    /// issuer URL can never name a different tenant).
    pub slug: TenantSlug,
    /// Display name.
    pub name: String,
    /// Settings.
    pub settings: TenantSettings,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version, incremented by every update.
    pub version: i64,
}

/// Checks a tenant display name: 1 to 200 characters, no control characters.
pub fn check_tenant_name(name: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new("name", "may not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-2").is_ok());
        for bad in ["ab", "Acme", "a_b", "-ab", "ab-", "a--b", "admin", "ümlaut", &"a".repeat(64)] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn empty_settings_are_the_documented_defaults() {
        let s = TenantSettings::from_json(serde_json::json!({})).unwrap();
        assert_eq!(s.access_token_ttl_seconds, 900);
        assert_eq!(s.signup, SignupMode::Open);
        assert_eq!(s.mfa, MfaPolicy::Optional);
        assert_eq!(s.signing_alg, SigningAlg::ES256);
        assert!(!s.require_verified_email);
    }

    #[test]
    fn merge_patch_changes_only_named_fields_and_null_resets_to_default() {
        let base = TenantSettings { access_token_ttl_seconds: 600, ..Default::default() };
        let patched =
            base.merged(&serde_json::json!({"mfa": "required", "branding": {"primary_color": "#112233"}})).unwrap();
        assert_eq!(patched.mfa, MfaPolicy::Required);
        assert_eq!(patched.access_token_ttl_seconds, 600);
        assert_eq!(patched.branding.primary_color.as_deref(), Some("#112233"));
        let reset = base.merged(&serde_json::json!({"access_token_ttl_seconds": null})).unwrap();
        assert_eq!(reset.access_token_ttl_seconds, 900);
    }

    #[test]
    fn bad_settings_are_refused_with_every_field_named() {
        let err = TenantSettings::from_json(serde_json::json!({
            "allowed_origins": ["http://evil.example.com", "https://ok.example.com/path"],
            "access_token_ttl_seconds": 5,
        }));
        let Err(ServiceError::Validation(fields)) = err else { panic!("validation must fail") };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            ["settings.allowed_origins[0]", "settings.allowed_origins[1]", "settings.access_token_ttl_seconds"]
        );
        assert!(TenantSettings::from_json(serde_json::json!({"nope": 1})).is_err());
    }

    #[test]
    fn passkey_settings_are_checked() {
        let ok = TenantSettings::from_json(serde_json::json!({"passkeys": {
            "rp_id": "example.com",
            "origins": ["https://example.com", "https://app.example.com"],
            "attestation": "direct",
            "allowed_attestation_formats": ["packed"],
            "allowed_aaguids": ["ee882879-721c-4913-9775-3dfcce97072a"],
        }}))
        .unwrap();
        assert_eq!(ok.passkeys.attestation, AttestationPolicy::Direct);
        assert_eq!(ok.passkeys.user_verification, UserVerification::Required);
        let err = TenantSettings::from_json(serde_json::json!({"passkeys": {
            "rp_id": "Example.com",
            "origins": ["https://evil.com"],
            "allowed_attestation_formats": ["selfie"],
            "allowed_aaguids": ["not-a-uuid"],
        }}));
        let Err(ServiceError::Validation(fields)) = err else { panic!("validation must fail") };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "settings.passkeys.rp_id",
                "settings.passkeys.origins[0]",
                "settings.passkeys.allowed_attestation_formats[0]",
                "settings.passkeys.allowed_aaguids[0]"
            ]
        );
    }
}
