//! The browser transport for refresh tokens: an `HttpOnly; Secure; SameSite=Strict`
//! cookie scoped to the tenant's auth path, with double-submit CSRF protection (a
//! readable `gh_csrf` cookie whose value the page echoes in `X-CSRF-Token`) and an
//! `Origin` check against the tenant's allowed origins on cookie-authenticated writes.

use super::error::{ApiError, ErrorCode};
use axum::http::{HeaderMap, HeaderValue, header};
use gatehouse_core::secret::{SecretString, generate_secret};
use gatehouse_core::tenant::Tenant;

/// Cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "gh_refresh";
/// Cookie holding the CSRF token (readable by the page).
pub const CSRF_COOKIE: &str = "gh_csrf";
/// Header echoing the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`, if sent.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Checks a cookie-authenticated write: the CSRF header must equal the CSRF cookie, and
/// an `Origin`, when sent, must be one of the tenant's allowed origins.
pub fn check_csrf(headers: &HeaderMap, tenant: &Tenant) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::new(ErrorCode::CsrfFailed, why);
    let cookie = read(headers, CSRF_COOKIE).ok_or_else(|| refused("the gh_csrf cookie is missing"))?;
    let echoed = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| refused("send X-CSRF-Token"))?;
    if !SecretString::new(cookie).constant_time_eq(echoed) {
        return Err(refused("X-CSRF-Token does not match the gh_csrf cookie"));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !tenant.settings.allowed_origins.iter().any(|allowed| allowed == origin)
    {
        return Err(refused("this origin is not allowed for this tenant"));
    }
    Ok(())
}

fn cookie(name: &str, value: &str, path: &str, max_age: u32, http_only: bool) -> Option<HeaderValue> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; Secure; SameSite=Strict{http_only}"
    ))
    .ok()
}

/// `Set-Cookie` headers that hand a refresh token to the browser, with a fresh CSRF token.
pub fn issue(tenant: &Tenant, refresh_token: &SecretString) -> Vec<HeaderValue> {
    let path = format!("/t/{}/auth", tenant.slug.as_str());
    let max_age = tenant.settings.refresh_token_ttl_seconds;
    let csrf = generate_secret("csrf_");
    [
        cookie(REFRESH_COOKIE, refresh_token.expose(), &path, max_age, true),
        cookie(CSRF_COOKIE, csrf.value.expose(), &path, max_age, false),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `Set-Cookie` headers that remove both cookies.
pub fn clear(tenant: &Tenant) -> Vec<HeaderValue> {
    let path = format!("/t/{}/auth", tenant.slug.as_str());
    [cookie(REFRESH_COOKIE, "", &path, 0, true), cookie(CSRF_COOKIE, "", &path, 0, false)]
        .into_iter()
        .flatten()
        .collect()
}
