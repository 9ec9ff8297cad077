//! The audit trail over HTTP: filtered events, a permit's timeline, the chain check,
//! annual-report dates and legal holds.

use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use epix_shared::PartyCode;
use epix_shared::audit::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::audit::query::{self, Filter, MAX_PAGE, VerifyReport};
use crate::audit::{self, Event, RequestMeta};
use crate::auth::Principal;
use crate::auth::policy::{AUDIT_CHECKERS, AUDIT_READERS};
use crate::db::schema::{annual_reports, legal_holds};
use crate::register::store::SignatoryRecord;

/// Appends one event in a transaction of its own.
pub async fn record(context: &HubContext, event: Event) -> Result<(), ApiError> {
    let mut connection = context.pool.get().await?;
    audit::record(&mut connection, vec![event]).await?;
    Ok(())
}

/// Builds the event of a change to the register of signatories.
pub fn register_change(
    action: &str,
    principal: &Principal,
    meta: &RequestMeta,
    record: &SignatoryRecord,
) -> Event {
    let mut event =
        Event::by_user(action, principal, meta, Utc::now()).details(serde_json::json!({
            "record_id": record.id,
            "signatory_id": record.signatory_id,
            "party": record.party,
            "full_name": record.full_name,
            "status": record.status,
            "empowered_from": record.empowered_from,
            "empowered_until": record.empowered_until,
            "change_reason": record.change_reason,
            "thumbprint": record.thumbprint,
        }));
    // The Party whose register entry changed reads the event as its addressee.
    event.addressee = Some(record.party.clone());
    event
}

/// A page of events in chain order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditRecord>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// The query parameters of a request as given, in order, so that each one can be parsed
/// with an error that names it, its value and what it expects.
type RawQuery = web::Query<Vec<(String, String)>>;

/// Looks up the query parameter `name`; a parameter given twice is rejected.
fn param<'a>(raw: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = raw.iter().filter(|(key, _)| key == name);
    let first = values.next().map(|(_, value)| value.as_str());
    if let Some((_, second)) = values.next() {
        return Err(ApiError::bad_request(format!(
            "{name}: given more than once ({:?} and {second:?}): expected it at most once",
            first.unwrap_or_default()
        )));
    }
    Ok(first)
}

/// Parses the query parameter `name` as a `T`, or rejects it naming the value and
/// `expected`.
fn parse_param<T: std::str::FromStr>(
    raw: &[(String, String)],
    name: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match param(raw, name)? {
        None => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: {value:?} is invalid: expected {expected}"))
        }),
    }
}

const EXPECTED_SEQ: &str = "an integer seq, the next_after of the previous page";
const EXPECTED_LIMIT: &str = "an integer from 1 to 1000";
const EXPECTED_TIME: &str = "an RFC 3339 time such as 2026-01-01T00:00:00Z";

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Issuing country of the permit, ISO 3166-1 alpha-2; requires `number`.
    pub country: Option<String>,
    /// Permit number exactly as issued; requires `country`.
    pub number: Option<String>,
    /// Events where this Party acted, issued the permit, or is the addressee.
    pub party: Option<String>,
    /// The actor's username or broker user.
    pub actor: Option<String>,
    /// The action, such as `permit.issued` or `login.failed`.
    pub action: Option<String>,
    /// Events at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Only events after this seq: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// Events per page, 1 to 1000; 100 when omitted.
    pub limit: Option<i64>,
}

impl AuditQuery {
    fn parse(raw: &[(String, String)]) -> Result<Self, ApiError> {
        let text = |name| param(raw, name).map(|value| value.map(str::to_owned));
        let query = Self {
            country: text("country")?,
            number: text("number")?,
            party: text("party")?,
            actor: text("actor")?,
            action: text("action")?,
            from: parse_param(raw, "from", EXPECTED_TIME)?,
            to: parse_param(raw, "to", EXPECTED_TIME)?,
            after: parse_param(raw, "after", EXPECTED_SEQ)?,
            limit: parse_param(raw, "limit", EXPECTED_LIMIT)?,
        };
        if let (Some(from), Some(to)) = (query.from, query.to)
            && to <= from
        {
            return Err(ApiError::bad_request(format!(
                "to: {to} is not after from {from}: expected a time after from"
            )));
        }
        Ok(query)
    }
}

