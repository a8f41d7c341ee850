//! `gatehouse-sdk`: a Rust client for Gatehouse's management and auth APIs.
//!
//! The client is generated at build time by progenitor from
//! `openapi/gatehouse-3.0.json`, the committed OpenAPI document the server's tests keep
//! in step with its routes (ADR 4), so every endpoint is reachable and the SDK cannot
//! go stale: a changed document regenerates the client on the next build. A small
//! hand-written layer adds authentication ([`Client::with_token`]) and pagination
//! ([`collect_pages`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let gatehouse = gatehouse_sdk::Client::with_token("http://127.0.0.1:8080", "gh_admin_…")?;
//! let tenant = gatehouse.create_tenant().body_map(|b| b.slug("acme").name("Acme")).send().await?.into_inner();
//! let users = gatehouse_sdk::collect_pages(100, |cursor| {
//!     let request = gatehouse.list_users().tenant_id(tenant.id.clone()).limit(100);
//!     async move {
//!         let page = match cursor { Some(c) => request.cursor(c), None => request }.send().await?.into_inner();
//!         Ok::<_, gatehouse_sdk::Error<gatehouse_sdk::types::Problem>>((page.data, page.next_cursor))
//!     }
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod generated {
    #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic, reason = "generated code")]
    progenitor::generate_api!(spec = "../openapi/gatehouse-3.0.json", interface = Builder, tags = Merged);
}

pub use generated::*;

/// Why a client could not be built.
#[derive(Debug)]
pub struct BuildError(String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

impl Client {
    /// A client that sends `Authorization: Bearer {token}` on every request: an operator
    /// token (`gh_admin_…`) or a tenant secret key (`sk_…`). End-user routes under
    /// `/t/{t}/auth/` that take a user's access token need a client built with that
    /// token instead (or [`Client::new`] for sign-up and login).
    pub fn with_token(base_url: &str, token: &str) -> Result<Self, BuildError> {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| BuildError("the token is not a valid header value".into()))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Self::new_with_client(base_url, http))
    }
}

/// Follows `next_cursor` until the last page (or `max_pages`), collecting every item.
/// `fetch` gets the cursor (`None` for the first page) and returns the page's items and
/// its `next_cursor`.
pub async fn collect_pages<T, E, F, Fut>(max_pages: usize, mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), E>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..max_pages.max(1) {
        let (page, next) = fetch(cursor.take()).await?;
        items.extend(page);
        match next {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Ok(items)
}
