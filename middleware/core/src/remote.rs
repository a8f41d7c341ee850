//! The verifier services use: issuers' discovery documents and JWKS fetched over HTTP
//! and cached, optional introspection, and a cache of tokens already verified.
//!
//! Key handling, in order of precedence:
//! - keys are fetched on first use (no keys yet and the issuer unreachable: the token
//!   is refused with [`VerifyError::Unavailable`]);
//! - the JWKS is fresh for its `Cache-Control: max-age` (clamped between the refetch
//!   interval and a day); after that it is refreshed in the background while the known
//!   keys keep serving;
//! - a token with an unknown `kid` triggers at most one refetch per refetch interval
//!   (so garbage `kid`s cannot make us hammer the issuer), and is refused if the key
//!   is still unknown;
//! - when the issuer is unreachable, known keys keep working and unknown keys fail.

use crate::cache::TokenCache;
use crate::claims::Claims;
use crate::error::VerifyError;
use crate::keys::KeySet;
use crate::validate::{Expectations, unverified_issuer, validate};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// One trusted issuer (a Gatehouse tenant).
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The exact `iss`: `{PUBLIC_URL}/t/{slug}`.
    pub issuer: String,
    /// Accepted audiences (a Gatehouse tenant's tokens carry the tenant id).
    pub audiences: Vec<String>,
    /// The JWKS address; discovered from `{issuer}/.well-known/openid-configuration`
    /// when not set.
    pub jwks_uri: Option<String>,
    /// Fixed keys: when set, nothing is fetched.
    pub keys: Option<KeySet>,
    /// A tenant secret key (`sk_…`), needed for introspection mode.
    pub introspection_secret: Option<String>,
}

impl Issuer {
    /// An issuer whose keys are discovered.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audiences: vec![audience.into()],
            jwks_uri: None,
            keys: None,
            introspection_secret: None,
        }
    }

    /// Uses this JWKS address instead of discovery.
    #[must_use]
    pub fn with_jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Uses fixed keys (tests, air-gapped deployments).
    #[must_use]
    pub fn with_keys(mut self, keys: KeySet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The tenant secret key used to call the introspection endpoint.
    #[must_use]
    pub fn with_introspection_secret(mut self, secret: impl Into<String>) -> Self {
        self.introspection_secret = Some(secret.into());
        self
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Signature and claims, locally (fast; a revoked session's token stays valid until
    /// it expires).
    #[default]
    Jwt,
    /// Local checks, then the issuer's introspection endpoint on every request (sees
    /// revocation at once; one HTTP round trip per request, never cached).
    Introspect,
}

/// Builds a [`Verifier`].
#[derive(Debug)]
pub struct VerifierBuilder {
    issuers: Vec<Issuer>,
    mode: Mode,
    leeway: Duration,
    min_refetch: Duration,
    default_max_age: Duration,
    cache_capacity: usize,
    http: Option<reqwest::Client>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            mode: Mode::Jwt,
            leeway: Duration::from_secs(30),
            min_refetch: Duration::from_secs(30),
            default_max_age: Duration::from_secs(300),
            cache_capacity: 10_000,
            http: None,
        }
    }
}

impl VerifierBuilder {
    /// Trusts an issuer.
    #[must_use]
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// JWT (default) or introspection mode.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Least time between two JWKS fetches of one issuer (default 30 s).
    #[must_use]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// JWKS freshness when the issuer sends no `max-age` (default 5 min).
    #[must_use]
    pub fn default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age;
        self
    }

    /// Verified tokens remembered until their `exp` (default 10,000; 0 turns the cache
    /// off). Introspection mode never caches.
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The HTTP client for discovery, JWKS and introspection.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the verifier; fails on a configuration that could never accept a token.
    pub fn build(self) -> Result<Verifier, String> {
        if self.issuers.is_empty() {
            return Err("at least one issuer is required".into());
        }
        let mut by_name = HashMap::new();
        let mut states = Vec::new();
        for issuer in self.issuers {
            if issuer.audiences.iter().all(String::is_empty) {
                return Err(format!("issuer {} needs an audience", issuer.issuer));
            }
            if self.mode == Mode::Introspect && issuer.introspection_secret.is_none() {
                return Err(format!("issuer {} needs an introspection secret", issuer.issuer));
            }
            by_name.insert(issuer.issuer.clone(), states.len());
            let keys = issuer.keys.clone().unwrap_or_default();
            states.push(Arc::new(IssuerState {
                config: issuer,
                keys: RwLock::new(Arc::new(keys)),
                meta: Mutex::new(FetchMeta::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
            }));
        }
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?,
        };
        let cache = (self.cache_capacity > 0 && self.mode == Mode::Jwt).then(|| TokenCache::new(self.cache_capacity));
        let fetcher = Arc::new(Fetcher { http, min_refetch: self.min_refetch, default_max_age: self.default_max_age });
        Ok(Verifier {
            inner: Arc::new(Inner { by_name, states, fetcher, mode: self.mode, leeway: self.leeway.as_secs(), cache }),
        })
    }
}

