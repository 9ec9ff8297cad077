//! EPIX spoke client: what a Party's system uses to send permits through the hub, receive
//! what others send it, acknowledge deliveries, and follow receipts.
//!
//! ```no_run
//! # async fn example() -> Result<(), epix_spoke::SpokeError> {
//! use epix_spoke::{Outgoing, Spoke, SpokeConfig};
//! let config = SpokeConfig::new("amqp://party-CH:secret@127.0.0.1:5672/%2f", "CH".parse().unwrap());
//! let spoke = Spoke::connect(config).await?;
//! let body = std::fs::read("permit.json").unwrap();
//! let message_id = spoke.send(Outgoing::issued_json(body, "DE".parse().unwrap())?).await?;
//! # Ok(()) }
//! ```

pub mod inbox;
pub mod trust;

use epix_shared::envelope::{
    Acknowledgement, HEADER_ADDRESSEE, HEADER_DOCUMENT_NUMBER, HEADER_ISSUING_COUNTRY,
    HEADER_SENDER, HEADER_SIGNATURE, HEADER_TRACKING_ID, MessageType, SUBMISSION_EXCHANGE,
    SUBMISSION_ROUTING_KEY, broker_user, inbox_queue, receipt_queue,
};
use epix_shared::permit::check_document;
use epix_shared::{PartyCode, Problem, Receipt};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use uuid::Uuid;

pub use inbox::write_delivery;

/// Connection settings of a spoke: broker URL, Party and broker user.
#[derive(Clone)]
pub struct SpokeConfig {
    /// Broker URL with the Party's broker user and password.
    pub amqp_url: String,
    pub party: PartyCode,
    /// The broker user; `party-XX` unless the hub was set up with another prefix.
    pub broker_user: String,
    /// Unacknowledged deliveries the broker may push ahead of processing.
    pub prefetch: u16,
}

impl std::fmt::Debug for SpokeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokeConfig")
            .field("party", &self.party)
            .field("broker_user", &self.broker_user)
            .finish_non_exhaustive()
    }
}

impl SpokeConfig {
    pub fn new(amqp_url: &str, party: PartyCode) -> Self {
        let user = user_of_url(amqp_url).unwrap_or_else(|| broker_user("party-", party));
        Self {
            amqp_url: amqp_url.to_owned(),
            party,
            broker_user: user,
            prefetch: 200,
        }
    }
}

/// The user name in an AMQP URL, if it names one.
fn user_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let user = userinfo.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum SpokeError {
    #[error("cannot connect to the broker as {user}: {source}")]
    Connect { user: String, source: lapin::Error },
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused the message {message_id} (negative confirm)")]
    Refused { message_id: Uuid },
    #[error(
        "the broker could not route the message {message_id}: the hub's submission queue is missing"
    )]
    Unroutable { message_id: Uuid },
    #[error("the document is invalid:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
    #[error("cannot write the delivery to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the broker closed the consumer")]
    ConsumerClosed,
    #[error("cannot sign the document: {0}")]
    Signing(String),
}

/// A document to send through the hub.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: Vec<u8>,
    pub content_type: String,
    pub message_type: MessageType,
    pub addressee: PartyCode,
    /// Defaults to a new random id; set it to resend the same message after a failure, so
    /// that the hub recognises the repeat.
    pub message_id: Option<Uuid>,
    pub issuing_country: Option<String>,
    pub document_number: Option<String>,
    /// Detached JWS over `body`, sent in the signature header.
    pub signature: Option<String>,
}

impl Outgoing {
    /// Signs the body as it will be sent, now.
    pub fn sign(&mut self, signer: &epix_shared::signature::Signer) -> Result<(), SpokeError> {
        let jws = signer
            .sign(&self.body, chrono::Utc::now())
            .map_err(|error| SpokeError::Signing(error.to_string()))?;
        self.signature = Some(jws);
        Ok(())
    }

    /// An issued JSON permit, checked here so that mistakes show before the hub sees them.
    pub fn issued_json(body: Vec<u8>, addressee: PartyCode) -> Result<Self, SpokeError> {
        let checked = check_document("application/json", &body, chrono::Utc::now())
            .map_err(|problems| SpokeError::Invalid { problems })?;
        Ok(Self {
            issuing_country: Some(checked.summary.issuing_country.to_string()),
            document_number: Some(checked.summary.permit_number),
            body,
            content_type: "application/json".to_owned(),
            message_type: MessageType::PermitIssued,
            addressee,
            message_id: None,
            signature: None,
        })
    }

    /// A message sent as given, without local checks.
    pub fn unchecked(
        body: Vec<u8>,
        content_type: &str,
        message_type: MessageType,
        addressee: PartyCode,
    ) -> Self {
        Self {
            body,
            content_type: content_type.to_owned(),
            message_type,
            addressee,
            message_id: None,
            issuing_country: None,
            document_number: None,
            signature: None,
        }
    }
}

/// A connected spoke.
pub struct Spoke {
    config: SpokeConfig,
    connection: Connection,
    publisher: Channel,
}

