//! Audit events: who did what to which resource, from where.

use crate::ids::{EventId, TenantId};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Where a request came from; attached to every audit event it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Client IP address, as far as it can be trusted.
    pub ip: Option<String>,
    /// `User-Agent` header, truncated.
    pub user_agent: Option<String>,
    /// The request id (`X-Request-Id`).
    pub request_id: Option<String>,
    /// `Accept-Language` header (truncated), for messages to users without a locale.
    pub accept_language: Option<String>,
}

/// The kind of caller behind an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// The break-glass `GATEHOUSE_ADMIN_TOKEN`.
    BreakGlass,
    /// An operator API token.
    AdminToken,
    /// A tenant secret key.
    SecretKey,
    /// A signed-in operator account.
    Operator,
    /// Gatehouse itself (start-up, jobs).
    System,
    /// An end user of a tenant (signed in, or identified by the request).
    User,
    /// An unauthenticated caller (failed sign-ins).
    Anonymous,
}

impl ActorType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreakGlass => "break_glass",
            Self::AdminToken => "admin_token",
            Self::SecretKey => "secret_key",
            Self::Operator => "operator",
            Self::System => "system",
            Self::User => "user",
            Self::Anonymous => "anonymous",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "break_glass" => Self::BreakGlass,
            "admin_token" => Self::AdminToken,
            "secret_key" => Self::SecretKey,
            "operator" => Self::Operator,
            "system" => Self::System,
            "user" => Self::User,
            "anonymous" => Self::Anonymous,
            _ => return None,
        })
    }
}

/// An audit event as stored; events are never changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Opaque id; ids sort by time.
    pub id: EventId,
    /// The tenant concerned, if any.
    pub tenant_id: Option<TenantId>,
    /// Kind of caller.
    pub actor_type: ActorType,
    /// The caller's credential id, if any.
    pub actor_id: Option<String>,
    /// What happened, `resource.verb`, e.g. `tenant.create`.
    pub action: String,
    /// Kind of resource acted on, e.g. `tenant`.
    pub target_type: Option<String>,
    /// Id of the resource acted on.
    pub target_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Extra, non-secret details.
    pub data: serde_json::Value,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Filters for listing audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events of this tenant.
    pub tenant_id: Option<TenantId>,
    /// Only events of these tenants (a scoped caller's reach); `None` means all.
    pub tenant_scope: Option<Vec<TenantId>>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor_id: Option<String>,
}

impl AuditEvent {
    /// An event caused by an end user (or an anonymous caller when `user_id` is `None`).
    pub fn by_user(
        now: OffsetDateTime,
        ctx: &RequestContext,
        action: &str,
        tenant_id: &TenantId,
        user_id: Option<&str>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(),
            tenant_id: Some(tenant_id.clone()),
            actor_type: if user_id.is_some() { ActorType::User } else { ActorType::Anonymous },
            actor_id: user_id.map(str::to_owned),
            action: action.to_owned(),
            target_type: user_id.map(|_| "user".to_owned()),
            target_id: user_id.map(str::to_owned),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            data,
            created_at: now,
        }
    }

    /// An event of an operator signing in or out (`operator_id`), or of an attempt by
    /// someone unknown (`None`); not tied to a tenant.
    pub fn by_operator(
        now: OffsetDateTime,
        ctx: &RequestContext,
        action: &str,
        operator_id: Option<&str>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(),
            tenant_id: None,
            actor_type: if operator_id.is_some() { ActorType::Operator } else { ActorType::Anonymous },
            actor_id: operator_id.map(str::to_owned),
            action: action.to_owned(),
            target_type: operator_id.map(|_| "operator".to_owned()),
            target_id: operator_id.map(str::to_owned),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            data,
            created_at: now,
        }
    }

    /// An event caused by Gatehouse itself (a background job), about one target.
    pub fn by_system(
        now: OffsetDateTime,
        action: &str,
        tenant_id: &TenantId,
        target: (&str, &str),
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(),
            tenant_id: Some(tenant_id.clone()),
            actor_type: ActorType::System,
            actor_id: None,
            action: action.to_owned(),
            target_type: Some(target.0.to_owned()),
            target_id: Some(target.1.to_owned()),
            ip: None,
            user_agent: None,
            request_id: None,
            data,
            created_at: now,
        }
    }
}