/// Verifies access tokens of one or more Gatehouse issuers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    by_name: HashMap<String, usize>,
    states: Vec<Arc<IssuerState>>,
    fetcher: Arc<Fetcher>,
    mode: Mode,
    leeway: u64,
    cache: Option<TokenCache>,
}

#[derive(Debug)]
struct IssuerState {
    config: Issuer,
    keys: RwLock<Arc<KeySet>>,
    meta: Mutex<FetchMeta>,
    fetch_lock: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

#[derive(Debug, Default)]
struct FetchMeta {
    /// When the last fetch was attempted (success or not).
    last_attempt: Option<Instant>,
    /// Until when the keys are fresh.
    fresh_until: Option<Instant>,
    /// The JWKS address found by discovery.
    discovered_jwks_uri: Option<String>,
}

#[derive(Debug)]
struct Fetcher {
    http: reqwest::Client,
    min_refetch: Duration,
    default_max_age: Duration,
}

impl IssuerState {
    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn meta(&self) -> std::sync::MutexGuard<'_, FetchMeta> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fetches(&self) -> bool {
        self.config.keys.is_none()
    }
}

impl Verifier {
    /// Starts building a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The mode this verifier checks tokens in.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Verifies the token of an `Authorization` header value.
    pub async fn verify_authorization(&self, authorization: Option<&str>) -> Result<Arc<Claims>, VerifyError> {
        self.verify(crate::denial::bearer_token(authorization)?).await
    }

    /// Verifies a token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, VerifyError> {
        let inner = &self.inner;
        let cache_key = inner.cache.as_ref().map(|_| TokenCache::key(token));
        if let (Some(cache), Some(key)) = (&inner.cache, &cache_key)
            && let Some(claims) = cache.get(key)
        {
            return Ok(claims);
        }
        let issuer = unverified_issuer(token)?;
        let state = inner.by_name.get(&issuer).and_then(|i| inner.states.get(*i)).ok_or(VerifyError::WrongIssuer)?;
        let expect = Expectations {
            issuer: &state.config.issuer,
            audiences: &state.config.audiences,
            leeway_seconds: inner.leeway,
        };
        let claims = match validate(token, &*self.keys_for(state).await?, &expect) {
            // An unknown key: perhaps a rotation we have not seen yet. One refetch per
            // interval at most; the key stays unknown if the issuer is unreachable.
            Err(VerifyError::UnknownKey) if state.fetches() => {
                let _ = refresh(&inner.fetcher, state).await;
                validate(token, &state.current(), &expect)?
            }
            outcome => outcome?,
        };
        if inner.mode == Mode::Introspect {
            return introspect(&inner.fetcher.http, &state.config, token).await.map(Arc::new);
        }
        let claims = Arc::new(claims);
        if let (Some(cache), Some(key)) = (&inner.cache, cache_key) {
            cache.insert(key, claims.clone());
        }
        Ok(claims)
    }

    /// The issuer's keys: fetched on first use, refreshed in the background once stale.
    async fn keys_for(&self, state: &Arc<IssuerState>) -> Result<Arc<KeySet>, VerifyError> {
        let keys = state.current();
        if !state.fetches() {
            return Ok(keys);
        }
        let fetcher = &self.inner.fetcher;
        if keys.is_empty() {
            refresh(fetcher, state).await?;
            return Ok(state.current());
        }
        let stale = state.meta().fresh_until.is_none_or(|t| Instant::now() >= t);
        if stale && !state.refreshing.swap(true, Ordering::AcqRel) {
            let (fetcher, state) = (fetcher.clone(), state.clone());
            tokio::spawn(async move {
                let _ = refresh(&fetcher, &state).await;
                state.refreshing.store(false, Ordering::Release);
            });
        }
        Ok(keys)
    }
}

