//! The audit trail: events of every message and API action, the hash chain and its check,
//! the database roles, retention with legal holds, and exports checked offline.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Datelike, Duration, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use epix_hub::Hub;
use epix_hub::audit::query::{self, Filter};
use epix_hub::audit::{export, retention};
use epix_hub::auth::{Clock, ManualClock};
use epix_shared::ReceiptStatus;
use epix_shared::audit::{AuditRecord, ChainEntry, to_hex};
use epix_shared::envelope::{Acknowledgement, AcknowledgementOutcome, HEADER_SENDER, MessageType};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TEST_PASSWORD, TestEnv, permit_json};

use crate::signatures::{openssl_credentials, register, signer};
use crate::support::{init_logging, next_delivery, receipts_until};

/// Loads every event that matches `filter`, in chain order.
async fn events(connection: &mut AsyncPgConnection, filter: Filter) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    let mut filter = filter;
    loop {
        let page = query::list(connection, &filter, query::MAX_PAGE)
            .await
            .expect("audit query");
        let Some(last) = page.last() else { break };
        filter.after = Some(last.seq);
        all.extend(page);
    }
    all
}

async fn permit_events(
    connection: &mut AsyncPgConnection,
    country: &str,
    number: &str,
) -> Vec<AuditRecord> {
    let filter = Filter {
        permit: Some((country.to_owned(), number.to_owned())),
        ..Filter::default()
    };
    events(connection, filter).await
}

fn actions(events: &[AuditRecord]) -> Vec<&str> {
    events.iter().map(|event| event.action.as_str()).collect()
}

