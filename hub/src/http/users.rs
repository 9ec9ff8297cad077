//! User administration: the Secretariat for everyone, an authority admin for its own Party.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use diesel_async::AsyncConnection;
use diesel_async::scoped_futures::ScopedFutureExt;
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::auth::policy::USER_MANAGERS;
use crate::auth::users::{self, NewUser, UserRow, UserView};
use crate::auth::{Principal, Role, password};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3 to 64 letters, digits or `._@-`.
    pub username: String,
    pub full_name: String,
    /// The user's Party; omit only for secretariat and auditor users.
    pub party: Option<String>,
    pub roles: Vec<String>,
    /// At least 12 characters.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RemoveUser {
    /// Why the user is removed, for the audit trail.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewClient {
    pub client_id: String,
    /// Shown once; the hub keeps only its hash.
    pub client_secret: String,
}

fn require_manager(principal: &Principal) -> Result<(), ApiError> {
    if principal.has_any(USER_MANAGERS) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "managing users needs the secretariat or authority-admin role".to_owned(),
        ))
    }
}

/// Creates a user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "A field is invalid", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, or authority-admin for its own Party without global roles", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/users")]
pub async fn create_user(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    request: HttpRequest,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    require_manager(&principal)?;
    let body = body.into_inner();
    let roles = parse_roles(&body.roles)?;
    if let Some(party) = &body.party
        && party.parse::<epix_shared::PartyCode>().is_err()
    {
        return Err(ApiError::bad_request(format!(
            "party {party:?} is not a two-letter Party code"
        )));
    }
    if !principal.may_manage_user(body.party.as_deref(), &roles) {
        return Err(ApiError::Forbidden(
            "an authority admin may create users of its own Party only, and without the secretariat or auditor role".to_owned(),
        ));
    }
    if body.password.chars().count() < password::MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(format!(
            "password: too short: expected at least {} characters",
            password::MIN_PASSWORD_CHARS
        )));
    }
    let meta = super::request_id::meta_of(&request);
    let event = crate::audit::Event::by_user("user.created", &principal, &meta, chrono::Utc::now());
    let user = create(
        &context,
        &body.username,
        &body.full_name,
        body.party.clone(),
        roles,
        body.password,
        Some(principal.username.clone()),
        event,
    )
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Creates a user from the command line or an endpoint, hashing the password first. The
/// user and `event` (its actor; the details are filled in here) commit together.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per field of the new user, and its audit event"
)]
pub async fn create(
    context: &HubContext,
    username: &str,
    full_name: &str,
    party: Option<String>,
    roles: Vec<Role>,
    secret: String,
    created_by: Option<String>,
    event: crate::audit::Event,
) -> Result<UserRow, ApiError> {
    let password_hash = hash_off_thread(secret).await?;
    let new_user = NewUser {
        username: username.to_owned(),
        full_name: full_name.to_owned(),
        party,
        roles,
        password_hash,
        created_by,
    };
    let mut event = event.details(serde_json::json!({
        "user": new_user.username,
        "roles": new_user.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
        "party": new_user.party,
    }));
    event.action = "user.created".to_owned();
    let mut connection = context.pool.get().await?;
    connection
        .transaction::<_, ApiError, _>(|connection| {
            async move {
                let user = insert_new_user(connection, &new_user).await?;
                crate::audit::append(connection, vec![event]).await?;
                Ok(user)
            }
            .scope_boxed()
        })
        .await
}

async fn insert_new_user(
    connection: &mut diesel_async::AsyncPgConnection,
    new_user: &NewUser,
) -> Result<UserRow, ApiError> {
    let username = &new_user.username;
    users::insert_user(connection, new_user).await.map_err(|error| {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::Conflict(format!("username {username:?} is taken"))
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                ApiError::bad_request("party: no such Party is registered")
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, _) => ApiError::bad_request(
                "username must be 3 to 64 letters, digits or ._@-, full_name 1 to 200 characters, and only secretariat or auditor users may have no party",
            ),
            other => ApiError::from(other),
        }
    })
}

/// Hashes a password or client secret on a blocking thread, since Argon2 takes tens of
/// milliseconds.
async fn hash_off_thread(secret: String) -> Result<String, ApiError> {
    let hashed = tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .map_err(|error| ApiError::Internal(format!("hashing task failed: {error}")))?;
    hashed.map_err(|error| ApiError::Internal(format!("hashing failed: {error}")))
}

fn parse_roles(roles: &[String]) -> Result<Vec<Role>, ApiError> {
    if roles.is_empty() {
        return Err(ApiError::bad_request(
            "roles: at least one role is required",
        ));
    }
    roles
        .iter()
        .map(|role| {
            role.parse::<Role>()
                .map_err(|error| ApiError::bad_request(format!("roles: {error}")))
        })
        .collect()
}

