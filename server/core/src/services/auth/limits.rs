//! Rate limits of the auth flows: attempts counted per IP (or per address, per user) in
//! the ephemeral store, refused past their cap with one audit event per window.

use super::{AuthService, PER_IP_WINDOW, unavailable};
use crate::audit::{AuditEvent, RequestContext};
use crate::ephemeral::Count;
use crate::error::ServiceError;
use crate::tenant::Tenant;
use std::time::Duration;

impl AuthService {
    /// Counts an attempt of `what` from the caller's IP in a one-minute window; past `max`
    /// refuses, recording one audit event per window (not one per refused attempt, so an
    /// attacker cannot flood the log).
    pub async fn limit(&self, tenant: &Tenant, ctx: &RequestContext, what: &str, max: u64) -> Result<(), ServiceError> {
        self.limit_by(tenant, ctx, what, &ip_subject(ctx), max, PER_IP_WINDOW).await
    }

    /// Counts an attempt of `what` by `subject` (an IP, an address, a user) in a window;
    /// past `max` refuses, auditing the first refusal of each window.
    pub async fn limit_by(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        what: &str,
        subject: &str,
        max: u64,
        window: Duration,
    ) -> Result<(), ServiceError> {
        let count = self.ephemeral.increment(&limit_key(tenant, what, subject), window).await.map_err(unavailable)?;
        self.refuse_past_limit(tenant, ctx, what, count, max, window).await
    }

    /// Refuses an attempt that `count` puts past `max` in its window, auditing the first
    /// refusal of each window.
    pub(super) async fn refuse_past_limit(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        what: &str,
        count: Count,
        max: u64,
        window: Duration,
    ) -> Result<(), ServiceError> {
        if count.hits > max {
            if count.hits == max + 1 {
                let data = serde_json::json!({ "limit": max, "window_seconds": window.as_secs(), "flow": what });
                self.audit
                    .record(AuditEvent::by_user(self.clock.now(), ctx, "rate_limit.exceeded", &tenant.id, None, data))
                    .await?;
            }
            return Err(ServiceError::RateLimited { retry_after: count.resets_in.as_secs().max(1) });
        }
        Ok(())
    }
}

/// The ephemeral-store key counting attempts of `what` by `subject` in `tenant`.
pub(super) fn limit_key(tenant: &Tenant, what: &str, subject: &str) -> String {
    format!("rl:{what}:{}:{subject}", tenant.id)
}

/// The subject of per-IP limits.
pub(super) fn ip_subject(ctx: &RequestContext) -> String {
    format!("ip:{}", ip_of(ctx))
}

fn ip_of(ctx: &RequestContext) -> &str {
    ctx.ip.as_deref().unwrap_or("unknown")
}
