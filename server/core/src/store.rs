//! Storage traits, one per aggregate. Every tenant-owned operation takes the tenant
//! first. Writes that change state take the audit event they cause and store it in the
//! same transaction, so a change is never recorded without its event, or the reverse.

use crate::audit::{AuditEvent, AuditQuery};
use crate::credentials::{AdminTokenRecord, SecretKeyRecord};
use crate::ids::{
    AdminTokenId, InvitationId, MessageId, OperatorId, OperatorSessionId, OrganizationId, PasskeyId, SecretKeyId,
    SessionId, TenantId, UserId,
};
use crate::messaging::{
    DeliveryOutcome, MessageKind, OneTimeSecret, OutboxMessage, OutboxRecord, Purpose, Redemption, SignUp,
    TemplateOverride, UserWrite,
};
use crate::mfa::TotpFactor;
use crate::operator::{Operator, OperatorSession};
use crate::org::{Invitation, Membership, OrgDomain, Organization, Role};
use crate::page::{Page, PageRequest};
use crate::passkey::{Passkey, PasskeyUse, SecondFactors};
use crate::secret::SecretHash;
use crate::session::{RefreshOutcome, RefreshToken, Session};
use crate::signing::SigningKeyRecord;
use crate::tenant::{Tenant, TenantSlug};
use crate::user::{User, UserFilter};
use async_trait::async_trait;
use time::OffsetDateTime;

/// The audit event a refresh-token rotation records, as the caller makes it before the
/// token is read. Only the token tells whose session it is, so the store completes the
/// event for that session ([`RotationEvent::for_session`]; Postgres does the same in SQL,
/// migration 0024): the session's user becomes actor and target, and the session's id
/// joins the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    event: AuditEvent,
}

impl RotationEvent {
    /// `refresh_token.rotated` at `now` in `tenant_id`, caused by the request `ctx`;
    /// `raced` tells a concurrent duplicate, answered with the same successor, from the
    /// rotation itself.
    pub fn new(now: OffsetDateTime, ctx: &crate::audit::RequestContext, tenant_id: &TenantId, raced: bool) -> Self {
        let data = serde_json::json!({ "raced": raced });
        Self { event: AuditEvent::by_user(now, ctx, "refresh_token.rotated", tenant_id, None, data) }
    }

    /// The event as made by the caller: what does not depend on the session. Its actor
    /// is still anonymous, it names no target, and its data lacks `session_id`.
    pub fn template(&self) -> &AuditEvent {
        &self.event
    }

    /// The event as recorded for a rotation of `session`.
    pub fn for_session(&self, session: &Session) -> AuditEvent {
        let mut event = self.event.clone();
        let user = session.user_id.to_string();
        event.actor_type = crate::audit::ActorType::User;
        event.actor_id = Some(user.clone());
        event.target_type = Some("user".to_owned());
        event.target_id = Some(user);
        if let serde_json::Value::Object(data) = &mut event.data {
            data.insert("session_id".to_owned(), serde_json::Value::String(session.id.to_string()));
        }
        event
    }
}

/// Why a storage operation failed. Identical across backends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such row (or it belongs to another tenant, or is deleted).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule was violated; `constraint` is named the same in both
    /// migration sets (e.g. `tenants_slug_key`).
    #[error("conflict on {constraint}")]
    Conflict {
        /// Constraint name.
        constraint: String,
    },
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported.
    #[error("database error: {0}")]
    Backend(String),
}

