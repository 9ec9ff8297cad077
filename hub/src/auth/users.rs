//! Users and API clients.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::Role;
use crate::db::schema::{api_clients, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub full_name: String,
    pub party: Option<String>,
    pub roles: Vec<String>,
    pub status: String,
    pub password_hash: Option<String>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// A user as the API shows it; never with its password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub full_name: String,
    pub party: Option<String>,
    pub roles: Vec<String>,
    /// `active` or `removed`.
    pub status: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        Self {
            username: row.username,
            full_name: row.full_name,
            party: row.party,
            roles: row.roles,
            status: row.status,
            locked_until: row.locked_until,
            created_at: row.created_at,
            removed_at: row.removed_at,
        }
    }
}

/// A new user, with its password already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub full_name: String,
    pub party: Option<String>,
    pub roles: Vec<Role>,
    pub password_hash: String,
    pub created_by: Option<String>,
}

pub async fn find_user(
    connection: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(connection)
        .await
        .optional()
}

pub async fn list_users(
    connection: &mut AsyncPgConnection,
    party: Option<&str>,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .select(UserRow::as_select())
        .order(users::username)
        .into_boxed();
    if let Some(party) = party {
        query = query.filter(users::party.eq(party));
    }
    query.load(connection).await
}

pub async fn insert_user(
    connection: &mut AsyncPgConnection,
    user: &NewUser,
) -> QueryResult<UserRow> {
    let roles: Vec<String> = user
        .roles
        .iter()
        .map(|role| role.as_str().to_owned())
        .collect();
    diesel::insert_into(users::table)
        .values((
            users::username.eq(&user.username),
            users::full_name.eq(&user.full_name),
            users::party.eq(&user.party),
            users::roles.eq(roles),
            users::password_hash.eq(&user.password_hash),
            users::created_by.eq(&user.created_by),
        ))
        .returning(UserRow::as_returning())
        .get_result(connection)
        .await
}

/// Counts a failed login and locks the account for `lockout` once `max_failures` follow
/// each other. Returns whether the account is now locked.
pub async fn record_failed_login(
    connection: &mut AsyncPgConnection,
    user_id: i64,
    now: DateTime<Utc>,
    max_failures: i32,
    lockout: Duration,
) -> QueryResult<bool> {
    let failures: i32 = diesel::update(users::table.find(user_id))
        .set(users::failed_logins.eq(users::failed_logins + 1))
        .returning(users::failed_logins)
        .get_result(connection)
        .await?;
    if failures < max_failures {
        return Ok(false);
    }
    diesel::update(users::table.find(user_id))
        .set((
            users::locked_until.eq(now + lockout),
            users::failed_logins.eq(0),
        ))
        .execute(connection)
        .await?;
    Ok(true)
}

pub async fn record_successful_login(
    connection: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

pub async fn remove_user(
    connection: &mut AsyncPgConnection,
    user_id: i64,
    by: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> QueryResult<UserRow> {
    diesel::update(api_clients::table.filter(api_clients::user_id.eq(user_id)))
        .set(api_clients::revoked_at.eq(at))
        .execute(connection)
        .await?;
    diesel::update(users::table.find(user_id))
        .set((
            users::status.eq("removed"),
            users::removed_at.eq(at),
            users::removed_by.eq(by),
            users::removal_reason.eq(reason),
        ))
        .returning(UserRow::as_returning())
        .get_result(connection)
        .await
}

pub async fn unlock_user(connection: &mut AsyncPgConnection, user_id: i64) -> QueryResult<UserRow> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .returning(UserRow::as_returning())
        .get_result(connection)
        .await
}

pub async fn insert_client(
    connection: &mut AsyncPgConnection,
    client_id: &str,
    user_id: i64,
    secret_hash: &str,
) -> QueryResult<()> {
    diesel::insert_into(api_clients::table)
        .values((
            api_clients::client_id.eq(client_id),
            api_clients::user_id.eq(user_id),
            api_clients::secret_hash.eq(secret_hash),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// The user and secret hash of an API client that is not revoked.
pub async fn find_client(
    connection: &mut AsyncPgConnection,
    client_id: &str,
) -> QueryResult<Option<(String, String)>> {
    api_clients::table
        .inner_join(users::table)
        .filter(api_clients::client_id.eq(client_id))
        .filter(api_clients::revoked_at.is_null())
        .select((users::username, api_clients::secret_hash))
        .first(connection)
        .await
        .optional()
}

pub async fn client_is_active(
    connection: &mut AsyncPgConnection,
    client_id: &str,
    user_id: i64,
) -> QueryResult<bool> {
    let found: Option<String> = api_clients::table
        .filter(api_clients::client_id.eq(client_id))
        .filter(api_clients::user_id.eq(user_id))
        .filter(api_clients::revoked_at.is_null())
        .select(api_clients::client_id)
        .first(connection)
        .await
        .optional()?;
    Ok(found.is_some())
}
