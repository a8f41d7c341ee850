//! Managing a tenant's users (the management API's side; sign-up comes with the auth API).

use super::AuditLog;
use crate::access::{Capability, TenantAccess};
use crate::audit::RequestContext;
use crate::clock::Clock;
use crate::error::{FieldError, ServiceError};
use crate::ids::UserId;
use crate::page::{Page, PageRequest};
use crate::password::{PasswordHasher, check_policy, import_hash};
use crate::secret::SecretString;
use crate::store::{Store, StoreError};
use crate::user::{Email, User, UserFilter, UserProfile, UserStatus, check_metadata, check_profile, check_user_name};
use std::sync::Arc;

/// Input for a new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email address.
    pub email: String,
    /// Initial password; `None` for passwordless accounts.
    pub password: Option<SecretString>,
    /// Display name.
    pub name: Option<String>,
    /// Whether the operator vouches for the address.
    pub email_verified: bool,
    /// Optional profile fields.
    pub profile: UserProfile,
    /// Public metadata (a JSON object, at most 8 KiB).
    pub public_metadata: Option<serde_json::Value>,
    /// Private metadata (a JSON object, at most 8 KiB).
    pub private_metadata: Option<serde_json::Value>,
}

/// A partial update; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New email (becomes unverified unless `email_verified` is also given).
    pub email: Option<String>,
    /// New display name (empty clears it).
    pub name: Option<String>,
    /// Verification flag.
    pub email_verified: Option<bool>,
    /// Enable or disable sign-in.
    pub status: Option<UserStatus>,
    /// New password.
    pub password: Option<SecretString>,
    /// Profile fields to set (absent fields stay).
    pub profile: UserProfile,
    /// Replaces the public metadata.
    pub public_metadata: Option<serde_json::Value>,
    /// Replaces the private metadata.
    pub private_metadata: Option<serde_json::Value>,
}

/// One user of a bulk import.
#[derive(Debug, Clone)]
pub struct ImportUser {
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the address was verified in the old system.
    pub email_verified: bool,
    /// The old system's password hash (see [`crate::password::import_hash`]).
    pub password_hash: Option<serde_json::Value>,
    /// Profile fields.
    pub profile: UserProfile,
    /// Public metadata.
    pub public_metadata: Option<serde_json::Value>,
    /// Private metadata.
    pub private_metadata: Option<serde_json::Value>,
}

/// Most users in one import request.
pub const MAX_IMPORT_BATCH: usize = 1000;

/// The user-management use cases.
#[derive(Debug, Clone)]
pub struct UserService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    hasher: PasswordHasher,
}

fn user_store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict { constraint }
            if constraint == "users_tenant_id_email_normalized_key" || constraint == "users_tenant_id_username_key" =>
        {
            ServiceError::Conflict { constraint }
        }
        other => ServiceError::from_store("user")(other),
    }
}

