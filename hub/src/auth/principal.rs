//! The authenticated caller of an HTTP request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::Role;
use super::users;
use crate::HubContext;
use crate::http::problem::ApiError;

/// Who is calling, as the database says now: a token of a user removed or locked since it
/// was issued is refused.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub full_name: String,
    /// The user's Party; `None` for the Secretariat.
    pub party: Option<String>,
    pub roles: Vec<Role>,
    /// The API client the token was issued to, for machine access.
    pub client_id: Option<String>,
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let context = request.app_data::<web::Data<Arc<HubContext>>>().cloned();
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(|value| value.to_str().map(str::to_owned));
        Box::pin(async move {
            let context = context
                .ok_or_else(|| ApiError::Internal("hub context missing from the app".to_owned()))?;
            let token = match header {
                None => return Err(ApiError::Unauthorized("the Authorization header is missing: expected `Bearer <token>` from POST /v1/auth/token".to_owned())),
                Some(Err(_)) => return Err(ApiError::Unauthorized("the Authorization header is not readable text".to_owned())),
                Some(Ok(value)) => match value.strip_prefix("Bearer ") {
                    Some(token) => token.trim().to_owned(),
                    None => return Err(ApiError::Unauthorized("the Authorization header must use the Bearer scheme".to_owned())),
                },
            };
            authenticate(&context, &token).await
        })
    }
}

/// Checks a bearer token and the current state of its user.
pub async fn authenticate(context: &HubContext, token: &str) -> Result<Principal, ApiError> {
    let claims = context
        .token_keys
        .verify(token)
        .map_err(|error| ApiError::Unauthorized(error.to_string()))?;
    let mut connection = context.pool.get().await?;
    let user = users::find_user(&mut connection, &claims.sub)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the token's user no longer exists".to_owned()))?;
    let now = context.clock.now();
    if user.status != "active" {
        return Err(ApiError::Unauthorized(
            "the token's user has been removed".to_owned(),
        ));
    }
    if user.locked_until.is_some_and(|until| until > now) {
        return Err(ApiError::Unauthorized(
            "the token's user is locked".to_owned(),
        ));
    }
    if let Some(client_id) = &claims.client_id
        && !users::client_is_active(&mut connection, client_id, user.id).await?
    {
        return Err(ApiError::Unauthorized(
            "the token's API client has been revoked".to_owned(),
        ));
    }
    Ok(Principal {
        roles: user
            .roles
            .iter()
            .filter_map(|role| Role::parse(role))
            .collect(),
        username: user.username,
        full_name: user.full_name,
        party: user.party,
        client_id: claims.client_id,
    })
}
