//! The audit events of a stored batch of AMQP messages.
//!
//! Every fresh message gets `message.submitted` with the spoke as actor, its AMQP
//! properties and headers as received, and its body's SHA-256 digest. The hub's decision
//! follows (`message.accepted` or `message.rejected`). An accepted permit adds
//! `permit.issued` or `permit.amended` with the signatory's name. A recorded
//! acknowledgement adds `message.acknowledged` and, when it settles the message,
//! `message.delivered` or `message.delivery_failed`, both naming the message it answers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use epix_shared::ReceiptStatus;
use epix_shared::envelope::{AcknowledgementOutcome, MessageType};
use uuid::Uuid;

use super::{ActorKind, Event};
use crate::router::classify::{Inbound, Verdict};
use crate::router::store::Original;

/// Builds the events of the batch's fresh messages, in the batch's order.
pub(crate) fn batch_events(
    fresh: &[&mut Inbound],
    originals: &HashMap<Uuid, Original>,
    acknowledged_by: &HashMap<Uuid, Uuid>,
    versions: &HashMap<Uuid, i32>,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let mut events = Vec::with_capacity(fresh.len() * 3);
    for message in fresh {
        let submitted = submitted_event(message, versions);
        let decided = |action: &str| {
            let mut event = Event::new(action, ActorKind::Hub, now);
            event.message_id = submitted.message_id;
            event.permit_country = submitted.permit_country.clone();
            event.permit_number = submitted.permit_number.clone();
            event.permit_version = submitted.permit_version;
            event.addressee = submitted.addressee.clone();
            event
        };
        let mut follow_up = Vec::new();
        match &message.verdict {
            Verdict::Document {
                message_type,
                summary,
                signed,
                warnings,
                ..
            } => {
                follow_up.push(decided("message.accepted").details(serde_json::json!({
                    "tracking_id": message.record.tracking_id,
                    "warnings": warnings,
                })));
                let action = if *message_type == MessageType::PermitAmended {
                    "permit.amended"
                } else {
                    "permit.issued"
                };
                let mut event = spoke_event(action, message);
                event.permit_version = submitted.permit_version;
                event.addressee = submitted.addressee.clone();
                event.permit_country = Some(summary.issuing_country.to_string());
                event.permit_number = Some(summary.permit_number.clone());
                event.actor_name = signed.as_ref().map(|s| s.full_name.clone());
                follow_up.push(event.details(serde_json::json!({
                    "document_type": summary.document_type.as_str(),
                    "valid_until": summary.valid_until,
                    "signatory_id": signed.as_ref().map(|s| s.signatory_id),
                    "signed_at": signed.as_ref().map(|s| s.signed_at),
                })));
            }
            Verdict::Rejected(problems) => {
                follow_up.push(decided("message.rejected").details(serde_json::json!({
                    "tracking_id": message.record.tracking_id,
                    "dead_lettered": message.dead_lettered,
                    "problems": problems,
                })));
            }
            Verdict::Acknowledgement {
                correlation_id,
                acknowledgement,
                ..
            } => {
                let outcome = outcome_text(acknowledgement.outcome);
                let mut event = spoke_event("message.acknowledged", message);
                event.message_id = Some(*correlation_id);
                follow_up.push(event.details(serde_json::json!({
                    "acknowledgement_message_id": message.message_id(),
                    "outcome": outcome,
                    "problems": acknowledgement.problems,
                })));
                if acknowledged_by.get(correlation_id) == Some(&message.message_id()) {
                    let action = match acknowledgement.outcome {
                        AcknowledgementOutcome::Failed => "message.delivery_failed",
                        _ => "message.delivered",
                    };
                    let mut event = decided(action);
                    event.message_id = Some(*correlation_id);
                    follow_up.push(event.details(serde_json::json!({
                        "status": outcome,
                        "acknowledgement_message_id": message.message_id(),
                    })));
                }
                if let Some(original) = originals.get(correlation_id) {
                    for event in &mut follow_up {
                        event.permit_country = original.issuing_country.clone();
                        event.permit_number = original.document_number.clone();
                        event.permit_version = original.version;
                        event.addressee = original.addressee.clone();
                    }
                }
            }
        }
        let mut submitted = submitted;
        if let (Verdict::Acknowledgement { correlation_id, .. }, Some(first)) =
            (&message.verdict, follow_up.first())
            && originals.contains_key(correlation_id)
        {
            submitted.permit_country = first.permit_country.clone();
            submitted.permit_number = first.permit_number.clone();
            submitted.permit_version = first.permit_version;
            submitted.addressee = first.addressee.clone();
        }
        events.push(submitted);
        events.extend(follow_up);
    }
    events
}

/// Creates an event whose actor is the spoke that sent `message`, as the broker
/// authenticated it.
fn spoke_event(action: &str, message: &Inbound) -> Event {
    let record = &message.record;
    let mut event = Event::new(action, ActorKind::Spoke, record.received_at);
    event.actor_id = record.broker_user.clone();
    event.actor_party = message.reply_to.map(|party| party.to_string());
    event.message_id = Some(record.message_id);
    event
}

/// `message.submitted`: the message as received, with its properties, headers and digest.
fn submitted_event(message: &Inbound, versions: &HashMap<Uuid, i32>) -> Event {
    let record = &message.record;
    let mut event = spoke_event("message.submitted", message);
    event.permit_country = record.issuing_country.clone();
    event.permit_number = record.document_number.clone();
    event.permit_version = versions.get(&record.message_id).copied();
    event.addressee = record.addressee.clone();
    event.amqp = Some(record.properties.clone());
    event.body_sha256 = Some(record.body_sha256.clone());
    event.details(serde_json::json!({
        "message_type": record.message_type,
        "correlation_id": record.correlation_id,
        "content_type": record.content_type,
        "body_bytes": record.body.len(),
    }))
}

fn outcome_text(outcome: AcknowledgementOutcome) -> &'static str {
    match outcome {
        AcknowledgementOutcome::Received => ReceiptStatus::Delivered.as_str(),
        AcknowledgementOutcome::ReceivedWithWarnings => {
            ReceiptStatus::DeliveredWithWarnings.as_str()
        }
        AcknowledgementOutcome::Failed => ReceiptStatus::Failed.as_str(),
    }
}