/// Lists users: all for the Secretariat, the own Party's for an authority admin.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The users", body = [UserView]),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/users")]
pub async fn list_users(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    require_manager(&principal)?;
    let scope = if principal.roles.contains(&Role::Secretariat) {
        None
    } else {
        principal.party.as_deref()
    };
    let mut connection = context.pool.get().await?;
    let rows = users::list_users(&mut connection, scope).await?;
    let views: Vec<UserView> = rows.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn target_user(
    context: &HubContext,
    principal: &Principal,
    username: &str,
) -> Result<UserRow, ApiError> {
    let mut connection = context.pool.get().await?;
    let user = users::find_user(&mut connection, username).await?;
    let visible = user.filter(|user| {
        let roles: Vec<Role> = user.roles.iter().filter_map(|r| Role::parse(r)).collect();
        principal.may_manage_user(user.party.as_deref(), &roles)
    });
    visible.ok_or_else(|| ApiError::NotFound(format!("no user {username:?} that you may manage")))
}

/// Removes a user at once: its tokens and API clients stop working.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    request_body = RemoveUser,
    responses(
        (status = 200, description = "Removed", body = UserView),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user that the caller may manage", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/users/{username}/removal")]
pub async fn remove_user(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RemoveUser>,
) -> Result<HttpResponse, ApiError> {
    require_manager(&principal)?;
    let target = target_user(&context, &principal, &path).await?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason: a reason is required"));
    }
    if target.status == "removed" {
        return Err(ApiError::Conflict(format!(
            "user {} is already removed",
            target.username
        )));
    }
    let meta = super::request_id::meta_of(&request);
    let mut connection = context.pool.get().await?;
    let now = context.clock.now();
    // The removal and its audit event commit together.
    let removed = connection
        .transaction::<_, ApiError, _>(|connection| {
            let (principal, meta, reason) = (&principal, &meta, &body.reason);
            async move {
                let removed =
                    users::remove_user(connection, target.id, &principal.username, reason, now)
                        .await?;
                record(
                    connection,
                    "user.removed",
                    principal,
                    &removed.username,
                    meta,
                    serde_json::json!({"reason": reason}),
                )
                .await?;
                Ok(removed)
            }
            .scope_boxed()
        })
        .await?;
    context.register.notify_changed();
    Ok(HttpResponse::Ok().json(UserView::from(removed)))
}

/// Unlocks a user locked by failed logins.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, description = "Unlocked", body = UserView),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user that the caller may manage", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/users/{username}/unlock")]
pub async fn unlock_user(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_manager(&principal)?;
    let target = target_user(&context, &principal, &path).await?;
    let meta = super::request_id::meta_of(&request);
    let mut connection = context.pool.get().await?;
    let unlocked = connection
        .transaction::<_, ApiError, _>(|connection| {
            let (principal, meta) = (&principal, &meta);
            async move {
                let unlocked = users::unlock_user(connection, target.id).await?;
                record(
                    connection,
                    "user.unlocked",
                    principal,
                    &unlocked.username,
                    meta,
                    serde_json::json!({}),
                )
                .await?;
                Ok(unlocked)
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserView::from(unlocked)))
}

/// Creates an API client that acts as the user; the secret is shown once.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 201, description = "Created", body = NewClient),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user that the caller may manage", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/users/{username}/clients")]
pub async fn create_client(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_manager(&principal)?;
    let target = target_user(&context, &principal, &path).await?;
    let client_id = format!("{}-{}", target.username, random_text(8).to_lowercase());
    let secret = random_text(40);
    let to_hash = secret.clone();
    let secret_hash = hash_off_thread(to_hash).await?;
    let meta = super::request_id::meta_of(&request);
    let mut connection = context.pool.get().await?;
    connection
        .transaction::<_, ApiError, _>(|connection| {
            let (principal, meta, client_id) = (&principal, &meta, &client_id);
            async move {
                users::insert_client(connection, client_id, target.id, &secret_hash).await?;
                record(
                    connection,
                    "user.client_created",
                    principal,
                    &target.username,
                    meta,
                    serde_json::json!({"client_id": client_id}),
                )
                .await
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Created().json(NewClient {
        client_id,
        client_secret: secret,
    }))
}

fn random_text(length: usize) -> String {
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

async fn record(
    connection: &mut diesel_async::AsyncPgConnection,
    action: &str,
    principal: &Principal,
    subject: &str,
    meta: &crate::audit::RequestMeta,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let mut event =
        crate::audit::Event::by_user(action, principal, meta, chrono::Utc::now()).details(details);
    event.details["user"] = serde_json::json!(subject);
    // A savepoint inside the caller's transaction, or a transaction of its own.
    crate::audit::record(connection, vec![event]).await?;
    Ok(())
}
