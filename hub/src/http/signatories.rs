//! The register of signatories: the Secretariat records and approves, a Party's authority
//! admin notifies its own changes, and every authenticated user reads the register.

use std::sync::Arc;

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Months, Utc};
use diesel_async::AsyncConnection;
use diesel_async::scoped_futures::ScopedFutureExt;
use epix_shared::signature::{ParsedCertificate, check_certificate};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit;
use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::audit::RequestMeta;
use crate::auth::{Principal, Role};
use crate::register::store::{self, NewRecord, SignatoryView};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSignatory {
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    /// The signer's X.509 certificate, PEM.
    pub certificate: String,
    /// When the empowerment took effect.
    pub empowered_from: DateTime<Utc>,
    /// When the Party notified the change; now when omitted.
    pub notified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RemoveSignatory {
    /// When the removal takes effect; now when omitted. Signatures made before it stay valid.
    pub effective_at: Option<DateTime<Utc>>,
    pub reason: String,
}

fn may_notify(principal: &Principal, party: &str) -> Result<bool, ApiError> {
    if principal.roles.contains(&Role::Secretariat) {
        return Ok(true);
    }
    if principal.roles.contains(&Role::AuthorityAdmin) && principal.party.as_deref() == Some(party)
    {
        return Ok(false);
    }
    Err(ApiError::Forbidden(
        "changing the register needs the secretariat role, or authority-admin of the signatory's Party".to_owned(),
    ))
}

/// Records a signatory: approved at once when the Secretariat records it, pending the
/// Secretariat's approval when a Party's authority admin notifies it.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    request_body = CreateSignatory,
    responses(
        (status = 201, description = "Recorded", body = SignatoryView),
        (status = 400, description = "A field or the certificate is invalid; every problem is listed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin of the signatory's Party", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The certificate is registered to another signatory", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/signatories")]
pub async fn create_signatory(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    body: web::Json<CreateSignatory>,
) -> Result<HttpResponse, ApiError> {
    let stored = record_signatory(&context, &principal, &meta, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(SignatoryView::from(stored)))
}

/// Records a signatory for `principal`, as [`create_signatory`] does; for the API and the
/// `epix-hub signatory add` command.
pub async fn record_signatory(
    context: &HubContext,
    principal: &Principal,
    meta: &RequestMeta,
    body: CreateSignatory,
) -> Result<store::SignatoryRecord, ApiError> {
    let by_secretariat = may_notify(principal, &body.party)?;
    let now = context.clock.now();
    let info = check_certificate(body.certificate.as_bytes(), now).map_err(|problems| {
        ApiError::BadRequest {
            detail: "certificate: the certificate cannot be registered".to_owned(),
            problems,
        }
    })?;
    let certificate = ParsedCertificate::from_pem_or_der(body.certificate.as_bytes())
        .map_err(|error| ApiError::bad_request(format!("certificate: {error}")))?;
    let der = certificate
        .x509()
        .to_der()
        .map_err(|error| ApiError::Internal(format!("cannot encode a certificate: {error}")))?;
    // Only the Secretariat records a notification's date; a Party's own notification is
    // dated when the hub receives it, so lateness cannot be hidden.
    let notified_at = if by_secretariat {
        body.notified_at.unwrap_or(now)
    } else {
        now
    };
    let record = NewRecord {
        signatory_id: Uuid::new_v4(),
        party: body.party,
        full_name: body.full_name,
        title: body.title,
        certificate_der: der,
        thumbprint: info.thumbprint,
        certificate_not_after: info.not_after,
        empowered_from: body.empowered_from,
        empowered_until: None,
        change_reason: Some("empowered".to_owned()),
        notified_by: principal.username.clone(),
        notified_at,
        late_notification: is_late(body.empowered_from, notified_at),
        status: if by_secretariat {
            "approved"
        } else {
            "pending"
        }
        .to_owned(),
        approved_by: by_secretariat.then(|| principal.username.clone()),
        approved_at: by_secretariat.then_some(now),
        supersedes: None,
    };
    let mut connection = context.pool.get().await?;
    let thumbprint = record.thumbprint.clone();
    // The record and its audit event commit together.
    let stored = connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                let stored = store::insert_new_signatory(connection, &record).await?;
                if let Some(stored) = &stored {
                    let event = audit::register_change(
                        "register.signatory_recorded",
                        principal,
                        meta,
                        stored,
                    );
                    crate::audit::append(connection, vec![event]).await?;
                }
                Ok(stored)
            }
            .scope_boxed()
        })
        .await
        .map_err(|error| match error {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => ApiError::bad_request("party: no such Party is registered"),
            other => ApiError::from(other),
        })?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "certificate {thumbprint} is already registered to a signatory"
            ))
        })?;
    refresh(context).await;
    tracing::info!(signatory.id = %stored.signatory_id, party.code = %stored.party, status = %stored.status, "signatory recorded");
    Ok(stored)
}

/// A notification more than one calendar month after the change took effect is late.
fn is_late(effective: DateTime<Utc>, notified: DateTime<Utc>) -> bool {
    effective
        .checked_add_months(Months::new(1))
        .is_some_and(|deadline| notified > deadline)
}

/// Approves a pending record.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    params(("record_id" = i64, Path)),
    responses(
        (status = 200, description = "Approved", body = SignatoryView),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No pending record with this id", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/signatories/records/{record_id}/approval")]
