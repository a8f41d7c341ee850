//! `/v1/tenants/{tenant_id}/messages`, `/dev/outbox` and `/templates`: what Gatehouse
//! sends to a tenant's users, whether it arrived, and the tenant's own templates.

use super::auth::Auth;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Ctx, TenantPath};
use super::pagination::{ListQuery, list_response};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::ids::{MessageId, TenantId};
use gatehouse_core::messaging::{
    Channel, DeliveryStatus, MessageKind, OutboxRecord, RenderedMessage, TemplateOverride,
};
use gatehouse_core::services::templates::TemplateSource;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A queued or sent message (no content).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// Id (also the email's `Message-ID`).
    pub id: MessageId,
    /// `email` or `sms`.
    pub channel: Channel,
    /// Address or number.
    pub recipient: String,
    /// Which message.
    pub kind: MessageKind,
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the next attempt is due (pending messages).
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// When the relay or provider accepted it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

impl From<OutboxRecord> for MessageResponse {
    fn from(r: OutboxRecord) -> Self {
        Self {
            id: r.message.id,
            channel: r.message.channel,
            recipient: r.message.recipient,
            kind: r.message.kind,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.message.created_at,
            next_attempt_at: r.next_attempt_at,
            sent_at: r.sent_at,
        }
    }
}

list_response!(MessageList, MessageResponse);

/// A message with its content, from the dev outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevMessage {
    /// Delivery facts.
    #[serde(flatten)]
    pub message: MessageResponse,
    /// Subject (empty for SMS).
    pub subject: String,
    /// Text body.
    pub text: String,
    /// HTML body (email).
    pub html: Option<String>,
}

list_response!(DevMessageList, DevMessage);

/// The tenant's messages and their delivery status.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/messages", tag = "messages", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ListQuery),
    responses((status = 200, body = MessageList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_messages(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<MessageList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let page = state.services.outbox.list(&access, &ctx, &query.page()?).await?;
    Ok(Json(MessageList::from(page.map(MessageResponse::from))))
}

/// The dev outbox: messages with content, for operators while no SMTP relay is
/// configured (`404` otherwise). Every read is audited.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/dev/outbox", tag = "messages", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ListQuery),
    responses((status = 200, body = DevMessageList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_dev_outbox(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<ListQuery>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<DevMessageList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let enabled = state.config.smtp_url.is_none();
    let page = state.services.outbox.dev_outbox(&access, &ctx, &query.page()?, enabled).await?;
    Ok(Json(DevMessageList::from(page.map(|(record, content): (OutboxRecord, RenderedMessage)| DevMessage {
        message: MessageResponse::from(record),
        subject: content.subject,
        text: content.text,
        html: content.html,
    }))))
}

/// A message template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateResponse {
    /// Which message.
    pub kind: MessageKind,
    /// Language.
    pub locale: String,
    /// Subject template.
    pub subject: String,
    /// HTML template (auto-escaped; empty for SMS).
    pub html: String,
    /// Text template.
    pub text: String,
    /// `true` for the tenant's own version, `false` for the built-in one.
    pub custom: bool,
}

impl TemplateResponse {
    fn new(t: TemplateOverride, custom: bool) -> Self {
        Self { kind: t.kind, locale: t.locale, subject: t.subject, html: t.html, text: t.text, custom }
    }
}

/// Every template in effect.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// Built-in (English, German) and the tenant's own, by kind and locale.
    pub data: Vec<TemplateResponse>,
}

/// The templates in effect for the tenant: its own and the built-in ones.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/templates", tag = "messages", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses((status = 200, body = TemplateList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_templates(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TenantPath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<TemplateList>> {
    let access = principal.tenant(&path.tenant_id)?;
    let list = state.services.templates.list(&access, &ctx).await?;
    Ok(Json(TemplateList { data: list.into_iter().map(|(t, custom)| TemplateResponse::new(t, custom)).collect() }))
}

/// Path of one template.
#[derive(Debug, Deserialize)]
pub struct TemplatePath {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Message kind.
    pub kind: MessageKind,
    /// Language code.
    pub locale: String,
}

/// Body of `PUT …/templates/{kind}/{locale}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    /// Subject (MiniJinja syntax; variables `product_name`, `link`, `code`,
    /// `expires_minutes`, `email`, `new_email`, `logo_url`, `primary_color`).
    pub subject: String,
    /// HTML body; values are HTML-escaped. Empty for SMS.
    #[serde(default)]
    pub html: String,
    /// Text body (the whole SMS).
    pub text: String,
}

/// Stores the tenant's own version of a template.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/templates/{kind}/{locale}", tag = "messages", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("kind" = MessageKind, Path), ("locale" = String, Path)),
    request_body = TemplateRequest,
    responses((status = 200, body = TemplateResponse), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_template(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TemplatePath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<TemplateRequest>,
) -> ApiResult<Json<TemplateResponse>> {
    let access = principal.tenant(&path.tenant_id)?;
    let source = TemplateSource { subject: body.subject, html: body.html, text: body.text };
    let stored = state.services.templates.put(&access, &ctx, path.kind, &path.locale, source).await?;
    Ok(Json(TemplateResponse::new(stored, true)))
}

/// Returns a template to the built-in version.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/templates/{kind}/{locale}", tag = "messages", security(("bearer" = [])),
    params(("tenant_id" = TenantId, Path), ("kind" = MessageKind, Path), ("locale" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_template(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<TemplatePath>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    let access = principal.tenant(&path.tenant_id)?;
    state.services.templates.delete(&access, &ctx, path.kind, &path.locale).await?;
    Ok(StatusCode::NO_CONTENT)
}
