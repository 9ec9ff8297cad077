//! Publishing what the outbox holds: right after a batch commits (the fast path), and by a
//! sweeper that republishes rows left unsent by a crash or a broker outage.
//!
//! A row is marked sent only after the broker confirms it, so a crash between the two
//! publishes it again. Every outgoing `message_id` is derived from its source, so a
//! receiver recognises such a repeat as a duplicate.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::envelope::{HEADER_SENDER, MessageType};
use epix_shared::{ErrorCode, PartyCode, Problem, Receipt, ReceiptStatus};
use futures_util::future::try_join_all;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation};
use uuid::Uuid;

use crate::amqp::json_to_headers;
use crate::db::DbPool;
use crate::db::models::NewOutboxRow;
use crate::db::schema::{messages, outbox};
use crate::metrics::PublishCounters;

/// Most rows one sweep publishes before it commits and looks again.
const SWEEP_BATCH: i64 = 500;
/// Longest wait for the broker's confirms of one sweep.
const SWEEP_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// One outbox row with its body, ready to publish.
#[derive(Debug, Clone, QueryableByName)]
pub struct OutboxMessage {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub message_id: Uuid,
    #[diesel(sql_type = Text)]
    pub exchange: String,
    #[diesel(sql_type = Text)]
    pub routing_key: String,
    #[diesel(sql_type = Text)]
    pub message_type: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub correlation_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Jsonb)]
    pub headers: serde_json::Value,
    #[diesel(sql_type = Bytea)]
    pub body: Vec<u8>,
}

impl OutboxMessage {
    pub fn from_row(id: i64, row: NewOutboxRow, body: Vec<u8>) -> Self {
        Self {
            id,
            message_id: row.message_id,
            exchange: row.exchange,
            routing_key: row.routing_key,
            message_type: row.message_type,
            correlation_id: row.correlation_id,
            content_type: row.content_type,
            headers: row.headers,
            body,
        }
    }

    fn properties(&self) -> BasicProperties {
        let mut properties = BasicProperties::default()
            .with_message_id(self.message_id.to_string().into())
            .with_type(self.message_type.clone().into())
            .with_content_type(self.content_type.clone().into())
            .with_delivery_mode(2)
            .with_timestamp(Utc::now().timestamp().max(0) as u64)
            .with_app_id("epix-hub".into())
            .with_headers(json_to_headers(&self.headers));
        if let Some(correlation_id) = self.correlation_id {
            properties = properties.with_correlation_id(correlation_id.to_string().into());
        }
        properties
    }
}

/// What the broker said about each published row.
#[derive(Debug, Default)]
pub struct PublishReport {
    pub sent: Vec<i64>,
    /// Rows the broker could not route (`mandatory` returned them).
    pub returned: Vec<OutboxMessage>,
    /// Rows the broker refused (negative confirm); they stay pending and are retried.
    pub nacked: Vec<i64>,
}

/// Publishes every message with `mandatory`, sending all frames before waiting for any
/// confirm, so one batch costs one confirm round trip. `counters` count the confirms,
/// returns and nacks.
pub async fn publish(
    channel: &Channel,
    messages: &[OutboxMessage],
    counters: &PublishCounters,
) -> Result<PublishReport, lapin::Error> {
    let options = BasicPublishOptions {
        mandatory: true,
        immediate: false,
    };
    let pending = try_join_all(messages.iter().map(|message| {
        channel.basic_publish(
            message.exchange.as_str().into(),
            message.routing_key.as_str().into(),
            options,
            &message.body,
            message.properties(),
        )
    }))
    .await?;
    let confirmations = try_join_all(pending).await?;

    let mut report = PublishReport::default();
    for (message, confirmation) in messages.iter().zip(confirmations) {
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => report.sent.push(message.id),
            Confirmation::Ack(Some(_)) => report.returned.push(message.clone()),
            Confirmation::Nack(_) => report.nacked.push(message.id),
        }
    }
    counters.record(&report);
    Ok(report)
}

/// Records the outcome of [`publish`]: sent rows are marked sent; a returned delivery is
/// marked failed and its sender gets a failed receipt (published by the next sweep).
pub async fn settle(
    connection: &mut AsyncPgConnection,
    report: &PublishReport,
) -> Result<(), diesel::result::Error> {
    mark_sent(connection, &report.sent).await?;
    settle_failures(connection, report).await
}

/// Marks outbox rows as sent.
pub async fn mark_sent(
    connection: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<(), diesel::result::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(ids)
        .execute(connection)
        .await?;
    Ok(())
}

