//! The trust list: the current register of signatories as one document signed by the hub,
//! with a version that grows with every change, and the changes since a version.

use std::sync::Arc;

use actix_web::http::header::{ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::auth::Principal;
use crate::register::store::{self, SignatoryRecord};

/// Header carrying the hub's detached JWS over the response body; its `kid` names a key of
/// `/.well-known/jwks.json`.
pub const SIGNATURE_HEADER: &str = "Epix-Signature";

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedSignatory {
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    /// base64url SHA-256 of the certificate (the JWS `x5t#S256`).
    pub thumbprint: String,
    /// The certificate, PEM.
    pub certificate: String,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    /// The register version of this record.
    pub version: Option<i64>,
}

impl From<SignatoryRecord> for TrustedSignatory {
    fn from(record: SignatoryRecord) -> Self {
        let version = record.register_version;
        let view = store::SignatoryView::from(record);
        Self {
            signatory_id: view.signatory_id,
            party: view.party,
            full_name: view.full_name,
            title: view.title,
            thumbprint: view.thumbprint,
            certificate: view.certificate,
            empowered_from: view.empowered_from,
            empowered_until: view.empowered_until,
            version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustList {
    /// The register version this list shows; 0 for an empty register.
    pub version: i64,
    pub issued_at: DateTime<Utc>,
    pub issuer: String,
    pub signatories: Vec<TrustedSignatory>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrustListChanges {
    pub since: i64,
    pub version: i64,
    pub issuer: String,
    /// The records that changed the register after `since`, oldest first.
    pub changes: Vec<TrustedSignatory>,
}

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
    let records = store::current_records(&mut connection).await?;
    // The version comes from the records themselves, so list and version always agree.
    let version = records
        .iter()
        .filter_map(|r| r.register_version)
        .max()
        .unwrap_or(0);
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
        signatories: records.into_iter().map(TrustedSignatory::from).collect(),
    };
    signed_response(&context, &list, Some(etag))
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
    let changes = store::changes_since(&mut connection, query.since).await?;
    let version = changes
        .iter()
        .filter_map(|r| r.register_version)
        .max()
        .unwrap_or(query.since);
    let body = TrustListChanges {
        since: query.since,
        version,
        issuer: context.token_keys.issuer().to_owned(),
        changes: changes.into_iter().map(TrustedSignatory::from).collect(),
    };
    signed_response(&context, &body, None)
}

fn signed_response<T: Serialize>(
    context: &HubContext,
    document: &T,
    etag: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(document)
        .map_err(|error| ApiError::Internal(format!("cannot serialise: {error}")))?;
    let signature = context
        .token_keys
        .sign_detached(&body, "epix-trust-list")
        .map_err(|error| ApiError::Internal(format!("cannot sign the trust list: {error}")))?;
    let mut response = HttpResponse::Ok();
    response.insert_header((SIGNATURE_HEADER, signature));
    if let Some(etag) = etag {
        response.insert_header((ETAG, etag));
    }
    Ok(response.content_type("application/json").body(body))
}
