//! An axum API protected by Gatehouse tokens.
//!
//! ```sh
//! GATEHOUSE_ISSUER=http://127.0.0.1:8080/t/acme GATEHOUSE_AUDIENCE=tnt_… \
//!   cargo run -p gatehouse-axum --example axum-api
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/me
//! ```
//!
//! Set `GATEHOUSE_SECRET_KEY` (a tenant secret key) to check every token by
//! introspection instead, so a revoked session is refused at once.

use axum::Router;
use axum::routing::get;
use gatehouse_axum::{Claims, GatehouseLayer, Issuer, Mode, RequireOrgRole, RequirePermission, RequireScope, Verifier};
use serde_json::{Value, json};

gatehouse_axum::required!(pub Profile = "profile");
gatehouse_axum::required!(pub AdminScope = "admin");
gatehouse_axum::required!(pub DocsWrite = "docs:write");
gatehouse_axum::required!(pub OrgAdmin = "admin");

/// The example's routes: `/health` is public, the rest need a valid token.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/profile", get(profile))
        .route("/admin", get(admin))
        .route("/docs", axum::routing::post(write_docs))
        .route("/org/settings", get(org_settings))
        .layer(GatehouseLayer::new(verifier))
        .route("/health", get(|| async { "ok" }))
}

async fn me(claims: Claims) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.sub, "tid": claims.tid, "sid": claims.sid }))
}

async fn profile(RequireScope(claims, ..): RequireScope<Profile>) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.sub, "scope": claims.scope }))
}

async fn admin(RequireScope(claims, ..): RequireScope<AdminScope>) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.sub }))
}

async fn write_docs(RequirePermission(claims, ..): RequirePermission<DocsWrite>) -> axum::Json<Value> {
    axum::Json(json!({ "written_by": claims.sub }))
}

async fn org_settings(RequireOrgRole(claims, ..): RequireOrgRole<OrgAdmin>) -> axum::Json<Value> {
    axum::Json(json!({ "org_id": claims.org_id, "role": claims.org_role }))
}

/// Builds the verifier from `GATEHOUSE_ISSUER`, `GATEHOUSE_AUDIENCE` and, for
/// introspection mode, `GATEHOUSE_SECRET_KEY`.
pub fn verifier_from_env() -> Result<Verifier, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is required"));
    let mut issuer = Issuer::new(var("GATEHOUSE_ISSUER")?, var("GATEHOUSE_AUDIENCE")?);
    let mut builder = Verifier::builder();
    if let Ok(secret) = std::env::var("GATEHOUSE_SECRET_KEY") {
        issuer = issuer.with_introspection_secret(secret);
        builder = builder.mode(Mode::Introspect);
    }
    builder.issuer(issuer).build()
}

#[allow(dead_code, reason = "tests include this file for app(); main is for cargo run")]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("axum-api listening on {listen}");
    axum::serve(listener, app(verifier_from_env()?)).await?;
    Ok(())
}
