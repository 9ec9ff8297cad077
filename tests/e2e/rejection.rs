//! What the hub refuses, and that it answers or records every refusal.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use epix_shared::envelope::{
    HEADER_ADDRESSEE, HEADER_SENDER, MessageType, SUBMISSION_EXCHANGE, SUBMISSION_ROUTING_KEY,
};
use epix_shared::{ErrorCode, ReceiptStatus};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use uuid::Uuid;

use crate::support::{init_logging, next_delivery, receipts_until};

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName, Debug)]
struct Status {
    #[diesel(sql_type = Text)]
    status: String,
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    let mut connection = env.database().await.expect("database");
    let rows: Vec<Count> = diesel::sql_query(sql)
        .load(&mut connection)
        .await
        .expect("query");
    rows.into_iter().next().map_or(0, |row| row.count)
}

#[tokio::test]
async fn invalid_document_is_rejected_with_every_problem() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let mut document: serde_json::Value =
        serde_json::from_slice(&permit_json("CH", "DE", "26CH000002")).expect("JSON");
    document["valid_until"] = serde_json::json!("31/05/2027");
    document["lines"][0]["appendix"] = serde_json::json!("IV");
    document["lines"][0]["quantity"] = serde_json::json!(-3);
    document.as_object_mut().expect("object").remove("importer");
    let body = serde_json::to_vec(&document).expect("serialises");
    let outgoing = Outgoing::unchecked(
        body,
        "application/json",
        MessageType::PermitIssued,
        "DE".parse().expect("code"),
    );
    let message_id = sender.send(outgoing).await.expect("sent");

    let rejected = receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    let problems = &rejected.last().expect("receipt").problems;
    let found: Vec<(ErrorCode, Option<&str>)> = problems
        .iter()
        .map(|p| (p.code, p.pointer.as_deref()))
        .collect();
    for expected in [
        (ErrorCode::DateInvalid, Some("/valid_until")),
        (ErrorCode::CodeUnknown, Some("/lines/0/appendix")),
        (ErrorCode::QuantityNotPositive, Some("/lines/0/quantity")),
        (ErrorCode::FieldMissing, Some("/importer")),
    ] {
        assert!(
            found.contains(&expected),
            "missing {expected:?} in {found:?}"
        );
    }
    assert_eq!(problems.len(), 4, "one reason per problem: {problems:?}");
    let appendix = problems
        .iter()
        .find(|p| p.code == ErrorCode::CodeUnknown)
        .expect("appendix problem");
    assert_eq!(appendix.value.as_deref(), Some("IV"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.queue_depth("epix.inbox.DE").await.expect("depth"),
        0,
        "a rejected permit is never delivered"
    );
    assert_eq!(
        count(&env, "SELECT count(*) AS count FROM permits").await,
        0
    );
    hub.stop().await;
}

#[tokio::test]
async fn unknown_addressee_is_rejected() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let outgoing = Outgoing::issued_json(
        permit_json("CH", "FR", "26CH000003"),
        "FR".parse().expect("code"),
    )
    .expect("valid");
    let message_id = sender.send(outgoing).await.expect("sent");
    let rejected = receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    let problems = &rejected.last().expect("receipt").problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, ErrorCode::AddresseeUnknown);
    assert_eq!(problems[0].value.as_deref(), Some("FR"));
    hub.stop().await;
}

#[tokio::test]
async fn same_message_id_is_stored_and_delivered_once() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let receiver = Spoke::connect(de).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");

    let mut outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000004"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    let message_id = Uuid::new_v4();
    outgoing.message_id = Some(message_id);
    sender.send(outgoing.clone()).await.expect("first send");
    sender.send(outgoing).await.expect("second send");
    let receipts_seen = receipts_until(&mut receipts, message_id, ReceiptStatus::Accepted).await;
    assert_eq!(
        receipts_seen.len(),
        1,
        "one accepted receipt: {receipts_seen:?}"
    );
    let delivered = next_delivery(&mut inbox).await;
    assert_eq!(delivered.correlation_id, Some(message_id));
    let acknowledgement = epix_shared::envelope::Acknowledgement {
        outcome: epix_shared::envelope::AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    receiver
        .acknowledge(&delivered, &acknowledgement)
        .await
        .expect("acknowledged");
    let receipts_seen = receipts_until(&mut receipts, message_id, ReceiptStatus::Delivered).await;
    assert_eq!(
        receipts_seen.len(),
        1,
        "no receipt between accepted and delivered: {receipts_seen:?}"
    );

    // Close the consumers, so that anything they had prefetched returns to the queues and
    // is counted below.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(inbox);
    drop(receipts);
    let _ = receiver.close().await;
    let _ = sender.close().await;
    assert_eq!(
        env.queue_depth("epix.inbox.DE").await.expect("depth"),
        0,
        "no second delivery"
    );
    assert_eq!(
        env.queue_depth("epix.receipts.CH").await.expect("depth"),
        0,
        "no second receipt"
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) AS count FROM messages WHERE message_type = 'permit.issued'"
        )
        .await,
        1,
        "the submission is recorded once"
    );
    assert_eq!(
        count(&env, "SELECT count(*) AS count FROM permits").await,
        1
    );
    hub.stop().await;
}

