//! An actix-web API protected by Gatehouse tokens: the same routes as the axum example.
//!
//! ```sh
//! GATEHOUSE_ISSUER=http://127.0.0.1:8080/t/acme GATEHOUSE_AUDIENCE=tnt_… \
//!   cargo run -p gatehouse-actix --example actix-api
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3001/me
//! ```
//!
//! Set `GATEHOUSE_SECRET_KEY` (a tenant secret key) to check every token by
//! introspection instead, so a revoked session is refused at once.

use actix_web::{HttpResponse, web};
use gatehouse_actix::{Claims, GatehouseAuth, Issuer, Mode, RequireOrgRole, RequirePermission, RequireScope, Verifier};
use serde_json::json;

gatehouse_actix::required!(pub Profile = "profile");
gatehouse_actix::required!(pub AdminScope = "admin");
gatehouse_actix::required!(pub DocsWrite = "docs:write");
gatehouse_actix::required!(pub OrgAdmin = "admin");

/// The example's routes: `/health` is public, everything under the scope needs a token.
pub fn configure(verifier: Verifier) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config.route("/health", web::get().to(|| async { "ok" })).service(
            web::scope("")
                .wrap(GatehouseAuth::new(verifier))
                .route("/me", web::get().to(me))
                .route("/profile", web::get().to(profile))
                .route("/admin", web::get().to(admin))
                .route("/docs", web::post().to(write_docs))
                .route("/org/settings", web::get().to(org_settings)),
        );
    }
}

async fn me(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sub": claims.sub, "tid": claims.tid, "sid": claims.sid }))
}

async fn profile(RequireScope(claims, ..): RequireScope<Profile>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sub": claims.sub, "scope": claims.scope }))
}

async fn admin(RequireScope(claims, ..): RequireScope<AdminScope>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sub": claims.sub }))
}

async fn write_docs(RequirePermission(claims, ..): RequirePermission<DocsWrite>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "written_by": claims.sub }))
}

async fn org_settings(RequireOrgRole(claims, ..): RequireOrgRole<OrgAdmin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "org_id": claims.org_id, "role": claims.org_role }))
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

#[allow(dead_code, reason = "tests include this file for configure(); main is for cargo run")]
#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let verifier = verifier_from_env()?;
    println!("actix-api listening on {listen}");
    actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(verifier.clone())))
        .bind(&listen)?
        .run()
        .await?;
    Ok(())
}
