//! Cross-device sign-in by QR code: device A asks and shows a QR code; device B, signed
//! in, scans it, sees where A is and approves or denies; A polls and receives tokens.
//!
//! Three one-time secrets carry it: the request (keyed by the QR code's hash, its target
//! the poll token's hash), and on B's decision the request is consumed together with an
//! approval or a denial keyed by the poll token's hash. Everything is single use and
//! expires with the request (two minutes).

use super::auth::{AuthService, LoginOutcome, SecretSignIn};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::ids::OneTimeId;
use crate::messaging::{OneTimeSecret, Purpose, Redemption, UserWrite};
use crate::secret::{SecretHash, SecretString, generate_secret};
use crate::store::Store;
use crate::tenant::Tenant;
use crate::user::UserStatus;
use std::sync::Arc;
use std::time::Duration as StdDuration;

/// Prefix of the code the QR image carries.
pub const QR_CODE_PREFIX: &str = "qrc_";
/// Prefix of the token device A polls with.
pub const POLL_TOKEN_PREFIX: &str = "qrp_";
/// How long a request lives.
pub const QR_TTL: time::Duration = time::Duration::minutes(2);
/// Requests one IP may start per minute.
const STARTS_PER_IP: u64 = 10;
/// Longest long-poll.
pub const MAX_WAIT: StdDuration = StdDuration::from_secs(25);

/// A started request, for device A.
#[derive(Debug)]
pub struct Started {
    /// What A polls with (kept by A only).
    pub poll_token: SecretString,
    /// What the QR code carries (`qrc_…`).
    pub qr_code: SecretString,
    /// The URL in the QR code.
    pub qr_url: String,
    /// The QR code as SVG.
    pub qr_svg: String,
}

/// Where the request came from, for device B to judge.
#[derive(Debug, Clone)]
pub struct Origin {
    /// A's user agent.
    pub user_agent: Option<String>,
    /// A's IP address.
    pub ip: Option<String>,
    /// When A asked.
    pub requested_at: time::OffsetDateTime,
}

/// What a poll finds.
#[derive(Debug)]
pub enum PollOutcome {
    /// Not decided yet.
    Pending,
    /// Approved: signed in (or, when the account needs it, a second-factor challenge).
    Approved(Box<LoginOutcome>),
}

/// The QR sign-in use cases.
#[derive(Debug, Clone)]
pub struct QrLoginService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    auth: AuthService,
    public_url: String,
}

impl QrLoginService {
    /// Wires the service.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auth: AuthService, public_url: &str) -> Self {
        Self { store, clock, auth, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// Device A asks to be signed in by another device.
    pub async fn start(&self, tenant: &Tenant, ctx: &RequestContext) -> Result<Started, ServiceError> {
        self.auth.limit(tenant, ctx, "qr_start", STARTS_PER_IP).await?;
        let now = self.clock.now();
        let code = generate_secret(QR_CODE_PREFIX);
        let poll = generate_secret(POLL_TOKEN_PREFIX);
        let secret = OneTimeSecret {
            id: OneTimeId::generate(),
            tenant_id: tenant.id.clone(),
            purpose: Purpose::QrLogin,
            target: poll.hash.as_str().to_owned(),
            user_id: None,
            token_hash: Some(code.hash),
            code_hash: None,
            attempts: 0,
            max_attempts: 0,
            data: serde_json::json!({ "user_agent": ctx.user_agent, "ip": ctx.ip }),
            created_at: now,
            expires_at: now + QR_TTL,
            consumed_at: None,
        };
        let event = AuditEvent::by_user(now, ctx, "qr_login.started", &tenant.id, None, serde_json::json!({}));
        self.store.issue_one_time(&tenant.id, &secret, &[], &event).await?;
        let qr_url = format!("{}/t/{}/qr?code={}", self.public_url, tenant.slug.as_str(), code.value.expose());
        let qr = qrcode::QrCode::new(qr_url.as_bytes()).map_err(ServiceError::internal)?;
        let qr_svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
        Ok(Started { poll_token: poll.value, qr_code: code.value, qr_url, qr_svg })
    }

    async fn request(&self, tenant: &Tenant, code: &str) -> Result<OneTimeSecret, ServiceError> {
        if !code.starts_with(QR_CODE_PREFIX) || code.len() > 128 {
            return Err(ServiceError::InvalidCode);
        }
        self.store
            .find_one_time_by_token(&tenant.id, Purpose::QrLogin, &SecretHash::of(code), self.clock.now())
            .await?
            .ok_or(ServiceError::InvalidCode)
    }

    /// Device B, signed in, reads where the request came from.
    pub async fn inspect(&self, tenant: &Tenant, access_token: &str, code: &str) -> Result<Origin, ServiceError> {
        self.auth.me(tenant, access_token).await?;
        let request = self.request(tenant, code).await?;
        Ok(Origin {
            user_agent: request.data["user_agent"].as_str().map(str::to_owned),
            ip: request.data["ip"].as_str().map(str::to_owned),
            requested_at: request.created_at,
        })
    }

    /// Device B approves (`true`) or denies the request. The first decision wins; the
    /// request cannot be decided twice.
    pub async fn decide(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        access_token: &str,
        code: &str,
        approve: bool,
    ) -> Result<(), ServiceError> {
        let (user, _, session) = self.auth.signed_in(tenant, access_token).await?;
        let request = self.request(tenant, code).await?;
        let now = self.clock.now();
        let mut amr = session.amr.clone();
        amr.push("qr".into());
        let decision = OneTimeSecret {
            id: OneTimeId::generate(),
            tenant_id: tenant.id.clone(),
            purpose: if approve { Purpose::QrApproved } else { Purpose::QrDenied },
            target: request.target.clone(),
            user_id: Some(user.id.clone()),
            token_hash: Some(SecretHash::from_stored(request.target.clone())),
            code_hash: None,
            attempts: 0,
            max_attempts: 0,
            data: serde_json::json!({ "amr": amr, "approved_by_session": session.id }),
            created_at: now,
            expires_at: request.expires_at,
            consumed_at: None,
        };
        let action = if approve { "qr_login.approved" } else { "qr_login.denied" };
        let data = serde_json::json!({ "requester_ip": request.data["ip"], "session_id": session.id });
        let event = AuditEvent::by_user(now, ctx, action, &tenant.id, Some(user.id.as_str()), data);
        let redemption = Redemption {
            secret_id: &request.id,
            now,
            user: UserWrite::None,
            revoke_sessions: None,
            session: None,
            issue: Some(&decision),
            messages: &[],
            event: &event,
        };
        super::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::InvalidCode).await
    }