/// Tenants: the root of every other aggregate.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Inserts a tenant. `Conflict{tenants_slug_key}` if the slug was ever used.
    async fn create_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError>;
    /// A live (not deleted) tenant by id.
    async fn get_tenant(&self, tenant_id: &TenantId) -> Result<Tenant, StoreError>;
    /// A live tenant by slug.
    async fn get_tenant_by_slug(&self, slug: &TenantSlug) -> Result<Tenant, StoreError>;
    /// Live tenants in id order, limited to `scope` when given.
    async fn list_tenants(&self, scope: Option<&[TenantId]>, page: &PageRequest) -> Result<Page<Tenant>, StoreError>;
    /// Writes `name` and `settings` if the stored version is `tenant.version - 1`;
    /// `Conflict{tenants_version}` if someone else changed it first.
    async fn update_tenant(&self, tenant: &Tenant, event: &AuditEvent) -> Result<(), StoreError>;
    /// Marks a live tenant deleted and revokes its secret keys.
    async fn delete_tenant(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// How many live tenants exist.
    async fn count_tenants(&self) -> Result<u64, StoreError>;
}

/// How a secret-key rotation ends the old key.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// When the old key stops working.
    pub old_expires_at: OffsetDateTime,
}

/// Tenant secret keys.
#[async_trait]
pub trait SecretKeyStore: Send + Sync {
    /// Stores a new key.
    async fn create_secret_key(
        &self,
        tenant_id: &TenantId,
        key: &SecretKeyRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// One key of the tenant.
    async fn get_secret_key(&self, tenant_id: &TenantId, key_id: &SecretKeyId) -> Result<SecretKeyRecord, StoreError>;
    /// The tenant's keys in id order, revoked ones included.
    async fn list_secret_keys(
        &self,
        tenant_id: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<SecretKeyRecord>, StoreError>;
    /// Revokes an unrevoked key; `NotFound` if there is none.
    async fn revoke_secret_key(
        &self,
        tenant_id: &TenantId,
        key_id: &SecretKeyId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Atomically gives the old key an expiry and stores its successor. Each key can be
    /// rotated once: a second rotation (also a concurrent one) gets
    /// `Conflict{secret_keys_rotated}`.
    async fn rotate_secret_key(
        &self,
        tenant_id: &TenantId,
        old_key_id: &SecretKeyId,
        rotation: Rotation,
        successor: &SecretKeyRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Authentication lookup: the key with this hash that is active at `now`, of a live
    /// tenant. The only tenant-less query: the secret is all the caller has.
    async fn find_active_secret_key(
        &self,
        hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<SecretKeyRecord>, StoreError>;
    /// Records a use.
    async fn touch_secret_key(
        &self,
        tenant_id: &TenantId,
        key_id: &SecretKeyId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Operator API tokens (not tenant-owned).
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// Stores a token.
    async fn create_admin_token(&self, token: &AdminTokenRecord, event: &AuditEvent) -> Result<(), StoreError>;
    /// Stores a token only if no unrevoked token exists yet; `Ok(false)` if one does.
    /// Used for the first-start bootstrap token, safely against concurrent starts.
    async fn create_first_admin_token(&self, token: &AdminTokenRecord, event: &AuditEvent) -> Result<bool, StoreError>;
    /// Tokens in id order.
    async fn list_admin_tokens(&self, page: &PageRequest) -> Result<Page<AdminTokenRecord>, StoreError>;
    /// Revokes an unrevoked token.
    async fn revoke_admin_token(
        &self,
        token_id: &AdminTokenId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Authentication lookup of an unrevoked token.
    async fn find_active_admin_token(&self, hash: &SecretHash) -> Result<Option<AdminTokenRecord>, StoreError>;
    /// Records a use.
    async fn touch_admin_token(&self, token_id: &AdminTokenId, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// Users of a tenant. Emails are unique per tenant by their normalised form
/// (`Conflict{users_tenant_id_email_normalized_key}`).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user of a live tenant (`NotFound` if the tenant is gone).
    async fn create_user(&self, tenant_id: &TenantId, user: &User, event: &AuditEvent) -> Result<(), StoreError>;
    /// Stores many new users in one transaction: all or none (bulk import).
    async fn create_users(&self, tenant_id: &TenantId, users: &[User], event: &AuditEvent) -> Result<(), StoreError>;
    /// One user.
    async fn get_user(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<User, StoreError>;
    /// The user with this normalised email, if any.
    async fn find_user_by_email(
        &self,
        tenant_id: &TenantId,
        normalized_email: &str,
    ) -> Result<Option<User>, StoreError>;
    /// The user with this normalised email and their second factors, in one read: what a
    /// password sign-in needs before it answers.
    async fn find_user_for_sign_in(
        &self,
        tenant_id: &TenantId,
        normalized_email: &str,
    ) -> Result<Option<(User, SecondFactors)>, StoreError>;
    /// Users in id order, filtered.
    async fn list_users(
        &self,
        tenant_id: &TenantId,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;
    /// Overwrites every mutable field (email, verification, name, status, password hash,
    /// times).
    async fn update_user(&self, tenant_id: &TenantId, user: &User, event: &AuditEvent) -> Result<(), StoreError>;
    /// Deletes a user and everything that belongs to them.
    async fn delete_user(&self, tenant_id: &TenantId, user_id: &UserId, event: &AuditEvent) -> Result<(), StoreError>;
    /// The users with these ids (unknown ids are skipped), in one query; at most 100.
    async fn get_users(&self, tenant_id: &TenantId, ids: &[UserId]) -> Result<Vec<User>, StoreError>;
    /// The user who verified this E.164 number, if any.
    async fn find_user_by_verified_phone(&self, tenant_id: &TenantId, phone: &str) -> Result<Option<User>, StoreError>;
}

/// One-time secrets, the message outbox and tenant message templates.
#[async_trait]
pub trait MessagingStore: Send + Sync {
    /// Stores a secret and the messages that carry it, in one transaction. Live secrets
    /// of the same purpose and target are consumed (superseded) first, so only the newest
    /// link or code works. (A sign-up's secret goes with its account: [`Self::sign_up`].)
    async fn issue_one_time(
        &self,
        tenant_id: &TenantId,
        secret: &OneTimeSecret,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Deletes at most `limit` one-time secrets, of any tenant, that expired before
    /// `expired_before` (consumed or not); how many went.
    async fn sweep_expired_one_time(&self, expired_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
    /// Stores a sign-up and what follows it ([`SignUp`]) in one transaction: all of it,
    /// or nothing (`Conflict` when the email is taken).
    async fn sign_up(&self, tenant_id: &TenantId, sign_up: &SignUp<'_>) -> Result<(), StoreError>;
    /// The live (unconsumed, unexpired) secret of this purpose with this link-token hash.
    async fn find_one_time_by_token(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError>;
    /// The newest live secret of this purpose and target.
    async fn find_one_time_by_target(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError>;
    /// Counts one code attempt against the newest live secret of this purpose and target
    /// that has attempts left, atomically, and returns it with the attempt counted;
    /// `None` if there is no such secret. Compare the code only after this call, so
    /// parallel guesses cannot exceed the limit.
    async fn attempt_one_time_code(
        &self,
        tenant_id: &TenantId,
        purpose: Purpose,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeSecret>, StoreError>;
    /// Consumes a live secret and applies its effects in one transaction. `NotFound` if
    /// the secret was consumed or expired meanwhile (of parallel redemptions exactly one
    /// succeeds); conflicts of the user write roll everything back.
    async fn redeem_one_time(&self, tenant_id: &TenantId, redemption: &Redemption<'_>) -> Result<(), StoreError>;
    /// Queues messages with their audit event, in one transaction.
    async fn enqueue_messages(
        &self,
        tenant_id: &TenantId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Claims up to `limit` due messages of any tenant for one worker: pending ones whose
    /// attempt is due and sending ones whose lease expired. Each claim counts an attempt
    /// and leases the message until `lease_until`, so replicas never claim one message
    /// at the same time.
    async fn claim_due_messages(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Records how a claimed attempt ended, with its audit event. A message that was sent
    /// (unless the outcome says `keep_content`) or given up keeps no content: its sealed
    /// body (links, codes) is erased with the status, and only the delivery record stays.
    async fn finish_delivery(
        &self,
        tenant_id: &TenantId,
        message_id: &MessageId,
        outcome: &DeliveryOutcome,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Deletes at most `limit` messages, of any tenant, that were queued before
    /// `queued_before` and whose delivery is over (sent or given up); how many went.
    /// Messages still waiting for an attempt, or in one, stay whatever their age.
    async fn sweep_finished_messages(&self, queued_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
    /// The tenant's messages in id (queue) order.
    async fn list_messages(&self, tenant_id: &TenantId, page: &PageRequest) -> Result<Page<OutboxRecord>, StoreError>;
    /// Creates or replaces a template override.
    async fn put_template(
        &self,
        tenant_id: &TenantId,
        template: &TemplateOverride,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// One template override.
    async fn get_template(
        &self,
        tenant_id: &TenantId,
        kind: MessageKind,
        locale: &str,
    ) -> Result<Option<TemplateOverride>, StoreError>;
    /// Every template override of the tenant.
    async fn list_templates(&self, tenant_id: &TenantId) -> Result<Vec<TemplateOverride>, StoreError>;
    /// Removes a template override; `NotFound` if there is none.
    async fn delete_template(
        &self,
        tenant_id: &TenantId,
        kind: MessageKind,
        locale: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
}

/// A tenant's token signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Keys to publish at `now`: next, active, and retired ones still within their window.
    async fn published_signing_keys(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Stores a tenant's first active and next keys; `Conflict{signing_keys_one_active}`
    /// if another caller did it first.
    async fn create_initial_signing_keys(
        &self,
        tenant_id: &TenantId,
        active: &SigningKeyRecord,
        next: &SigningKeyRecord,
    ) -> Result<(), StoreError>;
    /// Atomically: the active key retires (published until `retire_publish_until`), the
    /// next key becomes active (from `new_next.created_at`), `new_next` becomes next.
    /// With `only_if_activated_before`, does nothing (`Ok(None)`) unless the active key
    /// started signing before then, checked under the rotation lock, so replicas racing
    /// to rotate a due tenant rotate it once. `NotFound` if the tenant has no keys yet.
    /// Returns the newly active key's id.
    async fn rotate_signing_keys(
        &self,
        tenant_id: &TenantId,
        new_next: &SigningKeyRecord,
        retire_publish_until: OffsetDateTime,
        only_if_activated_before: Option<OffsetDateTime>,
        event: &AuditEvent,
    ) -> Result<Option<crate::ids::SigningKeyId>, StoreError>;
}

/// Sessions and their refresh tokens.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session with its first refresh token.
    async fn create_session(
        &self,
        tenant_id: &TenantId,
        session: &Session,
        refresh: &RefreshToken,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Records a successful sign-in in one transaction: the user's sign-in time and
    /// password hash (possibly upgraded), the new session with its first refresh token,
    /// and the event. `NotFound` if the user is gone.
    async fn record_login(
        &self,
        tenant_id: &TenantId,
        user: &User,
        session: &Session,
        refresh: &RefreshToken,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// One session.
    async fn get_session(&self, tenant_id: &TenantId, session_id: &SessionId) -> Result<Session, StoreError>;
    /// Deletes what is left of sessions, of any tenant, that ended — expired, or were
    /// revoked — before `ended_before`: their refresh tokens first, then the sessions, at
    /// most `limit` rows in all; how many rows went (fewer than `limit`: nothing is left).
    async fn sweep_ended_sessions(&self, ended_before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
    /// Spends `presented` and stores `successor` in the same session, atomically, keeping
    /// `successor_sealed` with the spent token. Presented again within `grace` of being
    /// spent, it answers `Raced` with that sealed successor; later, `Reused`, and the
    /// session is revoked. Of concurrent presentations of one token, at most one rotates;
    /// a rotation records `event`, completed for the rotated session, in the same
    /// transaction.
    #[allow(clippy::too_many_arguments, reason = "one atomic operation: its inputs are its parts")]
    async fn rotate_refresh_token(
        &self,
        tenant_id: &TenantId,
        presented: &crate::secret::SecretHash,
        successor: &RefreshToken,
        successor_sealed: &[u8],
        now: OffsetDateTime,
        grace: time::Duration,
        event: &RotationEvent,
    ) -> Result<RefreshOutcome, StoreError>;
    /// Revokes the session a refresh token belongs to (sign-out); `None` if unknown.
    async fn revoke_session_by_refresh_token(
        &self,
        tenant_id: &TenantId,
        presented: &crate::secret::SecretHash,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<Option<Session>, StoreError>;
    /// A user's live sessions at `now`, oldest first.
    async fn list_user_sessions(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError>;
    /// Revokes one live session of this user; `NotFound` if it is not theirs or not live.
    async fn revoke_user_session(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        session_id: &SessionId,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// Revokes every live session of a user but `except`; returns how many.
    async fn revoke_user_sessions(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        except: Option<&SessionId>,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<u64, StoreError>;
}

/// The append-only audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events that accompany no other change (reads), all in one transaction:
    /// either every event is stored or none is.
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// Events matching `query`, in id (time) order.
    async fn list_audit_events(&self, query: &AuditQuery, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError>;
}

/// Second factors: TOTP and recovery codes.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Stores a pending TOTP secret for the user, replacing a pending one;
    /// `Conflict{mfa_totp_enabled}` if the user already has TOTP enabled.
    async fn put_pending_totp(
        &self,
        tenant_id: &TenantId,
        factor: &TotpFactor,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The user's TOTP factor, pending or enabled.
    async fn get_totp(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<Option<TotpFactor>, StoreError>;
    /// Enables the pending factor created at `created_at` (so a setup replaced meanwhile
    /// is not enabled), accepting `step`, replaces the recovery codes and queues the
    /// notices, in one transaction; `NotFound` if there is no such pending factor.
    #[allow(clippy::too_many_arguments, reason = "the change, its codes, notices and event: one transaction")]
    async fn enable_totp(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        created_at: OffsetDateTime,
        step: i64,
        recovery_code_hashes: &[String],
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Accepts a time step of the enabled factor if it is later than every step accepted
    /// before (atomically): `false` for a replayed or older code.
    async fn use_totp_step(&self, tenant_id: &TenantId, user_id: &UserId, step: i64) -> Result<bool, StoreError>;
    /// Removes the user's TOTP factor and recovery codes; `NotFound` if none.
    async fn delete_totp(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Spends an unused recovery code (atomically: of parallel uses one succeeds).
    async fn use_recovery_code(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Replaces every recovery code of the user.
    async fn replace_recovery_codes(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        code_hashes: &[String],
        now: OffsetDateTime,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Unused recovery codes left.
    async fn count_recovery_codes(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<u32, StoreError>;
    /// The user's enabled second factors (TOTP, passkeys), in one read.
    async fn second_factors(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<SecondFactors, StoreError>;
}

/// A new account created together with its first passkey.
#[derive(Debug, Clone, Copy)]
pub struct PasskeySignup<'a> {
    /// The user to insert.
    pub user: &'a User,
    /// Its email-verification secret.
    pub verification: &'a OneTimeSecret,
}

/// Passkeys.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Stores a new passkey (and, at sign-up, its new user and verification secret), the
    /// messages and the event, in one transaction. `Conflict{passkeys_credential_id_key}`
    /// when the credential id is registered anywhere, in any tenant;
    /// `Conflict{users_tenant_id_email_normalized_key}` when the sign-up's email is taken;
    /// `NotFound` when the owner does not exist.
    async fn insert_passkey(
        &self,
        tenant_id: &TenantId,
        signup: Option<PasskeySignup<'_>>,
        passkey: &Passkey,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<Vec<Passkey>, StoreError>;
    /// The passkey with this credential id in the tenant.
    async fn find_passkey_by_credential(
        &self,
        tenant_id: &TenantId,
        credential_id: &[u8],
    ) -> Result<Option<Passkey>, StoreError>;
    /// Records a verified assertion if its counter moved forward (or both it and the stored
    /// one are 0, for authenticators without a counter), atomically: `false` when the
    /// counter did not advance, so of two parallel uses of one signature one fails, and a
    /// cloned authenticator is caught.
    async fn use_passkey(&self, tenant_id: &TenantId, used: &PasskeyUse) -> Result<bool, StoreError>;
    /// Renames one of the user's passkeys; `NotFound` for anyone else's.
    async fn rename_passkey(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        id: &PasskeyId,
        name: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Deletes one of the user's passkeys with its notices; `NotFound` for anyone else's.
    async fn delete_passkey(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        id: &PasskeyId,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
}

/// Which organizations to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgFilter {
    /// Only the direct children of this organization.
    pub parent_id: Option<OrganizationId>,
    /// Only this organization's descendants (all levels).
    pub subtree_of: Option<OrganizationId>,
}

/// An accepted invitation and everything it changes, stored in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Acceptance<'a> {
    /// The invitation (must still be pending at `now`).
    pub invitation_id: &'a InvitationId,
    /// When.
    pub now: OffsetDateTime,
    /// A new account (sign-up by invitation) or the existing one's changes.
    pub user: UserWrite<'a>,
    /// The membership to create.
    pub membership: &'a Membership,
    /// A session to start, with its first refresh token.
    pub session: Option<(&'a Session, &'a RefreshToken)>,
    /// The event.
    pub event: &'a AuditEvent,
}

/// Organizations, members, roles and invitations.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates an organization (and its first owner, if given). `NotFound` when the parent
    /// or the owner does not exist; `Conflict{organizations_tenant_id_slug_key}`.
    async fn create_org(
        &self,
        tenant_id: &TenantId,
        org: &Organization,
        owner: Option<&Membership>,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// One organization.
    async fn get_org(&self, tenant_id: &TenantId, id: &OrganizationId) -> Result<Organization, StoreError>;
    /// Organizations by id, a page at a time.
    async fn list_orgs(
        &self,
        tenant_id: &TenantId,
        filter: &OrgFilter,
        page: &PageRequest,
    ) -> Result<Page<Organization>, StoreError>;
    /// Overwrites slug, name, logo and metadata.
    async fn update_org(&self, tenant_id: &TenantId, org: &Organization, event: &AuditEvent) -> Result<(), StoreError>;
    /// Deletes an organization with its members and invitations, revoking its sessions;
    /// `Conflict{organizations_has_children}` while it has sub-organizations.
    async fn delete_org(
        &self,
        tenant_id: &TenantId,
        id: &OrganizationId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Adds a member; `Conflict{org_members_pkey}` if already one, `NotFound` if the user
    /// or organization does not exist.
    async fn add_member(&self, tenant_id: &TenantId, member: &Membership, event: &AuditEvent)
    -> Result<(), StoreError>;
    /// A user's membership of an organization.
    async fn get_member(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Members by user id, a page at a time.
    async fn list_members(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Membership>, StoreError>;
    /// Changes a member's role; `Conflict{last_owner}` if that would leave no owner.
    async fn change_member_role(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
        role: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Removes a member and revokes their sessions bound to the organization;
    /// `Conflict{last_owner}` for the last owner.
    async fn remove_member(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        user_id: &UserId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The user's organizations with their memberships.
    async fn list_user_memberships(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<(Organization, Membership)>, StoreError>;
    /// Creates (`Conflict{org_roles_pkey}`) or replaces (`NotFound`) a custom role.
    async fn put_role(
        &self,
        tenant_id: &TenantId,
        role: &Role,
        create: bool,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The tenant's custom roles, by key.
    async fn list_roles(&self, tenant_id: &TenantId) -> Result<Vec<Role>, StoreError>;
    /// Deletes a custom role; `Conflict{org_roles_in_use}` while members or pending
    /// invitations hold it.
    async fn delete_role(&self, tenant_id: &TenantId, key: &str, event: &AuditEvent) -> Result<(), StoreError>;
    /// Stores an invitation with its message; older pending invitations of the same
    /// address to the same organization are revoked.
    async fn create_invitation(
        &self,
        tenant_id: &TenantId,
        invitation: &Invitation,
        messages: &[OutboxMessage],
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The organization's invitations, newest first.
    async fn list_invitations(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
    ) -> Result<Vec<Invitation>, StoreError>;
    /// A pending invitation by the hash of its token.
    async fn find_invitation_by_token(
        &self,
        tenant_id: &TenantId,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError>;
    /// Revokes a pending invitation; `NotFound` if there is none.
    async fn revoke_invitation(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        id: &InvitationId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Accepts a pending invitation with all its effects, or nothing: `NotFound` when it
    /// was accepted, revoked or expired meanwhile (of parallel acceptances one wins).
    async fn accept_invitation(&self, tenant_id: &TenantId, acceptance: &Acceptance<'_>) -> Result<(), StoreError>;
    /// Claims a domain for an organization (unverified); `Conflict{org_domains_pkey}` if
    /// it already claimed it, `NotFound` without the organization.
    async fn add_domain(&self, tenant_id: &TenantId, domain: &OrgDomain, event: &AuditEvent) -> Result<(), StoreError>;
    /// The organization's domains.
    async fn list_domains(&self, tenant_id: &TenantId, org_id: &OrganizationId) -> Result<Vec<OrgDomain>, StoreError>;
    /// Marks a claimed domain verified; `Conflict{org_domains_verified_key}` when another
    /// organization of the tenant verified it first.
    async fn verify_domain(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        domain: &str,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Removes a domain claim.
    async fn delete_domain(
        &self,
        tenant_id: &TenantId,
        org_id: &OrganizationId,
        domain: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Organizations with this verified domain whose `domain_join` is not `off`.
    async fn orgs_by_verified_domain(
        &self,
        tenant_id: &TenantId,
        domain: &str,
    ) -> Result<Vec<Organization>, StoreError>;
}

/// Operator accounts and their sessions (not tenant-owned).
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Creates an operator; `Conflict{operators_email_key}` when the address is taken.
    async fn create_operator(&self, operator: &Operator, event: &AuditEvent) -> Result<(), StoreError>;
    /// One operator.
    async fn get_operator(&self, id: &OperatorId) -> Result<Operator, StoreError>;
    /// The operator with this (normalised) address.
    async fn find_operator_by_email(&self, normalized_email: &str) -> Result<Option<Operator>, StoreError>;
    /// Operators by id, a page at a time.
    async fn list_operators(&self, page: &PageRequest) -> Result<Page<Operator>, StoreError>;
    /// Overwrites name, role, scope, password hash, TOTP and disabled; a disabled
    /// operator's sessions are revoked in the same transaction.
    async fn update_operator(
        &self,
        operator: &Operator,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Accepts a TOTP step of the operator if later than every step accepted before
    /// (atomically); `false` for a replay.
    async fn use_operator_totp_step(&self, id: &OperatorId, step: i64) -> Result<bool, StoreError>;
    /// Deletes an operator and their sessions.
    async fn delete_operator(&self, id: &OperatorId, event: &AuditEvent) -> Result<(), StoreError>;
    /// Starts a session, recording the sign-in time.
    async fn create_operator_session(&self, session: &OperatorSession, event: &AuditEvent) -> Result<(), StoreError>;
    /// The live session with this token hash and its (active) operator.
    async fn find_operator_session(
        &self,
        token_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<(OperatorSession, Operator)>, StoreError>;
    /// Ends a session.
    async fn revoke_operator_session(
        &self,
        id: &OperatorSessionId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
}

/// Everything a storage backend provides.
#[async_trait]
pub trait Store:
    TenantStore
    + SecretKeyStore
    + AdminTokenStore
    + UserStore
    + SigningKeyStore
    + SessionStore
    + AuditStore
    + MessagingStore
    + MfaStore
    + PasskeyStore
    + OrgStore
    + OperatorStore
    + std::fmt::Debug
{
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Connection-pool figures for metrics.
    fn pool_stats(&self) -> PoolStats;
}

/// Connection-pool figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
}
