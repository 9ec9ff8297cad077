//! The revocation list: signatories and users removed, with the time each removal took
//! effect and its reason.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::auth::Principal;
use crate::db::schema::users;
use crate::register::store;

#[derive(Debug, Serialize, ToSchema)]
pub struct Revocation {
    /// `signatory` or `user`.
    pub kind: String,
    /// The signatory's id, or the username.
    pub subject: String,
    pub full_name: String,
    pub party: Option<String>,
    /// For a signatory, the certificate thumbprint (`x5t#S256`).
    pub thumbprint: Option<String>,
    /// From this time signatures and API access are refused.
    pub effective_at: DateTime<Utc>,
    pub reason: Option<String>,
}

#[derive(Queryable)]
struct RemovedUser(
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// Lists every removed signatory and user, newest removal first.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revocation list", body = [Revocation]),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/revocations")]
pub async fn list_revocations(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let mut connection = context.pool.get().await?;
    let mut revocations: Vec<Revocation> = store::current_records(&mut connection)
        .await?
        .into_iter()
        .filter_map(|record| {
            Some(Revocation {
                effective_at: record.empowered_until?,
                kind: "signatory".to_owned(),
                subject: record.signatory_id.to_string(),
                full_name: record.full_name,
                party: Some(record.party),
                thumbprint: Some(record.thumbprint),
                reason: record.change_reason,
            })
        })
        .collect();
    let removed: Vec<RemovedUser> = users::table
        .filter(users::status.eq("removed"))
        .select((
            users::username,
            users::full_name,
            users::party,
            users::removed_at,
            users::removal_reason,
        ))
        .load(&mut connection)
        .await?;
    for RemovedUser(username, full_name, party, removed_at, reason) in removed {
        // Removed users are shown to their own Party, the Secretariat and auditors only.
        let visible = principal.sees_any_of(party.as_deref());
        if let (Some(effective_at), true) = (removed_at, visible) {
            revocations.push(Revocation {
                kind: "user".to_owned(),
                subject: username,
                full_name,
                party,
                thumbprint: None,
                effective_at,
                reason,
            });
        }
    }
    revocations.sort_by_key(|revocation| std::cmp::Reverse(revocation.effective_at));
    Ok(HttpResponse::Ok().json(revocations))
}
