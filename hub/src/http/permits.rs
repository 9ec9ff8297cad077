//! Customs lookup of a permit by issuing country and number.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use epix_shared::PartyCode;
use epix_shared::permit::DocumentType;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::audit::{Event, RequestMeta};
use crate::auth::Principal;
use crate::auth::policy::PERMIT_READERS;
use crate::db::models::PermitRow;
use crate::db::schema::{messages, permits};

/// Whether the permit may still be used, as of the lookup.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// Within its validity period.
    Valid,
    /// Past its valid-until date.
    Expired,
}

/// The hub's record of a permit: its latest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermitStatus {
    pub issuing_country: String,
    pub permit_number: String,
    pub version: i32,
    pub document_type: DocumentType,
    pub validity: Validity,
    pub issue_date: Option<NaiveDate>,
    /// Last day of validity (Box 2).
    pub valid_until: NaiveDate,
    pub importer_country: String,
    pub exporter_country: String,
    /// The Party the permit was sent to through the hub.
    pub addressee: String,
    pub sender: String,
    /// The hub's delivery status: accepted, delivered, delivered_with_warnings or failed.
    pub delivery_status: String,
    pub stored_at: DateTime<Utc>,
    pub message_id: Uuid,
    /// The signatory who signed this version, as on the register.
    pub signed_by: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    /// The signatory of version 1, who issued the permit.
    pub issued_by: Option<String>,
    /// For an amended permit (version 2 or later), who altered it and when.
    pub altered_by: Option<String>,
    pub altered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PermitQuery {
    /// Issuing country, ISO 3166-1 alpha-2.
    pub country: String,
    /// Permit number exactly as issued; it may contain `/`.
    pub number: String,
}

/// Looks a permit up by issuing country and number.
#[utoipa::path(
    tag = "permits",
    security(("bearer" = [])),
    params(
        ("country" = String, Path, description = "Issuing country, ISO 3166-1 alpha-2"),
        ("number" = String, Path, description = "Permit number exactly as issued; a `/` in it may stay unencoded")
    ),
    responses(
        (status = 200, description = "The permit is known to the hub", body = PermitStatus),
        (status = 400, description = "The country code is malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: customs, authority-officer, authority-admin, secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such permit, or not one of the caller's Party (issuer, importer, exporter or addressee)", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/permits/{country}/{number:.*}")]
pub async fn get_permit(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (country, number) = path.into_inner();
    lookup(&context, &principal, &meta, &country, &number).await
}

/// Looks a permit up by issuing country and number given as query parameters.
#[utoipa::path(
    tag = "permits",
    security(("bearer" = [])),
    params(PermitQuery),
    responses(
        (status = 200, description = "The permit is known to the hub", body = PermitStatus),
        (status = 400, description = "A parameter is missing or malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: customs, authority-officer, authority-admin, secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such permit, or not one of the caller's Party (issuer, importer, exporter or addressee)", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/permits")]
pub async fn find_permit(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    query: web::Query<PermitQuery>,
) -> Result<HttpResponse, ApiError> {
    lookup(&context, &principal, &meta, &query.country, &query.number).await
}

async fn lookup(
    context: &HubContext,
    principal: &Principal,
    meta: &RequestMeta,
    country: &str,
    number: &str,
) -> Result<HttpResponse, ApiError> {
    if !principal.has_any(PERMIT_READERS) {
        return Err(ApiError::Forbidden(
            "looking permits up needs a customs, authority, secretariat or auditor role".to_owned(),
        ));
    }
    let country: PartyCode =
        country
            .parse()
            .map_err(|error: epix_shared::party::InvalidPartyCode| {
                ApiError::bad_request(format!("country: {error}"))
            })?;
    if number.is_empty() {
        return Err(ApiError::bad_request(
            "number: the permit number is empty: expected the number as issued",
        ));
    }
    let mut connection = context.pool.get().await?;
    let found: Option<(PermitRow, String)> = permits::table
        .inner_join(messages::table)
        .filter(permits::issuing_country.eq(country.as_str()))
        .filter(permits::permit_number.eq(number))
        .order(permits::version.desc())
        .select((PermitRow::as_select(), messages::status))
        .first(&mut connection)
        .await
        .optional()?;
    let visible = found.filter(|(permit, _)| {
        principal.sees_any_of([
            permit.issuing_country.as_str(),
            permit.importer_country.as_str(),
            permit.exporter_country.as_str(),
            permit.addressee.as_str(),
        ])
    });
    let version = visible.as_ref().map(|(permit, _)| permit.version);
    let event = Event::by_user("permit.looked_up", principal, meta, context.clock.now())
        .permit(country.as_str(), number, version)
        .details(serde_json::json!({ "found": version.is_some() }));
    crate::audit::record(&mut connection, vec![event]).await?;
    // A permit of other Parties is reported as unknown, so that its existence does not leak.
    let Some((permit, delivery_status)) = visible else {
        return Err(ApiError::NotFound(format!(
            "no permit {number:?} of {country} is known to the hub"
        )));
    };
    let issued_by: Option<String> = if permit.version == 1 {
        permit.signatory_name.clone()
    } else {
        permits::table
            .find((&permit.issuing_country, &permit.permit_number, 1))
            .select(permits::signatory_name)
            .first::<Option<String>>(&mut connection)
            .await
            .optional()?
            .flatten()
    };
    let (altered_by, altered_at) = if permit.version > 1 {
        (permit.signatory_name.clone(), permit.signed_at)
    } else {
        (None, None)
    };
    let today = Utc::now().date_naive();
    let status = PermitStatus {
        validity: if permit.valid_until < today {
            Validity::Expired
        } else {
            Validity::Valid
        },
        document_type: DocumentType::parse(&permit.document_type).unwrap_or(DocumentType::Other),
        issuing_country: permit.issuing_country,
        permit_number: permit.permit_number,
        version: permit.version,
        issue_date: permit.issue_date,
        valid_until: permit.valid_until,
        importer_country: permit.importer_country,
        exporter_country: permit.exporter_country,
        addressee: permit.addressee,
        sender: permit.sender,
        delivery_status,
        stored_at: permit.stored_at,
        message_id: permit.message_id,
        signed_by: permit.signatory_name,
        signed_at: permit.signed_at,
        issued_by,
        altered_by,
        altered_at,
    };
    Ok(HttpResponse::Ok().json(status))
}