impl Spoke {
    pub async fn connect(config: SpokeConfig) -> Result<Self, SpokeError> {
        let name = format!("epix-spoke {}", config.party);
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(&config.amqp_url, properties)
            .await
            .map_err(|source| SpokeError::Connect {
                user: config.broker_user.clone(),
                source,
            })?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            config,
            connection,
            publisher,
        })
    }

    pub fn party(&self) -> PartyCode {
        self.config.party
    }

    /// Publishes a document to the hub and waits for the broker's confirm. Returns the
    /// message id, which every receipt names.
    pub async fn send(&self, outgoing: Outgoing) -> Result<Uuid, SpokeError> {
        let message_id = outgoing.message_id.unwrap_or_else(Uuid::new_v4);
        let mut headers = FieldTable::default();
        let mut put = |name: &str, value: &str| {
            headers.insert(
                name.to_owned().into(),
                AMQPValue::LongString(value.to_owned().into()),
            );
        };
        put(HEADER_SENDER, self.config.party.as_str());
        put(HEADER_ADDRESSEE, outgoing.addressee.as_str());
        if let Some(country) = &outgoing.issuing_country {
            put(HEADER_ISSUING_COUNTRY, country);
        }
        if let Some(number) = &outgoing.document_number {
            put(HEADER_DOCUMENT_NUMBER, number);
        }
        if let Some(signature) = &outgoing.signature {
            put(HEADER_SIGNATURE, signature);
        }
        let properties = self
            .base_properties(message_id, outgoing.message_type, &outgoing.content_type)
            .with_headers(headers);
        self.publish(message_id, &outgoing.body, properties).await?;
        Ok(message_id)
    }

    /// Publishes raw bytes with the given properties; for tests of the hub's defences.
    pub async fn publish_raw(
        &self,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), SpokeError> {
        self.publish(Uuid::nil(), body, properties).await
    }

    fn base_properties(
        &self,
        message_id: Uuid,
        message_type: MessageType,
        content_type: &str,
    ) -> BasicProperties {
        BasicProperties::default()
            .with_message_id(message_id.to_string().into())
            .with_type(message_type.as_str().into())
            .with_content_type(content_type.to_owned().into())
            .with_user_id(self.config.broker_user.clone().into())
            .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
            .with_delivery_mode(2)
    }

    async fn publish(
        &self,
        message_id: Uuid,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), SpokeError> {
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirmation = self
            .publisher
            .basic_publish(
                SUBMISSION_EXCHANGE.into(),
                SUBMISSION_ROUTING_KEY.into(),
                options,
                body,
                properties,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(SpokeError::Unroutable { message_id }),
            Confirmation::Nack(_) => Err(SpokeError::Refused { message_id }),
        }
    }

    /// Starts consuming this Party's inbox.
    pub async fn inbox(&self) -> Result<Inbox, SpokeError> {
        let consumer = self
            .consume(&inbox_queue(self.config.party), "inbox")
            .await?;
        Ok(Inbox { consumer })
    }

    /// Starts consuming the receipts for the messages this Party sent.
    pub async fn receipts(&self) -> Result<Receipts, SpokeError> {
        let consumer = self
            .consume(&receipt_queue(self.config.party), "receipts")
            .await?;
        Ok(Receipts { consumer })
    }

    async fn consume(&self, queue: &str, purpose: &str) -> Result<lapin::Consumer, SpokeError> {
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!(
            "epix-spoke-{}-{purpose}-{}",
            self.config.party,
            Uuid::new_v4()
        );
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(consumer)
    }

    /// Tells the hub that a delivered document was stored (or why it was not), then removes
    /// it from the inbox. Call only after the document is safely stored.
    pub async fn acknowledge(
        &self,
        delivered: &Delivered,
        acknowledgement: &Acknowledgement,
    ) -> Result<(), SpokeError> {
        let source = delivered.correlation_id.unwrap_or(delivered.message_id);
        // Random, not derived from the delivery: another Party could otherwise predict the
        // id and use it first, and the hub would take the real acknowledgement for a
        // repeat. A second acknowledgement of the same document changes nothing at the hub.
        let message_id = Uuid::new_v4();
        let body = serde_json::to_vec(acknowledgement).unwrap_or_default();
        let mut headers = FieldTable::default();
        headers.insert(
            HEADER_SENDER.into(),
            AMQPValue::LongString(self.config.party.as_str().into()),
        );
        let properties = self
            .base_properties(
                message_id,
                MessageType::ReceiptAcknowledged,
                "application/json",
            )
            .with_correlation_id(source.to_string().into())
            .with_headers(headers);
        self.publish(message_id, &body, properties).await?;
        delivered
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await?;
        Ok(())
    }

    /// Removes a hub broadcast from the inbox once it is handled. Broadcasts get no
    /// acknowledgement message: the hub does not track them per Party.
    pub async fn settle_broadcast(&self, delivered: &Delivered) -> Result<(), SpokeError> {
        delivered
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await?;
        Ok(())
    }

    pub async fn close(self) -> Result<(), SpokeError> {
        self.connection.close(200, "spoke closing".into()).await?;
        Ok(())
    }
}