/// Fetches the issuer's JWKS unless another caller did within the refetch interval
/// (one second while no key has been fetched yet, so start-up recovers quickly).
async fn refresh(fetcher: &Fetcher, state: &IssuerState) -> Result<(), VerifyError> {
    let _one_at_a_time = state.fetch_lock.lock().await;
    let empty = state.current().is_empty();
    let interval = if empty { fetcher.min_refetch.min(Duration::from_secs(1)) } else { fetcher.min_refetch };
    if state.meta().last_attempt.is_some_and(|t| t.elapsed() < interval) {
        return if empty { Err(unavailable("the issuer's keys could not be fetched")) } else { Ok(()) };
    }
    state.meta().last_attempt = Some(Instant::now());
    let jwks_uri = match state.config.jwks_uri.clone().or_else(|| state.meta().discovered_jwks_uri.clone()) {
        Some(uri) => uri,
        None => {
            let uri = discover(&fetcher.http, &state.config.issuer).await?;
            state.meta().discovered_jwks_uri = Some(uri.clone());
            uri
        }
    };
    let reply = fetcher.http.get(&jwks_uri).send().await.map_err(|e| unavailable(&e.to_string()))?;
    if !reply.status().is_success() {
        return Err(unavailable(&format!("JWKS answered {}", reply.status())));
    }
    let max_age = reply
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age)
        .unwrap_or(fetcher.default_max_age)
        .clamp(fetcher.min_refetch, Duration::from_secs(86_400));
    let jwks: serde_json::Value = reply.json().await.map_err(|e| unavailable(&e.to_string()))?;
    let keys = KeySet::from_jwks(&jwks);
    // An empty answer is an outage, not a revocation of every key we know.
    if keys.is_empty() {
        return Err(unavailable("JWKS holds no usable key"));
    }
    *state.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    state.meta().fresh_until = Some(Instant::now() + max_age);
    Ok(())
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<String, VerifyError> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let reply = http.get(&url).send().await.map_err(|e| unavailable(&e.to_string()))?;
    if !reply.status().is_success() {
        return Err(unavailable(&format!("discovery answered {}", reply.status())));
    }
    let doc: serde_json::Value = reply.json().await.map_err(|e| unavailable(&e.to_string()))?;
    // RFC 8414 §3.3: the document must name the issuer it was fetched for.
    if doc.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer) {
        return Err(unavailable("discovery document names another issuer"));
    }
    doc.get("jwks_uri").and_then(serde_json::Value::as_str).map(str::to_owned).ok_or_else(|| unavailable("no jwks_uri"))
}

/// RFC 7662 introspection at `{issuer}/oauth2/introspect`, authenticated by the tenant
/// secret key; an active answer carries the token's claims.
async fn introspect(http: &reqwest::Client, issuer: &Issuer, token: &str) -> Result<Claims, VerifyError> {
    let secret = issuer.introspection_secret.as_deref().ok_or_else(|| unavailable("no introspection secret"))?;
    let reply = http
        .post(format!("{}/oauth2/introspect", issuer.issuer))
        .bearer_auth(secret)
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    if !reply.status().is_success() {
        return Err(unavailable(&format!("introspection answered {}", reply.status())));
    }
    let body: serde_json::Value = reply.json().await.map_err(|e| unavailable(&e.to_string()))?;
    if body.get("active") != Some(&serde_json::Value::Bool(true)) {
        return Err(VerifyError::Inactive);
    }
    serde_json::from_value(body).map_err(|_| VerifyError::Malformed)
}

fn unavailable(why: &str) -> VerifyError {
    VerifyError::Unavailable(why.to_owned())
}

/// The `max-age` of a `Cache-Control` value; `no-cache` / `no-store` count as zero.
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = directive.strip_prefix("max-age=").and_then(|s| s.trim_matches('"').parse().ok()) {
            age = Some(Duration::from_secs(seconds));
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }

    #[test]
    fn a_verifier_needs_issuers_audiences_and_introspection_secrets() {
        assert!(Verifier::builder().build().is_err());
        assert!(Verifier::builder().issuer(Issuer::new("https://a/t/x", "")).build().is_err());
        let introspecting = Verifier::builder().issuer(Issuer::new("https://a/t/x", "tnt_1")).mode(Mode::Introspect);
        assert!(introspecting.build().is_err());
    }
}
