//! Broker connection, topology and the conversion of AMQP headers.

use epix_shared::PartyCode;
use epix_shared::envelope::{
    DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, DELIVERY_EXCHANGE, SUBMISSION_EXCHANGE,
    SUBMISSION_QUEUE, SUBMISSION_ROUTING_KEY, inbox_queue, inbox_routing_key, receipt_queue,
    receipt_routing_key,
};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::config::redact_url;

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the broker at {url}: {source}")]
pub struct ConnectError {
    pub url: String,
    #[source]
    pub source: lapin::Error,
}

/// Opens a named connection; the name shows in the broker's management UI.
pub async fn connect(url: &str, name: &str) -> Result<Connection, ConnectError> {
    let properties = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    Connection::connect(url, properties)
        .await
        .map_err(|source| ConnectError {
            url: redact_url(url),
            source,
        })
}

/// Declares the exchanges and queues the hub owns. Idempotent, so every start runs it.
pub async fn declare_hub_topology(
    channel: &Channel,
    delivery_limit: u32,
) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in [SUBMISSION_EXCHANGE, DELIVERY_EXCHANGE, DEAD_LETTER_EXCHANGE] {
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
    }

    let mut submission_args = quorum_args();
    submission_args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(delivery_limit as i32),
    );
    submission_args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    // By default a quorum queue dead-letters at most once, so a message could be lost on
    // the way; at-least-once keeps it until the dead-letter queue confirms it, and
    // requires the reject-publish overflow behaviour.
    submission_args.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    submission_args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    declare_bound_queue(
        channel,
        SUBMISSION_QUEUE,
        submission_args,
        SUBMISSION_EXCHANGE,
        SUBMISSION_ROUTING_KEY,
    )
    .await?;
    // Dead-lettered messages keep their original routing key.
    declare_bound_queue(
        channel,
        DEAD_LETTER_QUEUE,
        quorum_args(),
        DEAD_LETTER_EXCHANGE,
        SUBMISSION_ROUTING_KEY,
    )
    .await
}

/// Declares a Party's inbox and receipt queues and binds them to the delivery exchange.
pub async fn declare_party_queues(channel: &Channel, party: PartyCode) -> Result<(), lapin::Error> {
    declare_bound_queue(
        channel,
        &inbox_queue(party),
        quorum_args(),
        DELIVERY_EXCHANGE,
        &inbox_routing_key(party),
    )
    .await?;
    declare_bound_queue(
        channel,
        &receipt_queue(party),
        quorum_args(),
        DELIVERY_EXCHANGE,
        &receipt_routing_key(party),
    )
    .await
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

async fn declare_bound_queue(
    channel: &Channel,
    queue: &str,
    args: FieldTable,
    exchange: &str,
    routing_key: &str,
) -> Result<(), lapin::Error> {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel.queue_declare(queue.into(), options, args).await?;
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Converts AMQP headers to JSON for storage. Values that have no JSON form are kept as
/// their debug text, so nothing received is dropped from the record.
pub fn headers_to_json(headers: Option<&FieldTable>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    if let Some(headers) = headers {
        for (key, value) in headers.inner() {
            map.insert(clean_text(key.as_str()), amqp_value_to_json(value));
        }
    }
    serde_json::Value::Object(map)
}

fn amqp_value_to_json(value: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::ShortString(s) => Value::String(clean_text(s.as_str())),
        AMQPValue::LongString(s) => {
            Value::String(clean_text(&String::from_utf8_lossy(s.as_bytes())))
        }
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(amqp_value_to_json).collect())
        }
        AMQPValue::FieldTable(table) => headers_to_json(Some(table)),
        AMQPValue::Void => Value::Null,
        other => Value::String(format!("{other:?}")),
    }
}

/// Builds AMQP headers from a JSON object of strings, as stored in the outbox.
pub fn json_to_headers(json: &serde_json::Value) -> FieldTable {
    let mut table = FieldTable::default();
    if let Some(map) = json.as_object() {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            table.insert(key.clone().into(), AMQPValue::LongString(text.into()));
        }
    }
    table
}

/// Reads a header as text: long and short strings only.
pub fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    let value = headers?
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)?
        .1;
    match value {
        AMQPValue::LongString(s) => Some(clean_text(&String::from_utf8_lossy(s.as_bytes()))),
        AMQPValue::ShortString(s) => Some(clean_text(s.as_str())),
        _ => None,
    }
}

/// Replaces NUL characters, which PostgreSQL refuses in `text` and `jsonb`, with U+FFFD,
/// so that a header cannot make the hub's own record of a message impossible to store.
pub fn clean_text(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_owned()
    }
}
