//! sqlx errors to [`StoreError`], with Postgres-style constraint names.

use gatehouse_core::store::StoreError;

/// Maps a sqlx error. SQLite reports unique violations as
/// `UNIQUE constraint failed: table.col[, table.col]`; the name is rebuilt the way
/// Postgres names constraints (`table_col_key`, `table_pkey` for the id), matching the
/// names in both migration sets.
pub fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { constraint: constraint_name(db.message()) }
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

fn constraint_name(message: &str) -> String {
    let Some(list) = message.split(": ").nth(1) else {
        return "unique".into();
    };
    let mut table = "";
    let mut columns = Vec::new();
    for qualified in list.split(", ") {
        if let Some((t, c)) = qualified.split_once('.') {
            table = t;
            columns.push(c);
        }
    }
    if columns == ["id"] { format!("{table}_pkey") } else { format!("{table}_{}_key", columns.join("_")) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constraint_names_match_postgres_defaults() {
        assert_eq!(super::constraint_name("UNIQUE constraint failed: tenants.slug"), "tenants_slug_key");
        assert_eq!(super::constraint_name("UNIQUE constraint failed: tenants.id"), "tenants_pkey");
        assert_eq!(super::constraint_name("UNIQUE constraint failed: t.a, t.b"), "t_a_b_key");
    }
}
