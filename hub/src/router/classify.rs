//! Reading one consumed AMQP message: who sent it, what it is, and whether it passes.
//!
//! Nothing here writes; the decision is a [`Verdict`], which the store step turns into rows.

use chrono::{DateTime, Utc};
use epix_shared::envelope::{
    Acknowledgement, HEADER_ADDRESSEE, HEADER_DOCUMENT_NUMBER, HEADER_ISSUING_COUNTRY,
    HEADER_SENDER, HEADER_SIGNATURE, MAX_BODY_BYTES, MessageType,
};
use epix_shared::permit::{PermitSummary, check_document_with};
use epix_shared::{ErrorCode, PartyCode, Problem};
use lapin::message::Delivery;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::amqp::{clean_text, header_text, headers_to_json};
use crate::db::DbPool;
use crate::db::models::NewMessage;
use crate::parties::{PartyDirectory, PartyError};
use crate::register::{Register, Signed};

/// Namespace of the UUIDs the hub derives: ids for messages that came without a usable
/// `message_id`, and the ids of the deliveries and receipts it publishes.
pub const HUB_NAMESPACE: Uuid = Uuid::from_u128(0x6570_6978_2d68_7562_8000_0000_0000_0001);

/// What the hub decided about one consumed message.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A permit document to store and deliver to `addressee`.
    Document {
        message_type: MessageType,
        sender: PartyCode,
        addressee: PartyCode,
        summary: PermitSummary,
        warnings: Vec<Problem>,
        /// The verified signatory; `None` for an unsigned permit where signatures are not
        /// yet required.
        signed: Option<Signed>,
        /// The signer's detached JWS as received, passed on with the delivery so that the
        /// addressee can check it too.
        signature: Option<String>,
    },
    /// The addressee's acknowledgement of the delivered message `correlation_id`.
    Acknowledgement {
        sender: PartyCode,
        correlation_id: Uuid,
        acknowledgement: Acknowledgement,
    },
    /// Refused; every reason is listed.
    Rejected(Vec<Problem>),
}

/// One consumed message, read and judged, with the row that records it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub record: NewMessage,
    pub verdict: Verdict,
    /// The Party that receives the receipts: the authenticated sender only. A message the
    /// broker did not authenticate is recorded but answered to nobody, because its sender
    /// header could name any Party and would let one Party plant receipts in another's queue.
    pub reply_to: Option<PartyCode>,
    /// Whether the message came from the dead-letter queue.
    pub dead_lettered: bool,
}

impl Inbound {
    pub fn message_id(&self) -> Uuid {
        self.record.message_id
    }

    /// Turns this message into a rejection, keeping its earlier problems.
    pub fn reject(&mut self, problem: Problem) {
        let mut problems = match std::mem::replace(&mut self.verdict, Verdict::Rejected(Vec::new()))
        {
            Verdict::Rejected(problems) => problems,
            _ => Vec::new(),
        };
        problems.push(problem);
        self.record.status = "rejected".to_owned();
        self.record.problems = serde_json::to_value(&problems).unwrap_or_default();
        self.verdict = Verdict::Rejected(problems);
    }
}

