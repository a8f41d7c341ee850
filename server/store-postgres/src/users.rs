//! Users on Postgres (row-level security applies: every query runs in its tenant's
//! transaction).

use crate::audit::insert_event;
use crate::{PgStore, map_err};
use async_trait::async_trait;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::ids::{TenantId, UserId};
use gatehouse_core::page::{Page, PageRequest};
use gatehouse_core::passkey::SecondFactors;
use gatehouse_core::store::{StoreError, UserStore};
use gatehouse_core::user::{Email, User, UserFilter, UserStatus, prefix_upper_bound};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

const COLUMNS: &str = "id, tenant_id, email, email_normalized, email_verified, name, status, password_hash, \
                       created_at, updated_at, last_login_at, username, phone, picture, locale, public_metadata, private_metadata, phone_verified";

/// The second factors `gatehouse_sign_in_user` reads beside the account.
fn decode_factors(row: &PgRow) -> Result<SecondFactors, StoreError> {
    let passkeys: i64 = row.try_get("factor_passkeys").map_err(map_err)?;
    Ok(SecondFactors {
        totp: row.try_get("factor_totp").map_err(map_err)?,
        passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
    })
}

fn decode(row: &PgRow) -> Result<User, StoreError> {
    decode_prefixed(row, "")
}

/// The columns of `row`, a `users` row (a table alias or a composite value in
/// parentheses), each aliased `u_{column}` (see [`decode_prefixed`]).
pub(crate) fn columns_of(row: &str) -> String {
    COLUMNS.split(',').map(str::trim).map(|c| format!("{row}.{c} AS u_{c}")).collect::<Vec<_>>().join(", ")
}

/// Decodes a user whose columns carry `prefix` (`""`, or `"u_"` in a join).
pub(crate) fn decode_prefixed(row: &PgRow, prefix: &str) -> Result<User, StoreError> {
    let c = |name: &str| format!("{prefix}{name}");
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt user row: {what}"));
    let status: String = row.try_get(c("status").as_str()).map_err(map_err)?;
    Ok(User {
        id: row.try_get::<String, _>(c("id").as_str()).map_err(map_err)?.parse().map_err(|_| corrupt("id"))?,
        tenant_id: row
            .try_get::<String, _>(c("tenant_id").as_str())
            .map_err(map_err)?
            .parse()
            .map_err(|_| corrupt("tenant_id"))?,
        email: Email::from_stored(
            row.try_get(c("email").as_str()).map_err(map_err)?,
            row.try_get(c("email_normalized").as_str()).map_err(map_err)?,
        ),
        email_verified: row.try_get(c("email_verified").as_str()).map_err(map_err)?,
        name: row.try_get(c("name").as_str()).map_err(map_err)?,
        status: UserStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        password_hash: row.try_get(c("password_hash").as_str()).map_err(map_err)?,
        created_at: row.try_get(c("created_at").as_str()).map_err(map_err)?,
        updated_at: row.try_get(c("updated_at").as_str()).map_err(map_err)?,
        last_login_at: row.try_get(c("last_login_at").as_str()).map_err(map_err)?,
        profile: gatehouse_core::user::UserProfile {
            username: row.try_get(c("username").as_str()).map_err(map_err)?,
            phone: row.try_get(c("phone").as_str()).map_err(map_err)?,
            picture: row.try_get(c("picture").as_str()).map_err(map_err)?,
            locale: row.try_get(c("locale").as_str()).map_err(map_err)?,
            phone_verified: row.try_get(c("phone_verified").as_str()).map_err(map_err)?,
        },
        public_metadata: row.try_get(c("public_metadata").as_str()).map_err(map_err)?,
        private_metadata: row.try_get(c("private_metadata").as_str()).map_err(map_err)?,
    })
}

pub(crate) async fn insert_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant_id: &TenantId,
    user: &User,
) -> Result<(), StoreError> {
    if &user.tenant_id != tenant_id {
        return Err(StoreError::NotFound);
    }
    let done = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, email_normalized, email_verified, name, status, password_hash,
                                created_at, updated_at, last_login_at, username, phone, picture, locale,
                                public_metadata, private_metadata, phone_verified)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18
             WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $2 AND deleted_at IS NULL)",
    )
    .bind(user.id.as_str())
    .bind(tenant_id.as_str())
    .bind(user.email.as_str())
    .bind(user.email.normalized())
    .bind(user.email_verified)
    .bind(&user.name)
    .bind(user.status.as_str())
    .bind(&user.password_hash)
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(user.last_login_at)
    .bind(&user.profile.username)
    .bind(&user.profile.phone)
    .bind(&user.profile.picture)
    .bind(&user.profile.locale)
    .bind(&user.public_metadata)
    .bind(&user.private_metadata)
    .bind(user.profile.phone_verified)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Overwrites every mutable field of a user; `NotFound` if there is no such user.