pub async fn approve_signatory(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    if !principal.roles.contains(&Role::Secretariat) {
        return Err(ApiError::Forbidden(
            "approving register records needs the secretariat role".to_owned(),
        ));
    }
    let mut connection = context.pool.get().await?;
    let record_id = path.into_inner();
    let now = context.clock.now();
    let approved = connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            let principal = &principal;
            let meta = &meta;
            async move {
                let approved =
                    store::approve(connection, record_id, &principal.username, now).await?;
                let event = audit::register_change(
                    "register.signatory_approved",
                    principal,
                    meta,
                    &approved,
                );
                crate::audit::append(connection, vec![event]).await?;
                Ok(approved)
            }
            .scope_boxed()
        })
        .await
        .map_err(|error| match error {
            diesel::result::Error::NotFound => {
                ApiError::NotFound("no pending register record with this id".to_owned())
            }
            other => ApiError::from(other),
        })?;
    refresh(&context).await;
    Ok(HttpResponse::Ok().json(SignatoryView::from(approved)))
}

/// Removes a signatory from a given time: signatures made before it stay valid, later ones
/// are rejected. The removal is a new record and takes effect without approval.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    params(("signatory_id" = Uuid, Path)),
    request_body = RemoveSignatory,
    responses(
        (status = 200, description = "Removed", body = SignatoryView),
        (status = 400, description = "The reason is missing, or the time is before the empowerment", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, authority-admin of the signatory's Party", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such signatory", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[post("/signatories/{signatory_id}/removal")]
pub async fn remove_signatory(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    meta: RequestMeta,
    path: web::Path<Uuid>,
    body: web::Json<RemoveSignatory>,
) -> Result<HttpResponse, ApiError> {
    let stored = record_removal(&context, &principal, &meta, path.into_inner(), &body).await?;
    Ok(HttpResponse::Ok().json(SignatoryView::from(stored)))
}

/// Removes a signatory for `principal`, as [`remove_signatory`] does; for the API and the
/// `epix-hub signatory remove` command.
pub async fn record_removal(
    context: &HubContext,
    principal: &Principal,
    meta: &RequestMeta,
    signatory_id: Uuid,
    body: &RemoveSignatory,
) -> Result<store::SignatoryRecord, ApiError> {
    let mut connection = context.pool.get().await?;
    let current = store::current_of(&mut connection, signatory_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("no signatory with this id on the register".to_owned())
        })?;
    may_notify(principal, &current.party)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason: a reason is required"));
    }
    let now = context.clock.now();
    let effective = body.effective_at.unwrap_or(now);
    // A removal may only move earlier: a later time would extend the empowerment, which
    // only a new notification approved by the Secretariat may do.
    if let Some(removed_at) = current.empowered_until
        && effective >= removed_at
    {
        return Err(ApiError::Conflict(format!(
            "the signatory is already removed from {removed_at}: a new removal must take effect earlier"
        )));
    }
    if effective < current.empowered_from {
        return Err(ApiError::bad_request(
            "effective_at: the removal cannot take effect before the empowerment",
        ));
    }
    let record = NewRecord {
        signatory_id: current.signatory_id,
        party: current.party.clone(),
        full_name: current.full_name.clone(),
        title: current.title.clone(),
        certificate_der: current.certificate_der.clone(),
        thumbprint: current.thumbprint.clone(),
        certificate_not_after: current.certificate_not_after,
        empowered_from: current.empowered_from,
        empowered_until: Some(effective),
        change_reason: Some(body.reason.clone()),
        notified_by: principal.username.clone(),
        notified_at: now,
        late_notification: is_late(effective, now),
        status: "approved".to_owned(),
        approved_by: Some(principal.username.clone()),
        approved_at: Some(now),
        supersedes: Some(current.id),
    };
    // The record and its audit event commit together.
    let stored = connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                let stored = store::insert(connection, &record).await?;
                let event =
                    audit::register_change("register.signatory_removed", principal, meta, &stored);
                crate::audit::append(connection, vec![event]).await?;
                Ok(stored)
            }
            .scope_boxed()
        })
        .await?;
    refresh(context).await;
    tracing::info!(signatory.id = %stored.signatory_id, party.code = %stored.party, effective_at = %effective, "signatory removed");
    Ok(stored)
}

/// Returns the current register: the latest approved record of every signatory.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The register", body = [SignatoryView]),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/signatories")]
pub async fn list_signatories(
    context: web::Data<Arc<HubContext>>,
    _principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let mut connection = context.pool.get().await?;
    let records = store::current_records(&mut connection).await?;
    let views: Vec<SignatoryView> = records.into_iter().map(SignatoryView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Returns every register record, newest first, pending and rejected ones included.
#[utoipa::path(
    tag = "signatories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The records", body = [SignatoryView]),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: secretariat, auditor, authority-admin (own Party)", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/signatories/history")]
pub async fn signatory_history(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = if principal.is_global() {
        None
    } else if principal.roles.contains(&Role::AuthorityAdmin) {
        principal.party.as_deref()
    } else {
        return Err(ApiError::Forbidden(
            "the register history needs the secretariat, auditor or authority-admin role"
                .to_owned(),
        ));
    };
    let mut connection = context.pool.get().await?;
    let records = store::history(&mut connection, scope).await?;
    let views: Vec<SignatoryView> = records.into_iter().map(SignatoryView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn refresh(context: &HubContext) {
    context.register.notify_changed();
    if let Err(error) = context.register.reload(&context.pool).await {
        tracing::warn!(%error, "cannot reload the register after a change; it reloads within 5 seconds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_after_a_month_is_late() {
        let effective: DateTime<Utc> = "2026-01-31T10:00:00Z".parse().expect("time");
        assert!(!is_late(
            effective,
            "2026-02-28T10:00:00Z".parse().expect("time")
        ));
        assert!(is_late(
            effective,
            "2026-03-01T10:00:00Z".parse().expect("time")
        ));
    }
}
