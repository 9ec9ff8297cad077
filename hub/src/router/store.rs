//! The batch transaction: record every consumed message, store accepted permits, apply
//! acknowledgements, and write the outbox rows that deliver them and send their receipts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::envelope::{
    AcknowledgementOutcome, DELIVERY_EXCHANGE, HEADER_ADDRESSEE, HEADER_DOCUMENT_NUMBER,
    HEADER_ISSUING_COUNTRY, HEADER_SENDER, HEADER_SIGNATURE, HEADER_TRACKING_ID, MessageType,
    inbox_routing_key, receipt_routing_key,
};
use epix_shared::{ErrorCode, PartyCode, Problem, Receipt, ReceiptStatus};
use uuid::Uuid;

use super::classify::{Inbound, Verdict, outgoing_message_id};
use crate::audit::router as audit_router;
use crate::db::models::{NewOutboxRow, PermitRow};
use crate::db::schema::{messages, outbox, permits};
use crate::metrics::{ConsumedTally, Outcome};
use crate::outbox::OutboxMessage;

/// Result of one stored batch.
#[derive(Debug, Default)]
pub struct StoredBatch {
    /// The outbox rows the batch wrote, ready to publish.
    pub outgoing: Vec<OutboxMessage>,
    /// The batch's messages by type and outcome, for the metrics.
    pub tally: ConsumedTally,
}

/// Stores one batch in one transaction and returns the outbox rows it wrote, ready to
/// publish. Messages already recorded (redeliveries) are skipped and write nothing.
///
/// `published` lists outbox rows of earlier batches that the broker has confirmed; they are
/// marked sent in the same transaction, which saves a commit per batch.
pub async fn store_batch(
    connection: &mut AsyncPgConnection,
    mut inbound: Vec<Inbound>,
    published: &[i64],
) -> Result<StoredBatch, diesel::result::Error> {
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                crate::outbox::mark_sent(connection, published).await?;
                let (outgoing, events, fresh_ids) =
                    store_in_transaction(connection, &mut inbound).await?;
                crate::audit::append(connection, events).await?;
                Ok(StoredBatch {
                    outgoing,
                    tally: tally_outcomes(&inbound, &fresh_ids),
                })
            }
            .scope_boxed()
        })
        .await
}

/// Counts each message of a stored batch by its final verdict. A message that was
/// already recorded before this batch counts as a duplicate.
fn tally_outcomes(inbound: &[Inbound], fresh_ids: &HashSet<Uuid>) -> ConsumedTally {
    let mut tally = ConsumedTally::default();
    for message in inbound {
        let outcome = if !fresh_ids.contains(&message.message_id()) {
            Outcome::Duplicate
        } else {
            match message.verdict {
                Verdict::Document { .. } => Outcome::Accepted,
                Verdict::Acknowledgement { .. } => Outcome::Recorded,
                Verdict::Rejected(_) if message.dead_lettered => Outcome::DeadLettered,
                Verdict::Rejected(_) => Outcome::Rejected,
            }
        };
        tally.add(message.record.message_type.as_deref(), outcome);
    }
    tally
}

/// A message that an acknowledgement of this batch names as its correlation id.
#[derive(QueryableByName)]
pub(crate) struct Original {
    #[diesel(sql_type = SqlUuid)]
    pub(crate) message_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    tracking_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub(crate) sender: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub(crate) addressee: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub(crate) issuing_country: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub(crate) document_number: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    pub(crate) version: Option<i32>,
    #[diesel(sql_type = Text)]
    status: String,
}

/// The outbox rows of a stored batch, its audit events and the ids of the messages it
/// recorded for the first time.
type StoredRows = (Vec<OutboxMessage>, Vec<crate::audit::Event>, HashSet<Uuid>);

