//! Login: `POST /v1/auth/token` and the public keys at `/.well-known/jwks.json`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::Duration;
use diesel_async::AsyncConnection;
use diesel_async::scoped_futures::ScopedFutureExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::audit::{self, ActorKind, Event};
use crate::auth::users::{self, UserRow};
use crate::auth::{Claims, password};

/// A token request (RFC 6749): `grant_type=password` with `username` and `password`, or
/// `grant_type=client_credentials` with `client_id` and `client_secret`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `password` or `client_credentials`.
    pub grant_type: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Exchanges a password or client credentials for a short-lived token.
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "The request is malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "The credentials are invalid, or the account is locked or removed (the answer does not say which)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts from this address or for this name; see Retry-After", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/auth/token")]
pub async fn issue_token(
    context: web::Data<Arc<HubContext>>,
    request: HttpRequest,
    form: web::Form<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let meta = super::request_id::meta_of(&request);
    let address = meta.client_address.clone().unwrap_or_default();
    let form = form.into_inner();
    let (name_key, secret, username) = match form.grant_type.as_str() {
        "password" => {
            let username = required(form.username, "username")?;
            let password = required(form.password, "password")?;
            (format!("user:{username}"), password, Some(username))
        }
        "client_credentials" => {
            let client_id = required(form.client_id, "client_id")?;
            let secret = required(form.client_secret, "client_secret")?;
            (format!("client:{client_id}"), secret, None)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "grant_type {other:?} is not supported: expected password or client_credentials"
            )));
        }
    };
    let now = context.clock.now();
    let address_key = format!("address:{address}");
    for key in [&address_key, &name_key] {
        if let Some(wait) = context.login_limiter.retry_after(key, now) {
            return Err(ApiError::TooManyRequests {
                retry_after_seconds: wait.num_seconds() + 1,
            });
        }
    }

    let mut connection = context.pool.get().await?;
    let (user, client_id) = match &username {
        Some(username) => (users::find_user(&mut connection, username).await?, None),
        None => {
            let client_id = name_key.trim_start_matches("client:").to_owned();
            match users::find_client(&mut connection, &client_id).await? {
                Some((owner, secret_hash)) => {
                    let user = users::find_user(&mut connection, &owner).await?;
                    (
                        user.map(|mut user| {
                            user.password_hash = Some(secret_hash);
                            user
                        }),
                        Some(client_id),
                    )
                }
                None => (None, Some(client_id)),
            }
        }
    };

    // Return the connection to the pool while the hash is checked, which takes tens of
    // milliseconds, so that a burst of logins cannot starve permit routing of connections.
    drop(connection);
    // Verify against a dummy hash when there is no user, so that the time taken does not
    // tell whether the name exists.
    let stored = user
        .as_ref()
        .and_then(|user| user.password_hash.clone())
        .unwrap_or_else(|| password::DUMMY_HASH.clone());
    let matches = tokio::task::spawn_blocking(move || password::verify(&secret, &stored))
        .await
        .map_err(|error| ApiError::Internal(format!("password check failed: {error}")))?;

    let mut connection = context.pool.get().await?;
    let subject = username.clone().or_else(|| client_id.clone());
    let refusal = match &user {
        None => Some("unknown_name"),
        Some(user) if user.status != "active" => Some("user_removed"),
        Some(user) if user.locked_until.is_some_and(|until| until > now) => Some("user_locked"),
        Some(_) if !matches => Some("wrong_secret"),
        Some(_) => None,
    };
    if let Some(reason) = refusal {
        context.login_limiter.record_failure(&address_key, now);
        context.login_limiter.record_failure(&name_key, now);
        // Only wrong passwords count towards the account lockout; a wrong client secret
        // must not lock the person out.
        let counted = match (&user, reason, &client_id) {
            (Some(user), "wrong_secret", None) => Some(user.id),
            _ => None,
        };
        let lockout =
            Duration::from_std(context.config.login_lockout).unwrap_or(Duration::minutes(15));
        let max = context.config.login_max_failures as i32;
        let actor_party = user.as_ref().and_then(|u| u.party.clone());
        let (meta, client_id, actor_id) = (&meta, &client_id, subject.clone());
        // The failure count and its audit event commit together.
        connection
            .transaction::<_, ApiError, _>(|connection| {
                async move {
                    let locked = match counted {
                        Some(user_id) => {
                            users::record_failed_login(connection, user_id, now, max, lockout)
                                .await?
                        }
                        None => false,
                    };
                    let mut event = Event::new("login.failed", ActorKind::User, now)
                        .request(meta)
                        .details(serde_json::json!({ "reason": reason, "locked_now": locked, "client_id": client_id }));
                    event.actor_id = actor_id;
                    event.actor_party = actor_party;
                    audit::append(connection, vec![event]).await?;
                    Ok(())
                }
                .scope_boxed()
            })
            .await?;
        tracing::info!(login.subject = subject.as_deref().unwrap_or("-"), client.address = %address, reason, "login failed");
        return Err(ApiError::InvalidCredentials);
    }
    let Some(user) = user else {
        return Err(ApiError::InvalidCredentials);
    };

    let mut event = Event::new("login.succeeded", ActorKind::User, now)
        .request(&meta)
        .details(serde_json::json!({ "client_id": client_id }));
    event.actor_id = Some(user.username.clone());
    event.actor_name = Some(user.full_name.clone());
    event.actor_party = user.party.clone();
    event.actor_roles = user.roles.clone();
    let user_id = user.id;
    // The reset of the failure count and the audit event commit together.
    connection
        .transaction::<_, ApiError, _>(|connection| {
            async move {
                users::record_successful_login(connection, user_id).await?;
                audit::append(connection, vec![event]).await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await?;
    context.login_limiter.clear(&name_key);
    let token = issue_for(&context, &user, client_id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(token))
}

fn required(value: Option<String>, field: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{field} is missing")))
}

fn issue_for(
    context: &HubContext,
    user: &UserRow,
    client_id: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let ttl = context.config.token_ttl.as_secs() as i64;
    let claims = Claims {
        iss: context.token_keys.issuer().to_owned(),
        aud: context.token_keys.audience().to_owned(),
        sub: user.username.clone(),
        exp: now + ttl,
        nbf: now,
        iat: now,
        party: user.party.clone(),
        roles: user.roles.clone(),
        client_id,
    };
    let access_token = context
        .token_keys
        .sign(&claims)
        .map_err(|error| ApiError::Internal(format!("cannot sign a token: {error}")))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: ttl,
    })
}

/// Publishes the public keys that verify the hub's tokens (RFC 7517 JWK Set).
#[utoipa::path(tag = "auth", responses((status = 200, description = "The JWK Set", body = Object)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(context: web::Data<Arc<HubContext>>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "max-age=300"))
        .json(context.token_keys.jwks())
}