pub(crate) async fn update_user_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant_id: &TenantId,
    user: &User,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE users SET email = $3, email_normalized = $4, email_verified = $5, name = $6, status = $7,
                          password_hash = $8, updated_at = $9, last_login_at = $10, username = $11,
                          phone = $12, picture = $13, locale = $14, public_metadata = $15,
                          private_metadata = $16, phone_verified = $17
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id.as_str())
    .bind(user.id.as_str())
    .bind(user.email.as_str())
    .bind(user.email.normalized())
    .bind(user.email_verified)
    .bind(&user.name)
    .bind(user.status.as_str())
    .bind(&user.password_hash)
    .bind(user.updated_at)
    .bind(user.last_login_at)
    .bind(&user.profile.username)
    .bind(&user.profile.phone)
    .bind(&user.profile.picture)
    .bind(&user.profile.locale)
    .bind(&user.public_metadata)
    .bind(&user.private_metadata)
    .bind(user.profile.phone_verified)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

impl PgStore {
    /// The user row with this email.
    async fn user_row_by_email(
        &self,
        tenant_id: &TenantId,
        normalized_email: &str,
    ) -> Result<Option<PgRow>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND email_normalized = $2"))
            .bind(tenant_id.as_str())
            .bind(normalized_email)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        // Passwordless sign-ins start here: no waiting for a COMMIT of nothing.
        Self::end_read(tx);
        Ok(row)
    }
}

/// A page of a tenant's users, as a statement that names only the filters given (ADR
/// 22): the cursor is then where the walk of `users_tenant_id_id_key` starts, not a
/// filter over every earlier page of the tenant.
pub(crate) fn list_statement<'q>(
    tenant_id: &'q TenantId,
    filter: &'q UserFilter,
    page: &'q PageRequest,
) -> QueryBuilder<'q, Postgres> {
    let mut sql = QueryBuilder::new(format!("SELECT {COLUMNS} FROM users WHERE tenant_id = "));
    sql.push_bind(tenant_id.as_str());
    if let Some(after) = &page.after {
        sql.push(" AND id > ").push_bind(after.as_str());
    }
    if let Some(prefix) = &filter.email_prefix {
        // A range of the (tenant_id, email_normalized) key, which sorts in code point
        // order (migration 0020); `starts_with` keeps the match exact.
        sql.push(" AND email_normalized >= ").push_bind(prefix.as_str());
        if let Some(bound) = prefix_upper_bound(prefix) {
            sql.push(" AND email_normalized < ").push_bind(bound);
        }
        sql.push(" AND starts_with(email_normalized, ").push_bind(prefix.as_str()).push(")");
    }
    if let Some(status) = filter.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(after) = filter.created_after {
        sql.push(" AND created_at >= ").push_bind(after);
    }
    if let Some(before) = filter.created_before {
        sql.push(" AND created_at < ").push_bind(before);
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(page.fetch_limit());
    sql
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, tenant_id: &TenantId, user: &User, event: &AuditEvent) -> Result<(), StoreError> {
        if &user.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.tenant_tx(tenant_id).await?;
        insert_user(&mut tx, tenant_id, user).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_users(&self, tenant_id: &TenantId, users: &[User], event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        for user in users {
            insert_user(&mut tx, tenant_id, user).await?;
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_user(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<User, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        decode(&row)
    }

    async fn get_users(&self, tenant_id: &TenantId, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(UserId::as_str).collect();
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id"))
                .bind(tenant_id.as_str())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn find_user_by_email(
        &self,
        tenant_id: &TenantId,
        normalized_email: &str,
    ) -> Result<Option<User>, StoreError> {
        self.user_row_by_email(tenant_id, normalized_email).await?.as_ref().map(decode).transpose()
    }

    async fn find_user_for_sign_in(
        &self,
        tenant_id: &TenantId,
        normalized_email: &str,
    ) -> Result<Option<(User, SecondFactors)>, StoreError> {
        // One statement, its own transaction: the function names the tenant for row-level
        // security before it reads the account and then its second factors (migration
        // 0015). No BEGIN, SET LOCAL or ROLLBACK of its own.
        let row =
            sqlx::query("SELECT (r.account).*, r.factor_totp, r.factor_passkeys FROM gatehouse_sign_in_user($1, $2) r")
                .bind(tenant_id.as_str())
                .bind(normalized_email)
                .fetch_optional(self.pool())
                .await
                .map_err(map_err)?;
        row.as_ref().map(|row| Ok((decode(row)?, decode_factors(row)?))).transpose()
    }

    async fn list_users(
        &self,
        tenant_id: &TenantId,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        // Unnamed, so planned for this tenant and cursor every time (ADR 22).
        let mut statement = list_statement(tenant_id, filter, page);
        let rows = statement.build().persistent(false).fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let users = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(users, page, |u| u.id.as_str()))
    }

    async fn update_user(&self, tenant_id: &TenantId, user: &User, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        update_user_row(&mut tx, tenant_id, user).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_user(&self, tenant_id: &TenantId, user_id: &UserId, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_user_by_verified_phone(&self, tenant_id: &TenantId, phone: &str) -> Result<Option<User>, StoreError> {
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND phone = $2 AND phone_verified"))
                .bind(tenant_id.as_str())
                .bind(phone)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row.as_ref().map(decode).transpose()
    }
}