fn require(principal: &Principal, roles: &[crate::auth::Role], what: &str) -> Result<(), ApiError> {
    if principal.has_any(roles) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} needs one of the roles {}",
            roles
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

fn parse_party(field: &str, value: &str) -> Result<PartyCode, ApiError> {
    value
        .parse()
        .map_err(|error: epix_shared::party::InvalidPartyCode| {
            ApiError::bad_request(format!("{field}: {error}"))
        })
}

fn check_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(format!(
            "limit: {limit} is out of range: expected an integer from 1 to {MAX_PAGE}"
        ))),
    }
}

async fn page(
    context: &HubContext,
    principal: &Principal,
    mut filter: Filter,
    limit: i64,
) -> Result<AuditPage, ApiError> {
    filter.visible_to = principal.audit_scope().map(str::to_owned);
    let mut connection = context.pool.get().await?;
    let events = query::list(&mut connection, &filter, limit).await?;
    let next_after = if events.len() as i64 == limit {
        events.last().map(|event| event.seq)
    } else {
        None
    };
    Ok(AuditPage { events, next_after })
}

/// Lists audit events in chain order, filtered and paginated by seq.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditPage),
        (status = 400, description = "A parameter is malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: authority-officer, authority-admin (events of their own Party), secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/audit")]
pub async fn list_events(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    query: RawQuery,
) -> Result<HttpResponse, ApiError> {
    require(&principal, AUDIT_READERS, "reading the audit trail")?;
    let query = AuditQuery::parse(&query)?;
    let limit = check_limit(query.limit)?;
    let permit = match (query.country, query.number) {
        (Some(country), Some(number)) => {
            Some((parse_party("country", &country)?.to_string(), number))
        }
        (None, None) => None,
        (Some(country), None) => {
            return Err(ApiError::bad_request(format!(
                "number: missing while country is {country:?}: expected both country and number to select a permit, or neither"
            )));
        }
        (None, Some(number)) => {
            return Err(ApiError::bad_request(format!(
                "country: missing while number is {number:?}: expected both country and number to select a permit, or neither"
            )));
        }
    };
    let party = match query.party {
        Some(party) => Some(parse_party("party", &party)?.to_string()),
        None => None,
    };
    let filter = Filter {
        permit,
        party,
        actor: query.actor,
        action: query.action,
        from: query.from,
        to: query.to,
        after: query.after,
        visible_to: None,
    };
    Ok(HttpResponse::Ok().json(page(&context, &principal, filter, limit).await?))
}

/// Walks the whole hash chain and reports the first event that does not verify.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The result; `ok` is false when the chain is broken", body = VerifyReport),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/audit/verify")]
pub async fn verify_chain(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    require(&principal, AUDIT_CHECKERS, "verifying the audit trail")?;
    let mut connection = context.pool.get().await?;
    let report = query::verify(&mut connection).await?;
    if let Some(bad) = &report.first_bad {
        tracing::error!(audit.seq = bad.seq, reason = %bad.reason, "audit chain does not verify");
    }
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Issuing country, ISO 3166-1 alpha-2.
    pub country: String,
    /// Permit number exactly as issued; it may contain `/`.
    pub number: String,
    /// Only events after this seq: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// Events per page, 1 to 1000; 1000 when omitted.
    pub limit: Option<i64>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only events after this seq: the `next_after` of the previous page.
    pub after: Option<i64>,
    /// Events per page, 1 to 1000; 1000 when omitted.
    pub limit: Option<i64>,
}

impl PageQuery {
    fn parse(raw: &[(String, String)]) -> Result<Self, ApiError> {
        Ok(Self {
            after: parse_param(raw, "after", EXPECTED_SEQ)?,
            limit: parse_param(raw, "limit", EXPECTED_LIMIT)?,
        })
    }
}

async fn timeline(
    context: &HubContext,
    principal: &Principal,
    country: &str,
    number: &str,
    page_query: PageQuery,
) -> Result<HttpResponse, ApiError> {
    require(principal, AUDIT_READERS, "reading a permit's timeline")?;
    let country = parse_party("country", country)?;
    if number.is_empty() {
        return Err(ApiError::bad_request(
            "number: the permit number is empty: expected the number as issued",
        ));
    }
    let limit = check_limit(Some(page_query.limit.unwrap_or(MAX_PAGE)))?;
    let filter = Filter {
        permit: Some((country.to_string(), number.to_owned())),
        after: page_query.after,
        ..Filter::default()
    };
    Ok(HttpResponse::Ok().json(page(context, principal, filter, limit).await?))
}

