//! The register reaching the spokes: `register.*` broadcasts signed by the hub, the spoke's
//! local copy of the trust list, and the spoke's own check of delivered permits.

use std::time::Instant;

use chrono::{Duration, Utc};
use epix_hub::Hub;
use epix_shared::envelope::{
    DELIVERY_EXCHANGE, HEADER_ISSUING_COUNTRY, HEADER_SENDER, HEADER_SIGNATURE, MessageType,
    inbox_routing_key,
};
use epix_shared::trust::{
    HEADER_REGISTER_VERSION, HubKeys, TYP_SIGNATORY_CHANGE, TYP_USER_REVOCATION, TrustError,
    TrustedSignatory, UserRevocation,
};
use epix_shared::{ErrorCode, ReceiptStatus};
use epix_spoke::trust::{
    BroadcastOutcome, Credentials, HubApi, TrustKeeper, TrustKeeperError, Verdict,
};
use epix_spoke::{Delivered, Inbox, Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};

use crate::signatures::{Credentials as SignerFiles, openssl_credentials, register, signer};
use crate::support::{init_logging, next_delivery, receipts_until};

struct Setup {
    env: TestEnv,
    hub: Hub,
    secretariat: String,
    ch: Spoke,
    de: Spoke,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let mut config = env.hub_config();
    config.require_signatures = true;
    let hub = Hub::start(config).await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    Setup {
        env,
        hub,
        secretariat,
        ch: Spoke::connect(ch).await.expect("CH connects"),
        de: Spoke::connect(de).await.expect("DE connects"),
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// Registers Anna Signer of CH, empowered since yesterday, with an openssl-made key;
/// returns her key and signatory id.
async fn empower_anna(setup: &Setup) -> (SignerFiles, String) {
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let record = register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        Utc::now() - Duration::days(1),
    )
    .await;
    let signatory_id = record["signatory_id"].as_str().expect("id").to_owned();
    (anna, signatory_id)
}

fn url(hub: &Hub, path: &str) -> String {
    format!("http://{}{path}", hub.http_address())
}

async fn hub_keys(hub: &Hub) -> HubKeys {
    let jwks = reqwest::get(url(hub, "/.well-known/jwks.json"))
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("body");
    HubKeys::from_jwks(&jwks).expect("the hub's JWKS reads")
}

/// Creates the DE authority officer `username` and an API client of it for DE's spoke.
async fn de_api(setup: &Setup, username: &str) -> HubApi {
    setup
        .env
        .add_user(username, Some("DE"), &["authority-officer"])
        .await
        .expect("user");
    let client: serde_json::Value = reqwest::Client::new()
        .post(url(&setup.hub, &format!("/v1/users/{username}/clients")))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    HubApi::new(
        &url(&setup.hub, ""),
        Some(Credentials::Client {
            id: client["client_id"].as_str().expect("client_id").to_owned(),
            secret: client["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_owned(),
        }),
    )
}

async fn remove_signatory(setup: &Setup, signatory_id: &str) {
    let response = reqwest::Client::new()
        .post(url(
            &setup.hub,
            &format!("/v1/signatories/{signatory_id}/removal"),
        ))
        .bearer_auth(&setup.secretariat)
        .json(&serde_json::json!({"effective_at": Utc::now(), "reason": "left the authority"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
}

fn signed(verdict: Verdict) -> epix_shared::trust::SignedBy {
    match verdict {
        Verdict::Signed(signed) => signed,
        other => panic!("expected a valid signature, got {other:?}"),
    }
}

fn refused(verdict: Verdict) -> epix_shared::Problem {
    match verdict {
        Verdict::Refused(problem) => problem,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The next broadcast in `inbox`, skipping nothing: every message here must be one.
async fn next_broadcast(inbox: &mut Inbox, de: &Spoke) -> Delivered {
    let delivered = next_delivery(inbox).await;
    assert!(
        delivered.is_broadcast(),
        "expected a register broadcast, got {:?}",
        delivered.message_type
    );
    de.settle_broadcast(&delivered).await.expect("ack");
    delivered
}

#[tokio::test]
async fn revocations_reach_every_inbox_within_a_second() {
    let setup = setup().await;
    let keys = hub_keys(&setup.hub).await;
    let mut ch_inbox = setup.ch.inbox().await.expect("CH inbox");
    let mut de_inbox = setup.de.inbox().await.expect("DE inbox");
    let (_, signatory_id) = empower_anna(&setup).await;

    // The registration reaches both Parties, CH's own inbox included.
    for (inbox, spoke) in [(&mut ch_inbox, &setup.ch), (&mut de_inbox, &setup.de)] {
        let added = next_broadcast(inbox, spoke).await;
        assert_eq!(added.kind(), Some(MessageType::RegisterSignatoryChanged));
        let change: TrustedSignatory = serde_json::from_slice(&added.body).expect("JSON");
        assert_eq!(change.version, Some(1));
        assert_eq!(added.register_version.as_deref(), Some("1"));
        assert_eq!(change.signatory_id.to_string(), signatory_id);
        assert_eq!(change.empowered_until, None);
        keys.verify(
            added.signature.as_deref().expect("signed"),
            &added.body,
            TYP_SIGNATORY_CHANGE,
        )
        .expect("signed by the hub");
    }

    let started = Instant::now();
    remove_signatory(&setup, &signatory_id).await;
    let removed = next_broadcast(&mut de_inbox, &setup.de).await;
    let elapsed = started.elapsed();
    let change: TrustedSignatory = serde_json::from_slice(&removed.body).expect("JSON");
    assert_eq!(change.version, Some(2));
    assert!(change.empowered_until.is_some(), "{change:?}");
    assert!(
        elapsed < std::time::Duration::from_secs(1),
        "the removal took {elapsed:?} to reach DE's inbox"
    );

    // A removed user's revocation is broadcast too.
    setup
        .env
        .add_user("ch-officer", Some("CH"), &["authority-officer"])
        .await
        .expect("user");
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(url(&setup.hub, "/v1/users/ch-officer/removal"))
        .bearer_auth(&setup.secretariat)
        .json(&serde_json::json!({"reason": "left the authority"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let revoked = next_broadcast(&mut de_inbox, &setup.de).await;
    let elapsed = started.elapsed();
    assert_eq!(revoked.kind(), Some(MessageType::RegisterUserRevoked));
    let revocation: UserRevocation = serde_json::from_slice(&revoked.body).expect("JSON");
    assert_eq!(revocation.username, "ch-officer");
    assert_eq!(revocation.party.as_deref(), Some("CH"));
    keys.verify(
        revoked.signature.as_deref().expect("signed"),
        &revoked.body,
        TYP_USER_REVOCATION,
    )
    .expect("signed by the hub");
    assert!(
        elapsed < std::time::Duration::from_secs(1),
        "the revocation took {elapsed:?} to reach DE's inbox"
    );

    // Each transmission is in the audit trail, naming what was sent to whom.
    let page: serde_json::Value = reqwest::Client::new()
        .get(url(&setup.hub, "/v1/audit?action=register.broadcast"))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let events = page["events"].as_array().expect("events");
    let sent: Vec<(String, Option<i64>)> = events
        .iter()
        .map(|event| {
            assert_eq!(event["actor_kind"], "hub", "{event}");
            assert_eq!(event["details"]["parties"], serde_json::json!(["CH", "DE"]));
            (
                event["details"]["type"].as_str().expect("type").to_owned(),
                event["details"]["register_version"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            ("register.signatory-changed".to_owned(), Some(1)),
            ("register.signatory-changed".to_owned(), Some(2)),
            ("register.user-revoked".to_owned(), None),
        ]
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn spoke_verifies_permits_with_its_copy() {
    let setup = setup().await;
    let (anna, signatory_id) = empower_anna(&setup).await;
    let trust_dir = setup.dir.path().join("de-trust");
    let mut keeper = TrustKeeper::open(&trust_dir, Some(de_api(&setup, "de-spoke").await))
        .await
        .expect("the trust list loads");
    assert_eq!(keeper.version(), 1);
    assert_eq!(keeper.signatories().count(), 1);

    // A signed permit passes the spoke's own check.
    let mut inbox = setup.de.inbox().await.expect("DE inbox");
    let mut receipts = setup.ch.receipts().await.expect("CH receipts");
    let mut outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000300"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    outgoing.sign(&signer(&anna)).expect("signs");
    let message_id = setup.ch.send(outgoing).await.expect("sent");
    let document = loop {
        let delivered = next_delivery(&mut inbox).await;
        if delivered.is_broadcast() {
            let outcome = keeper.handle_broadcast(&delivered).await.expect("applies");
            assert_eq!(outcome, BroadcastOutcome::AlreadyHeld { version: 1 });
            setup.de.settle_broadcast(&delivered).await.expect("ack");
            continue;
        }
        break delivered;
    };
    let verified = signed(keeper.verify_document(&document).await);
    assert_eq!(verified.full_name, "Anna Signer");

    // A document that did not pass through the hub's check, signed by an unknown key, is
    // rejected by the spoke's own check.
    let mallory = openssl_credentials(setup.dir.path(), "mallory", "CH");
    let forged_body = permit_json("CH", "DE", "26CH000301");
    let forged_signature = signer(&mallory)
        .sign(&forged_body, Utc::now())
        .expect("signs");
    publish_to_de(
        &setup,
        MessageType::PermitIssued,
        &forged_body,
        &[
            (HEADER_SENDER, "CH"),
            (HEADER_ISSUING_COUNTRY, "CH"),
            (HEADER_SIGNATURE, &forged_signature),
        ],
    )
    .await;
    let forged = next_delivery(&mut inbox).await;
    let problem = refused(keeper.verify_document(&forged).await);
    assert_eq!(problem.code, ErrorCode::SignatoryUnknown);
    setup.de.settle_broadcast(&forged).await.expect("ack");

    // Anna's genuine signature over a CH permit, delivered under a header naming DE as the
    // issuer: the spoke takes the issuer from the signed body and rejects the mismatch.
    let mislabelled_body = permit_json("CH", "DE", "26CH000302");
    let anna_signature = signer(&anna)
        .sign(&mislabelled_body, Utc::now())
        .expect("signs");
    publish_to_de(
        &setup,
        MessageType::PermitIssued,
        &mislabelled_body,
        &[
            (HEADER_SENDER, "CH"),
            (HEADER_ISSUING_COUNTRY, "DE"),
            (HEADER_SIGNATURE, &anna_signature),
        ],
    )
    .await;
    let mislabelled = next_delivery(&mut inbox).await;
    let problem = refused(keeper.verify_document(&mislabelled).await);
    assert_eq!(problem.code, ErrorCode::HeaderMismatch, "{problem:?}");
    setup.de.settle_broadcast(&mislabelled).await.expect("ack");

    // The removal reaches the copy through the broadcast, and the saved copy keeps it.
    remove_signatory(&setup, &signatory_id).await;
    let removal = next_delivery(&mut inbox).await;
    assert_eq!(
        keeper.handle_broadcast(&removal).await.expect("applies"),
        BroadcastOutcome::RegisterUpdated { version: 2 }
    );
    setup.de.settle_broadcast(&removal).await.expect("ack");
    assert!(
        matches!(
            TrustKeeper::open(&trust_dir, None).await,
            Err(TrustKeeperError::Folder { .. })
        ),
        "a second keeper of the same folder is refused"
    );
    drop(keeper);
    let reopened = TrustKeeper::open(&trust_dir, None)
        .await
        .expect("the saved copy loads without the hub");
    assert_eq!(reopened.version(), 2);
    assert!(
        reopened
            .signatories()
            .all(|signatory| signatory.empowered_until.is_some())
    );
    // The first permit, signed before the removal, still verifies; the acknowledgement
    // completes its delivery.
    let mut reopened = reopened;
    signed(reopened.verify_document(&document).await);
    setup
        .de
        .acknowledge(
            &document,
            &epix_shared::envelope::Acknowledgement {
                outcome: epix_shared::envelope::AcknowledgementOutcome::Received,
                problems: Vec::new(),
            },
        )
        .await
        .expect("acknowledged");
    receipts_until(&mut receipts, message_id, ReceiptStatus::Delivered).await;
    setup.hub.stop().await;
}

#[tokio::test]
async fn spoke_rejects_tampered_trust_list() {
    let setup = setup().await;
    empower_anna(&setup).await;
    let mut keeper = TrustKeeper::open(
        &setup.dir.path().join("de-trust"),
        Some(de_api(&setup, "de-spoke").await),
    )
    .await
    .expect("the trust list loads");
    assert_eq!(keeper.version(), 1);

    // The trust list as served, then with one byte changed under the same signature.
    let response = reqwest::Client::new()
        .get(url(&setup.hub, "/v1/trust-list"))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers");
    let signature = response
        .headers()
        .get("Epix-Signature")
        .expect("signed")
        .to_str()
        .expect("text")
        .to_owned();
    let body = response.bytes().await.expect("body").to_vec();
    keeper
        .accept_list(&body, Some(&signature))
        .await
        .expect("the list as served is accepted");
    let tampered = String::from_utf8(body.clone())
        .expect("UTF-8")
        .replace("Anna Signer", "Eve Signer")
        .into_bytes();
    assert!(matches!(
        keeper.accept_list(&tampered, Some(&signature)).await,
        Err(TrustKeeperError::Refused(TrustError::Invalid))
    ));
    assert!(matches!(
        keeper.accept_list(&body, None).await,
        Err(TrustKeeperError::Refused(TrustError::Malformed(_)))
    ));

    // Keys placed in the folder pin the hub's keys: a list signed with another key is
    // refused, and the spoke does not fetch the hub's key set to replace them.
    let pinned_dir = setup.dir.path().join("pinned");
    std::fs::create_dir_all(&pinned_dir).expect("folder");
    let jwks: serde_json::Value = reqwest::get(url(&setup.hub, "/.well-known/jwks.json"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let mut other = jwks.clone();
    for key in other["keys"].as_array_mut().expect("keys") {
        key["kid"] = format!("not-{}", key["kid"].as_str().expect("kid")).into();
    }
    std::fs::write(pinned_dir.join("hub-jwks.json"), other.to_string()).expect("written");
    assert!(matches!(
        TrustKeeper::open(&pinned_dir, Some(de_api(&setup, "de-pinned-1").await)).await,
        Err(TrustKeeperError::Refused(TrustError::UnknownKey(_)))
    ));
    assert!(!pinned_dir.join("hub-jwks.fetched.json").exists());
    std::fs::write(pinned_dir.join("hub-jwks.json"), jwks.to_string()).expect("written");
    let pinned = TrustKeeper::open(&pinned_dir, Some(de_api(&setup, "de-pinned-2").await))
        .await
        .expect("the genuine keys, pinned, verify the list");
    assert_eq!(pinned.version(), 1);
    drop(pinned);

    // A broadcast whose body was changed after the hub signed it.
    let mut inbox = setup.de.inbox().await.expect("DE inbox");
    let genuine = next_delivery(&mut inbox).await;
    setup.de.settle_broadcast(&genuine).await.expect("ack");
    let mut change: TrustedSignatory = serde_json::from_slice(&genuine.body).expect("JSON");
    change.version = Some(2);
    change.party = "DE".to_owned();
    let changed_body = serde_json::to_vec(&change).expect("JSON");
    publish_to_de(
        &setup,
        MessageType::RegisterSignatoryChanged,
        &changed_body,
        &[
            (
                HEADER_SIGNATURE,
                genuine.signature.as_deref().expect("signed"),
            ),
            (HEADER_REGISTER_VERSION, "2"),
        ],
    )
    .await;
    let forged = next_delivery(&mut inbox).await;
    assert!(matches!(
        keeper.handle_broadcast(&forged).await,
        Err(TrustKeeperError::Refused(TrustError::Invalid))
    ));
    assert_eq!(keeper.version(), 1, "a refused change is not applied");

    // A change signed with the hub's key but skipping versions: the spoke fetches the
    // missing ones from the hub, gets none, and rejects it.
    change.version = Some(5);
    let gap_body = serde_json::to_vec(&change).expect("JSON");
    let gap_signature = setup
        .hub
        .context()
        .token_keys
        .sign_detached(&gap_body, TYP_SIGNATORY_CHANGE)
        .expect("signs");
    publish_to_de(
        &setup,
        MessageType::RegisterSignatoryChanged,
        &gap_body,
        &[
            (HEADER_SIGNATURE, &gap_signature),
            (HEADER_REGISTER_VERSION, "5"),
        ],
    )
    .await;
    let gap = next_delivery(&mut inbox).await;
    assert!(
        matches!(
            keeper.handle_broadcast(&gap).await,
            Err(TrustKeeperError::Refused(TrustError::VersionGap {
                held: 1,
                received: 5
            }))
        ),
        "a version gap the hub cannot fill is refused"
    );
    assert_eq!(keeper.version(), 1);

    // A signature the hub made for another kind of document does not count.
    let revocation_signature = setup
        .hub
        .context()
        .token_keys
        .sign_detached(&gap_body, TYP_USER_REVOCATION)
        .expect("signs");
    publish_to_de(
        &setup,
        MessageType::RegisterSignatoryChanged,
        &gap_body,
        &[(HEADER_SIGNATURE, &revocation_signature)],
    )
    .await;
    let wrong_type = next_delivery(&mut inbox).await;
    assert!(matches!(
        keeper.handle_broadcast(&wrong_type).await,
        Err(TrustKeeperError::Refused(TrustError::WrongType { .. }))
    ));
    setup.hub.stop().await;
}

/// Publishes straight into DE's inbox as the broker administrator, bypassing the hub, as
/// an attacker with broker access would.
async fn publish_to_de(
    setup: &Setup,
    message_type: MessageType,
    body: &[u8],
    headers: &[(&str, &str)],
) {
    let connection = setup.env.broker().await.expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let mut table = FieldTable::default();
    for (name, value) in headers {
        table.insert(
            (*name).into(),
            AMQPValue::LongString((*value).to_owned().into()),
        );
    }
    let properties = BasicProperties::default()
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_type(message_type.as_str().into())
        .with_content_type("application/json".into())
        .with_headers(table);
    channel
        .basic_publish(
            DELIVERY_EXCHANGE.into(),
            inbox_routing_key("DE".parse().expect("code")).into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("published")
        .await
        .expect("confirmed");
    let _ = connection.close(200, "done".into()).await;
}

/// A change made by another process (`epix-hub signatory add` or another replica) reaches
/// the spokes through the running hub's next sweep.
#[tokio::test]
async fn changes_made_elsewhere_are_broadcast_too() {
    let setup = setup().await;
    let mut inbox = setup.de.inbox().await.expect("DE inbox");
    let admin = epix_hub::AdminContext::connect(setup.env.hub_config())
        .await
        .expect("admin context");
    let operator = epix_hub::auth::Principal {
        username: "epix-hub:operator".to_owned(),
        full_name: "command line".to_owned(),
        party: None,
        roles: vec![epix_hub::auth::Role::Secretariat],
        client_id: None,
    };
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let body = epix_hub::http::signatories::CreateSignatory {
        party: "CH".to_owned(),
        full_name: "Anna Signer".to_owned(),
        title: None,
        certificate: std::fs::read_to_string(&anna.cert).expect("certificate"),
        empowered_from: Utc::now() - Duration::days(1),
        notified_at: None,
    };
    let stored = epix_hub::http::signatories::record_signatory(
        admin.context(),
        &operator,
        &epix_hub::audit::RequestMeta::default(),
        body,
    )
    .await
    .expect("recorded");
    let added = next_broadcast(&mut inbox, &setup.de).await;
    let change: TrustedSignatory = serde_json::from_slice(&added.body).expect("JSON");
    assert_eq!(change.signatory_id, stored.signatory_id);
    assert_eq!(change.version, Some(1));

    let removal = epix_hub::http::signatories::RemoveSignatory {
        effective_at: None,
        reason: "left the authority".to_owned(),
    };
    epix_hub::http::signatories::record_removal(
        admin.context(),
        &operator,
        &epix_hub::audit::RequestMeta::default(),
        stored.signatory_id,
        &removal,
    )
    .await
    .expect("removed");
    let removed = next_broadcast(&mut inbox, &setup.de).await;
    let change: TrustedSignatory = serde_json::from_slice(&removed.body).expect("JSON");
    assert_eq!(change.version, Some(2));
    assert!(change.empowered_until.is_some());
    setup.hub.stop().await;
}

/// Register changes made at the same time take consecutive versions, one each.
#[tokio::test]
async fn concurrent_changes_take_versions_without_gaps() {
    let setup = setup().await;
    let names: Vec<String> = (0..8).map(|n| format!("signer{n}")).collect();
    let files: Vec<SignerFiles> = names
        .iter()
        .map(|name| openssl_credentials(setup.dir.path(), name, "CH"))
        .collect();
    let registrations = names.iter().zip(&files).map(|(name, files)| {
        register(
            &setup.hub,
            &setup.secretariat,
            "CH",
            name,
            files,
            Utc::now() - Duration::days(1),
        )
    });
    futures_util::future::join_all(registrations).await;
    let changes: serde_json::Value = reqwest::Client::new()
        .get(url(&setup.hub, "/v1/trust-list/changes?since=0"))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let versions: Vec<i64> = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| change["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, (1..=8).collect::<Vec<i64>>());
    assert_eq!(changes["version"], 8);
    setup.hub.stop().await;
}

/// A broadcast that skips versions makes the spoke fetch the missing ones. A permit whose
/// signer the spoke cannot confirm is acknowledged as failed, with the reason in the receipt.
#[tokio::test]
async fn spoke_fills_gaps_and_reports_refusals() {
    let setup = setup().await;
    let trust_dir = setup.dir.path().join("de-trust");
    let keeper = TrustKeeper::open(&trust_dir, Some(de_api(&setup, "de-spoke").await))
        .await
        .expect("the empty trust list loads");
    assert_eq!(keeper.version(), 0);
    drop(keeper);
    let mut inbox = setup.de.inbox().await.expect("DE inbox");
    let mut receipts = setup.ch.receipts().await.expect("CH receipts");

    let (anna, _) = empower_anna(&setup).await;
    let missed = next_broadcast(&mut inbox, &setup.de).await;
    assert_eq!(missed.register_version.as_deref(), Some("1"));

    // Without the hub to ask, the copy at version 0 does not know Anna: the permit the hub
    // accepted is refused by the spoke, and CH gets a failed receipt with the reason.
    let mut offline = TrustKeeper::open(&trust_dir, None)
        .await
        .expect("the saved copy loads");
    let mut outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000310"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    outgoing.sign(&signer(&anna)).expect("signs");
    let message_id = setup.ch.send(outgoing).await.expect("sent");
    let document = next_delivery(&mut inbox).await;
    let problem = refused(offline.verify_document(&document).await);
    assert_eq!(problem.code, ErrorCode::SignatoryUnknown);
    setup
        .de
        .acknowledge(
            &document,
            &epix_shared::envelope::Acknowledgement {
                outcome: epix_shared::envelope::AcknowledgementOutcome::Failed,
                problems: vec![problem],
            },
        )
        .await
        .expect("acknowledged");
    let seen = receipts_until(&mut receipts, message_id, ReceiptStatus::Failed).await;
    let failed = seen.last().expect("the failed receipt");
    assert_eq!(
        failed.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
        vec![ErrorCode::SignatoryUnknown]
    );
    drop(offline);

    // With a hub that does not respond, an unknown signer is undecided, not rejected.
    let mut unreachable = TrustKeeper::open(
        &trust_dir,
        Some(HubApi::new(
            "http://127.0.0.1:1",
            Some(Credentials::Token("unused".to_owned())),
        )),
    )
    .await
    .expect("the saved copy loads while the hub is away");
    assert!(
        matches!(
            unreachable.verify_document(&document).await,
            Verdict::Undecided(TrustKeeperError::Hub(_))
        ),
        "a signer that only the hub could confirm is left undecided"
    );
    drop(unreachable);

    // The copy catches up to version 1 on opening. Versions 2 and 3 are made; the spoke
    // is shown only 3 and fetches 2 from the hub before applying it.
    let mut keeper = TrustKeeper::open(&trust_dir, Some(de_api(&setup, "de-spoke-2").await))
        .await
        .expect("loads and catches up");
    assert_eq!(keeper.version(), 1);
    let bob = openssl_credentials(setup.dir.path(), "bob", "CH");
    let bob_record = register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Bob Signer",
        &bob,
        Utc::now() - Duration::days(1),
    )
    .await;
    let skipped = next_broadcast(&mut inbox, &setup.de).await;
    assert_eq!(skipped.register_version.as_deref(), Some("2"));
    remove_signatory(&setup, bob_record["signatory_id"].as_str().expect("id")).await;
    let third = next_broadcast(&mut inbox, &setup.de).await;
    assert_eq!(
        keeper
            .handle_broadcast(&third)
            .await
            .expect("fills the gap"),
        BroadcastOutcome::RegisterUpdated { version: 3 }
    );
    assert_eq!(keeper.version(), 3);
    let bob_now = keeper
        .signatories()
        .find(|signatory| signatory.full_name == "Bob Signer")
        .expect("Bob is on the copy");
    assert!(bob_now.empowered_until.is_some(), "and removed");
    setup.hub.stop().await;
}
