//! `gatehouse-axum`: Gatehouse access tokens for axum services.
//!
//! [`GatehouseLayer`] verifies the bearer token of every request it wraps (answering 401
//! with `WWW-Authenticate: Bearer error="invalid_token"` per RFC 6750) and hands the
//! claims to handlers, which take them with the [`Claims`] extractor or demand more
//! with [`RequireScope`], [`RequirePermission`] and [`RequireOrgRole`] (403
//! `insufficient_scope`). All decisions are `gatehouse-verify`'s; this crate only
//! adapts them to axum.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use gatehouse_axum::{Claims, GatehouseLayer, Issuer, RequireScope, Verifier, required};
//!
//! required!(pub DocsRead = "docs:read");
//!
//! async fn me(claims: Claims) -> String { claims.sub.clone() }
//! async fn docs(RequireScope(claims, ..): RequireScope<DocsRead>) -> String { claims.sub.clone() }
//!
//! # fn app() -> Result<Router, String> {
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://id.example.com/t/acme", "tnt_01J..."))
//!     .build()?;
//! Ok(Router::new().route("/me", get(me)).route("/docs", get(docs)).layer(GatehouseLayer::new(verifier)))
//! # }
//! ```

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_verify::{Denial, Requirement, VerifyError};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use gatehouse_verify::{Issuer, Mode, RequiredValue, Verifier, required};

/// Verifies the bearer token of each request and stores its [`Claims`].
#[derive(Debug, Clone)]
pub struct GatehouseLayer {
    verifier: Verifier,
    optional: bool,
}

impl GatehouseLayer {
    /// Every request must carry a valid token.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier, optional: false }
    }

    /// Requests without any `Authorization` header pass through without claims (an
    /// invalid token is still refused); handlers decide with `Option<Claims>`.
    pub fn optional(verifier: Verifier) -> Self {
        Self { verifier, optional: true }
    }
}

impl<S> tower::Layer<S> for GatehouseLayer {
    type Service = GatehouseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatehouseService { inner, verifier: self.verifier.clone(), optional: self.optional }
    }
}

/// The service [`GatehouseLayer`] wraps around a route or router.
#[derive(Debug, Clone)]
pub struct GatehouseService<S> {
    inner: S,
    verifier: Verifier,
    optional: bool,
}

impl<S> tower::Service<Request<Body>> for GatehouseService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (verifier, optional) = (self.verifier.clone(), self.optional);
        Box::pin(async move {
            let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            match verifier.verify_authorization(authorization).await {
                Ok(claims) => {
                    request.extensions_mut().insert(Claims(claims));
                    inner.call(request).await
                }
                Err(VerifyError::Missing) if optional && authorization.is_none() => inner.call(request).await,
                Err(error) => Ok(Rejection(Denial::from_error(&error)).into_response()),
            }
        })
    }
}

/// The verified claims of the request's token.
#[derive(Debug, Clone)]
pub struct Claims(pub Arc<gatehouse_verify::Claims>);

impl std::ops::Deref for Claims {
    type Target = gatehouse_verify::Claims;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        // Without the layer there are no claims: refuse rather than serve unauthenticated.
        parts.extensions.get::<Claims>().cloned().ok_or_else(|| Rejection(Denial::from_error(&VerifyError::Missing)))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}

macro_rules! requiring_extractor {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<R>(pub Claims, pub PhantomData<R>);

        impl<S: Send + Sync, R: RequiredValue> FromRequestParts<S> for $name<R> {
            type Rejection = Rejection;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
                let claims = <Claims as FromRequestParts<S>>::from_request_parts(parts, state).await?;
                Requirement::$variant(R::VALUE).check(&claims).map_err(Rejection)?;
                Ok(Self(claims, PhantomData))
            }
        }
    };
}

requiring_extractor!(
    /// The claims, if the token's `scope` includes `R::VALUE`; otherwise 403.
    RequireScope,
    Scope
);
requiring_extractor!(
    /// The claims, if the token's `permissions` include `R::VALUE`; otherwise 403.
    RequirePermission,
    Permission
);
requiring_extractor!(
    /// The claims, if the token's `org_role` is `R::VALUE` or a stronger built-in role;
    /// otherwise 403.
    RequireOrgRole,
    OrgRole
);

/// A refused request: 401, 403 or 503 with `WWW-Authenticate` and problem+json.
#[derive(Debug, Clone)]
pub struct Rejection(pub Denial);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut response = (status, self.0.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(value) = self.0.www_authenticate.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
