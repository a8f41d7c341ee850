//! The HTTP surface: routes registered through utoipa's `OpenApiRouter`, so the served
//! routes and the OpenAPI document come from the same declarations and cannot drift.

pub mod admin_tokens;
pub mod audit;
pub mod auth;
pub mod auth_api;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod extract;
pub mod messages;
pub mod mfa_api;
pub mod middleware;
pub mod oauth2;
pub mod operators;
pub mod ops;
pub mod orgs;
pub mod orgs_api;
pub mod pagination;
pub mod passkeys_api;
pub mod passwordless_api;
pub mod qr_api;
pub mod secret_keys;
pub mod signing_keys;
pub mod tenants;
pub mod users;
pub mod verification_api;
pub mod well_known;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Top-level OpenAPI metadata; paths and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Multi-tenant identity service: management API, tenant auth API, operations."),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "Tenants: isolated user pools"),
        (name = "secret-keys", description = "Tenant secret keys (sk_…) for server-side access to one tenant"),
        (name = "admin-tokens", description = "Operator API tokens (gh_admin_…)"),
        (name = "users", description = "A tenant's users"),
        (name = "graphql", description = "The management model over GraphQL (schema: openapi/gatehouse.graphql)"),
        (name = "operators", description = "Operator accounts and their sign-in"),
        (name = "organizations", description = "A tenant's organizations, members, roles and invitations"),
        (name = "signing-keys", description = "Token signing keys of a tenant"),
        (name = "audit", description = "The append-only audit log"),
        (name = "messages", description = "Email and SMS a tenant's users are sent: delivery status, dev outbox, templates"),
        (name = "auth", description = "End-user authentication of a tenant (/t/{t}/auth)"),
        (name = "standards", description = "JWKS and OpenID discovery of a tenant"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An operator token `gh_admin_…` or a tenant secret key `sk_…`"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every documented route.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(tenants::get_tenant, tenants::update_tenant, tenants::delete_tenant))
        .routes(routes!(secret_keys::create_secret_key, secret_keys::list_secret_keys))
        .routes(routes!(secret_keys::revoke_secret_key))
        .routes(routes!(secret_keys::rotate_secret_key))
        .routes(routes!(admin_tokens::create_admin_token, admin_tokens::list_admin_tokens))
        .routes(routes!(admin_tokens::revoke_admin_token))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user, users::update_user, users::delete_user))
        .routes(routes!(users::create_user_import))
        .routes(routes!(users::list_user_sessions))
        .routes(routes!(crate::graphql::create_graphql))
        .routes(routes!(operators::create_operator, operators::list_operators))
        .routes(routes!(operators::update_operator, operators::delete_operator))
        .routes(routes!(operators::create_operator_session))
        .routes(routes!(operators::create_operator_session_verify))
        .routes(routes!(operators::delete_operator_session))
        .routes(routes!(orgs::create_organization, orgs::list_organizations))
        .routes(routes!(orgs::get_organization, orgs::update_organization, orgs::delete_organization))
        .routes(routes!(orgs::create_member, orgs::list_members))
        .routes(routes!(orgs::update_member, orgs::delete_member))
        .routes(routes!(orgs::create_check))
        .routes(routes!(orgs::create_invitation, orgs::list_invitations))
        .routes(routes!(orgs::create_invitation_resend))
        .routes(routes!(orgs::delete_invitation))
        .routes(routes!(orgs::list_roles, orgs::create_role))
        .routes(routes!(orgs::update_role, orgs::delete_role))
        .routes(routes!(orgs::create_domain, orgs::list_domains))
        .routes(routes!(orgs::create_domain_verify))
        .routes(routes!(orgs::delete_domain))
        .routes(routes!(signing_keys::list_signing_keys))
        .routes(routes!(signing_keys::rotate_signing_keys))
        .routes(routes!(audit::list_audit_events))
        .routes(routes!(auth_api::create_signup))
        .routes(routes!(auth_api::create_login))
        .routes(routes!(auth_api::create_refresh))
        .routes(routes!(auth_api::create_logout))
        .routes(routes!(auth_api::get_me, auth_api::update_me))
        .routes(routes!(auth_api::create_password_change))
        .routes(routes!(auth_api::list_sessions, auth_api::delete_sessions))
        .routes(routes!(auth_api::delete_session))
        .routes(routes!(verification_api::create_email_verification))
        .routes(routes!(verification_api::create_email_verify))
        .routes(routes!(verification_api::create_password_forgot))
        .routes(routes!(verification_api::create_password_reset))
        .routes(routes!(verification_api::create_email_change))
        .routes(routes!(verification_api::create_email_change_confirm))
        .routes(routes!(verification_api::create_email_change_undo))
        .routes(routes!(verification_api::create_phone_code))
        .routes(routes!(verification_api::create_phone_verify))
        .routes(routes!(passwordless_api::create_magic_link))
        .routes(routes!(passwordless_api::get_magic_link_verify))
        .routes(routes!(passwordless_api::create_magic_link_exchange))
        .routes(routes!(passwordless_api::create_otp))
        .routes(routes!(passwordless_api::create_otp_verify))
        .routes(routes!(mfa_api::create_totp_setup))
        .routes(routes!(mfa_api::create_totp_enable))
        .routes(routes!(mfa_api::create_totp_disable))
        .routes(routes!(mfa_api::create_recovery_codes))
        .routes(routes!(mfa_api::get_mfa))
        .routes(routes!(mfa_api::create_mfa_verify))
        .routes(routes!(mfa_api::create_step_up))
        .routes(routes!(passkeys_api::create_passkey_register_begin))
        .routes(routes!(passkeys_api::create_passkey_register_finish))
        .routes(routes!(passkeys_api::create_passkey_login_begin))
        .routes(routes!(passkeys_api::create_passkey_login_finish))
        .routes(routes!(passkeys_api::list_passkeys))
        .routes(routes!(passkeys_api::update_passkey, passkeys_api::delete_passkey))
        .routes(routes!(orgs_api::list_my_organizations))
        .routes(routes!(orgs_api::create_org_token))
        .routes(routes!(orgs_api::create_invitation_accept))
        .routes(routes!(orgs_api::list_discoverable_organizations))
        .routes(routes!(orgs_api::create_org_join))
        .routes(routes!(orgs_api::delete_my_organization))
        .routes(routes!(qr_api::create_qr_start))
        .routes(routes!(qr_api::create_qr_inspect))
        .routes(routes!(qr_api::create_qr_approve))
        .routes(routes!(qr_api::create_qr_deny))
        .routes(routes!(qr_api::create_qr_poll))
        .routes(routes!(messages::list_messages))
        .routes(routes!(messages::list_dev_outbox))
        .routes(routes!(messages::list_templates))
        .routes(routes!(messages::update_template, messages::delete_template))
        .routes(routes!(well_known::get_jwks))
        .routes(routes!(well_known::get_openid_configuration))
        .routes(routes!(oauth2::create_introspection))
        .routes(routes!(ops::get_health))
        .routes(routes!(ops::get_readiness))
        .routes(routes!(ops::get_metrics))
}

/// The complete application: routes, fallbacks and middleware, bound to `state`.
pub fn router(state: AppState) -> Router {
    let (routes, _spec) = api_router().split_for_parts();
    routes
        .route_layer(from_fn(middleware::mark_route))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), cors::tenant_cors))
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}
