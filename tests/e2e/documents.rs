//! Documents in every form the hub reads, checked with the Party's own rules.

use epix_shared::envelope::MessageType;
use epix_shared::permit::PartyProfile;
use epix_shared::{ErrorCode, ReceiptStatus};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};

use crate::support::{init_logging, next_delivery, receipts_until};

/// The demo's re-export certificate in ePermit XML, with its dates moved to today so that
/// the test does not depend on when it runs.
fn epix_sample_xml() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/permits/ch-reexport-epix-sample.xml"
    );
    let text = std::fs::read_to_string(path).expect("the example XML permit is in the repository");
    let today = chrono::Utc::now().date_naive();
    let until = today + chrono::Days::new(150);
    text.replace("2026-12-01T10:15:00", &format!("{today}T00:00:00"))
        .replace("2027-05-31T23:59:59", &format!("{until}T23:59:59"))
        .into_bytes()
}

#[tokio::test]
async fn xml_permit_is_delivered_as_received() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let receiver = Spoke::connect(de).await.expect("DE connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");

    let body = epix_sample_xml();
    let outgoing = Outgoing::unchecked(
        body.clone(),
        "application/xml",
        MessageType::PermitIssued,
        "DE".parse().expect("code"),
    );
    let message_id = sender.send(outgoing).await.expect("sent");
    let accepted = receipts_until(&mut receipts, message_id, ReceiptStatus::Accepted).await;
    assert_eq!(
        accepted.last().and_then(|r| r.document_number.as_deref()),
        Some("26CH009001")
    );

    let delivered = next_delivery(&mut inbox).await;
    assert_eq!(delivered.body, body, "the XML arrives byte for byte");
    assert_eq!(delivered.content_type.as_deref(), Some("application/xml"));

    let customs = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("customs logs in");
    let permit: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/permits/CH/26CH009001",
            hub.http_address()
        ))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("lookup answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(permit["document_type"], "re_export");
    hub.stop().await;
}

#[tokio::test]
async fn xml_entity_attack_is_rejected() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let attack = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<CITESEPermit xmlns="urn:un:unece:uncefact:data:standard:CITESEPermit:2">&lol2;</CITESEPermit>"#;
    let outgoing = Outgoing::unchecked(
        attack.to_vec(),
        "application/xml",
        MessageType::PermitIssued,
        "DE".parse().expect("code"),
    );
    let message_id = sender.send(outgoing).await.expect("sent");
    let rejected = receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    let problems = &rejected.last().expect("receipt").problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].code,
        ErrorCode::DocumentDtdForbidden,
        "{problems:?}"
    );
    assert_eq!(env.queue_depth("epix.inbox.DE").await.expect("depth"), 0);
    hub.stop().await;
}

#[tokio::test]
async fn party_profile_requires_applicant_signature() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let profile = PartyProfile {
        requires_applicant_signature: true,
        utc_offset: None,
    };
    let ch = env.add_party_with("CH", &profile).await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000010"),
        "DE".parse().expect("code"),
    )
    .expect("valid by default rules");
    let message_id = sender.send(outgoing).await.expect("sent");
    let rejected = receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    let codes: Vec<ErrorCode> = rejected
        .last()
        .expect("receipt")
        .problems
        .iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(codes, vec![ErrorCode::ApplicantSignatureMissing]);
    hub.stop().await;
}
