//! The hub under the database logins a deployment gives it: its own login, a member of
//! `epix_hub_app` only, while the schema owner migrates and a retention login purges.

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::ReceiptStatus;
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};

use crate::support::{init_logging, next_delivery, receipts_until};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Runs `statement` as the login of `url` and returns the database's refusal, or `None`
/// when it was allowed.
async fn refusal(url: &str, statement: &str) -> Option<String> {
    let mut connection = AsyncPgConnection::establish(url).await.expect("connects");
    diesel::sql_query(statement)
        .execute(&mut connection)
        .await
        .err()
        .map(|error| error.to_string())
}

#[tokio::test]
async fn hub_login_cannot_touch_audit_trail() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let app_url = env
        .login_url("app", "epix_hub_app")
        .await
        .expect("app login");
    let retention_url = env
        .login_url("retention", "epix_audit_retention")
        .await
        .expect("retention login");

    let mut config = env.hub_config();
    config.database_url = app_url.clone();
    config.retention_database_url = Some(retention_url.clone());
    let hub = epix_hub::Hub::start(config)
        .await
        .expect("the hub starts under its own login");

    // The whole exchange works with the app login's rights.
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let receiver = Spoke::connect(de).await.expect("DE connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");
    let outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000400"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    let message_id = sender.send(outgoing).await.expect("sent");
    let delivered = next_delivery(&mut inbox).await;
    receiver
        .acknowledge(
            &delivered,
            &epix_shared::envelope::Acknowledgement {
                outcome: epix_shared::envelope::AcknowledgementOutcome::Received,
                problems: Vec::new(),
            },
        )
        .await
        .expect("acknowledged");
    receipts_until(&mut receipts, message_id, ReceiptStatus::Delivered).await;

    // A failed login: an event of no permit, which retention deletes after five years.
    assert!(env.login(&hub, "nobody").await.is_err());

    let mut app = AsyncPgConnection::establish(&app_url)
        .await
        .expect("connects");
    let events: Count = diesel::sql_query("SELECT count(*) AS count FROM audit_trail")
        .get_result(&mut app)
        .await
        .expect("the app login reads the trail");
    assert!(events.count >= 5, "the exchange is in the trail");

    // Neither directly, nor after leaving a role, nor by taking another.
    for statement in [
        "UPDATE audit_trail SET action = 'changed' WHERE seq = 1",
        "DELETE FROM audit_trail WHERE seq = 1",
        "TRUNCATE audit_trail",
        "RESET ROLE; DELETE FROM audit_trail WHERE seq = 1",
        "SET ROLE epix_audit_retention",
        "ALTER TABLE audit_trail DISABLE TRIGGER ALL",
        "SET session_replication_role = replica",
        "DELETE FROM audit_head",
        "TRUNCATE audit_trail_default",
        "INSERT INTO audit_purged DEFAULT VALUES",
    ] {
        assert!(
            refusal(&app_url, statement).await.is_some(),
            "the hub's login was allowed: {statement}"
        );
    }
    let kept: Count = diesel::sql_query("SELECT count(*) AS count FROM audit_trail")
        .get_result(&mut app)
        .await
        .expect("reads");
    assert_eq!(kept.count, events.count, "no event is gone");

    // The retention login may delete what is past retention, and the chain still holds.
    let pool = epix_hub::db::pool(&retention_url, 1).expect("pool");
    let mut retention = pool.get().await.expect("connects");
    let far_future = chrono::Utc::now() + chrono::Duration::days(365 * 30);
    let report = epix_hub::audit::retention::purge(&mut retention, far_future, None)
        .await
        .expect("the retention login purges");
    assert!(report.deleted > 0, "{report:?}");
    let verified = epix_hub::audit::query::verify(&mut app)
        .await
        .expect("verifies");
    assert!(verified.ok, "{verified:?}");
    hub.stop().await;
}