/// Returns every event of one permit, from submission on, in order.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(
        ("country" = String, Path, description = "Issuing country, ISO 3166-1 alpha-2"),
        ("number" = String, Path, description = "Permit number exactly as issued; a `/` in it may stay unencoded"),
        PageQuery
    ),
    responses(
        (status = 200, description = "The permit's events that the caller may see; empty when there are none", body = AuditPage),
        (status = 400, description = "A parameter is malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: authority-officer, authority-admin (events of their own Party), secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/permits/{country}/{number:.*}/timeline")]
pub async fn permit_timeline(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    path: web::Path<(String, String)>,
    query: RawQuery,
) -> Result<HttpResponse, ApiError> {
    let (country, number) = path.into_inner();
    let page_query = PageQuery::parse(&query)?;
    timeline(&context, &principal, &country, &number, page_query).await
}

/// Returns every event of one permit given by query parameters, in order.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(TimelineQuery),
    responses(
        (status = 200, description = "The permit's events that the caller may see; empty when there are none", body = AuditPage),
        (status = 400, description = "A parameter is missing or malformed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: authority-officer, authority-admin (events of their own Party), secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/permits/timeline")]
pub async fn find_permit_timeline(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    query: RawQuery,
) -> Result<HttpResponse, ApiError> {
    let missing = |name: &str| {
        ApiError::bad_request(format!(
            "{name}: missing: expected the permit's issuing country and number"
        ))
    };
    let country = param(&query, "country")?.ok_or_else(|| missing("country"))?;
    let number = param(&query, "number")?.ok_or_else(|| missing("number"))?;
    let page_query = PageQuery::parse(&query)?;
    timeline(&context, &principal, country, number, page_query).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnnualReportDate {
    /// The date the Secretariat received the Party's annual report for the year.
    pub received_on: NaiveDate,
}

#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = annual_reports)]
pub struct AnnualReport {
    pub party: String,
    pub year: i32,
    pub received_on: NaiveDate,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// Records, or corrects, the date a Party's annual report for a year was received.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "The Party, ISO 3166-1 alpha-2"),
        ("year" = i32, Path, description = "The year the report covers")
    ),
    request_body = AnnualReportDate,
    responses(
        (status = 200, description = "Recorded", body = AnnualReport),
        (status = 400, description = "A field is invalid or the Party is not registered", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin of the Party", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[put("/parties/{code}/annual-reports/{year}")]
pub async fn put_annual_report(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<(String, i32)>,
    body: web::Json<AnnualReportDate>,
) -> Result<HttpResponse, ApiError> {
    let (code, year) = path.into_inner();
    let party = parse_party("code", &code)?.to_string();
    if !principal.may_record_annual_report(&party) {
        return Err(ApiError::Forbidden(
            "recording an annual report's date needs the secretariat role, or authority-admin of that Party".to_owned(),
        ));
    }
    if !(1975..=9999).contains(&year) {
        return Err(ApiError::bad_request(format!(
            "year: {year} is out of range: expected 1975 (CITES entry into force) to 9999"
        )));
    }
    let received_on = body.received_on;
    if received_on.year() <= year {
        return Err(ApiError::bad_request(format!(
            "received_on: {received_on} is not after {year}: expected a date after the year the report covers"
        )));
    }
    let now = context.clock.now();
    let mut connection = context.pool.get().await?;
    let mut event = Event::by_user("annual_report.recorded", &principal, &meta, now)
        .details(serde_json::json!({"party": party, "year": year, "received_on": received_on}));
    event.addressee = Some(party.clone());
    let username = &principal.username;
    let party = &party;
    let stored = connection
        .transaction::<_, ApiError, _>(|connection| {
            async move {
                let stored: AnnualReport = diesel::insert_into(annual_reports::table)
                    .values((
                        annual_reports::party.eq(party),
                        annual_reports::year.eq(year),
                        annual_reports::received_on.eq(received_on),
                        annual_reports::recorded_by.eq(username),
                        annual_reports::recorded_at.eq(now),
                    ))
                    .on_conflict((annual_reports::party, annual_reports::year))
                    .do_update()
                    .set((
                        annual_reports::received_on.eq(received_on),
                        annual_reports::recorded_by.eq(username),
                        annual_reports::recorded_at.eq(now),
                    ))
                    .returning(AnnualReport::as_returning())
                    .get_result(connection)
                    .await
                    .map_err(|error| match error {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                            _,
                        ) => ApiError::bad_request(format!("code: no Party {party} is registered")),
                        other => ApiError::from(other),
                    })?;
                audit::append(connection, vec![event]).await?;
                Ok(stored)
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(stored))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceHold {
    /// The reason the permit's records must be kept, such as a court case number.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = legal_holds)]
pub struct LegalHold {
    pub issuing_country: String,
    pub permit_number: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
}

/// Puts a permit on legal hold: none of its audit events is purged until the hold is
/// lifted.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(
        ("country" = String, Path, description = "Issuing country, ISO 3166-1 alpha-2"),
        ("number" = String, Path, description = "Permit number exactly as issued; a `/` in it may stay unencoded")
    ),
    request_body = PlaceHold,
    responses(
        (status = 200, description = "On hold", body = LegalHold),
        (status = 400, description = "A field is invalid", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The permit is already on hold", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/permits/{country}/{number:.*}/hold")]
pub async fn place_hold(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
    body: web::Json<PlaceHold>,
) -> Result<HttpResponse, ApiError> {
    require(&principal, AUDIT_CHECKERS, "placing a legal hold")?;
    let (country, number) = path.into_inner();
    let country = parse_party("country", &country)?.to_string();
    if number.is_empty() {
        return Err(ApiError::bad_request(
            "number: the permit number is empty: expected the number as issued",
        ));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason: a reason is required"));
    }
    let now = context.clock.now();
    let mut connection = context.pool.get().await?;
    let event = Event::by_user("permit.hold_placed", &principal, &meta, now)
        .permit(&country, &number, None)
        .details(serde_json::json!({"reason": body.reason}));
    let (username, country, number) = (&principal.username, &country, &number);
    let reason = &body.reason;
    let placed = connection
        .transaction::<_, ApiError, _>(|connection| {
            async move {
                // Waits for a running purge, whose DELETE must see this hold or finish
                // before it.
                diesel::sql_query(format!(
                    "SELECT pg_advisory_xact_lock_shared({})",
                    audit::retention::PURGE_LOCK_KEY
                ))
                .execute(connection)
                .await?;
                let placed: Option<LegalHold> = diesel::insert_into(legal_holds::table)
                    .values((
                        legal_holds::issuing_country.eq(country),
                        legal_holds::permit_number.eq(number),
                        legal_holds::reason.eq(reason),
                        legal_holds::placed_by.eq(username),
                        legal_holds::placed_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .returning(LegalHold::as_returning())
                    .get_result(connection)
                    .await
                    .optional()?;
                let Some(placed) = placed else {
                    return Err(ApiError::Conflict(format!(
                        "permit {number:?} of {country} is already on legal hold"
                    )));
                };
                audit::append(connection, vec![event]).await?;
                Ok(placed)
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::Ok().json(placed))
}

/// Lifts a permit's legal hold; its events then follow the retention rules again.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(
        ("country" = String, Path, description = "Issuing country, ISO 3166-1 alpha-2"),
        ("number" = String, Path, description = "Permit number exactly as issued; a `/` in it may stay unencoded")
    ),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "The permit is not on hold", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[delete("/permits/{country}/{number:.*}/hold")]
pub async fn lift_hold(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    require(&principal, AUDIT_CHECKERS, "lifting a legal hold")?;
    let (country, number) = path.into_inner();
    let country = parse_party("country", &country)?.to_string();
    let mut connection = context.pool.get().await?;
    let event = Event::by_user("permit.hold_lifted", &principal, &meta, context.clock.now())
        .permit(&country, &number, None);
    let (country, number) = (&country, &number);
    connection
        .transaction::<_, ApiError, _>(|connection| {
            async move {
                let lifted: Option<LegalHold> =
                    diesel::delete(legal_holds::table.find((country, number)))
                        .returning(LegalHold::as_returning())
                        .get_result(connection)
                        .await
                        .optional()?;
                let Some(lifted) = lifted else {
                    return Err(ApiError::NotFound(format!(
                        "permit {number:?} of {country} is not on legal hold"
                    )));
                };
                let event = event.details(serde_json::json!({
                    "reason": lifted.reason,
                    "placed_by": lifted.placed_by,
                    "placed_at": lifted.placed_at,
                }));
                audit::append(connection, vec![event]).await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
