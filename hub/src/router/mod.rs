//! The submission router: workers that consume submissions in batches, store them in one
//! transaction per batch, publish what the outbox gained, and only then acknowledge.

pub mod classify;
pub mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use diesel_async::AsyncPgConnection;
use epix_shared::envelope::{DEAD_LETTER_QUEUE, SUBMISSION_QUEUE};
use epix_shared::{ErrorCode, Problem};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::HubContext;
use crate::metrics::{ConsumedTally, Outcome};
use crate::outbox::{self, OutboxMessage};
use classify::{Inbound, classify};
use store::StoredBatch;

/// How long confirmed outbox rows wait for a next batch to mark them sent before a worker
/// marks them on its own.
const PUBLISHED_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Maximum pause between two attempts to reach the database or the broker again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs one submission worker until `shutdown`, reconnecting after broker failures.
pub async fn run_worker(context: Arc<HubContext>, index: usize, shutdown: CancellationToken) {
    run_consumer(context, index, shutdown, SUBMISSION_QUEUE, false).await;
}

/// Runs the consumer of dead-lettered submissions: each is recorded as rejected and its
/// sender gets a rejection receipt, so nothing that reached the hub is dropped in silence.
pub async fn run_dead_letter_worker(context: Arc<HubContext>, shutdown: CancellationToken) {
    run_consumer(context, 0, shutdown, DEAD_LETTER_QUEUE, true).await;
}

