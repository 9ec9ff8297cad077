//! Nothing lost, nothing done twice, across hub restarts.

use std::collections::HashMap;
use std::time::Duration;

use epix_shared::ReceiptStatus;
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};
use uuid::Uuid;

use crate::support::init_logging;

async fn send_permits(sender: &Spoke, count: usize, prefix: &str) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let number = format!("{prefix}{index:06}");
        let outgoing = Outgoing::issued_json(
            permit_json("CH", "DE", &number),
            "DE".parse().expect("code"),
        )
        .expect("valid");
        ids.push(sender.send(outgoing).await.expect("sent"));
    }
    ids
}

/// Receives and acknowledges until every id in `expected` arrived, then two seconds more
/// to catch late copies. Returns, per submission, the delivery ids it arrived under.
async fn receive_all(
    receiver: &Spoke,
    expected: &[Uuid],
    within: Duration,
) -> HashMap<Uuid, Vec<Uuid>> {
    let mut inbox = receiver.inbox().await.expect("inbox");
    let mut arrivals: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let ack = epix_shared::envelope::Acknowledgement {
        outcome: epix_shared::envelope::AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    let mut receive = async |arrivals: &mut HashMap<Uuid, Vec<Uuid>>| {
        let delivered = inbox.next().await.expect("inbox open");
        let submission = delivered.correlation_id.expect("correlation id");
        arrivals
            .entry(submission)
            .or_default()
            .push(delivered.message_id);
        receiver
            .acknowledge(&delivered, &ack)
            .await
            .expect("acknowledged");
    };
    let _ = tokio::time::timeout(within, async {
        while expected.iter().any(|id| !arrivals.contains_key(id)) {
            receive(&mut arrivals).await;
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            receive(&mut arrivals).await;
        }
    })
    .await;
    arrivals
}

/// Every submission arrived, and any repeated copy carries the same delivery id, so the
/// receiving spoke stores it once.
fn assert_exactly_once(expected: &[Uuid], arrivals: &HashMap<Uuid, Vec<Uuid>>) {
    for id in expected {
        let copies = arrivals.get(id).expect("every permit arrives");
        let first = copies[0];
        assert!(
            copies.iter().all(|copy| *copy == first),
            "{id} arrived under different delivery ids: {copies:?}"
        );
    }
    assert_eq!(
        arrivals.len(),
        expected.len(),
        "nothing arrives that was not sent"
    );
}

#[tokio::test]
async fn submissions_wait_for_stopped_hub() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    hub.stop().await;

    let sender = Spoke::connect(ch).await.expect("connects");
    let ids = send_permits(&sender, 20, "26CHW").await;

    let hub = env.start_hub().await.expect("hub restarts");
    let receiver = Spoke::connect(de).await.expect("connects");
    let arrivals = receive_all(&receiver, &ids, Duration::from_secs(30)).await;
    assert_exactly_once(&ids, &arrivals);
    for id in &ids {
        assert_eq!(
            arrivals[id].len(),
            1,
            "{id}: a hub that was simply stopped sends no copies"
        );
    }
    hub.stop().await;
}

/// Runs a hub in this process when started as the child of [`hub_killed_mid_flow`].
#[test]
#[ignore = "started as a child process by hub_killed_mid_flow"]
fn hub_child_process() {
    if std::env::var_os("EPIX_TEST_CHILD_HUB").is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = epix_hub::Config::from_env().expect("child configuration");
        let _hub = epix_hub::Hub::start(config)
            .await
            .expect("child hub starts");
        std::future::pending::<()>().await;
    });
}

fn spawn_child_hub(env: &TestEnv) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary path");
    std::process::Command::new(exe)
        .args([
            "--exact",
            "recovery::hub_child_process",
            "--ignored",
            "--nocapture",
        ])
        .envs(env.hub_env())
        .env("EPIX_TEST_CHILD_HUB", "1")
        // Small batches, so that the kill lands between batches and not after the last.
        .env("EPIX_BATCH_SIZE", "5")
        .env("EPIX_PREFETCH", "10")
        .env("EPIX_WORKERS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child hub starts")
}

async fn stored_permits(env: &TestEnv) -> i64 {
    count(env, "SELECT count(*) AS count FROM permits").await
}