/// Reads and judges one delivery. Fails only when the Party list cannot be read.
pub async fn classify(
    delivery: &Delivery,
    received_at: DateTime<Utc>,
    directory: &PartyDirectory,
    pool: &DbPool,
    register: &Register,
    require_signatures: bool,
) -> Result<Inbound, PartyError> {
    let properties = &delivery.properties;
    let headers = properties.headers().as_ref();
    let body = &delivery.data;
    let mut problems = Vec::new();

    let broker_user = properties
        .user_id()
        .as_ref()
        .map(|user| clean_text(user.as_str()));
    let claimed_sender = header_text(headers, HEADER_SENDER);
    let sender = match &broker_user {
        None => {
            problems.push(
                Problem::new(
                    ErrorCode::SenderUnauthenticated,
                    "the AMQP user_id property is missing: the spoke must set it to its broker user",
                )
                .at("amqp:user_id"),
            );
            None
        }
        Some(user) => {
            let party = directory.party_of_user(pool, user).await?;
            if party.is_none() {
                problems.push(
                    Problem::new(
                        ErrorCode::SenderUnknown,
                        "the broker user is not the user of a registered party",
                    )
                    .at("amqp:user_id")
                    .with_value(user),
                );
            }
            party
        }
    };
    let reply_to = sender;
    if let (Some(sender), Some(claimed)) = (sender, claimed_sender.as_deref())
        && claimed != sender.as_str()
    {
        problems.push(
            Problem::new(
                ErrorCode::SenderMismatch,
                format!("the sender header must name the authenticated party {sender}"),
            )
            .at(format!("header:{HEADER_SENDER}"))
            .with_value(claimed),
        );
    }

    let raw_message_id = properties
        .message_id()
        .as_ref()
        .map(|id| clean_text(id.as_str()));
    let message_id = match raw_message_id.as_deref().map(Uuid::parse_str) {
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            problems.push(
                Problem::new(
                    ErrorCode::MessageIdInvalid,
                    "message_id must be a UUID chosen by the sender",
                )
                .at("amqp:message_id")
                .with_value(raw_message_id.as_deref().unwrap_or_default()),
            );
            derived_message_id(broker_user.as_deref(), raw_message_id.as_deref(), body)
        }
        None => {
            problems.push(
                Problem::new(
                    ErrorCode::MessageIdMissing,
                    "message_id is missing: expected a UUID chosen by the sender",
                )
                .at("amqp:message_id"),
            );
            derived_message_id(broker_user.as_deref(), None, body)
        }
    };

    let raw_type = properties
        .kind()
        .as_ref()
        .map(|kind| clean_text(kind.as_str()));
    let message_type = match raw_type.as_deref() {
        None => {
            problems.push(
                Problem::new(ErrorCode::MessageTypeMissing, "the AMQP type property is missing: expected permit.issued or receipt.acknowledged")
                    .at("amqp:type"),
            );
            None
        }
        Some(text) => match text.parse::<MessageType>() {
            Ok(kind) => Some(kind),
            Err(error) => {
                problems.push(
                    Problem::new(ErrorCode::MessageTypeUnknown, error.to_string())
                        .at("amqp:type")
                        .with_value(text),
                );
                None
            }
        },
    };

    let content_type = properties
        .content_type()
        .as_ref()
        .map(|c| clean_text(c.as_str()));
    let correlation_id_text = properties
        .correlation_id()
        .as_ref()
        .map(|c| clean_text(c.as_str()));
    let correlation_id = correlation_id_text
        .as_deref()
        .and_then(|text| Uuid::parse_str(text).ok());
    let addressee_text = header_text(headers, HEADER_ADDRESSEE);
    let issuing_header = header_text(headers, HEADER_ISSUING_COUNTRY);
    let number_header = header_text(headers, HEADER_DOCUMENT_NUMBER);

    if body.len() > MAX_BODY_BYTES {
        problems.push(
            Problem::new(
                ErrorCode::BodyTooLarge,
                format!(
                    "the body has {} bytes: expected at most {MAX_BODY_BYTES}",
                    body.len()
                ),
            )
            .at("amqp:body"),
        );
    }

    let mut verdict = None;
    match message_type {
        Some(kind @ (MessageType::PermitIssued | MessageType::PermitAmended))
            if body.len() <= MAX_BODY_BYTES =>
        {
            // An alteration is void unless the issuing authority authenticates it, so an
            // amendment must be signed whatever the hub requires of issued permits.
            let signature_required = require_signatures || kind == MessageType::PermitAmended;
            let addressee =
                check_addressee(addressee_text.as_deref(), directory, pool, &mut problems).await?;
            let rules = directory.rules();
            let checked = check_document_with(
                content_type.as_deref().unwrap_or(""),
                body,
                received_at,
                &rules,
            );
            match checked {
                Ok(checked) => {
                    check_document_headers(
                        &checked.summary,
                        sender,
                        issuing_header.as_deref(),
                        number_header.as_deref(),
                        &mut problems,
                    );
                    let mut warnings = checked.warnings;
                    let jws = header_text(headers, HEADER_SIGNATURE);
                    let signed = check_signature(
                        jws.as_deref(),
                        body,
                        checked.summary.issuing_country,
                        received_at,
                        (register, pool, signature_required),
                        &mut problems,
                        &mut warnings,
                    )
                    .await?;
                    if let (Some(sender), Some(addressee), true) =
                        (sender, addressee, problems.is_empty())
                    {
                        verdict = Some(Verdict::Document {
                            message_type: kind,
                            sender,
                            addressee,
                            summary: checked.summary,
                            warnings,
                            signature: signed.as_ref().and(jws),
                            signed,
                        });
                    }
                }
                Err(document_problems) => problems.extend(document_problems),
            }
        }
        Some(MessageType::ReceiptAcknowledged) if body.len() <= MAX_BODY_BYTES => {
            if correlation_id.is_none() {
                problems.push(
                    Problem::new(
                        ErrorCode::CorrelationIdMissing,
                        "an acknowledgement must carry the acknowledged message's id as correlation_id",
                    )
                    .at("amqp:correlation_id")
                    .with_value(correlation_id_text.as_deref().unwrap_or_default()),
                );
            }
            match serde_json::from_slice::<Acknowledgement>(body) {
                Ok(acknowledgement) => {
                    if let (Some(sender), Some(correlation_id), true) =
                        (sender, correlation_id, problems.is_empty())
                    {
                        verdict = Some(Verdict::Acknowledgement {
                            sender,
                            correlation_id,
                            acknowledgement,
                        });
                    }
                }
                Err(error) => problems.push(Problem::new(
                    ErrorCode::DocumentMalformed,
                    format!(
                        "an acknowledgement body must be JSON with outcome and problems: {error}"
                    ),
                )),
            }
        }
        // NOTE: cancellations, replacements, endorsements and import confirmations need
        // state rules (a spent or cancelled permit) that the hub does not have yet.
        Some(
            other @ (MessageType::PermitCancelled
            | MessageType::PermitReplaced
            | MessageType::PermitEndorsed
            | MessageType::PermitImportConfirmed
            | MessageType::Receipt
            | MessageType::RegisterSignatoryChanged
            | MessageType::RegisterUserRevoked),
        ) => problems.push(
            Problem::new(
                ErrorCode::MessageTypeUnsupported,
                "this hub accepts permit.issued, permit.amended and receipt.acknowledged from spokes",
            )
            .at("amqp:type")
            .with_value(other.as_str()),
        ),
        _ => {}
    }

    let (status, verdict) = match verdict {
        Some(verdict @ Verdict::Document { .. }) => ("accepted", verdict),
        Some(verdict) => ("recorded", verdict),
        None => ("rejected", Verdict::Rejected(problems.clone())),
    };
    let (issuing_country, document_number) = match &verdict {
        Verdict::Document { summary, .. } => (
            Some(summary.issuing_country.to_string()),
            Some(summary.permit_number.clone()),
        ),
        _ => (issuing_header, number_header),
    };

    let mut recorded_properties = serde_json::json!({
        "message_id": raw_message_id,
        "type": raw_type,
        "user_id": broker_user,
        "content_type": content_type,
        "correlation_id": correlation_id_text,
        "timestamp": properties.timestamp(),
        "app_id": properties.app_id().as_ref().map(|a| clean_text(a.as_str())),
        "redelivered": delivery.redelivered,
        "exchange": clean_text(delivery.exchange.as_str()),
        "routing_key": clean_text(delivery.routing_key.as_str()),
    });
    recorded_properties["headers"] = headers_to_json(headers);

    let stored_body = if body.len() > MAX_BODY_BYTES {
        Vec::new()
    } else {
        body.to_vec()
    };
    let record = NewMessage {
        message_id,
        tracking_id: Uuid::new_v4(),
        message_type: raw_type,
        broker_user,
        sender: sender.map(|code| code.to_string()),
        addressee: addressee_text,
        issuing_country,
        document_number,
        content_type,
        correlation_id,
        properties: recorded_properties,
        body: stored_body,
        body_sha256: Sha256::digest(body).to_vec(),
        status: status.to_owned(),
        problems: serde_json::to_value(match &verdict {
            Verdict::Rejected(problems) => problems.clone(),
            Verdict::Document { warnings, .. } => warnings.clone(),
            Verdict::Acknowledgement { .. } => Vec::new(),
        })
        .unwrap_or_default(),
        received_at,
    };
    Ok(Inbound {
        record,
        verdict,
        reply_to,
        dead_lettered: false,
    })
}

