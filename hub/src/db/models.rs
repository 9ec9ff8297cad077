//! Row types of the hub's tables.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{messages, outbox, parties, permits};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = parties)]
pub struct Party {
    pub code: String,
    pub name: String,
    pub broker_user: String,
    pub created_at: DateTime<Utc>,
    pub requires_applicant_signature: bool,
    pub utc_offset_minutes: Option<i32>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = messages)]
pub struct NewMessage {
    pub message_id: Uuid,
    pub tracking_id: Uuid,
    pub message_type: Option<String>,
    pub broker_user: Option<String>,
    pub sender: Option<String>,
    pub addressee: Option<String>,
    pub issuing_country: Option<String>,
    pub document_number: Option<String>,
    pub content_type: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub properties: serde_json::Value,
    pub body: Vec<u8>,
    pub body_sha256: Vec<u8>,
    pub status: String,
    pub problems: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub message_id: Uuid,
    pub tracking_id: Uuid,
    pub message_type: Option<String>,
    pub sender: Option<String>,
    pub addressee: Option<String>,
    pub issuing_country: Option<String>,
    pub document_number: Option<String>,
    pub status: String,
    pub problems: serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = permits)]
pub struct PermitRow {
    pub issuing_country: String,
    pub permit_number: String,
    pub version: i32,
    pub document_type: String,
    pub issue_date: Option<NaiveDate>,
    pub valid_until: NaiveDate,
    pub importer_country: String,
    pub exporter_country: String,
    pub sender: String,
    pub addressee: String,
    pub message_id: Uuid,
    pub stored_at: DateTime<Utc>,
    pub signatory_id: Option<Uuid>,
    pub signatory_name: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutboxRow {
    pub message_id: Uuid,
    pub source_message_id: Option<Uuid>,
    pub exchange: String,
    pub routing_key: String,
    pub message_type: String,
    pub correlation_id: Option<Uuid>,
    pub content_type: String,
    pub headers: serde_json::Value,
    pub body: Option<Vec<u8>>,
}
