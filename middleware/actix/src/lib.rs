//! `gatehouse-actix`: Gatehouse access tokens for actix-web services.
//!
//! [`GatehouseAuth`] is middleware that verifies the bearer token of every request it
//! wraps (401 with `WWW-Authenticate: Bearer error="invalid_token"`, RFC 6750) and
//! stores the claims; handlers take them with the [`Claims`] extractor or demand more
//! with [`RequireScope`], [`RequirePermission`] and [`RequireOrgRole`] (403
//! `insufficient_scope`). Every decision is `gatehouse-verify`'s, so the answers match
//! `gatehouse-axum` byte for byte.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use gatehouse_actix::{Claims, GatehouseAuth, Issuer, RequireScope, Verifier, required};
//!
//! required!(pub DocsRead = "docs:read");
//!
//! async fn me(claims: Claims) -> String { claims.sub.clone() }
//! async fn docs(RequireScope(claims, ..): RequireScope<DocsRead>) -> String { claims.sub.clone() }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://id.example.com/t/acme", "tnt_01J..."))
//!     .build()?;
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(GatehouseAuth::new(verifier.clone()))
//!         .route("/me", web::get().to(me))
//!         .route("/docs", web::get().to(docs))
//! })
//! .bind("127.0.0.1:3001")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use gatehouse_verify::{Denial, Requirement, VerifyError};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

pub use gatehouse_verify::{Issuer, Mode, RequiredValue, Verifier, required};

/// Middleware verifying the bearer token of each request.
#[derive(Debug, Clone)]
pub struct GatehouseAuth {
    verifier: Verifier,
    optional: bool,
}

impl GatehouseAuth {
    /// Every request must carry a valid token.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier, optional: false }
    }

    /// Requests without an `Authorization` header pass through without claims (an
    /// invalid token is still refused); handlers decide with `Option<Claims>`.
    pub fn optional(verifier: Verifier) -> Self {
        Self { verifier, optional: true }
    }
}

impl<S, B> Transform<S, ServiceRequest> for GatehouseAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = GatehouseMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GatehouseMiddleware {
            service: Rc::new(service),
            verifier: self.verifier.clone(),
            optional: self.optional,
        }))
    }
}

/// The service [`GatehouseAuth`] wraps around an app or scope.
#[derive(Debug)]
pub struct GatehouseMiddleware<S> {
    service: Rc<S>,
    verifier: Verifier,
    optional: bool,
}

impl<S, B> Service<ServiceRequest> for GatehouseMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let (service, verifier, optional) = (self.service.clone(), self.verifier.clone(), self.optional);
        Box::pin(async move {
            let authorization =
                request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
            match verifier.verify_authorization(authorization.as_deref()).await {
                Ok(claims) => {
                    request.extensions_mut().insert(Claims(claims));
                    service.call(request).await.map(ServiceResponse::map_into_left_body)
                }
                Err(VerifyError::Missing) if optional && authorization.is_none() => {
                    service.call(request).await.map(ServiceResponse::map_into_left_body)
                }
                Err(error) => {
                    let response = Rejection(Denial::from_error(&error)).error_response();
                    Ok(request.into_response(response).map_into_right_body())
                }
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

fn claims_of(request: &HttpRequest) -> Result<Claims, Rejection> {
    // Without the middleware there are no claims: refuse rather than serve anonymously.
    request.extensions().get::<Claims>().cloned().ok_or_else(|| Rejection(Denial::from_error(&VerifyError::Missing)))
}

impl FromRequest for Claims {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(claims_of(request))
    }
}

macro_rules! requiring_extractor {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<R>(pub Claims, pub PhantomData<R>);

        impl<R: RequiredValue> FromRequest for $name<R> {
            type Error = Rejection;
            type Future = Ready<Result<Self, Rejection>>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(claims_of(request).and_then(|claims| {
                    Requirement::$variant(R::VALUE).check(&claims).map_err(Rejection)?;
                    Ok(Self(claims, PhantomData))
                }))
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

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.detail)
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        if let Some(value) = self.0.www_authenticate.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        response.body(self.0.body())
    }
}
