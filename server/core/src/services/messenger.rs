//! Composing messages that carry one-time secrets: generates the link token and/or code,
//! keeps only their hashes, renders the tenant's template in the user's language, and
//! seals the rendered message for the outbox. Links are built only from
//! `GATEHOUSE_PUBLIC_URL`, never from request headers.

use super::templates::{self, TemplateVars};
use crate::audit::RequestContext;
use crate::error::ServiceError;
use crate::ids::{MessageId, OneTimeId, UserId};
use crate::messaging::{MessageKind, OneTimeSecret, OutboxMessage, Purpose, RenderedMessage};
use crate::secret::{SecretString, generate_secret};
use crate::signing::Sealer;
use crate::store::Store;
use crate::tenant::Tenant;
use rand::Rng;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Prefix of one-time link tokens.
pub const LINK_TOKEN_PREFIX: &str = "ot_";
/// Digits of a one-time code.
pub const CODE_DIGITS: usize = 6;

/// What to send, and what the secret in it is for.
#[derive(Debug, Clone)]
pub struct Dispatch<'a> {
    /// What the secret is for.
    pub purpose: Purpose,
    /// The template.
    pub kind: MessageKind,
    /// The normalised address or number the secret is bound to.
    pub target: &'a str,
    /// Where the message goes (usually the target as typed).
    pub recipient: &'a str,
    /// The account, if there is one.
    pub user_id: Option<&'a UserId>,
    /// The user's locale, if known.
    pub user_locale: Option<&'a str>,
    /// Validity.
    pub ttl: Duration,
    /// Path under `/t/{slug}/` the link opens, if the message carries a link.
    pub link_path: Option<&'a str>,
    /// Whether the message carries a code.
    pub code: bool,
    /// Flow data kept with the secret.
    pub data: serde_json::Value,
    /// Extra template variables (the rest are filled here).
    pub vars: TemplateVars,
}

/// A prepared secret and its message, ready to store in one transaction.
#[derive(Debug)]
pub struct Prepared {
    /// The secret (hashes only).
    pub secret: OneTimeSecret,
    /// The message carrying it.
    pub message: OutboxMessage,
}

/// Composes and opens messages.
#[derive(Debug, Clone)]
pub struct Messenger {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    public_url: String,
    /// Wakes this replica's delivery worker when a message was queued.
    wake: Arc<tokio::sync::Notify>,
    /// Tenants' template overrides, shared with the template service.
    overrides: super::templates::OverrideCache,
}

/// Wrong codes after which a code dies.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