async fn get_json(hub: &Hub, token: &str, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", hub.http_address()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the hub answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

fn signed_amendment(number: &str, signer: &epix_shared::signature::Signer) -> Outgoing {
    let mut document: serde_json::Value =
        serde_json::from_slice(&permit_json("CH", "DE", number)).expect("JSON");
    document["lines"][0]["quantity"] = 10.into();
    let body = serde_json::to_vec_pretty(&document).expect("JSON");
    let mut outgoing = Outgoing::issued_json(body, "DE".parse().expect("code")).expect("valid");
    outgoing.message_type = MessageType::PermitAmended;
    outgoing.sign(signer).expect("signs");
    outgoing
}

#[tokio::test]
async fn router_events_name_spoke_and_headers() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    env.add_party("FR").await.expect("add FR");
    let (ch_user, de_user) = (ch.broker_user.clone(), de.broker_user.clone());
    let mut config = env.hub_config();
    // The hub works with the application role's rights, as in production.
    config.database_role = Some("epix_hub_app".to_owned());
    let hub = Hub::start(config).await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let dir = tempfile::tempdir().expect("temp dir");
    let anna = openssl_credentials(dir.path(), "anna", "CH");
    let since = Utc::now() - Duration::days(1);
    register(&hub, &secretariat, "CH", "Anna Signer", &anna, since).await;

    let sender = Spoke::connect(ch).await.expect("CH connects");
    let receiver = Spoke::connect(de).await.expect("DE connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");

    let number = "26CH/A/0001";
    let body = permit_json("CH", "DE", number);
    let mut issued =
        Outgoing::issued_json(body.clone(), "DE".parse().expect("code")).expect("valid");
    issued.sign(&signer(&anna)).expect("signs");
    let issued_id = sender.send(issued).await.expect("sent");
    receipts_until(&mut receipts, issued_id, ReceiptStatus::Accepted).await;
    let amended_id = sender
        .send(signed_amendment(number, &signer(&anna)))
        .await
        .expect("sent");
    receipts_until(&mut receipts, amended_id, ReceiptStatus::Accepted).await;

    // Types the hub does not accept yet are recorded as submitted and rejected.
    let unsupported = [
        (MessageType::PermitCancelled, "26CH/A/0002"),
        (MessageType::PermitReplaced, "26CH/A/0003"),
        (MessageType::PermitEndorsed, "26CH/A/0004"),
        (MessageType::PermitImportConfirmed, "26CH/A/0005"),
    ];
    for (message_type, unsupported_number) in unsupported {
        let mut outgoing = Outgoing::unchecked(
            permit_json("CH", "DE", unsupported_number),
            "application/json",
            message_type,
            "DE".parse().expect("code"),
        );
        outgoing.issuing_country = Some("CH".to_owned());
        outgoing.document_number = Some(unsupported_number.to_owned());
        let message_id = sender.send(outgoing).await.expect("sent");
        receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    }

    // The register broadcast of Anna's record reaches DE's inbox before the permits.
    let mut delivered = next_delivery(&mut inbox).await;
    while delivered.is_broadcast() {
        receiver
            .settle_broadcast(&delivered)
            .await
            .expect("settled");
        delivered = next_delivery(&mut inbox).await;
    }
    assert_eq!(delivered.correlation_id, Some(issued_id));
    let acknowledgement = Acknowledgement {
        outcome: AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    receiver
        .acknowledge(&delivered, &acknowledgement)
        .await
        .expect("acknowledged");
    receipts_until(&mut receipts, issued_id, ReceiptStatus::Delivered).await;

    let mut connection = env.database().await.expect("database");
    let trail = permit_events(&mut connection, "CH", number).await;
    assert_eq!(
        actions(&trail),
        [
            "message.submitted",
            "message.accepted",
            "permit.issued",
            "message.submitted",
            "message.accepted",
            "permit.amended",
            "message.submitted",
            "message.acknowledged",
            "message.delivered",
        ],
        "{trail:#?}"
    );
    let submitted = &trail[0];
    assert_eq!(submitted.actor_kind, "spoke");
    assert_eq!(submitted.actor_id.as_deref(), Some(ch_user.as_str()));
    assert_eq!(submitted.actor_party.as_deref(), Some("CH"));
    assert_eq!(submitted.message_id, Some(issued_id));
    assert_eq!(submitted.addressee.as_deref(), Some("DE"));
    assert_eq!(submitted.permit_version, Some(1));
    let amqp = submitted
        .amqp
        .clone()
        .expect("AMQP properties are recorded");
    assert_eq!(amqp["type"], "permit.issued");
    assert_eq!(amqp["user_id"], ch_user.as_str());
    assert_eq!(amqp["headers"][HEADER_SENDER], "CH", "{amqp}");
    assert_eq!(
        submitted.body_sha256.as_deref(),
        Some(to_hex(&openssl::sha::sha256(&body)).as_str())
    );
    assert_eq!(trail[1].actor_kind, "hub");
    assert_eq!(trail[2].actor_name.as_deref(), Some("Anna Signer"));
    assert_eq!(trail[2].permit_version, Some(1));
    assert!(
        trail[2].details["signatory_id"].is_string(),
        "{:?}",
        trail[2]
    );
    assert_eq!(trail[5].actor_name.as_deref(), Some("Anna Signer"));
    assert_eq!(trail[5].permit_version, Some(2));
    assert_eq!(trail[5].message_id, Some(amended_id));
    let acknowledging = &trail[6];
    assert_eq!(acknowledging.actor_id.as_deref(), Some(de_user.as_str()));
    assert_eq!(acknowledging.actor_party.as_deref(), Some("DE"));
    assert_eq!(
        acknowledging.amqp.as_ref().map(|amqp| amqp["type"].clone()),
        Some(serde_json::json!("receipt.acknowledged"))
    );
    assert_eq!(trail[7].actor_party.as_deref(), Some("DE"));
    assert_eq!(trail[7].message_id, Some(issued_id));
    assert_eq!(trail[8].actor_kind, "hub");
    assert_eq!(trail[8].details["status"], "delivered");
    let seqs: Vec<i64> = trail.iter().map(|event| event.seq).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");

    for (message_type, unsupported_number) in unsupported {
        let rejected = permit_events(&mut connection, "CH", unsupported_number).await;
        assert_eq!(
            actions(&rejected),
            ["message.submitted", "message.rejected"],
            "{message_type:?}"
        );
        assert_eq!(
            rejected[0].amqp.as_ref().map(|amqp| amqp["type"].clone()),
            Some(serde_json::json!(message_type.as_str()))
        );
        assert_eq!(rejected[0].actor_party.as_deref(), Some("CH"));
        assert_eq!(
            rejected[1].details["problems"][0]["code"], "message_type_unsupported",
            "{:?}",
            rejected[1]
        );
    }

    // The timeline, with the `/` of the number unencoded, encoded, and as a parameter.
    for path in [
        "/v1/permits/CH/26CH/A/0001/timeline".to_owned(),
        "/v1/permits/CH/26CH%2FA%2F0001/timeline".to_owned(),
        "/v1/permits/timeline?country=CH&number=26CH%2FA%2F0001".to_owned(),
    ] {
        let (status, page) = get_json(&hub, &secretariat, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let listed: Vec<i64> = page["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|event| event["seq"].as_i64())
            .collect();
        assert_eq!(listed, seqs, "{path}");
    }
    let (status, permit) = get_json(&hub, &secretariat, "/v1/permits/CH/26CH/A/0001").await;
    assert_eq!(status, 200, "the lookup still answers: {permit}");
    assert_eq!(permit["permit_number"], number);

    // Each authority reads the events of its own Party's permits only.
    let fr_officer = env
        .user_token(&hub, "fr-officer", Some("FR"), &["authority-officer"])
        .await
        .expect("login");
    let de_officer = env
        .user_token(&hub, "de-officer", Some("DE"), &["authority-officer"])
        .await
        .expect("login");
    let de_customs = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("login");
    let by_permit = "/v1/audit?country=CH&number=26CH%2FA%2F0001";
    let (status, page) = get_json(&hub, &fr_officer, by_permit).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["events"],
        serde_json::json!([]),
        "FR sees none of CH's events"
    );
    let (_, page) = get_json(&hub, &fr_officer, "/v1/audit?limit=1000").await;
    let seen = page["events"].as_array().expect("events");
    assert!(!seen.is_empty(), "FR sees its own login");
    assert!(
        seen.iter().all(|event| [
            &event["actor_party"],
            &event["permit_country"],
            &event["addressee"]
        ]
        .iter()
        .any(|party| *party == "FR")),
        "{page}"
    );
    let (_, page) = get_json(&hub, &fr_officer, "/v1/permits/CH/26CH/A/0001/timeline").await;
    assert_eq!(page["events"], serde_json::json!([]));
    let (_, page) = get_json(&hub, &de_officer, by_permit).await;
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(seqs.len()),
        "the addressee sees the permit's events"
    );
    let (status, _) = get_json(&hub, &de_customs, by_permit).await;
    assert_eq!(status, 403, "customs may not read the trail");
    let (status, _) = get_json(&hub, &de_officer, "/v1/audit/verify").await;
    assert_eq!(status, 403, "an authority may not run the chain check");
    let (status, report) = get_json(&hub, &secretariat, "/v1/audit/verify").await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "{report}");
    let (status, problem) = get_json(&hub, &secretariat, "/v1/audit?limit=1001").await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("limit"),
        "{problem}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn api_actions_are_audited_with_request() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let base = format!("http://{}", hub.http_address());
    let client = reqwest::Client::new();
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let auditor = env
        .user_token(&hub, "inspector", None, &["auditor"])
        .await
        .expect("login");
    let failed = client
        .post(format!("{base}/v1/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "registrar"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(failed.status(), 401);

    let created = client
        .post(format!("{base}/v1/users"))
        .bearer_auth(&secretariat)
        .header("X-Request-Id", "audit-test-request-1")
        .json(&serde_json::json!({
            "username": "ch-admin", "full_name": "Claire Admin", "party": "CH",
            "roles": ["authority-admin"], "password": TEST_PASSWORD
        }))
        .send()
        .await
        .expect("answers");
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"audit-test-request-1"[..]),
        "the given request id is echoed"
    );
    let ch_admin = env.login(&hub, "ch-admin").await.expect("login");

    let dir = tempfile::tempdir().expect("temp dir");
    let anna = openssl_credentials(dir.path(), "anna", "CH");
    let since = Utc::now() - Duration::days(1);
    let pending = register(&hub, &ch_admin, "CH", "Anna Signer", &anna, since).await;
    let record_id = pending["record_id"].as_i64().expect("record id");
    let approved = client
        .post(format!(
            "{base}/v1/signatories/records/{record_id}/approval"
        ))
        .bearer_auth(&secretariat)
        .send()
        .await
        .expect("answers");
    assert_eq!(approved.status(), 200);
    let signatory_id = pending["signatory_id"].as_str().expect("signatory id");
    let removed = client
        .post(format!("{base}/v1/signatories/{signatory_id}/removal"))
        .bearer_auth(&ch_admin)
        .json(&serde_json::json!({"reason": "left the authority"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(removed.status(), 200);

    let customs = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("login");
    let looked_up = client
        .get(format!("{base}/v1/permits/CH/26CH/X/9"))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers");
    assert_eq!(looked_up.status(), 404);
    let generated = looked_up
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("a request id is made when none is given");
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let year = Utc::now().year();
    let report_url = format!("{base}/v1/parties/CH/annual-reports/{year}");
    let received_on = format!("{}-02-15", year + 1);
    let by_admin = client
        .put(&report_url)
        .bearer_auth(&ch_admin)
        .json(&serde_json::json!({"received_on": received_on}))
        .send()
        .await
        .expect("answers");
    assert_eq!(by_admin.status(), 200);
    let too_early = client
        .put(&report_url)
        .bearer_auth(&ch_admin)
        .json(&serde_json::json!({"received_on": format!("{year}-06-01")}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        too_early.status(),
        400,
        "a report cannot arrive within its year"
    );
    let other_party = client
        .put(format!("{base}/v1/parties/DE/annual-reports/{year}"))
        .bearer_auth(&ch_admin)
        .json(&serde_json::json!({"received_on": received_on}))
        .send()
        .await
        .expect("answers");
    assert_eq!(other_party.status(), 403);

    let hold_url = format!("{base}/v1/permits/CH/26CH/X/9/hold");
    let placed = client
        .post(&hold_url)
        .bearer_auth(&auditor)
        .json(&serde_json::json!({"reason": "court case 12/2026"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(placed.status(), 200);
    let again = client
        .post(&hold_url)
        .bearer_auth(&auditor)
        .json(&serde_json::json!({"reason": "twice"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(again.status(), 409);
    let by_authority = client
        .post(&hold_url)
        .bearer_auth(&ch_admin)
        .json(&serde_json::json!({"reason": "mine"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(by_authority.status(), 403);
    let lifted = client
        .delete(&hold_url)
        .bearer_auth(&auditor)
        .send()
        .await
        .expect("answers");
    assert_eq!(lifted.status(), 204);

    for action in ["unlock", "clients"] {
        let response = client
            .post(format!("{base}/v1/users/ch-admin/{action}"))
            .bearer_auth(&secretariat)
            .send()
            .await
            .expect("answers");
        assert!(
            response.status().is_success(),
            "{action}: {}",
            response.status()
        );
    }

    let removal = client
        .post(format!("{base}/v1/users/de-customs/removal"))
        .bearer_auth(&secretariat)
        .json(&serde_json::json!({"reason": "moved to another post"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(removal.status(), 200);

    let mut connection = env.database().await.expect("database");
    let trail = events(&mut connection, Filter::default()).await;
    let find = |action: &str, actor: &str| {
        trail
            .iter()
            .find(|event| event.action == action && event.actor_id.as_deref() == Some(actor))
            .unwrap_or_else(|| panic!("no {action} event by {actor} in {trail:#?}"))
    };
    let login = find("login.succeeded", "registrar");
    assert_eq!(login.actor_kind, "user");
    assert_eq!(login.client_address.as_deref(), Some("127.0.0.1"));
    let failed = find("login.failed", "registrar");
    assert_eq!(failed.details["reason"], "wrong_secret");
    let created = find("user.created", "registrar");
    assert_eq!(created.request_id.as_deref(), Some("audit-test-request-1"));
    assert_eq!(created.actor_name.as_deref(), Some("Test user registrar"));
    assert_eq!(created.actor_roles, ["secretariat"]);
    assert_eq!(created.client_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(created.details["user"], "ch-admin");
    let recorded = find("register.signatory_recorded", "ch-admin");
    assert_eq!(recorded.actor_name.as_deref(), Some("Claire Admin"));
    assert_eq!(recorded.actor_party.as_deref(), Some("CH"));
    assert_eq!(recorded.details["status"], "pending");
    assert_eq!(recorded.details["full_name"], "Anna Signer");
    let approval = find("register.signatory_approved", "registrar");
    assert_eq!(approval.details["record_id"], record_id);
    let removal = find("register.signatory_removed", "ch-admin");
    assert_eq!(removal.details["change_reason"], "left the authority");
    let lookup = find("permit.looked_up", "de-customs");
    assert_eq!(lookup.permit_country.as_deref(), Some("CH"));
    assert_eq!(lookup.permit_number.as_deref(), Some("26CH/X/9"));
    assert_eq!(lookup.details["found"], false);
    assert_eq!(lookup.request_id.as_deref(), Some(generated.as_str()));
    let annual = find("annual_report.recorded", "ch-admin");
    assert_eq!(annual.details["received_on"], received_on);
    let placed = find("permit.hold_placed", "inspector");
    assert_eq!(placed.permit_number.as_deref(), Some("26CH/X/9"));
    assert_eq!(placed.details["reason"], "court case 12/2026");
    find("permit.hold_lifted", "inspector");
    let unlocked = find("user.unlocked", "registrar");
    assert_eq!(unlocked.details["user"], "ch-admin");
    let api_client = find("user.client_created", "registrar");
    assert!(
        api_client.details["client_id"].is_string(),
        "{api_client:?}"
    );
    let revoked = find("user.removed", "registrar");
    assert_eq!(revoked.details["user"], "de-customs");
    assert_eq!(revoked.details["reason"], "moved to another post");
    hub.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

#[tokio::test]
async fn audit_rows_resist_tampering() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("CH").await.expect("add CH");
    // A security event of the table before the trail moves into the chain at start.
    let mut connection = env.database().await.expect("database");
    diesel::sql_query(
        "INSERT INTO audit_legacy_events (action, actor, subject, client_address) \
         VALUES ('login_succeeded', 'old-user', 'old-user', '192.0.2.1')",
    )
    .execute(&mut connection)
    .await
    .expect("legacy row");
    let hub = env.start_hub().await.expect("hub starts");
    let auditor = env
        .user_token(&hub, "inspector", None, &["auditor"])
        .await
        .expect("login");
    for name in ["ch-one", "ch-two", "ch-three"] {
        env.user_token(&hub, name, Some("CH"), &["authority-officer"])
            .await
            .expect("login");
    }
    let trail = events(&mut connection, Filter::default()).await;
    assert_eq!(trail[0].seq, 1);
    assert_eq!(trail[0].details["migrated_from"], "audit_events");
    assert_eq!(trail[0].actor_id.as_deref(), Some("old-user"));
    let (_, report) = get_json(&hub, &auditor, "/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"], trail.len() as u64);

    // The application role may read and append, never change or delete.
    diesel::sql_query("SET ROLE epix_hub_app")
        .execute(&mut connection)
        .await
        .expect("set role");
    let readable: Vec<Count> = diesel::sql_query("SELECT count(*) AS count FROM audit_trail")
        .load(&mut connection)
        .await
        .expect("the app role reads the trail");
    assert_eq!(readable[0].count, trail.len() as i64);
    let month = format!("audit_trail_{}", Utc::now().format("%Y%m"));
    for statement in [
        "UPDATE audit_trail SET client_address = '10.0.0.1' WHERE seq = 2".to_owned(),
        "DELETE FROM audit_trail WHERE seq = 2".to_owned(),
        "TRUNCATE audit_trail".to_owned(),
        format!("UPDATE {month} SET client_address = '10.0.0.1' WHERE seq = 2"),
        format!("DELETE FROM {month} WHERE seq = 2"),
        format!("TRUNCATE {month}"),
        "TRUNCATE audit_trail_default".to_owned(),
        "DELETE FROM audit_purged".to_owned(),
        "INSERT INTO audit_purged (seq, hash, purge_seq) SELECT seq, hash, seq + 1 FROM audit_trail WHERE seq = 2".to_owned(),
        "DELETE FROM audit_head".to_owned(),
        "TRUNCATE audit_head".to_owned(),
        "UPDATE audit_head SET seq = 1".to_owned(),
    ] {
        let refused = diesel::sql_query(&statement)
            .execute(&mut connection)
            .await;
        assert!(refused.is_err(), "the app role ran {statement}");
    }
    diesel::sql_query("RESET ROLE")
        .execute(&mut connection)
        .await
        .expect("reset role");
    // The trigger rejects the owner too, on the parent and on one partition.
    for statement in [
        "UPDATE audit_trail SET client_address = '10.0.0.1' WHERE seq = 3".to_owned(),
        format!("TRUNCATE {month}"),
        "TRUNCATE audit_trail_default".to_owned(),
    ] {
        let by_owner = diesel::sql_query(&statement).execute(&mut connection).await;
        let message = by_owner
            .expect_err("the trigger refuses the owner")
            .to_string();
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
    let zero = diesel::sql_query(
        "INSERT INTO audit_trail (seq, occurred_at, action, actor_kind, prev_hash, hash) \
         SELECT 0, occurred_at, action, actor_kind, prev_hash, hash FROM audit_trail WHERE seq = 1",
    )
    .execute(&mut connection)
    .await;
    assert!(zero.is_err(), "a row with seq 0 was inserted");

    // A copy of an event inserted past the head, or under a seq that exists, is found.
    let last = trail[trail.len() - 1].seq;
    diesel::sql_query("SET session_replication_role = replica")
        .execute(&mut connection)
        .await
        .expect("bypass triggers");
    for (seq, shift) in [(last + 10, "0"), (2, "1 second")] {
        let copy = format!(
            "INSERT INTO audit_trail SELECT {seq}, occurred_at + interval '{shift}', action, \
             actor_kind, actor_id, actor_name, actor_party, actor_roles, permit_country, \
             permit_number, permit_version, addressee, message_id, amqp, body_sha256, \
             request_id, client_address, details, prev_hash, hash \
             FROM audit_trail WHERE seq = 2"
        );
        diesel::sql_query(copy)
            .execute(&mut connection)
            .await
            .expect("copy an event");
        let report = query::verify(&mut connection).await.expect("verify");
        let bad = report.first_bad.expect("the copy is found");
        assert_eq!(bad.seq, seq, "{}", bad.reason);
        diesel::sql_query(format!(
            "DELETE FROM audit_trail WHERE seq = {seq} AND occurred_at = \
             (SELECT max(occurred_at) FROM audit_trail WHERE seq = {seq})"
        ))
        .execute(&mut connection)
        .await
        .expect("remove the copy");
    }
    let report = query::verify(&mut connection).await.expect("verify");
    assert!(report.ok, "{report:?}");

    // With triggers bypassed the change goes through, and the check names that row.
    let tampered = trail[trail.len() - 2].seq;
    let changed = diesel::sql_query(format!(
        "UPDATE audit_trail SET client_address = '10.0.0.1' WHERE seq = {tampered}"
    ))
    .execute(&mut connection)
    .await
    .expect("update with triggers bypassed");
    assert_eq!(changed, 1);
    let report = query::verify(&mut connection).await.expect("verify");
    assert!(!report.ok);
    let bad = report.first_bad.expect("a broken event");
    assert_eq!(bad.seq, tampered, "{}", bad.reason);
    assert!(bad.reason.contains("was changed"), "{}", bad.reason);
    let (_, report) = get_json(&hub, &auditor, "/v1/audit/verify").await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["seq"], tampered);

    // A deleted last event is found through the head.
    let last = trail[trail.len() - 1].seq;
    diesel::sql_query(format!("DELETE FROM audit_trail WHERE seq >= {tampered}"))
        .execute(&mut connection)
        .await
        .expect("delete with triggers bypassed");
    let report = query::verify(&mut connection).await.expect("verify");
    assert_eq!(
        report.first_bad.map(|bad| bad.seq),
        Some(tampered),
        "head at {last}"
    );

    // A stub put in place of a deleted event fails unless a retention.purged event
    // vouches for it.
    diesel::sql_query(
        "WITH gone AS (DELETE FROM audit_trail WHERE seq = 3 RETURNING seq, hash) \
         INSERT INTO audit_purged (seq, hash, purge_seq) SELECT seq, hash, 4 FROM gone",
    )
    .execute(&mut connection)
    .await
    .expect("forge a stub");
    let report = query::verify(&mut connection).await.expect("verify");
    let bad = report.first_bad.expect("the forged stub is found");
    assert_eq!(bad.seq, 3, "{}", bad.reason);
    assert!(bad.reason.contains("retention.purged"), "{}", bad.reason);
    hub.stop().await;
}

/// Issues `number` from `issuer` to `addressee` and waits for its acceptance.
async fn issue(
    spoke: &Spoke,
    receipts: &mut epix_spoke::Receipts,
    issuer: &str,
    addressee: &str,
    number: &str,
) {
    let outgoing = Outgoing::issued_json(
        permit_json(issuer, addressee, number),
        addressee.parse().expect("code"),
    )
    .expect("valid");
    let message_id = spoke.send(outgoing).await.expect("sent");
    receipts_until(receipts, message_id, ReceiptStatus::Accepted).await;
}

/// Returns the seqs of the events that a purge at `as_of` may delete when the permits
/// `expired` are past their retention dates. These are the events of those permits and the
/// events without a permit, in both cases at least five years old, except the
/// `retention.purged` events, which are kept.
fn purgeable(
    trail: &[AuditRecord],
    as_of: chrono::DateTime<Utc>,
    expired: &[&str],
) -> BTreeSet<i64> {
    let cutoff = as_of - chrono::Months::new(60);
    trail
        .iter()
        .filter(|event| event.occurred_at < cutoff)
        .filter(|event| event.action != "retention.purged")
        .filter(|event| match &event.permit_number {
            None => true,
            Some(number) => expired.contains(&number.as_str()),
        })
        .map(|event| event.seq)
        .collect()
}

fn seqs(trail: &[AuditRecord]) -> BTreeSet<i64> {
    trail.iter().map(|event| event.seq).collect()
}

/// Records, through the API, the date `party`'s annual report for `year` was received.
async fn record_report(hub: &Hub, token: &str, party: &str, year: i32, received_on: &str) {
    let response = reqwest::Client::new()
        .put(format!(
            "http://{}/v1/parties/{party}/annual-reports/{year}",
            hub.http_address()
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({ "received_on": received_on }))
        .send()
        .await
        .expect("the hub answers");
    assert_eq!(response.status(), 200, "{party} {year}");
}

/// Returns the years from today's through the year of `permit_json`'s valid_until date:
/// the years whose annual reports decide a permit's retention.
fn permit_years() -> std::ops::RangeInclusive<i32> {
    let today = Utc::now().date_naive();
    today.year()..=(today + chrono::Days::new(150)).year()
}

#[tokio::test]
async fn retention_purges_only_expired_events() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let fr = env.add_party("FR").await.expect("add FR");
    let it = env.add_party("IT").await.expect("add IT");
    let clock = Arc::new(ManualClock::default());
    // Unsigned permits keep this test about retention, not signatures.
    let mut config = env.hub_config();
    config.require_signatures = false;
    let hub = Hub::start_with_clock(config, clock.clone())
        .await
        .expect("hub starts");
    let base = format!("http://{}", hub.http_address());
    let client = reqwest::Client::new();
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let auditor = env
        .user_token(&hub, "inspector", None, &["auditor"])
        .await
        .expect("login");

    // CH and DE report early, so A is past retention in seven years. B: FR never
    // reported. C: like A but on legal hold. D: its exporter IT reported three years late,
    // and E: its importer IT did, so both are kept longer.
    let permits = [
        (
            ch,
            "CH",
            vec![("DE", "26CH/R/A"), ("DE", "26CH/R/C"), ("IT", "26CH/R/E")],
        ),
        (fr, "FR", vec![("DE", "26FR/R/B")]),
        (it, "IT", vec![("CH", "26IT/R/D")]),
    ];
    for (config, issuer, sent) in permits {
        let spoke = Spoke::connect(config).await.expect("connects");
        let mut receipts = spoke.receipts().await.expect("receipts");
        for (addressee, number) in sent {
            issue(&spoke, &mut receipts, issuer, addressee, number).await;
        }
    }

    let late = (Utc::now() + chrono::Months::new(36))
        .date_naive()
        .to_string();
    for year in permit_years() {
        let early = format!("{}-01-31", year + 1);
        record_report(&hub, &secretariat, "CH", year, &early).await;
        record_report(&hub, &secretariat, "DE", year, &early).await;
        record_report(&hub, &secretariat, "IT", year, &late).await;
    }
    let hold_url = format!("{base}/v1/permits/CH/26CH/R/C/hold");
    let placed = client
        .post(&hold_url)
        .bearer_auth(&auditor)
        .json(&serde_json::json!({"reason": "investigation"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(placed.status(), 200);
    let mut connection = env.database().await.expect("database");
    // Nothing is five years old yet.
    let now = clock.now();
    let none = retention::purge(&mut connection, now, None)
        .await
        .expect("purge");
    assert_eq!(none.deleted, 0);

    clock.advance(Duration::days(7 * 366));
    let as_of = clock.now();
    let before = events(&mut connection, Filter::default()).await;
    let expected = purgeable(&before, as_of, &["26CH/R/A"]);
    assert!(expected.iter().any(|seq| {
        before
            .iter()
            .any(|e| e.seq == *seq && e.permit_number.is_some())
    }));
    let archive = tempfile::tempdir().expect("temp dir");
    let report = retention::purge(&mut connection, as_of, Some(archive.path()))
        .await
        .expect("purge");
    assert_eq!(report.deleted, expected.len() as u64);
    let after = events(&mut connection, Filter::default()).await;
    let deleted: BTreeSet<i64> = seqs(&before).difference(&seqs(&after)).copied().collect();
    assert_eq!(deleted, expected, "exactly the expired events are deleted");
    for number in ["26FR/R/B", "26CH/R/C", "26IT/R/D", "26CH/R/E"] {
        let kept = after
            .iter()
            .filter(|e| e.permit_number.as_deref() == Some(number))
            .count();
        let had = before
            .iter()
            .filter(|e| e.permit_number.as_deref() == Some(number))
            .count();
        assert_eq!(kept, had, "{number} keeps every event");
    }

    // The archive contains exactly the deleted events, written before they went, and
    // verifies offline across the kept events between them.
    let file = std::fs::read_to_string(&report.archives[0]).expect("archive");
    let archived: BTreeSet<i64> = file
        .lines()
        .filter_map(|line| match serde_json::from_str::<ChainEntry>(line) {
            Ok(ChainEntry::Event(event)) => Some(event.seq),
            Ok(_) => None,
            Err(error) => panic!("an archive line does not parse: {error}: {line}"),
        })
        .collect();
    assert_eq!(archived, expected);
    let summary = export::verify_jsonl(file.as_bytes()).expect("the archive verifies");
    assert_eq!(summary.checked, expected.len() as u64);
    let purged = after
        .iter()
        .find(|event| event.action == "retention.purged")
        .expect("the purge is audited");
    assert_eq!(purged.details["deleted"], expected.len());
    let (first, last) = (expected.iter().next(), expected.iter().next_back());
    assert_eq!(purged.details["first_seq"].as_i64(), first.copied());
    assert_eq!(purged.details["last_seq"].as_i64(), last.copied());
    let verified = query::verify(&mut connection).await.expect("verify");
    assert!(verified.ok, "{verified:?}");

    // Lifting the hold lets C's events go at the next run.
    let lifted = client
        .delete(&hold_url)
        .bearer_auth(&auditor)
        .send()
        .await
        .expect("answers");
    assert_eq!(lifted.status(), 204);
    let expected = purgeable(&after, as_of, &["26CH/R/A", "26CH/R/C"]);
    let report = retention::purge(&mut connection, as_of, None)
        .await
        .expect("purge");
    let remaining = events(&mut connection, Filter::default()).await;
    let deleted: BTreeSet<i64> = seqs(&after)
        .difference(&seqs(&remaining))
        .copied()
        .collect();
    assert_eq!(deleted, expected);
    assert_eq!(report.deleted, expected.len() as u64);
    let lifted_event = remaining
        .iter()
        .find(|event| event.action == "permit.hold_lifted")
        .expect("kept: it is not five years old");
    assert_eq!(lifted_event.permit_number.as_deref(), Some("26CH/R/C"));
    let verified = query::verify(&mut connection).await.expect("verify");
    assert!(verified.ok, "{verified:?}");

    // An export that ends with the first purge event contains stubs of the second. It goes
    // on with the second purge event, so those stubs are vouched for.
    let first_purge = remaining
        .iter()
        .find(|event| event.action == "retention.purged")
        .expect("a purge event");
    let mut exported = Vec::new();
    export::write_jsonl(
        &mut connection,
        as_of - Duration::days(10 * 366),
        first_purge.occurred_at + Duration::microseconds(1),
        &mut exported,
    )
    .await
    .expect("export");
    let text = String::from_utf8(exported).expect("UTF-8");
    let last_line = text.lines().last().expect("lines");
    let last_entry: ChainEntry = serde_json::from_str(last_line).expect("an entry");
    match last_entry {
        ChainEntry::Event(event) => {
            assert_eq!(event.action, "retention.purged", "{text}");
            assert!(event.seq > first_purge.seq, "{text}");
        }
        other => panic!("expected the purge event last, got {other:?}"),
    }
    assert!(text.contains("\"omitted_from\""), "{text}");
    export::verify_jsonl(text.as_bytes()).expect("the export verifies");
    let lines: Vec<&str> = text.lines().collect();
    let without_purges = &lines[..lines.len() - 1];
    let error = export::verify_jsonl(without_purges.join("\n").as_bytes())
        .expect_err("stubs whose purge event is cut off fail");
    match error {
        export::FileError::Broken { problem, .. } => {
            assert!(
                problem.reason.contains("retention.purged"),
                "{}",
                problem.reason
            )
        }
        other => panic!("expected a broken chain, got {other}"),
    }

    // An export across the purged gaps still verifies offline, and a changed line fails.
    let mut exported = Vec::new();
    let written = export::write_jsonl(
        &mut connection,
        as_of - Duration::days(10 * 366),
        as_of + Duration::days(1),
        &mut exported,
    )
    .await
    .expect("export");
    let text = String::from_utf8(exported).expect("UTF-8");
    assert_eq!(written as usize, text.lines().count());
    assert!(
        text.contains("\"purged\":true"),
        "stubs of purged events are exported"
    );
    let summary = export::verify_jsonl(text.as_bytes()).expect("the export verifies");
    let omitted = text
        .lines()
        .filter(|line| line.contains("omitted_from"))
        .count();
    assert_eq!(summary.checked + omitted as u64, written);
    let head = remaining.last().expect("events").seq;
    assert_eq!(summary.last.map(|(seq, _)| seq), Some(head));

    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains("\"26IT/R/D\""))
        .expect("a line of D");
    let changed = line.replacen("\"26IT/R/D\"", "\"26IT/R/X\"", 1);
    let tampered: Vec<&str> = text
        .lines()
        .enumerate()
        .map(|(i, original)| {
            if i == index {
                changed.as_str()
            } else {
                original
            }
        })
        .collect();
    let error =
        export::verify_jsonl(tampered.join("\n").as_bytes()).expect_err("a changed line fails");
    match error {
        export::FileError::Broken { line, problem } => {
            assert_eq!(line, index + 1);
            let record: AuditRecord = serde_json::from_str(&changed).expect("event");
            assert_eq!(problem.seq, record.seq);
        }
        other => panic!("expected a broken chain, got {other}"),
    }
    hub.stop().await;
}

/// Sends a signed permit document of type `other` (valid up to 36 months) from CH to DE
/// as `message_type`, and waits for its acceptance.
async fn send_other(
    spoke: &Spoke,
    receipts: &mut epix_spoke::Receipts,
    signer: &epix_shared::signature::Signer,
    number: &str,
    valid_until: chrono::NaiveDate,
    message_type: MessageType,
) {
    let mut document: serde_json::Value =
        serde_json::from_slice(&permit_json("CH", "DE", number)).expect("JSON");
    document["document_type"] = "other".into();
    document["other_document_type"] = "exhibition loan".into();
    document["valid_until"] = valid_until.to_string().into();
    let body = serde_json::to_vec_pretty(&document).expect("JSON");
    let mut outgoing = Outgoing::issued_json(body, "DE".parse().expect("code")).expect("valid");
    outgoing.message_type = message_type;
    outgoing.sign(signer).expect("signs");
    let message_id = spoke.send(outgoing).await.expect("sent");
    receipts_until(receipts, message_id, ReceiptStatus::Accepted).await;
}

/// Returns how many events of permit `number` are stored.
async fn permit_event_count(connection: &mut AsyncPgConnection, number: &str) -> usize {
    permit_events(connection, "CH", number).await.len()
}

#[tokio::test]
async fn retention_waits_for_latest_dates() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = openssl_credentials(dir.path(), "anna", "CH");
    let since = Utc::now() - Duration::days(1);
    register(&hub, &secretariat, "CH", "Anna Signer", &credentials, since).await;
    let anna = signer(&credentials);
    let spoke = Spoke::connect(ch).await.expect("connects");
    let mut receipts = spoke.receipts().await.expect("receipts");
    let today = Utc::now().date_naive();
    let long = today + chrono::Months::new(30);

    // L expires after every report date. V is amended: version 2 is valid until `long`,
    // version 1 only until `short`.
    let short = today + chrono::Months::new(6);
    send_other(
        &spoke,
        &mut receipts,
        &anna,
        "26CH/L/1",
        long,
        MessageType::PermitIssued,
    )
    .await;
    send_other(
        &spoke,
        &mut receipts,
        &anna,
        "26CH/V/1",
        short,
        MessageType::PermitIssued,
    )
    .await;
    send_other(
        &spoke,
        &mut receipts,
        &anna,
        "26CH/V/1",
        long,
        MessageType::PermitAmended,
    )
    .await;

    let mut connection = env.database().await.expect("database");
    // The API takes only dates after the year a report covers, so these early dates go in
    // by SQL: they make L's expiry the later of its two dates.
    for year in today.year()..=long.year() {
        for party in ["CH", "DE"] {
            diesel::sql_query(format!(
                "INSERT INTO annual_reports (party, year, received_on, recorded_by, recorded_at) \
                 VALUES ('{party}', {year}, '{today}', 'test', now())"
            ))
            .execute(&mut connection)
            .await
            .expect("report date");
        }
    }
    let past_expiry = (long + chrono::Months::new(60) + chrono::Days::new(2))
        .and_hms_opt(12, 0, 0)
        .expect("time")
        .and_utc();
    let before_expiry = (long + chrono::Months::new(60) - chrono::Days::new(2))
        .and_hms_opt(12, 0, 0)
        .expect("time")
        .and_utc();
    let l_events = permit_event_count(&mut connection, "26CH/L/1").await;
    let v_events = permit_event_count(&mut connection, "26CH/V/1").await;
    assert!(l_events >= 3, "L has its events");
    assert!(v_events >= 6, "V has the events of both versions");

    retention::purge(&mut connection, before_expiry, None)
        .await
        .expect("purge");
    assert_eq!(
        permit_event_count(&mut connection, "26CH/L/1").await,
        l_events,
        "L is kept until five years past its expiry, later than its report dates"
    );
    assert_eq!(
        permit_event_count(&mut connection, "26CH/V/1").await,
        v_events,
        "V is kept until five years past version 2's expiry, not version 1's"
    );
    retention::purge(&mut connection, past_expiry, None)
        .await
        .expect("purge");
    assert_eq!(permit_event_count(&mut connection, "26CH/L/1").await, 0);
    assert_eq!(permit_event_count(&mut connection, "26CH/V/1").await, 0);
    let verified = query::verify(&mut connection).await.expect("verify");
    assert!(verified.ok, "{verified:?}");
    hub.stop().await;
}

#[tokio::test]
async fn retention_needs_every_year_reported() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = openssl_credentials(dir.path(), "anna", "CH");
    let since = Utc::now() - Duration::days(1);
    register(&hub, &secretariat, "CH", "Anna Signer", &credentials, since).await;
    let anna = signer(&credentials);
    let spoke = Spoke::connect(ch).await.expect("connects");
    let mut receipts = spoke.receipts().await.expect("receipts");
    let today = Utc::now().date_naive();
    let short = today + chrono::Months::new(6);
    let long = today + chrono::Months::new(30);
    send_other(
        &spoke,
        &mut receipts,
        &anna,
        "26CH/W/1",
        short,
        MessageType::PermitIssued,
    )
    .await;
    send_other(
        &spoke,
        &mut receipts,
        &anna,
        "26CH/W/1",
        long,
        MessageType::PermitAmended,
    )
    .await;

    // Reports through version 1's last year only: version 2 is valid in later years.
    for year in today.year()..=short.year() {
        let received = format!("{}-01-31", year + 1);
        record_report(&hub, &secretariat, "CH", year, &received).await;
        record_report(&hub, &secretariat, "DE", year, &received).await;
    }
    let mut connection = env.database().await.expect("database");
    let events = permit_event_count(&mut connection, "26CH/W/1").await;
    let far = Utc::now() + chrono::Months::new(12 * 12);
    retention::purge(&mut connection, far, None)
        .await
        .expect("purge");
    assert_eq!(
        permit_event_count(&mut connection, "26CH/W/1").await,
        events,
        "kept while a year of version 2 has no report"
    );

    // The last report then sets the date: kept until five years past it, purged after.
    for year in short.year() + 1..=long.year() {
        let received = format!("{}-01-31", year + 1);
        record_report(&hub, &secretariat, "CH", year, &received).await;
        let received = format!("{}-03-31", year + 1);
        record_report(&hub, &secretariat, "DE", year, &received).await;
    }
    let latest = chrono::NaiveDate::from_ymd_opt(long.year() + 1, 3, 31).expect("date");
    let at = |date: chrono::NaiveDate| date.and_hms_opt(12, 0, 0).expect("time").and_utc();
    let before = at(latest + chrono::Months::new(60) - chrono::Days::new(2));
    retention::purge(&mut connection, before, None)
        .await
        .expect("purge");
    assert_eq!(
        permit_event_count(&mut connection, "26CH/W/1").await,
        events,
        "kept until five years past the importer's latest report"
    );
    let after = at(latest + chrono::Months::new(60) + chrono::Days::new(2));
    retention::purge(&mut connection, after, None)
        .await
        .expect("purge");
    assert_eq!(permit_event_count(&mut connection, "26CH/W/1").await, 0);
    let verified = query::verify(&mut connection).await.expect("verify");
    assert!(verified.ok, "{verified:?}");
    hub.stop().await;
}

#[tokio::test]
async fn audit_query_errors_name_parameter() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let hub = env.start_hub().await.expect("hub starts");
    let auditor = env
        .user_token(&hub, "inspector", None, &["auditor"])
        .await
        .expect("login");
    let cases = [
        ("/v1/audit?limit=ten", "limit", "\"ten\""),
        ("/v1/audit?limit=0", "limit", "0"),
        ("/v1/audit?after=last", "after", "\"last\""),
        ("/v1/audit?from=yesterday", "from", "\"yesterday\""),
        (
            "/v1/audit?to=2026-13-01T00:00:00Z",
            "to",
            "\"2026-13-01T00:00:00Z\"",
        ),
        (
            "/v1/audit?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
            "2026-01-01",
        ),
        ("/v1/audit?country=ch&number=1", "country", "\"ch\""),
        ("/v1/audit?country=CH", "number", "\"CH\""),
        ("/v1/audit?party=Swiss", "party", "\"Swiss\""),
        ("/v1/audit?limit=1&limit=2", "limit", "\"2\""),
        ("/v1/permits/timeline?country=CH", "number", "missing"),
        (
            "/v1/permits/timeline?number=1&country=CH&after=x",
            "after",
            "\"x\"",
        ),
        ("/v1/permits/CH/26%2F1/timeline?limit=5000", "limit", "5000"),
    ];
    for (path, field, value) in cases {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", hub.http_address()))
            .bearer_auth(&auditor)
            .send()
            .await
            .expect("the hub answers");
        assert_eq!(response.status(), 400, "{path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(content_type, "application/problem+json", "{path}");
        let problem: serde_json::Value = response.json().await.expect("JSON");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{path}: {detail}"
        );
        assert!(detail.contains(value), "{path}: {detail}");
        assert!(detail.contains("expected"), "{path}: {detail}");
    }
    hub.stop().await;
}
