//! The AMQP envelope: topology names, header names and message types.
//!
//! A submission travels as one AMQP message. Its body is the document exactly as the sender
//! produced it; everything the hub routes on travels in AMQP properties and headers, so the
//! hub never re-serialises a body.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::PartyCode;

/// Durable direct exchange to which every spoke publishes its submissions.
pub const SUBMISSION_EXCHANGE: &str = "epix.submissions";
/// Quorum queue that the hub consumes, bound to [`SUBMISSION_EXCHANGE`].
pub const SUBMISSION_QUEUE: &str = "epix.submissions";
/// Routing key of every submission.
pub const SUBMISSION_ROUTING_KEY: &str = "submit";
/// Durable direct exchange through which the hub delivers documents and receipts.
pub const DELIVERY_EXCHANGE: &str = "epix.deliveries";
/// Exchange that receives submissions the hub failed to process within the delivery limit.
pub const DEAD_LETTER_EXCHANGE: &str = "epix.dead-letter";
/// Queue bound to [`DEAD_LETTER_EXCHANGE`]; the hub records what lands there and sends its sender a rejection receipt.
pub const DEAD_LETTER_QUEUE: &str = "epix.dead-letter";

/// Header naming the sending Party (checked against the AMQP `user_id`).
pub const HEADER_SENDER: &str = "epix-sender";
/// Header naming the Party the document is addressed to.
pub const HEADER_ADDRESSEE: &str = "epix-addressee";
/// Header naming the Party that issued the document.
pub const HEADER_ISSUING_COUNTRY: &str = "epix-issuing-country";
/// Header carrying the permit or certificate number.
pub const HEADER_DOCUMENT_NUMBER: &str = "epix-document-number";
/// Header the hub adds to deliveries and receipts: its tracking id of the submission.
pub const HEADER_TRACKING_ID: &str = "epix-tracking-id";
/// Header carrying the detached JWS over the body bytes (see [`crate::signature`]).
pub const HEADER_SIGNATURE: &str = "epix-signature";

/// Largest body the hub accepts, in bytes. A permit is a few kilobytes; the EPIX sample
/// message with two line items is 44 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Queue holding the documents delivered to `party`.
pub fn inbox_queue(party: PartyCode) -> String {
    format!("epix.inbox.{party}")
}

/// Routing key on [`DELIVERY_EXCHANGE`] that reaches [`inbox_queue`].
pub fn inbox_routing_key(party: PartyCode) -> String {
    format!("inbox.{party}")
}

/// Queue holding the receipts for the messages that `party` sent.
pub fn receipt_queue(party: PartyCode) -> String {
    format!("epix.receipts.{party}")
}

/// Routing key on [`DELIVERY_EXCHANGE`] that reaches [`receipt_queue`].
pub fn receipt_routing_key(party: PartyCode) -> String {
    format!("receipts.{party}")
}

/// The broker user name of a Party's spoke: `prefix` followed by the code, such as `party-CH`.
pub fn broker_user(prefix: &str, party: PartyCode) -> String {
    format!("{prefix}{party}")
}

/// The AMQP `type` property of every message that crosses the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    #[serde(rename = "permit.issued")]
    PermitIssued,
    #[serde(rename = "permit.amended")]
    PermitAmended,
    #[serde(rename = "permit.cancelled")]
    PermitCancelled,
    #[serde(rename = "permit.replaced")]
    PermitReplaced,
    #[serde(rename = "permit.endorsed")]
    PermitEndorsed,
    #[serde(rename = "permit.import-confirmed")]
    PermitImportConfirmed,
    /// Sent by the addressee's spoke once it has stored a delivered document.
    #[serde(rename = "receipt.acknowledged")]
    ReceiptAcknowledged,
    /// Sent by the hub to the sender: every receipt type travels under this one.
    #[serde(rename = "receipt")]
    Receipt,
    /// Broadcast by the hub to every inbox: one change to the register of signatories.
    #[serde(rename = "register.signatory-changed")]
    RegisterSignatoryChanged,
    /// Broadcast by the hub to every inbox: a user whose API access was revoked.
    #[serde(rename = "register.user-revoked")]
    RegisterUserRevoked,
}

impl MessageType {
    pub const ALL: [MessageType; 10] = [
        Self::PermitIssued,
        Self::PermitAmended,
        Self::PermitCancelled,
        Self::PermitReplaced,
        Self::PermitEndorsed,
        Self::PermitImportConfirmed,
        Self::ReceiptAcknowledged,
        Self::Receipt,
        Self::RegisterSignatoryChanged,
        Self::RegisterUserRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PermitIssued => "permit.issued",
            Self::PermitAmended => "permit.amended",
            Self::PermitCancelled => "permit.cancelled",
            Self::PermitReplaced => "permit.replaced",
            Self::PermitEndorsed => "permit.endorsed",
            Self::PermitImportConfirmed => "permit.import-confirmed",
            Self::ReceiptAcknowledged => "receipt.acknowledged",
            Self::Receipt => "receipt",
            Self::RegisterSignatoryChanged => "register.signatory-changed",
            Self::RegisterUserRevoked => "register.user-revoked",
        }
    }

    /// Whether the body of this type is a permit document that the hub stores and delivers.
    pub fn is_document(self) -> bool {
        self.as_str().starts_with("permit.")
    }

    /// Returns whether only the hub sends this type, as a broadcast to every inbox.
    pub fn is_broadcast(self) -> bool {
        self.as_str().starts_with("register.")
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned for a `type` property that names no [`MessageType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown message type {0:?}: expected one of permit.issued, permit.amended, permit.cancelled, permit.replaced, permit.endorsed, permit.import-confirmed, receipt.acknowledged, receipt, register.signatory-changed, register.user-revoked"
)]
pub struct UnknownMessageType(pub String);

impl FromStr for MessageType {
    type Err = UnknownMessageType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| UnknownMessageType(text.to_owned()))
    }
}

/// Body of a `receipt.acknowledged` message: the addressee's verdict on a delivered document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub outcome: AcknowledgementOutcome,
    /// What the addressee found wrong or worth noting; empty for a clean delivery.
    #[serde(default)]
    pub problems: Vec<crate::Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcknowledgementOutcome {
    /// Stored by the addressee's system.
    Received,
    /// Stored, with warnings listed in `problems`.
    ReceivedWithWarnings,
    /// Not usable by the addressee's system; the reasons are in `problems`.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trips_through_text() {
        for message_type in MessageType::ALL {
            let parsed: MessageType = message_type.as_str().parse().expect("own names parse");
            assert_eq!(parsed, message_type);
            let json = serde_json::to_string(&message_type).expect("serialises");
            assert_eq!(json, format!("\"{}\"", message_type.as_str()));
        }
    }

    #[test]
    fn message_type_rejects_unknown() {
        assert!("permit.stolen".parse::<MessageType>().is_err());
    }

    #[test]
    fn queue_names_carry_party() {
        let ch: PartyCode = "CH".parse().expect("valid");
        assert_eq!(inbox_queue(ch), "epix.inbox.CH");
        assert_eq!(receipt_queue(ch), "epix.receipts.CH");
        assert_eq!(broker_user("party-", ch), "party-CH");
    }
}
