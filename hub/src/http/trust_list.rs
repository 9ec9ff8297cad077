//! The trust list: the current register of signatories as one document signed by the hub,
//! with a version that grows with every change, and the changes since a version.

use std::sync::Arc;

use actix_web::http::header::{ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, get, web};
use epix_shared::trust::{TYP_TRUST_LIST, TYP_TRUST_LIST_CHANGES, TrustList, TrustListChanges};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::auth::Principal;
use crate::register::store;

/// Header carrying the hub's detached JWS over the response body; its `kid` names a key of
/// `/.well-known/jwks.json`.
pub const SIGNATURE_HEADER: &str = "Epix-Signature";

#[derive(Debug, Deserialize, IntoParams)]
pub struct ChangesQuery {
    /// The register version the caller holds.
    pub since: i64,
}

/// Returns the current register as one document signed by the hub.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trust list; the Epix-Signature header holds the hub's detached JWS over the body and ETag its version", body = TrustList),
        (status = 304, description = "Unchanged since the version named in If-None-Match"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/trust-list")]
pub async fn trust_list(
    context: web::Data<Arc<HubContext>>,
    _principal: Principal,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut connection = context.pool.get().await?;
    // One snapshot, so the list and its version always agree.
    let (version, records) = store::current_with_version(&mut connection).await?;
    let etag = format!("\"{version}\"");
    let unchanged = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == etag);
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header((ETAG, etag))
            .finish());
    }
    let list = TrustList {
        version,
        issued_at: context.clock.now(),
        issuer: context.token_keys.issuer().to_owned(),
        signatories: records.into_iter().map(store::trusted).collect(),
    };
    signed_response(&context, &list, TYP_TRUST_LIST, Some(etag))
}

/// Returns the register changes since a version, signed by the hub.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    params(ChangesQuery),
    responses(
        (status = 200, description = "The changes; signed like the trust list", body = TrustListChanges),
        (status = 400, description = "since is missing or not a number", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/trust-list/changes")]
pub async fn trust_list_changes(
    context: web::Data<Arc<HubContext>>,
    _principal: Principal,
    query: web::Query<ChangesQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = context.pool.get().await?;
    // The register's own version, read with the changes, so a copy ahead of the hub (after
    // a restore from a backup) detects that the hub is behind.
    let (version, changes) = store::changes_with_version(&mut connection, query.since).await?;
    let body = TrustListChanges {
        since: query.since,
        version,
        issuer: context.token_keys.issuer().to_owned(),
        changes: changes.into_iter().map(store::trusted).collect(),
    };
    signed_response(&context, &body, TYP_TRUST_LIST_CHANGES, None)
}

fn signed_response<T: Serialize>(
    context: &HubContext,
    document: &T,
    typ: &str,
    etag: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(document)
        .map_err(|error| ApiError::Internal(format!("cannot serialise: {error}")))?;
    let signature = context
        .token_keys
        .sign_detached(&body, typ)
        .map_err(|error| ApiError::Internal(format!("cannot sign the trust list: {error}")))?;
    let mut response = HttpResponse::Ok();
    response.insert_header((SIGNATURE_HEADER, signature));
    if let Some(etag) = etag {
        response.insert_header((ETAG, etag));
    }
    Ok(response.content_type("application/json").body(body))
}