    /// Device A asks how its request stands, waiting up to `wait` for a decision.
    pub async fn poll(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        poll_token: &str,
        wait: StdDuration,
    ) -> Result<PollOutcome, ServiceError> {
        if !poll_token.starts_with(POLL_TOKEN_PREFIX) || poll_token.len() > 128 {
            return Err(ServiceError::InvalidCode);
        }
        let hash = SecretHash::of(poll_token);
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            let now = self.clock.now();
            if let Some(approved) =
                self.store.find_one_time_by_token(&tenant.id, Purpose::QrApproved, &hash, now).await?
            {
                return self.complete(tenant, ctx, &approved).await.map(|o| PollOutcome::Approved(Box::new(o)));
            }
            if let Some(denied) = self.store.find_one_time_by_token(&tenant.id, Purpose::QrDenied, &hash, now).await? {
                let event =
                    AuditEvent::by_user(now, ctx, "qr_login.denial_seen", &tenant.id, None, serde_json::json!({}));
                let redemption = Redemption {
                    secret_id: &denied.id,
                    now,
                    user: UserWrite::None,
                    revoke_sessions: None,
                    session: None,
                    issue: None,
                    messages: &[],
                    event: &event,
                };
                super::redeem(self.store.as_ref(), &tenant.id, &redemption, ServiceError::InvalidCode).await?;
                return Err(ServiceError::Forbidden("the sign-in was denied on the other device"));
            }
            let pending = self.store.find_one_time_by_target(&tenant.id, Purpose::QrLogin, hash.as_str(), now).await?;
            if pending.is_none() {
                return Err(ServiceError::InvalidCode);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(PollOutcome::Pending);
            }
            tokio::time::sleep(StdDuration::from_millis(250)).await;
        }
    }

    async fn complete(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        approved: &OneTimeSecret,
    ) -> Result<LoginOutcome, ServiceError> {
        let user_id = approved.user_id.clone().ok_or(ServiceError::InvalidCode)?;
        let user = self.store.get_user(&tenant.id, &user_id).await.map_err(|_| ServiceError::InvalidCode)?;
        if user.status != UserStatus::Active {
            return Err(ServiceError::InvalidCode);
        }
        let amr: Vec<String> = approved.data["amr"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_else(|| vec!["qr".into()]);
        let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
        let sign_in = SecretSignIn {
            secret_id: &approved.id,
            user,
            insert: false,
            amr: &amr,
            data: serde_json::json!({ "via": "qr" }),
        };
        let tokens = self.auth.redeem_into_session(tenant, ctx, sign_in, ServiceError::InvalidCode).await?;
        Ok(LoginOutcome::SignedIn(Box::new(tokens)))
    }
}