async fn run_consumer(
    context: Arc<HubContext>,
    index: usize,
    shutdown: CancellationToken,
    queue: &'static str,
    dead_letters: bool,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        // A task of its own, so that a panic ends only this session and is restarted.
        let session = tokio::spawn({
            let context = context.clone();
            let shutdown = shutdown.clone();
            async move { consume_session(&context, index, &shutdown, queue, dead_letters).await }
        });
        match session.await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => {
                tracing::warn!(worker = index, queue, %error, retry_in_ms = backoff.as_millis() as u64, "consumer stopped; reconnecting");
            }
            Err(error) => {
                tracing::error!(worker = index, queue, %error, "consumer task failed; restarting it");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Connect(#[from] crate::amqp::ConnectError),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker closed the consumer")]
    ConsumerClosed,
    #[error("the broker connection was lost")]
    ConnectionLost,
}

async fn consume_session(
    context: &Arc<HubContext>,
    index: usize,
    shutdown: &CancellationToken,
    queue: &'static str,
    dead_letters: bool,
) -> Result<(), SessionError> {
    let name = format!("epix-hub {queue} worker {index}");
    let connection = crate::amqp::connect(&context.config.amqp_url, &name).await?;
    let result = consume_on(context, &connection, index, shutdown, queue, dead_letters).await;
    // Closing returns any unacknowledged deliveries to the queue at once.
    let _ = connection.close(200, "worker stopping".into()).await;
    result
}

async fn consume_on(
    context: &Arc<HubContext>,
    connection: &Connection,
    index: usize,
    shutdown: &CancellationToken,
    queue: &'static str,
    dead_letters: bool,
) -> Result<(), SessionError> {
    let consume_channel = connection.create_channel().await?;
    consume_channel
        .basic_qos(context.config.prefetch, BasicQosOptions::default())
        .await?;
    let publish_channel = connection.create_channel().await?;
    publish_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut consumer = consume_channel
        .basic_consume(
            queue.into(),
            format!("epix-hub-{index}").into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(worker = index, queue, "consumer started");

    // Outbox rows the broker confirmed, to be marked sent with the next batch.
    let mut published = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                flush_published(context, &mut published).await;
                return Ok(());
            }
            () = tokio::time::sleep(PUBLISHED_FLUSH_DELAY), if !published.is_empty() => {
                flush_published(context, &mut published).await;
                continue;
            }
            next = consumer.next() => next,
        };
        let Some(first) = first else {
            return Err(SessionError::ConsumerClosed);
        };
        let mut batch = vec![first?];
        // Take what has already arrived, never waiting to fill the batch.
        while batch.len() < context.config.batch_size {
            match consumer.next().now_or_never() {
                Some(Some(delivery)) => batch.push(delivery?),
                _ => break,
            }
        }
        let outcome = process_batch(
            context,
            &publish_channel,
            batch,
            dead_letters,
            shutdown,
            &mut published,
        );
        if outcome.await? == BatchOutcome::Abandoned {
            // Return at once: acknowledging a later batch with `multiple` would also
            // acknowledge this one, which was never stored.
            return Ok(());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchOutcome {
    Acknowledged,
    /// Shutdown came first; the deliveries stay unacknowledged and return to the queue.
    Abandoned,
}

/// Marks confirmed outbox rows as sent when no batch came along to carry them. A failure
/// is only logged: the sweeper then publishes the rows again, as duplicates a receiver
/// recognises by their message ids.
async fn flush_published(context: &Arc<HubContext>, published: &mut Vec<i64>) {
    if published.is_empty() {
        return;
    }
    let marked = match context.pool.get().await {
        Ok(mut connection) => outbox::mark_sent(&mut connection, published)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = marked {
        tracing::warn!(%error, rows = published.len(), "cannot mark published outbox rows as sent; the sweeper will republish them");
    }
    published.clear();
}

/// Classifies, stores, publishes and acknowledges one batch.
async fn process_batch(
    context: &Arc<HubContext>,
    publish_channel: &Channel,
    batch: Vec<Delivery>,
    dead_letters: bool,
    shutdown: &CancellationToken,
    published: &mut Vec<i64>,
) -> Result<BatchOutcome, SessionError> {
    let started = Instant::now();
    // Copies within the batch, which never reach the store step.
    let mut repeated = ConsumedTally::default();
    // PostgreSQL keeps microseconds; receipts show the time exactly as stored.
    let received_at = Utc::now().trunc_subsecs(6);
    let mut inbound = Vec::with_capacity(batch.len());
    let mut message_ids = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for delivery in &batch {
        let classified = retry_database("read the party list", shutdown, || {
            classify(
                delivery,
                received_at,
                &context.parties,
                &context.pool,
                &context.register,
                context.config.require_signatures,
            )
        });
        let Some(mut message) = classified.await else {
            return Ok(BatchOutcome::Abandoned);
        };
        message_ids.push(message.message_id());
        // A message sent twice in quick succession can arrive twice in one batch; the
        // copy is acknowledged with the batch and changes nothing.
        if !seen.insert(message.message_id()) {
            repeated.add(message.record.message_type.as_deref(), Outcome::Duplicate);
            continue;
        }
        if dead_letters {
            message.dead_lettered = true;
            message.reject(Problem::new(
                ErrorCode::ProcessingFailed,
                "the hub failed to process this message within its delivery limit; send it again with a new message_id",
            ));
        }
        inbound.push(message);
    }

    let stored = store_with_isolation(context, inbound, shutdown, published).await;
    let Some((mut stored, poisoned)) = stored else {
        return Ok(BatchOutcome::Abandoned);
    };
    publish_outgoing(context, publish_channel, &stored.outgoing, published).await?;
    // A message the database refused is counted once the dead-letter consumer records it.
    stored.tally.merge(&repeated);

    if poisoned.is_empty() {
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        context
            .metrics
            .record_batch(batch.len(), started.elapsed(), &stored.tally);
        return Ok(BatchOutcome::Acknowledged);
    }
    for (delivery, message_id) in batch.iter().zip(&message_ids) {
        if poisoned.contains(message_id) {
            // Dead-lettered: the dead-letter consumer records it and sends the sender a rejection receipt.
            let options = BasicNackOptions {
                multiple: false,
                requeue: false,
            };
            delivery.acker.nack(options).await?;
        } else {
            delivery.acker.ack(BasicAckOptions::default()).await?;
        }
    }
    context
        .metrics
        .record_batch(batch.len(), started.elapsed(), &stored.tally);
    Ok(BatchOutcome::Acknowledged)
}

/// Stores the batch in one transaction. When the database refuses the batch's data, each
/// message is stored alone, so that one message it refuses cannot hold back the others;
/// the ids of those refused are returned.
async fn store_with_isolation(
    context: &Arc<HubContext>,
    inbound: Vec<Inbound>,
    shutdown: &CancellationToken,
    published: &mut Vec<i64>,
) -> Option<(StoredBatch, HashSet<Uuid>)> {
    let first_attempt = store_retrying(context, inbound.clone(), shutdown, published).await?;
    if first_attempt.is_ok() {
        published.clear();
    } else {
        flush_published(context, published).await;
    }
    match first_attempt {
        Ok(stored) => Some((stored, HashSet::new())),
        Err(error) if inbound.len() == 1 => {
            let message_id = inbound[0].message_id();
            tracing::error!(message.id = %message_id, %error, "database refused a message; dead-lettering it");
            Some((StoredBatch::default(), HashSet::from([message_id])))
        }
        Err(error) => {
            tracing::warn!(%error, batch = inbound.len(), "database refused a batch; storing its messages one by one");
            let mut stored = StoredBatch::default();
            let mut poisoned = HashSet::new();
            for message in inbound {
                let message_id = message.message_id();
                match store_retrying(context, vec![message], shutdown, &[]).await? {
                    Ok(single) => {
                        stored.outgoing.extend(single.outgoing);
                        stored.tally.merge(&single.tally);
                    }
                    Err(error) => {
                        tracing::error!(message.id = %message_id, %error, "database refused a message; dead-lettering it");
                        poisoned.insert(message_id);
                    }
                }
            }
            Some((stored, poisoned))
        }
    }
}

/// Runs the batch transaction, waiting out a database that cannot be reached. Returns
/// `None` on shutdown, and the query error when the database rejected the data itself.
async fn store_retrying(
    context: &Arc<HubContext>,
    inbound: Vec<Inbound>,
    shutdown: &CancellationToken,
    published: &[i64],
) -> Option<Result<StoredBatch, diesel::result::Error>> {
    // The dead-letter consumer stores only a rejection record; if even that is refused,
    // it keeps trying rather than let the broker discard the message.
    let waits_out_refusals = inbound.iter().all(|message| message.dead_lettered);
    let mut backoff = Duration::from_millis(100);
    loop {
        match context.pool.get().await {
            Ok(mut connection) => {
                let connection: &mut AsyncPgConnection = &mut connection;
                match store::store_batch(connection, inbound.clone(), published).await {
                    Ok(rows) => return Some(Ok(rows)),
                    Err(error) if is_data_refusal(&error) && !waits_out_refusals => {
                        return Some(Err(error));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "database failed to store a batch; retrying");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "database unavailable; retrying the batch"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether the database refused this particular data. Only such a refusal sends a message
/// towards the dead-letter queue; any other failure (a lost connection, a read-only node
/// after failover, a full disk, a timeout) is waited out with the batch unacknowledged,
/// because dropping good messages is worse than stopping.
fn is_data_refusal(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        error,
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation,
            _,
        ) | Error::SerializationError(_)
            | Error::DeserializationError(_)
    )
}

/// Retries a read that needs the database until it succeeds or the hub shuts down.
async fn retry_database<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => tracing::warn!(%error, "cannot {what}; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Publishes the batch's outbox rows. Confirmed rows join `published`, to be marked sent
/// with the next batch; rows the broker refused or could not route are recorded at once.
async fn publish_outgoing(
    context: &Arc<HubContext>,
    channel: &Channel,
    outgoing: &[OutboxMessage],
    published: &mut Vec<i64>,
) -> Result<(), SessionError> {
    if outgoing.is_empty() {
        return Ok(());
    }
    let report = outbox::publish(channel, outgoing, &context.metrics.outbox.router).await?;
    published.extend_from_slice(&report.sent);
    if report.returned.is_empty() && report.nacked.is_empty() {
        return Ok(());
    }
    let settled = match context.pool.get().await {
        Ok(mut connection) => outbox::settle_failures(&mut connection, &report)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "cannot record refused outbox messages; the sweeper will retry them");
    }
    Ok(())
}

/// Runs the outbox sweeper until `shutdown`.
pub async fn run_sweeper(context: Arc<HubContext>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match sweeper_session(&context, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                context.set_broker_ready(false);
                tracing::warn!(%error, "outbox sweeper stopped; reconnecting");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn sweeper_session(
    context: &Arc<HubContext>,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let connection =
        crate::amqp::connect(&context.config.amqp_url, "epix-hub outbox sweeper").await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    context.set_broker_ready(true);
    loop {
        let swept = outbox::sweep_once(
            &context.pool,
            &channel,
            context.config.outbox_grace,
            &context.metrics.outbox.sweeper,
        );
        match swept.await {
            Ok(_) => {}
            Err(outbox::SweepError::Broker(error)) => return Err(SessionError::Broker(error)),
            Err(outbox::SweepError::TimedOut) => return Err(SessionError::ConnectionLost),
            Err(error) => tracing::warn!(%error, "outbox sweep failed; retrying"),
        }
        match crate::register::broadcast::broadcast_pending(context, &channel).await {
            Ok(_) => {}
            Err(crate::register::broadcast::BroadcastError::Broker(error)) => {
                return Err(SessionError::Broker(error));
            }
            Err(error) => tracing::warn!(%error, "register broadcast failed; retrying"),
        }
        refresh_register(context).await;
        if !connection.status().connected() {
            return Err(SessionError::ConnectionLost);
        }
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = connection.close(200, "hub stopping".into()).await;
                return Ok(());
            }
            () = tokio::time::sleep(context.config.outbox_sweep_interval) => {}
            () = context.register.changed() => {}
        }
    }
}

/// Reloads the register when another replica changed it since the last reload.
async fn refresh_register(context: &HubContext) {
    let version = match context.pool.get().await {
        Ok(mut connection) => crate::register::store::register_version(&mut connection).await,
        Err(_) => return,
    };
    if let Ok(version) = version
        && version != context.register.loaded_version()
        && let Err(error) = context.register.reload(&context.pool).await
    {
        tracing::warn!(%error, "cannot reload the register");
    }
}