/// A document delivered to this Party.
pub struct Delivered {
    /// The hub's id of this delivery.
    pub message_id: Uuid,
    /// The sender's message_id of the submission.
    pub correlation_id: Option<Uuid>,
    pub message_type: Option<String>,
    pub content_type: Option<String>,
    pub sender: Option<String>,
    pub issuing_country: Option<String>,
    pub document_number: Option<String>,
    pub tracking_id: Option<String>,
    /// The detached JWS of the signer (a document's signatory, or the hub for a broadcast).
    pub signature: Option<String>,
    /// On a `register.signatory-changed` broadcast: the register version it carries.
    pub register_version: Option<String>,
    pub redelivered: bool,
    pub body: Vec<u8>,
    delivery: Delivery,
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivered")
            .field("message_id", &self.message_id)
            .field("correlation_id", &self.correlation_id)
            .field("sender", &self.sender)
            .field("document_number", &self.document_number)
            .finish_non_exhaustive()
    }
}

impl Delivered {
    fn from_delivery(delivery: Delivery) -> Self {
        let properties = &delivery.properties;
        let headers = properties.headers().as_ref();
        let text = |name: &str| header_text(headers, name);
        Self {
            message_id: uuid_of(properties.message_id().as_ref().map(|s| s.as_str()))
                .unwrap_or_default(),
            correlation_id: uuid_of(properties.correlation_id().as_ref().map(|s| s.as_str())),
            message_type: properties.kind().as_ref().map(|s| s.to_string()),
            content_type: properties.content_type().as_ref().map(|s| s.to_string()),
            sender: text(HEADER_SENDER),
            issuing_country: text(HEADER_ISSUING_COUNTRY),
            document_number: text(HEADER_DOCUMENT_NUMBER),
            tracking_id: text(HEADER_TRACKING_ID),
            signature: text(HEADER_SIGNATURE),
            register_version: text(epix_shared::trust::HEADER_REGISTER_VERSION),
            redelivered: delivery.redelivered,
            body: delivery.data.clone(),
            delivery,
        }
    }

    /// Returns the message type, if it is one this client recognises.
    pub fn kind(&self) -> Option<MessageType> {
        self.message_type.as_deref()?.parse().ok()
    }

    /// Returns whether this is a hub broadcast (`register.*`) rather than a document.
    pub fn is_broadcast(&self) -> bool {
        self.kind().is_some_and(MessageType::is_broadcast)
    }

    /// The envelope as JSON, as `receive` stores it beside the document.
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "type": self.message_type,
            "content_type": self.content_type,
            "sender": self.sender,
            "issuing_country": self.issuing_country,
            "document_number": self.document_number,
            "tracking_id": self.tracking_id,
            "redelivered": self.redelivered,
        })
    }
}

fn uuid_of(text: Option<&str>) -> Option<Uuid> {
    text.and_then(|t| Uuid::parse_str(t).ok())
}

fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    let value = headers?
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)?
        .1;
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The stream of documents delivered to this Party.
pub struct Inbox {
    consumer: lapin::Consumer,
}

impl Inbox {
    /// Waits for the next delivered document.
    pub async fn next(&mut self) -> Result<Delivered, SpokeError> {
        match self.consumer.next().await {
            Some(delivery) => Ok(Delivered::from_delivery(delivery?)),
            None => Err(SpokeError::ConsumerClosed),
        }
    }
}

/// The stream of receipts for this Party's messages.
pub struct Receipts {
    consumer: lapin::Consumer,
}

/// A receipt taken from the queue but not yet removed: call [`ReceivedReceipt::ack`] once
/// it is handled. Dropping it unacknowledged returns it to the queue when the spoke
/// disconnects, for another reader.
pub struct ReceivedReceipt {
    /// The receipt message's own id, which stays the same if the hub sends it again.
    pub receipt_message_id: Option<Uuid>,
    /// The receipt, or why its body could not be read.
    pub receipt: Result<Receipt, String>,
    delivery: Delivery,
}

impl ReceivedReceipt {
    /// Removes the receipt from the queue.
    pub async fn ack(self) -> Result<(), SpokeError> {
        self.delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }
}

impl Receipts {
    /// Waits for the next receipt.
    pub async fn next(&mut self) -> Result<ReceivedReceipt, SpokeError> {
        let Some(delivery) = self.consumer.next().await else {
            return Err(SpokeError::ConsumerClosed);
        };
        let delivery = delivery?;
        let receipt = serde_json::from_slice::<Receipt>(&delivery.data)
            .map_err(|error| format!("unreadable receipt: {error}"));
        Ok(ReceivedReceipt {
            receipt_message_id: uuid_of(
                delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str()),
            ),
            receipt,
            delivery,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_user_comes_from_url() {
        let config = SpokeConfig::new(
            "amqp://party-CH:pw@127.0.0.1:5672/%2f",
            "CH".parse().expect("valid"),
        );
        assert_eq!(config.broker_user, "party-CH");
    }

    #[test]
    fn broker_user_defaults_to_party() {
        let config = SpokeConfig::new("amqp://127.0.0.1:5672/%2f", "DE".parse().expect("valid"));
        assert_eq!(config.broker_user, "party-DE");
    }
}