impl UserService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog, hasher: PasswordHasher) -> Self {
        Self { store, clock, audit, hasher }
    }

    /// Creates a user.
    pub async fn create(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        input: NewUser,
    ) -> Result<User, ServiceError> {
        access.require(Capability::Write)?;
        let tenant = self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let mut errors = Vec::new();
        let email = Email::parse(&input.email).map_err(|why| errors.push(FieldError::new("email", why)));
        let name = check_user_name(input.name).map_err(|why| errors.push(FieldError::new("name", why)));
        if let Err(profile_errors) = check_profile(&input.profile) {
            errors.extend(profile_errors);
        }
        let public_metadata = input.public_metadata.unwrap_or_else(|| serde_json::json!({}));
        let private_metadata = input.private_metadata.unwrap_or_else(|| serde_json::json!({}));
        for (field, value) in [("public_metadata", &public_metadata), ("private_metadata", &private_metadata)] {
            if let Err(e) = check_metadata(field, value) {
                errors.push(e);
            }
        }
        let (Ok(email), Ok(name), true) = (email, name, errors.is_empty()) else {
            return Err(ServiceError::Validation(errors));
        };
        let password_hash = match &input.password {
            Some(password) => {
                check_policy(&tenant.settings.password_policy, password.expose(), &email)
                    .map_err(|e| ServiceError::Validation(vec![e]))?;
                Some(self.hasher.hash(password).await?)
            }
            None => None,
        };
        let now = self.clock.now();
        let user = User {
            id: UserId::generate(),
            tenant_id: tenant.id.clone(),
            email,
            email_verified: input.email_verified,
            name,
            status: UserStatus::Active,
            password_hash,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            profile: input.profile,
            public_metadata,
            private_metadata,
        };
        let event = self.audit.change(
            access.principal(),
            ctx,
            "user.create",
            Some(&tenant.id),
            Some(("user", user.id.as_str())),
        );
        self.store.create_user(&tenant.id, &user, &event).await.map_err(user_store_error)?;
        Ok(user)
    }

    /// Imports users with their existing password hashes, all or none. Hashes are checked
    /// at each user's first sign-in and then replaced by Argon2id.
    pub async fn import(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        rows: Vec<ImportUser>,
    ) -> Result<usize, ServiceError> {
        access.require(Capability::Write)?;
        let tenant = self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        if rows.is_empty() || rows.len() > MAX_IMPORT_BATCH {
            return Err(ServiceError::invalid("users", "must hold 1 to 1000 users"));
        }
        let now = self.clock.now();
        let mut errors = Vec::new();
        let mut users = Vec::with_capacity(rows.len());
        let mut seen = std::collections::HashSet::new();
        for (i, row) in rows.into_iter().enumerate() {
            let at = |field: &str| format!("users[{i}].{field}");
            let email = Email::parse(&row.email).map_err(|why| errors.push(FieldError::new(at("email"), why)));
            if let Ok(e) = &email
                && !seen.insert(e.normalized().to_owned())
            {
                errors.push(FieldError::new(at("email"), "appears twice in this import"));
            }
            let name = check_user_name(row.name).map_err(|why| errors.push(FieldError::new(at("name"), why)));
            if let Err(profile_errors) = check_profile(&row.profile) {
                errors.extend(profile_errors.into_iter().map(|e| FieldError::new(at(&e.field), e.message)));
            }
            let public_metadata = row.public_metadata.unwrap_or_else(|| serde_json::json!({}));
            let private_metadata = row.private_metadata.unwrap_or_else(|| serde_json::json!({}));
            for (field, value) in [("public_metadata", &public_metadata), ("private_metadata", &private_metadata)] {
                if let Err(e) = check_metadata(field, value) {
                    errors.push(FieldError::new(at(field), e.message));
                }
            }
            let password_hash = row
                .password_hash
                .as_ref()
                .map(import_hash)
                .transpose()
                .map_err(|why| errors.push(FieldError::new(at("password_hash"), why)));
            if let (Ok(email), Ok(name), Ok(password_hash)) = (email, name, password_hash) {
                users.push(User {
                    id: UserId::generate(),
                    tenant_id: tenant.id.clone(),
                    email,
                    email_verified: row.email_verified,
                    name,
                    status: UserStatus::Active,
                    password_hash,
                    created_at: now,
                    updated_at: now,
                    last_login_at: None,
                    profile: row.profile,
                    public_metadata,
                    private_metadata,
                });
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let mut event = self.audit.change(access.principal(), ctx, "user.import", Some(&tenant.id), None);
        event.data = serde_json::json!({ "count": users.len() });
        self.store.create_users(&tenant.id, &users, &event).await.map_err(user_store_error)?;
        Ok(users.len())
    }

    /// One user.
    pub async fn get(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        user_id: &UserId,
    ) -> Result<User, ServiceError> {
        access.require(Capability::Read)?;
        let user = self.store.get_user(access.tenant_id(), user_id).await.map_err(ServiceError::from_store("user"))?;
        let target = Some(("user", user_id.as_str()));
        self.audit.read(access.principal(), ctx, "user.read", Some(access.tenant_id()), target).await?;
        Ok(user)
    }

    /// A user's live sessions, oldest first.
    pub async fn sessions(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        user_id: &UserId,
    ) -> Result<Vec<crate::session::Session>, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_user(access.tenant_id(), user_id).await.map_err(ServiceError::from_store("user"))?;
        let sessions = self.store.list_user_sessions(access.tenant_id(), user_id, self.clock.now()).await?;
        let target = Some(("user", user_id.as_str()));
        self.audit.read(access.principal(), ctx, "user.sessions_read", Some(access.tenant_id()), target).await?;
        Ok(sessions)
    }

    /// Several users by id in one read (for batching interfaces); unknown ids are skipped.
    pub async fn get_many(&self, access: &TenantAccess, ids: &[UserId]) -> Result<Vec<User>, ServiceError> {
        access.require(Capability::Read)?;
        if ids.len() > 100 {
            return Err(ServiceError::invalid("ids", "at most 100 at once"));
        }
        Ok(self.store.get_users(access.tenant_id(), ids).await?)
    }

    /// Users, filtered and paged.
    pub async fn list(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        filter: UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>, ServiceError> {
        access.require(Capability::Read)?;
        self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let filter = UserFilter { email_prefix: filter.email_prefix.map(|p| p.trim().to_lowercase()), ..filter };
        let users = self.store.list_users(access.tenant_id(), &filter, page).await?;
        self.audit.read(access.principal(), ctx, "user.list", Some(access.tenant_id()), None).await?;
        Ok(users)
    }

    /// Changes a user.
    pub async fn update(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        user_id: &UserId,
        patch: UserPatch,
    ) -> Result<User, ServiceError> {
        access.require(Capability::Write)?;
        let tenant = self.store.get_tenant(access.tenant_id()).await.map_err(ServiceError::from_store("tenant"))?;
        let mut user = self.store.get_user(&tenant.id, user_id).await.map_err(ServiceError::from_store("user"))?;
        if let Some(raw) = &patch.email {
            let email = Email::parse(raw).map_err(|why| ServiceError::invalid("email", &why))?;
            if email.normalized() != user.email.normalized() {
                user.email_verified = false;
            }
            user.email = email;
        }
        if let Some(name) = patch.name {
            user.name = check_user_name(Some(name)).map_err(|why| ServiceError::invalid("name", &why))?;
        }
        let phone = patch.profile.phone.or(user.profile.phone.clone());
        let profile = UserProfile {
            username: patch.profile.username.or(user.profile.username.clone()),
            // A number set by an operator is not proven; only an SMS code proves one.
            phone_verified: user.profile.phone_verified && phone == user.profile.phone,
            phone,
            picture: patch.profile.picture.or(user.profile.picture.clone()),
            locale: patch.profile.locale.or(user.profile.locale.clone()),
        };
        check_profile(&profile).map_err(ServiceError::Validation)?;
        user.profile = profile;
        if let Some(value) = patch.public_metadata {
            check_metadata("public_metadata", &value).map_err(|e| ServiceError::Validation(vec![e]))?;
            user.public_metadata = value;
        }
        if let Some(value) = patch.private_metadata {
            check_metadata("private_metadata", &value).map_err(|e| ServiceError::Validation(vec![e]))?;
            user.private_metadata = value;
        }
        if let Some(verified) = patch.email_verified {
            user.email_verified = verified;
        }
        let disabling = patch.status == Some(UserStatus::Disabled) && user.status == UserStatus::Active;
        if let Some(status) = patch.status {
            user.status = status;
        }
        if let Some(password) = &patch.password {
            check_policy(&tenant.settings.password_policy, password.expose(), &user.email)
                .map_err(|e| ServiceError::Validation(vec![e]))?;
            user.password_hash = Some(self.hasher.hash(password).await?);
        }
        user.updated_at = self.clock.now();
        let event = self.audit.change(
            access.principal(),
            ctx,
            "user.update",
            Some(&tenant.id),
            Some(("user", user_id.as_str())),
        );
        self.store.update_user(&tenant.id, &user, &event).await.map_err(user_store_error)?;
        if disabling {
            self.store.revoke_user_sessions(&tenant.id, &user.id, None, user.updated_at, "user_disabled").await?;
        }
        Ok(user)
    }

    /// Deletes a user.
    pub async fn delete(
        &self,
        access: &TenantAccess,
        ctx: &RequestContext,
        user_id: &UserId,
    ) -> Result<(), ServiceError> {
        access.require(Capability::Write)?;
        let target = Some(("user", user_id.as_str()));
        let event = self.audit.change(access.principal(), ctx, "user.delete", Some(access.tenant_id()), target);
        self.store.delete_user(access.tenant_id(), user_id, &event).await.map_err(ServiceError::from_store("user"))
    }
}