impl Messenger {
    /// Wires the messenger.
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        public_url: &str,
        overrides: super::templates::OverrideCache,
    ) -> Self {
        Self {
            store,
            sealer,
            public_url: public_url.trim_end_matches('/').to_owned(),
            wake: Arc::new(tokio::sync::Notify::new()),
            overrides,
        }
    }

    /// Tells the delivery worker that messages were committed to the outbox, so they go
    /// out now rather than at its next poll.
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    /// What the delivery worker waits on between polls.
    pub fn wake_signal(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// A link into the tenant's pages or API, from the configured public URL only.
    pub fn link(&self, tenant: &Tenant, path: &str, token: &str) -> String {
        format!("{}/t/{}/{path}?token={token}", self.public_url, tenant.slug.as_str())
    }

    /// The code hash context: the code is only valid for this secret.
    fn code_context(secret: &OneTimeSecret) -> String {
        format!("{}|{}|{}|{}", secret.tenant_id, secret.purpose.as_str(), secret.target, secret.id)
    }

    /// Whether `code` is the secret's code (constant time).
    pub fn code_matches(&self, secret: &OneTimeSecret, code: &str) -> bool {
        let Some(stored) = &secret.code_hash else { return false };
        let presented = self.sealer.code_hash(&Self::code_context(secret), code.trim());
        subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), stored.as_bytes()).into()
    }

    /// Generates the secret, renders the message in the best language and seals it.
    pub async fn prepare(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: OffsetDateTime,
        dispatch: Dispatch<'_>,
    ) -> Result<Prepared, ServiceError> {
        let mut secret = OneTimeSecret {
            id: OneTimeId::generate(),
            tenant_id: tenant.id.clone(),
            purpose: dispatch.purpose,
            target: dispatch.target.to_owned(),
            user_id: dispatch.user_id.cloned(),
            token_hash: None,
            code_hash: None,
            attempts: 0,
            max_attempts: MAX_CODE_ATTEMPTS,
            data: dispatch.data,
            created_at: now,
            expires_at: now + dispatch.ttl,
            consumed_at: None,
        };
        let mut vars = dispatch.vars;
        let base = TemplateVars::for_tenant(tenant);
        vars.product_name = base.product_name;
        vars.logo_url = base.logo_url;
        vars.primary_color = base.primary_color;
        vars.expires_minutes = Some(dispatch.ttl.whole_minutes());
        if let Some(path) = dispatch.link_path {
            let token = generate_secret(LINK_TOKEN_PREFIX);
            vars.link = Some(self.link(tenant, path, token.value.expose()));
            secret.token_hash = Some(token.hash);
        }
        if dispatch.code {
            let code = new_code();
            secret.code_hash = Some(self.sealer.code_hash(&Self::code_context(&secret), code.expose()));
            vars.code = Some(code.expose().to_owned());
        }
        let message =
            self.compose(tenant, ctx, now, dispatch.kind, dispatch.recipient, dispatch.user_locale, &vars).await?;
        Ok(Prepared { secret, message })
    }

    /// Prepares a secret and its message and stores both with the audit event `action`
    /// (its data names the message), in one transaction.
    pub async fn send(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: OffsetDateTime,
        dispatch: Dispatch<'_>,
        action: &str,
        mut data: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let user_id = dispatch.user_id.cloned();
        let prepared = self.prepare(tenant, ctx, now, dispatch).await?;
        data["message_id"] = serde_json::Value::String(prepared.message.id.to_string());
        let event =
            crate::audit::AuditEvent::by_user(now, ctx, action, &tenant.id, user_id.as_ref().map(UserId::as_str), data);
        self.store.issue_one_time(&tenant.id, &prepared.secret, &[prepared.message], &event).await?;
        self.queued();
        Ok(())
    }

    /// A notice to `user` about their account (a factor added or removed), in their
    /// language, with the tenant's branding: to queue with the change it reports.
    pub async fn notice(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: OffsetDateTime,
        user: &crate::user::User,
        kind: MessageKind,
    ) -> Result<OutboxMessage, ServiceError> {
        let vars = TemplateVars::for_tenant(tenant);
        let locale = user.profile.locale.as_deref();
        self.compose(tenant, ctx, now, kind, user.email.as_str(), locale, &vars).await
    }

    /// Renders a message without a secret (a notice) and seals it for the outbox.
    #[allow(clippy::too_many_arguments, reason = "each argument is one fact of the message")]
    pub async fn compose(
        &self,
        tenant: &Tenant,
        ctx: &RequestContext,
        now: OffsetDateTime,
        kind: MessageKind,
        recipient: &str,
        user_locale: Option<&str>,
        vars: &TemplateVars,
    ) -> Result<OutboxMessage, ServiceError> {
        let mut vars = vars.clone();
        if vars.product_name.is_empty() {
            let base = TemplateVars::for_tenant(tenant);
            vars.product_name = base.product_name;
            vars.logo_url = base.logo_url;
            vars.primary_color = base.primary_color;
        }
        let languages = templates::preferred_languages(user_locale, ctx.accept_language.as_deref());
        let overrides = self.overrides.get(self.store.as_ref(), &tenant.id).await?;
        let (_, template) = templates::choose(kind, &languages, &overrides);
        let rendered = templates::render(&template, &vars)?;
        let id = MessageId::generate();
        let json = serde_json::to_vec(&rendered).map_err(ServiceError::internal)?;
        let sealed = self.sealer.seal(&format!("outbox:{id}"), &json)?;
        Ok(OutboxMessage {
            id,
            tenant_id: tenant.id.clone(),
            channel: kind.channel(),
            recipient: recipient.to_owned(),
            kind,
            sealed,
            created_at: now,
        })
    }

    /// The content of a queued message.
    pub fn open(&self, message: &OutboxMessage) -> Result<RenderedMessage, ServiceError> {
        let json = self.sealer.open(&format!("outbox:{}", message.id), &message.sealed)?;
        serde_json::from_slice(&json).map_err(ServiceError::internal)
    }
}

/// A uniformly random code of [`CODE_DIGITS`] digits.
pub fn new_code() -> SecretString {
    let n: u32 = rand::rng().random_range(0..1_000_000);
    SecretString::new(format!("{n:0width$}", width = CODE_DIGITS))
}

/// Whether a presented code is shaped like one of ours (six ASCII digits).
pub fn is_code_shaped(code: &str) -> bool {
    let code = code.trim();
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}