#[tokio::test]
async fn permit_number_reused_is_rejected() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let first = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000005"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    let first_id = sender.send(first).await.expect("sent");
    receipts_until(&mut receipts, first_id, ReceiptStatus::Accepted).await;
    let second = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000005"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    let second_id = sender.send(second).await.expect("sent");
    let rejected = receipts_until(&mut receipts, second_id, ReceiptStatus::Rejected).await;
    assert_eq!(
        rejected.last().expect("receipt").problems[0].code,
        ErrorCode::PermitAlreadyExists
    );
    hub.stop().await;
}

fn raw_properties(message_id: Uuid, sender_header: &str) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_SENDER.into(),
        AMQPValue::LongString(sender_header.into()),
    );
    headers.insert(HEADER_ADDRESSEE.into(), AMQPValue::LongString("DE".into()));
    BasicProperties::default()
        .with_message_id(message_id.to_string().into())
        .with_type(MessageType::PermitIssued.as_str().into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers)
}

async fn message_status(env: &TestEnv, message_id: Uuid) -> Option<String> {
    let mut connection = env.database().await.expect("database");
    let rows: Vec<Status> = diesel::sql_query("SELECT status FROM messages WHERE message_id = $1")
        .bind::<diesel::sql_types::Uuid, _>(message_id)
        .load(&mut connection)
        .await
        .expect("query");
    rows.into_iter().next().map(|row| row.status)
}

#[tokio::test]
async fn message_without_user_id_is_recorded_only() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");

    // Without user_id the broker vouches for no one, so the sender header proves nothing.
    let message_id = Uuid::new_v4();
    sender
        .publish_raw(
            &permit_json("CH", "DE", "26CH000006"),
            raw_properties(message_id, "CH"),
        )
        .await
        .expect("published");
    let status = wait_for_status(&env, message_id).await;
    assert_eq!(
        status.as_deref(),
        Some("rejected"),
        "the message is recorded as rejected"
    );
    let problems = message_problems(&env, message_id).await;
    assert!(problems.contains("sender_unauthenticated"), "{problems}");
    assert_eq!(
        outbox_rows_for(&env, message_id).await,
        0,
        "no receipt goes to the claimed sender"
    );
    assert_eq!(
        count(&env, "SELECT count(*) AS count FROM permits").await,
        0
    );
    hub.stop().await;
}

async fn wait_for_status(env: &TestEnv, message_id: Uuid) -> Option<String> {
    for _ in 0..100 {
        if let Some(status) = message_status(env, message_id).await {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn message_problems(env: &TestEnv, message_id: Uuid) -> String {
    let mut connection = env.database().await.expect("database");
    let rows: Vec<Status> =
        diesel::sql_query("SELECT problems::text AS status FROM messages WHERE message_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(message_id)
            .load(&mut connection)
            .await
            .expect("query");
    rows.into_iter()
        .next()
        .map(|row| row.status)
        .unwrap_or_default()
}

async fn outbox_rows_for(env: &TestEnv, message_id: Uuid) -> i64 {
    let mut connection = env.database().await.expect("database");
    let rows: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS count FROM outbox WHERE correlation_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(message_id)
            .load(&mut connection)
            .await
            .expect("query");
    rows.into_iter().next().map_or(0, |row| row.count)
}

#[tokio::test]
async fn message_from_non_party_user_is_recorded() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");

    // The broker administrator is a broker user but no Party.
    let connection = env.broker().await.expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let message_id = Uuid::new_v4();
    let properties = raw_properties(message_id, "CH").with_user_id("guest".into());
    channel
        .basic_publish(
            SUBMISSION_EXCHANGE.into(),
            SUBMISSION_ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            &permit_json("CH", "DE", "26CH000007"),
            properties,
        )
        .await
        .expect("published");

    let status = wait_for_status(&env, message_id).await;
    assert_eq!(
        status.as_deref(),
        Some("rejected"),
        "the message is recorded as rejected"
    );
    let problems = message_problems(&env, message_id).await;
    assert!(problems.contains("sender_unknown"), "{problems}");
    assert_eq!(
        outbox_rows_for(&env, message_id).await,
        0,
        "nothing is delivered or answered"
    );
    assert_eq!(
        count(&env, "SELECT count(*) AS count FROM permits").await,
        0
    );
    hub.stop().await;
}

#[tokio::test]
async fn spoke_cannot_read_another_inbox() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");

    let connection =
        lapin::Connection::connect(&ch.amqp_url, lapin::ConnectionProperties::default())
            .await
            .expect("CH connects");
    let channel = connection.create_channel().await.expect("channel");
    let denied = channel
        .basic_consume(
            "epix.inbox.DE".into(),
            "intruder".into(),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(denied.is_err(), "CH must not consume DE's inbox");
    hub.stop().await;
}