/// Stores the batch and returns its outbox rows, the audit events it caused and the ids
/// of the messages recorded for the first time.
async fn store_in_transaction(
    connection: &mut AsyncPgConnection,
    inbound: &mut [Inbound],
) -> Result<StoredRows, diesel::result::Error> {
    let now = Utc::now().trunc_subsecs(6);
    let originals = check_acknowledgements(connection, inbound).await?;
    reject_duplicates_within_batch(inbound);

    let records: Vec<_> = inbound
        .iter()
        .map(|message| message.record.clone())
        .collect();
    let new_ids: HashSet<Uuid> = diesel::insert_into(messages::table)
        .values(&records)
        .on_conflict_do_nothing()
        .returning(messages::message_id)
        .get_results(connection)
        .await?
        .into_iter()
        .collect();
    let fresh: Vec<&mut Inbound> = inbound
        .iter_mut()
        .filter(|message| new_ids.contains(&message.message_id()))
        .collect();

    let mut fresh = fresh;
    let versions = store_permits(connection, &mut fresh, now).await?;
    let acknowledged_by = apply_acknowledgements(connection, &fresh, &originals, now).await?;
    let events = audit_router::batch_events(&fresh, &originals, &acknowledged_by, &versions, now);

    let mut rows = Vec::new();
    let mut bodies = HashMap::new();
    for message in &fresh {
        outbox_rows_for(message, &originals, &acknowledged_by, now, &mut rows);
        if matches!(message.verdict, Verdict::Document { .. }) {
            bodies.insert(message.message_id(), message.record.body.clone());
        }
    }
    if rows.is_empty() {
        return Ok((Vec::new(), events, new_ids));
    }
    let ids: Vec<(i64, Uuid)> = diesel::insert_into(outbox::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .returning((outbox::id, outbox::message_id))
        .get_results(connection)
        .await?;
    let id_of: HashMap<Uuid, i64> = ids
        .into_iter()
        .map(|(id, message_id)| (message_id, id))
        .collect();
    let outgoing = rows
        .into_iter()
        .filter_map(|row| {
            let id = *id_of.get(&row.message_id)?;
            let body = match (&row.body, row.source_message_id) {
                (Some(body), _) => body.clone(),
                (None, Some(source)) => bodies.get(&source).cloned().unwrap_or_default(),
                (None, None) => Vec::new(),
            };
            Some(OutboxMessage::from_row(id, row, body))
        })
        .collect();
    Ok((outgoing, events, new_ids))
}

/// Looks up the messages that this batch's acknowledgements answer, and rejects the
/// acknowledgements that name no message, a message not addressed to their sender, or one
/// already acknowledged.
async fn check_acknowledgements(
    connection: &mut AsyncPgConnection,
    inbound: &mut [Inbound],
) -> Result<HashMap<Uuid, Original>, diesel::result::Error> {
    let wanted: Vec<Uuid> = inbound
        .iter()
        .filter_map(|message| match &message.verdict {
            Verdict::Acknowledgement { correlation_id, .. } => Some(*correlation_id),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<Original> = diesel::sql_query(
        "SELECT m.message_id, m.tracking_id, m.sender, m.addressee, m.issuing_country, \
                m.document_number, p.version, m.status \
         FROM messages m LEFT JOIN permits p ON p.message_id = m.message_id \
         WHERE m.message_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(&wanted)
    .load(connection)
    .await?;
    let originals: HashMap<Uuid, Original> =
        found.into_iter().map(|row| (row.message_id, row)).collect();

    for message in inbound.iter_mut() {
        let Verdict::Acknowledgement {
            sender,
            correlation_id,
            ..
        } = &message.verdict
        else {
            continue;
        };
        let (sender, correlation_id) = (*sender, *correlation_id);
        let problem = match originals.get(&correlation_id) {
            None => Some(
                Problem::new(
                    ErrorCode::CorrelatedMessageUnknown,
                    "correlation_id names no message delivered by this hub",
                )
                .at("amqp:correlation_id")
                .with_value(correlation_id.to_string()),
            ),
            Some(original) if original.addressee.as_deref() != Some(sender.as_str()) => Some(
                Problem::new(
                    ErrorCode::NotAddressee,
                    "only the addressee of a message may acknowledge it",
                )
                .at("amqp:correlation_id")
                .with_value(correlation_id.to_string()),
            ),
            // A second acknowledgement under a new message_id is recorded and changes nothing.
            Some(_) => None,
        };
        if let Some(problem) = problem {
            message.reject(problem);
        }
    }
    Ok(originals)
}

/// Two messages of one batch that issue the same permit: the first wins.
fn reject_duplicates_within_batch(inbound: &mut [Inbound]) {
    let mut seen = HashSet::new();
    for message in inbound.iter_mut() {
        if let Verdict::Document {
            message_type: MessageType::PermitIssued,
            summary,
            ..
        } = &message.verdict
        {
            let key = (summary.issuing_country, summary.permit_number.clone());
            if !seen.insert(key) {
                let problem = already_exists(summary.issuing_country, &summary.permit_number);
                message.reject(problem);
            }
        }
    }
}

/// Rejects a message whose row this transaction already inserted as accepted, and updates
/// that row to match.
async fn reject_recorded(
    connection: &mut AsyncPgConnection,
    message: &mut Inbound,
    problem: Problem,
) -> Result<(), diesel::result::Error> {
    message.reject(problem);
    diesel::update(messages::table.find(message.message_id()))
        .set((
            messages::status.eq("rejected"),
            messages::problems.eq(&message.record.problems),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

fn already_exists(country: PartyCode, number: &str) -> Problem {
    Problem::new(
        ErrorCode::PermitAlreadyExists,
        format!("permit {number} of {country} is already stored: an issued permit number may be used once"),
    )
    .at("/permit_number")
    .with_value(number)
}

#[derive(QueryableByName)]
struct LatestVersion {
    #[diesel(sql_type = Text)]
    issuing_country: String,
    #[diesel(sql_type = Text)]
    permit_number: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
}

/// The version each document gets: 1 for an issued permit, the stored latest plus one for
/// an amendment. An amendment of a permit the hub does not hold is rejected here.
async fn next_versions(
    connection: &mut AsyncPgConnection,
    fresh: &mut [&mut Inbound],
) -> Result<HashMap<Uuid, i32>, diesel::result::Error> {
    let mut versions = HashMap::new();
    let mut countries = Vec::new();
    let mut numbers = Vec::new();
    for message in fresh.iter() {
        if let Verdict::Document {
            message_type,
            summary,
            ..
        } = &message.verdict
        {
            if *message_type == MessageType::PermitAmended {
                countries.push(summary.issuing_country.to_string());
                numbers.push(summary.permit_number.clone());
            } else {
                versions.insert(message.message_id(), 1);
            }
        }
    }
    if countries.is_empty() {
        return Ok(versions);
    }
    let latest: Vec<LatestVersion> = diesel::sql_query(
        "SELECT p.issuing_country, p.permit_number, max(p.version) AS version FROM permits p \
         JOIN unnest($1::text[], $2::text[]) AS k(country, number) \
           ON p.issuing_country = k.country AND p.permit_number = k.number \
         GROUP BY p.issuing_country, p.permit_number",
    )
    .bind::<Array<Text>, _>(&countries)
    .bind::<Array<Text>, _>(&numbers)
    .load(connection)
    .await?;
    let latest: HashMap<(String, String), i32> = latest
        .into_iter()
        .map(|row| ((row.issuing_country, row.permit_number), row.version))
        .collect();
    for message in fresh.iter_mut() {
        let Verdict::Document {
            message_type: MessageType::PermitAmended,
            summary,
            ..
        } = &message.verdict
        else {
            continue;
        };
        let key = (
            summary.issuing_country.to_string(),
            summary.permit_number.clone(),
        );
        match latest.get(&key) {
            Some(version) => {
                versions.insert(message.message_id(), version + 1);
            }
            None => {
                let problem = Problem::new(
                    ErrorCode::PermitUnknown,
                    format!(
                        "no permit {} of {} is stored to amend: send it as permit.issued first",
                        key.1, key.0
                    ),
                )
                .at("/permit_number")
                .with_value(&key.1);
                reject_recorded(connection, message, problem).await?;
            }
        }
    }
    Ok(versions)
}

/// Stores the batch's permits and returns the version each stored one got, by message id.
async fn store_permits(
    connection: &mut AsyncPgConnection,
    fresh: &mut [&mut Inbound],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i32>, diesel::result::Error> {
    let versions = next_versions(connection, fresh).await?;
    let rows: Vec<PermitRow> = fresh
        .iter()
        .filter_map(|message| match &message.verdict {
            Verdict::Document {
                summary,
                sender,
                addressee,
                signed,
                ..
            } => Some(PermitRow {
                issuing_country: summary.issuing_country.to_string(),
                permit_number: summary.permit_number.clone(),
                version: *versions.get(&message.message_id())?,
                document_type: summary.document_type.as_str().to_owned(),
                issue_date: summary.issue_date,
                valid_until: summary.valid_until,
                importer_country: summary.importer_country.to_string(),
                exporter_country: summary.exporter_country.to_string(),
                sender: sender.to_string(),
                addressee: addressee.to_string(),
                message_id: message.message_id(),
                stored_at: now,
                signatory_id: signed.as_ref().map(|s| s.signatory_id),
                signatory_name: signed.as_ref().map(|s| s.full_name.clone()),
                signed_at: signed.as_ref().map(|s| s.signed_at),
            }),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let stored: HashSet<Uuid> = diesel::insert_into(permits::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .returning(permits::message_id)
        .get_results(connection)
        .await?
        .into_iter()
        .collect();
    for message in fresh.iter_mut() {
        let Verdict::Document { summary, .. } = &message.verdict else {
            continue;
        };
        if stored.contains(&message.message_id()) {
            continue;
        }
        let problem = already_exists(summary.issuing_country, &summary.permit_number);
        reject_recorded(connection, message, problem).await?;
    }
    Ok(rows
        .into_iter()
        .filter(|row| stored.contains(&row.message_id))
        .map(|row| (row.message_id, row.version))
        .collect())
}

async fn apply_acknowledgements(
    connection: &mut AsyncPgConnection,
    fresh: &[&mut Inbound],
    originals: &HashMap<Uuid, Original>,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Uuid>, diesel::result::Error> {
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut acknowledged_by = HashMap::new();
    for message in fresh {
        if let Verdict::Acknowledgement {
            correlation_id,
            acknowledgement,
            ..
        } = &message.verdict
            && originals
                .get(correlation_id)
                .is_some_and(|o| o.status == "accepted")
            && !acknowledged_by.contains_key(correlation_id)
        {
            acknowledged_by.insert(*correlation_id, message.message_id());
            ids.push(*correlation_id);
            statuses.push(
                receipt_status_of(acknowledgement.outcome)
                    .as_str()
                    .to_owned(),
            );
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // Only the rows this statement changed get a receipt: another worker may have applied
    // a different acknowledgement of the same message a moment earlier.
    let updated: Vec<Updated> = diesel::sql_query(
        "UPDATE messages SET status = v.status, acknowledged_at = $3 \
         FROM unnest($1::uuid[], $2::text[]) AS v(id, status) \
         WHERE messages.message_id = v.id AND messages.status = 'accepted' \
         RETURNING messages.message_id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .load(connection)
    .await?;
    let updated: HashSet<Uuid> = updated.into_iter().map(|row| row.message_id).collect();
    acknowledged_by.retain(|original, _| updated.contains(original));
    Ok(acknowledged_by)
}

#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = SqlUuid)]
    message_id: Uuid,
}

fn receipt_status_of(outcome: AcknowledgementOutcome) -> ReceiptStatus {
    match outcome {
        AcknowledgementOutcome::Received => ReceiptStatus::Delivered,
        AcknowledgementOutcome::ReceivedWithWarnings => ReceiptStatus::DeliveredWithWarnings,
        AcknowledgementOutcome::Failed => ReceiptStatus::Failed,
    }
}

/// Appends the deliveries and receipts that one fresh message causes.
fn outbox_rows_for(
    message: &Inbound,
    originals: &HashMap<Uuid, Original>,
    acknowledged_by: &HashMap<Uuid, Uuid>,
    now: DateTime<Utc>,
    rows: &mut Vec<NewOutboxRow>,
) {
    let record = &message.record;
    match &message.verdict {
        Verdict::Document {
            message_type,
            sender,
            addressee,
            summary,
            warnings,
            signature,
            ..
        } => {
            let mut headers = serde_json::json!({
                HEADER_SENDER: sender.as_str(),
                HEADER_ADDRESSEE: addressee.as_str(),
                HEADER_ISSUING_COUNTRY: summary.issuing_country.as_str(),
                HEADER_DOCUMENT_NUMBER: summary.permit_number,
                HEADER_TRACKING_ID: record.tracking_id.to_string(),
            });
            if let Some(signature) = signature {
                headers[HEADER_SIGNATURE] = signature.clone().into();
            }
            rows.push(NewOutboxRow {
                message_id: outgoing_message_id(record.message_id, "delivery"),
                source_message_id: Some(record.message_id),
                exchange: DELIVERY_EXCHANGE.to_owned(),
                routing_key: inbox_routing_key(*addressee),
                message_type: message_type.as_str().to_owned(),
                // The delivery keeps the sender's message_id as its correlation id, so that
                // the addressee can name the submission in its acknowledgement.
                correlation_id: Some(record.message_id),
                content_type: record.content_type.clone().unwrap_or_default(),
                headers,
                body: None,
            });
            let receipt = Receipt {
                status: ReceiptStatus::Accepted,
                message_id: record.message_id,
                tracking_id: record.tracking_id,
                hub_time: record.received_at,
                sender: Some(sender.to_string()),
                addressee: Some(addressee.to_string()),
                issuing_country: Some(summary.issuing_country.to_string()),
                document_number: Some(summary.permit_number.clone()),
                problems: warnings.clone(),
            };
            rows.push(receipt_row(*sender, &receipt));
        }
        Verdict::Rejected(problems) => {
            let Some(reply_to) = message.reply_to else {
                tracing::warn!(
                    message.id = %record.message_id,
                    broker.user = record.broker_user.as_deref().unwrap_or("-"),
                    "rejected message has no sender to answer; it is recorded only"
                );
                return;
            };
            let receipt = Receipt {
                status: ReceiptStatus::Rejected,
                message_id: record.message_id,
                tracking_id: record.tracking_id,
                hub_time: record.received_at,
                sender: record.sender.clone(),
                addressee: record.addressee.clone(),
                issuing_country: record.issuing_country.clone(),
                document_number: record.document_number.clone(),
                problems: problems.clone(),
            };
            tracing::info!(
                message.id = %record.message_id,
                party.code = %reply_to,
                problems = problems.len(),
                first_problem = %problems.iter().next().map(ToString::to_string).unwrap_or_default(),
                "submission rejected"
            );
            rows.push(receipt_row(reply_to, &receipt));
        }
        Verdict::Acknowledgement {
            correlation_id,
            acknowledgement,
            ..
        } => {
            let Some(original) = originals.get(correlation_id) else {
                return;
            };
            let Some(original_sender) = original
                .sender
                .as_deref()
                .and_then(|s| s.parse::<PartyCode>().ok())
            else {
                return;
            };
            if acknowledged_by.get(correlation_id) != Some(&record.message_id) {
                return; // not the acknowledgement that settled the message
            }
            let receipt = Receipt {
                status: receipt_status_of(acknowledgement.outcome),
                message_id: original.message_id,
                tracking_id: original.tracking_id,
                hub_time: now,
                sender: original.sender.clone(),
                addressee: original.addressee.clone(),
                issuing_country: original.issuing_country.clone(),
                document_number: original.document_number.clone(),
                problems: acknowledgement.problems.clone(),
            };
            rows.push(receipt_row(original_sender, &receipt));
        }
    }
}

/// Builds the outbox row that sends `receipt` to `party`'s receipt queue.
pub fn receipt_row(party: PartyCode, receipt: &Receipt) -> NewOutboxRow {
    NewOutboxRow {
        message_id: outgoing_message_id(receipt.message_id, receipt.status.as_str()),
        source_message_id: None,
        exchange: DELIVERY_EXCHANGE.to_owned(),
        routing_key: receipt_routing_key(party),
        message_type: MessageType::Receipt.as_str().to_owned(),
        correlation_id: Some(receipt.message_id),
        content_type: "application/json".to_owned(),
        headers: serde_json::json!({
            HEADER_TRACKING_ID: receipt.tracking_id.to_string(),
            "epix-receipt-status": receipt.status.as_str(),
        }),
        body: Some(serde_json::to_vec(receipt).unwrap_or_default()),
    }
}