/// Records the rows of a report that the broker refused or could not route.
pub async fn settle_failures(
    connection: &mut AsyncPgConnection,
    report: &PublishReport,
) -> Result<(), diesel::result::Error> {
    if !report.nacked.is_empty() {
        tracing::warn!(
            rows = report.nacked.len(),
            "broker refused outbox messages; they will be retried"
        );
    }
    for returned in &report.returned {
        tracing::error!(
            message.id = %returned.message_id,
            routing_key = %returned.routing_key,
            "broker could not route an outbox message; its queue is missing"
        );
        connection
            .transaction::<_, diesel::result::Error, _>(|connection| {
                async move { record_unroutable(connection, returned).await }.scope_boxed()
            })
            .await?;
    }
    Ok(())
}

async fn record_unroutable(
    connection: &mut AsyncPgConnection,
    returned: &OutboxMessage,
) -> Result<(), diesel::result::Error> {
    diesel::update(outbox::table.find(returned.id))
        .set((
            outbox::failed_at.eq(Utc::now()),
            outbox::error.eq(format!(
                "unroutable: no queue bound to {}",
                returned.routing_key
            )),
        ))
        .execute(connection)
        .await?;
    if returned.message_type == MessageType::Receipt.as_str() {
        return Ok(());
    }
    // A delivery failed: tell its sender.
    let Some(source) = returned.correlation_id else {
        return Ok(());
    };
    let Some(sender) = returned
        .headers
        .get(HEADER_SENDER)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<PartyCode>().ok())
    else {
        return Ok(());
    };
    let tracking_id: Uuid = messages::table
        .find(source)
        .select(messages::tracking_id)
        .first(connection)
        .await?;
    diesel::update(messages::table.find(source))
        .set(messages::status.eq(ReceiptStatus::Failed.as_str()))
        .execute(connection)
        .await?;
    let receipt = Receipt {
        status: ReceiptStatus::Failed,
        message_id: source,
        tracking_id,
        hub_time: Utc::now().trunc_subsecs(6),
        sender: Some(sender.to_string()),
        addressee: None,
        issuing_country: None,
        document_number: None,
        problems: vec![Problem::new(
            ErrorCode::DeliveryFailed,
            "the broker could not route the document to the addressee's inbox",
        )],
    };
    diesel::insert_into(outbox::table)
        .values(crate::router::store::receipt_row(sender, &receipt))
        .on_conflict_do_nothing()
        .execute(connection)
        .await?;
    Ok(())
}

/// Publishes, once, every pending row older than `grace`, and returns how many it sent.
/// Rows are locked with `SKIP LOCKED`, so several hub replicas can sweep at once.
pub async fn sweep_once(
    pool: &DbPool,
    channel: &Channel,
    grace: Duration,
    counters: &PublishCounters,
) -> Result<usize, SweepError> {
    let mut connection = pool
        .get()
        .await
        .map_err(|error| SweepError::Database(error.to_string()))?;
    let grace_seconds = grace.as_secs_f64();
    let sent = connection
        .transaction::<_, SweepError, _>(|connection| {
            async move {
                let rows: Vec<OutboxMessage> = diesel::sql_query(
                    "SELECT o.id, o.message_id, o.exchange, o.routing_key, o.message_type, o.correlation_id, \
                            o.content_type, o.headers, COALESCE(o.body, m.body) AS body \
                     FROM outbox o LEFT JOIN messages m ON m.message_id = o.source_message_id \
                     WHERE o.sent_at IS NULL AND o.failed_at IS NULL \
                       AND o.created_at < now() - make_interval(secs => $1) \
                     ORDER BY o.id LIMIT $2 \
                     FOR UPDATE OF o SKIP LOCKED",
                )
                .bind::<diesel::sql_types::Double, _>(grace_seconds)
                .bind::<BigInt, _>(SWEEP_BATCH)
                .load(connection)
                .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                // Bounded, so a stalled broker cannot hold the row locks for ever.
                let report = tokio::time::timeout(SWEEP_PUBLISH_TIMEOUT, publish(channel, &rows, counters))
                    .await
                    .map_err(|_| SweepError::TimedOut)??;
                settle(connection, &report).await?;
                Ok(report.sent.len())
            }
            .scope_boxed()
        })
        .await?;
    if sent > 0 {
        tracing::info!(rows = sent, "outbox sweep published messages left unsent");
    }
    Ok(sent)
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("database error: {0}")]
    Database(String),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm the sweep's messages in time")]
    TimedOut,
}

impl From<diesel::result::Error> for SweepError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.to_string())
    }
}
