//! PostgreSQL access: the connection pool, migrations, and the tables' row types.

pub mod models;
pub mod schema;

use diesel::prelude::*;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

pub type DbPool = Pool<AsyncPgConnection>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Key of the advisory lock held while migrations run, so that hub replicas starting at
/// the same time apply them once. The value spells "EPIX" in ASCII.
const MIGRATION_LOCK_KEY: i64 = 0x4550_4958;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to PostgreSQL at {url}: {message} (is it running? scripts/services starts it)"
    )]
    Connect { url: String, message: String },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot build the database pool: {0}")]
    Pool(String),
}

/// Builds the connection pool. Connections are opened lazily, on first use.
pub fn pool(database_url: &str, size: usize) -> Result<DbPool, DbError> {
    pool_with_role(database_url, size, None)
}

/// Builds the connection pool. With `role`, each connection runs `SET ROLE role` once
/// opened, so the hub works with that role's rights. The login role must be a member.
pub fn pool_with_role(
    database_url: &str,
    size: usize,
    role: Option<&str>,
) -> Result<DbPool, DbError> {
    let manager = match role {
        None => AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url),
        Some(role) => {
            let mut config = ManagerConfig::default();
            let statement = format!("SET ROLE \"{}\"", role.replace('"', "\"\""));
            config.custom_setup = Box::new(move |url| {
                let statement = statement.clone();
                async move {
                    let mut connection =
                        <AsyncPgConnection as diesel_async::AsyncConnection>::establish(url)
                            .await?;
                    diesel_async::SimpleAsyncConnection::batch_execute(&mut connection, &statement)
                        .await
                        .map_err(|error| {
                            diesel::ConnectionError::BadConnection(format!(
                                "cannot switch to the database role: {error}"
                            ))
                        })?;
                    Ok(connection)
                }
                .boxed()
            });
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config)
        }
    };
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|error| DbError::Pool(error.to_string()))
}

/// Applies the pending migrations under an advisory lock and returns how many ran.
pub async fn migrate(database_url: &str) -> Result<usize, DbError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || migrate_blocking(&url))
        .await
        .map_err(|error| DbError::Migration(format!("migration task failed: {error}")))?
}

fn migrate_blocking(database_url: &str) -> Result<usize, DbError> {
    let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::establish(database_url)
        .map_err(|error| DbError::Connect {
            url: crate::config::redact_url(database_url),
            message: error.to_string(),
        })?;
    let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})");
    diesel::sql_query(lock)
        .execute(&mut connection)
        .map_err(|error| DbError::Migration(format!("cannot take the migration lock: {error}")))?;
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.len())
        .map_err(|error| DbError::Migration(error.to_string()));
    let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})");
    // The lock also ends with the session, so a failed unlock only delays other replicas.
    if let Err(error) = diesel::sql_query(unlock).execute(&mut connection) {
        tracing::warn!(%error, "cannot release the migration lock");
    }
    applied
}