async fn stored_messages(env: &TestEnv) -> i64 {
    count(env, "SELECT count(*) AS count FROM messages").await
}

async fn count(env: &TestEnv, query: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let Ok(mut connection) = env.database().await else {
        return 0;
    };
    let rows: Vec<Count> = diesel::sql_query(query)
        .load(&mut connection)
        .await
        .unwrap_or_default();
    rows.into_iter().next().map_or(0, |row| row.count)
}

#[tokio::test]
async fn hub_killed_mid_flow_delivers_exactly_once() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    // Create the schema and topology before the child starts, so it starts quickly.
    env.start_hub().await.expect("hub starts").stop().await;

    let sender = Spoke::connect(ch).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let ids = send_permits(&sender, 300, "26CHK").await;

    let mut child = spawn_child_hub(&env);
    // Kill the hub once it has stored part of the backlog, in the middle of its work.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored = stored_messages(&env).await;
        if stored >= 30 {
            assert!(
                stored < 300,
                "the hub finished before it could be killed; slow it down"
            );
            break;
        }
        assert!(
            child.try_wait().expect("child status").is_none(),
            "the child hub exited early"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child hub stored nothing within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("kill the hub");
    child.wait().expect("reap the hub");

    let hub = env.start_hub().await.expect("hub restarts");
    let receiver = Spoke::connect(de).await.expect("connects");
    let arrivals = receive_all(&receiver, &ids, Duration::from_secs(60)).await;
    assert_exactly_once(&ids, &arrivals);

    // Deliveries are idempotent by message id: a copy republished after the crash carries
    // the same id, so the spoke stores it once. Count the distinct accepted receipts too.
    let mut accepted = std::collections::HashSet::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while accepted.len() < ids.len() {
            let received = receipts.next().await.expect("receipts open");
            if let Ok(receipt) = &received.receipt
                && receipt.status == ReceiptStatus::Accepted
            {
                accepted.insert(receipt.message_id);
            }
            received.ack().await.expect("ack");
        }
    })
    .await;
    assert_eq!(
        accepted.len(),
        ids.len(),
        "every permit gets its accepted receipt"
    );

    let mut connection = env.database().await.expect("database");
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let permits: Vec<Count> = diesel::sql_query("SELECT count(*) AS count FROM permits")
        .load(&mut connection)
        .await
        .expect("query");
    assert_eq!(
        permits[0].count,
        ids.len() as i64,
        "each permit stored once"
    );
    hub.stop().await;
}

/// The hub's database connections and then its broker connections are cut while permits
/// flow, as a database restart and a broker restart would: every permit still arrives once
/// and gets its delivered receipt.
#[tokio::test]
async fn permits_survive_cut_database_and_broker() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let receiver = Spoke::connect(de).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");

    let first = send_permits(&sender, 100, "26CHF").await;
    let cut = env.cut_database_connections().await.expect("cut");
    assert!(cut > 0, "the hub had database connections to cut");
    let second = send_permits(&sender, 100, "26CHG").await;
    let closed = env.cut_broker_connections("guest").await.expect("closed");
    assert!(closed > 0, "the hub had broker connections to close");
    let third = send_permits(&sender, 100, "26CHH").await;

    let ids: Vec<Uuid> = first.into_iter().chain(second).chain(third).collect();
    let arrivals = receive_all(&receiver, &ids, Duration::from_secs(90)).await;
    assert_exactly_once(&ids, &arrivals);

    // Every sender gets its delivered receipt.
    let mut delivered = std::collections::HashSet::new();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while delivered.len() < ids.len() {
            let received = receipts.next().await.expect("receipts open");
            let receipt = received.receipt.clone().expect("parses");
            received.ack().await.expect("ack");
            if receipt.status == ReceiptStatus::Delivered {
                delivered.insert(receipt.message_id);
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{} of {} delivered receipts arrived",
        delivered.len(),
        ids.len()
    );
    // A repeated delivery may be acknowledged twice, but each permit is stored once.
    assert_eq!(
        stored_permits(&env).await,
        ids.len() as i64,
        "each permit stored once"
    );
    hub.stop().await;
}
