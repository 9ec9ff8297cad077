//! Status of a submitted message and the receipts the hub sent for it.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use epix_shared::{Problem, Receipt};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::{ApiError, ProblemDetails};
use crate::HubContext;
use crate::auth::Principal;
use crate::auth::policy::MESSAGE_READERS;
use crate::db::models::MessageRow;
use crate::db::schema::{messages, outbox};

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageStatus {
    pub message_id: Uuid,
    pub tracking_id: Uuid,
    pub message_type: Option<String>,
    /// accepted, rejected, delivered, delivered_with_warnings, failed, or recorded (for
    /// acknowledgements).
    pub status: String,
    pub sender: Option<String>,
    pub addressee: Option<String>,
    pub issuing_country: Option<String>,
    pub document_number: Option<String>,
    pub received_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub problems: Vec<Problem>,
    /// Receipts sent to the sender, oldest first.
    pub receipts: Vec<Receipt>,
}

/// Returns a message's status and receipts.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("message_id" = Uuid, Path, description = "The sender's message_id")),
    responses(
        (status = 200, description = "The message is known to the hub", body = MessageStatus),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Roles: authority-officer, authority-admin, secretariat, auditor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such message, or not sent by or to the caller's Party", body = ProblemDetails, content_type = "application/problem+json")
    )
)]
#[get("/messages/{message_id}")]
pub async fn get_message(
    context: web::Data<Arc<HubContext>>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !principal.has_any(MESSAGE_READERS) {
        return Err(ApiError::Forbidden(
            "reading message status needs an authority, secretariat or auditor role".to_owned(),
        ));
    }
    let text = path.into_inner();
    let message_id = Uuid::parse_str(&text)
        .map_err(|_| ApiError::bad_request(format!("message_id {text:?} is not a UUID")))?;
    let mut connection = context.pool.get().await?;
    let row: Option<MessageRow> = messages::table
        .find(message_id)
        .select(MessageRow::as_select())
        .first(&mut connection)
        .await
        .optional()?;
    let row = row.filter(|row| {
        principal.sees_any_of(
            row.sender
                .iter()
                .chain(row.addressee.iter())
                .map(String::as_str),
        )
    });
    let Some(row) = row else {
        return Err(ApiError::NotFound(format!(
            "no message {message_id} is known to the hub"
        )));
    };
    let bodies: Vec<Option<Vec<u8>>> = outbox::table
        .filter(outbox::correlation_id.eq(message_id))
        .filter(outbox::message_type.eq("receipt"))
        .order(outbox::id)
        .select(outbox::body)
        .load(&mut connection)
        .await?;
    let receipts = bodies
        .into_iter()
        .flatten()
        .filter_map(|body| serde_json::from_slice::<Receipt>(&body).ok())
        .collect();
    let status = MessageStatus {
        message_id: row.message_id,
        tracking_id: row.tracking_id,
        message_type: row.message_type,
        status: row.status,
        sender: row.sender,
        addressee: row.addressee,
        issuing_country: row.issuing_country,
        document_number: row.document_number,
        received_at: row.received_at,
        acknowledged_at: row.acknowledged_at,
        problems: serde_json::from_value(row.problems).unwrap_or_default(),
        receipts,
    };
    Ok(HttpResponse::Ok().json(status))
}
