//! The main path: a permit from one Party reaches another, with receipts and a lookup.

use epix_shared::ReceiptStatus;
use epix_shared::envelope::{Acknowledgement, AcknowledgementOutcome};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};

use crate::support::{init_logging, next_delivery, receipts_until};

#[tokio::test]
async fn permit_reaches_addressee_with_receipts() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");

    let sender = Spoke::connect(ch).await.expect("CH connects");
    let receiver = Spoke::connect(de).await.expect("DE connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");

    let body = permit_json("CH", "DE", "26CH000001");
    let outgoing =
        Outgoing::issued_json(body.clone(), "DE".parse().expect("code")).expect("valid permit");
    let message_id = sender.send(outgoing).await.expect("sent");

    let accepted = receipts_until(&mut receipts, message_id, ReceiptStatus::Accepted).await;
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].document_number.as_deref(), Some("26CH000001"));

    let delivered = next_delivery(&mut inbox).await;
    assert_eq!(delivered.body, body, "the document arrives byte for byte");
    assert_eq!(delivered.correlation_id, Some(message_id));
    assert_eq!(delivered.sender.as_deref(), Some("CH"));
    assert_eq!(
        delivered.tracking_id.as_deref(),
        Some(accepted[0].tracking_id.to_string().as_str())
    );
    let acknowledgement = Acknowledgement {
        outcome: AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    receiver
        .acknowledge(&delivered, &acknowledgement)
        .await
        .expect("acknowledged");

    let final_receipts = receipts_until(&mut receipts, message_id, ReceiptStatus::Delivered).await;
    let delivered_receipt = final_receipts.last().expect("a delivered receipt");
    assert_eq!(delivered_receipt.message_id, message_id);
    assert_eq!(delivered_receipt.tracking_id, accepted[0].tracking_id);
    assert!(
        delivered_receipt.hub_time >= accepted[0].hub_time,
        "receipt times are in order"
    );

    let officer = env
        .user_token(&hub, "ch-officer", Some("CH"), &["authority-officer"])
        .await
        .expect("officer logs in");
    let status: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/messages/{message_id}",
            hub.http_address()
        ))
        .bearer_auth(&officer)
        .send()
        .await
        .expect("status answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(status["status"], "delivered");
    assert_eq!(
        status["receipts"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn customs_lookup_by_path_and_query() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let number = "08CA00153/CWHQ";
    let outgoing =
        Outgoing::issued_json(permit_json("CH", "DE", number), "DE".parse().expect("code"))
            .expect("valid");
    let message_id = sender.send(outgoing).await.expect("sent");
    receipts_until(&mut receipts, message_id, ReceiptStatus::Accepted).await;

    let base = format!("http://{}", hub.http_address());
    let customs = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("customs logs in");
    let client = reqwest::Client::new();
    for url in [
        format!("{base}/v1/permits/CH/08CA00153/CWHQ"),
        format!("{base}/v1/permits/CH/08CA00153%2FCWHQ"),
        format!("{base}/v1/permits?country=CH&number=08CA00153%2FCWHQ"),
    ] {
        let response = client
            .get(&url)
            .bearer_auth(&customs)
            .send()
            .await
            .expect("lookup answers");
        assert_eq!(response.status(), 200, "{url}");
        let permit: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(permit["permit_number"], number, "{url}");
        assert_eq!(permit["issuing_country"], "CH", "{url}");
        assert_eq!(permit["addressee"], "DE", "{url}");
        assert_eq!(permit["document_type"], "export", "{url}");
        assert_eq!(permit["validity"], "valid", "{url}");
    }

    let missing = client
        .get(format!("{base}/v1/permits/DE/08CA00153/CWHQ"))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = missing.json().await.expect("JSON");
    assert_eq!(problem["code"], "not_found");

    let bad = client
        .get(format!("{base}/v1/permits?country=Switzerland&number=1"))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), 400);
    let without_number = client
        .get(format!("{base}/v1/permits?country=CH"))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers");
    assert_eq!(without_number.status(), 400);
    let problem: serde_json::Value = without_number.json().await.expect("JSON");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("number"),
        "{problem}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let env = TestEnv::new().await.expect("test environment");
    let hub = env.start_hub().await.expect("hub starts");
    let base = format!("http://{}", hub.http_address());
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("answers");
    assert_eq!(health.status(), 200);

    let mut ready = false;
    for _ in 0..50 {
        let response = reqwest::get(format!("{base}/readyz"))
            .await
            .expect("answers");
        if response.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "readyz never reported ready");

    let unknown = reqwest::get(format!("{base}/v1/nothing"))
        .await
        .expect("answers");
    assert_eq!(unknown.status(), 404);
    hub.stop().await;
}