/// Verifies the permit's signature against the register; a missing signature is an error
/// only where signatures are required.
async fn check_signature(
    jws: Option<&str>,
    body: &[u8],
    issuer: PartyCode,
    received_at: DateTime<Utc>,
    (register, pool, required): (&Register, &DbPool, bool),
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Result<Option<Signed>, PartyError> {
    let Some(jws) = jws else {
        let problem = Problem::new(
            ErrorCode::SignatureMissing,
            format!(
                "the permit is not signed: expected a detached JWS in the {HEADER_SIGNATURE} header"
            ),
        )
        .at(format!("header:{HEADER_SIGNATURE}"));
        if required {
            problems.push(problem);
        } else {
            warnings.push(problem);
        }
        return Ok(None);
    };
    match register.verify(pool, jws, body, issuer, received_at).await {
        Ok(Ok(signed)) => Ok(Some(signed)),
        Ok(Err(problem)) => {
            problems.push(problem);
            Ok(None)
        }
        Err(error) => Err(PartyError::Database(format!(
            "cannot read the register: {error}"
        ))),
    }
}

async fn check_addressee(
    addressee: Option<&str>,
    directory: &PartyDirectory,
    pool: &DbPool,
    problems: &mut Vec<Problem>,
) -> Result<Option<PartyCode>, PartyError> {
    let pointer = format!("header:{HEADER_ADDRESSEE}");
    let Some(text) = addressee else {
        problems.push(
            Problem::new(
                ErrorCode::AddresseeMissing,
                "the addressee header is missing: expected a party code such as DE",
            )
            .at(pointer),
        );
        return Ok(None);
    };
    match text.parse::<PartyCode>() {
        Ok(code) if directory.contains(pool, code).await? => Ok(Some(code)),
        _ => {
            problems.push(
                Problem::new(
                    ErrorCode::AddresseeUnknown,
                    "the addressee is not a party registered with this hub",
                )
                .at(pointer)
                .with_value(text),
            );
            Ok(None)
        }
    }
}

/// The routing headers must agree with the document, and an issued permit must come from
/// the Party that issued it.
fn check_document_headers(
    summary: &PermitSummary,
    sender: Option<PartyCode>,
    issuing_header: Option<&str>,
    number_header: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    if let Some(sender) = sender
        && sender != summary.issuing_country
    {
        problems.push(
            Problem::new(
                ErrorCode::SenderMismatch,
                format!(
                    "an issued permit must be sent by its issuing party {}",
                    summary.issuing_country
                ),
            )
            .at("/issuing_country")
            .with_value(summary.issuing_country.as_str()),
        );
    }
    if let Some(header) = issuing_header
        && header != summary.issuing_country.as_str()
    {
        problems.push(
            Problem::new(
                ErrorCode::HeaderMismatch,
                format!(
                    "the issuing-country header must equal the document's {}",
                    summary.issuing_country
                ),
            )
            .at(format!("header:{HEADER_ISSUING_COUNTRY}"))
            .with_value(header),
        );
    }
    if let Some(header) = number_header
        && header != summary.permit_number
    {
        problems.push(
            Problem::new(
                ErrorCode::HeaderMismatch,
                format!(
                    "the document-number header must equal the document's {}",
                    summary.permit_number
                ),
            )
            .at(format!("header:{HEADER_DOCUMENT_NUMBER}"))
            .with_value(header),
        );
    }
}

/// A stable id for a message whose own `message_id` is missing or unusable, so that its
/// redelivery is still recognised.
fn derived_message_id(
    broker_user: Option<&str>,
    raw_message_id: Option<&str>,
    body: &[u8],
) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(broker_user.unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(raw_message_id.unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    Uuid::new_v5(&HUB_NAMESPACE, &hasher.finalize())
}

/// The id of a message the hub publishes on account of `source`, such as its delivery or
/// its accepted receipt; the same inputs always give the same id, so a republished message
/// is recognisable as a duplicate.
pub fn outgoing_message_id(source: Uuid, purpose: &str) -> Uuid {
    let mut name = source.as_bytes().to_vec();
    name.extend_from_slice(purpose.as_bytes());
    Uuid::new_v5(&HUB_NAMESPACE, &name)
}
