//! `GET /metrics` after real traffic, and the 405 and 404 responses to unrouted requests.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use epix_hub::Hub;
use epix_shared::ReceiptStatus;
use epix_shared::envelope::{Acknowledgement, AcknowledgementOutcome};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TestEnv, permit_json};

use crate::support::{WAIT, init_logging, next_delivery, receipts_until};

/// One scrape of `/metrics`, parsed into samples keyed by metric name and label set.
struct Scrape {
    text: String,
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut samples = HashMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample line has a value: {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("the value is a number: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("the label set is closed: {line}"));
                    (name, parse_labels(inner))
                }
                None => (series, BTreeMap::new()),
            };
            samples.insert((name.to_owned(), labels), value);
        }
        Self { text, samples }
    }

    /// Returns the value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// Returns the value of the sample with exactly these labels, or 0 when it is absent.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// Returns the sum of every sample of `name`.
    fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|((sample, _), _)| sample == name)
            .map(|(_, value)| value)
            .sum()
    }

    /// Returns every label set of `name`.
    fn label_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .keys()
            .filter(|(sample, _)| sample == name)
            .map(|(_, labels)| labels)
            .collect()
    }
}

/// Parses `a="x",b="y \"quoted\""` into a map, undoing the format's escapes.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after_key) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("a label has a quoted value: {text}"));
        let mut value = String::new();
        let mut characters = after_key.char_indices();
        let mut end = None;
        while let Some((index, character)) = characters.next() {
            match character {
                '\\' => match characters.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '"' => {
                    end = Some(index);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end.unwrap_or_else(|| panic!("a label value is closed: {text}"));
        labels.insert(key.to_owned(), value);
        rest = after_key[end + 1..].trim_start_matches(',');
    }
    labels
}

async fn fetch_metrics(hub: &Hub) -> Scrape {
    let response = reqwest::get(format!("http://{}/metrics", hub.http_address()))
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(response.text().await.expect("text"))
}

/// Scrapes until `settled` holds, and returns that scrape.
async fn scrape_until(hub: &Hub, what: &str, settled: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        let scrape = fetch_metrics(hub).await;
        if settled(&scrape) {
            return scrape;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} did not show within {WAIT:?}:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pending: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    audit_seq: i64,
}

const MESSAGES: &str = "epix_router_messages_total";
const OUTBOX: &str = "epix_outbox_messages_total";
const HTTP_COUNT: &str = "epix_http_request_duration_seconds_count";
const PERMIT_ROUTE: &str = "/v1/permits/{country}/{number:.*}";

#[tokio::test]
async fn metrics_count_routing_and_lookup() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let de = env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");

    // A new hub shows its label sets at zero, before any traffic.
    let fresh = fetch_metrics(&hub).await;
    assert_eq!(
        fresh.value(
            MESSAGES,
            &[("type", "permit.issued"), ("outcome", "accepted")]
        ),
        Some(0.0),
        "{}",
        fresh.text
    );
    assert_eq!(
        fresh.value(OUTBOX, &[("publisher", "sweeper"), ("result", "published")]),
        Some(0.0)
    );
    for name in [
        MESSAGES,
        "epix_router_batch_size",
        "epix_router_batch_duration_seconds",
        OUTBOX,
        "epix_outbox_pending",
        "epix_register_broadcasts_total",
        "epix_audit_head_sequence",
        "epix_database_pool_connections",
        "epix_broker_connected",
    ] {
        assert!(
            fresh.text.contains(&format!("# TYPE {name} ")),
            "{name} is missing:\n{}",
            fresh.text
        );
    }

    // One permit accepted, delivered and acknowledged; one rejected.
    let sender = Spoke::connect(ch).await.expect("CH connects");
    let receiver = Spoke::connect(de).await.expect("DE connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let mut inbox = receiver.inbox().await.expect("inbox");
    let number = "26CH000001";
    let outgoing =
        Outgoing::issued_json(permit_json("CH", "DE", number), "DE".parse().expect("code"))
            .expect("valid permit");
    let accepted_id = sender.send(outgoing).await.expect("sent");
    receipts_until(&mut receipts, accepted_id, ReceiptStatus::Accepted).await;
    let delivered = next_delivery(&mut inbox).await;
    let acknowledgement = Acknowledgement {
        outcome: AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    receiver
        .acknowledge(&delivered, &acknowledgement)
        .await
        .expect("acknowledged");
    receipts_until(&mut receipts, accepted_id, ReceiptStatus::Delivered).await;
    let outgoing = Outgoing::issued_json(
        permit_json("CH", "FR", "26CH000002"),
        "FR".parse().expect("code"),
    )
    .expect("valid permit");
    let rejected_id = sender.send(outgoing).await.expect("sent");
    receipts_until(&mut receipts, rejected_id, ReceiptStatus::Rejected).await;

    // A customs lookup, and a user removal that is broadcast to both inboxes.
    let customs = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("customs logs in");
    let client = reqwest::Client::new();
    let base = format!("http://{}", hub.http_address());
    let lookup = client
        .get(format!("{base}/v1/permits/CH/{number}"))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("lookup answers");
    assert_eq!(lookup.status(), 200);
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("secretariat logs in");
    let removal = client
        .post(format!("{base}/v1/users/de-customs/removal"))
        .bearer_auth(&secretariat)
        .json(&serde_json::json!({"reason": "left the service"}))
        .send()
        .await
        .expect("removal answers");
    assert_eq!(removal.status(), 200);

    // A pending row the sweeper leaves alone, because it was created in the future.
    let mut database = env.database().await.expect("database");
    diesel::sql_query(
        "INSERT INTO outbox (message_id, exchange, routing_key, message_type, content_type, headers, body, created_at) \
         VALUES (gen_random_uuid(), 'epix.delivery', 'nowhere', 'receipt', 'application/json', '{}', '\\x', now() + interval '1 hour')",
    )
    .execute(&mut database)
    .await
    .expect("pending row inserted");

    // The counters move after the acknowledgement of each batch, which may come just
    // after its receipts; wait until all three messages and the broadcast show.
    let scrape = scrape_until(
        &hub,
        "three consumed messages and one broadcast",
        |scrape| {
            scrape.total(MESSAGES) >= 3.0
                && scrape.count(
                    "epix_register_broadcasts_total",
                    &[("type", "register.user-revoked")],
                ) >= 1.0
                && scrape.count(
                    OUTBOX,
                    &[("publisher", "broadcaster"), ("result", "published")],
                ) >= 2.0
        },
    )
    .await;
    let text = &scrape.text;
    assert_eq!(
        scrape.count(
            MESSAGES,
            &[("type", "permit.issued"), ("outcome", "accepted")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        scrape.count(
            MESSAGES,
            &[("type", "permit.issued"), ("outcome", "rejected")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        scrape.count(
            MESSAGES,
            &[("type", "receipt.acknowledged"), ("outcome", "recorded")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(scrape.total(MESSAGES), 3.0, "{text}");

    // Every consumed delivery is in exactly one batch.
    let batches = scrape.count("epix_router_batch_size_count", &[]);
    assert!((1.0..=3.0).contains(&batches), "{text}");
    assert_eq!(
        scrape.count("epix_router_batch_size_sum", &[]),
        3.0,
        "{text}"
    );
    assert_eq!(
        scrape.count("epix_router_batch_duration_seconds_count", &[]),
        batches,
        "{text}"
    );
    assert!(
        scrape.count("epix_router_batch_duration_seconds_sum", &[]) > 0.0,
        "{text}"
    );

    // The router published the delivery and three receipts: accepted, delivered, rejected.
    assert_eq!(
        scrape.count(OUTBOX, &[("publisher", "router"), ("result", "published")]),
        4.0,
        "{text}"
    );
    assert_eq!(
        scrape.count(
            OUTBOX,
            &[("publisher", "broadcaster"), ("result", "published")]
        ),
        2.0,
        "{text}"
    );
    for publisher in ["router", "sweeper", "broadcaster"] {
        for result in ["returned", "nacked"] {
            assert_eq!(
                scrape.count(OUTBOX, &[("publisher", publisher), ("result", result)]),
                0.0,
                "{publisher} {result}: {text}"
            );
        }
    }
    assert_eq!(
        scrape.count(
            "epix_register_broadcasts_total",
            &[("type", "register.user-revoked")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        scrape.count(
            "epix_register_broadcasts_total",
            &[("type", "register.signatory-changed")]
        ),
        0.0,
        "{text}"
    );

    // HTTP requests are labelled with the route pattern, never the raw path.
    let lookups = [
        ("method", "GET"),
        ("route", PERMIT_ROUTE),
        ("status_class", "2xx"),
    ];
    assert_eq!(scrape.count(HTTP_COUNT, &lookups), 1.0, "{text}");
    let logins = [
        ("method", "POST"),
        ("route", "/v1/auth/token"),
        ("status_class", "2xx"),
    ];
    assert_eq!(scrape.count(HTTP_COUNT, &logins), 2.0, "{text}");
    let raw_paths: Vec<_> = scrape
        .label_sets(HTTP_COUNT)
        .into_iter()
        .filter(|labels| {
            labels
                .get("route")
                .is_some_and(|route| route.contains(number))
        })
        .collect();
    assert!(raw_paths.is_empty(), "{raw_paths:?}");

    // The pool and the broker connection, read at scrape time.
    let pool_size = hub.context().config.db_pool_size as f64;
    assert_eq!(
        scrape.count("epix_database_pool_connections", &[("state", "max")]),
        pool_size,
        "{text}"
    );
    let open = scrape.count("epix_database_pool_connections", &[("state", "open")]);
    let idle = scrape.count("epix_database_pool_connections", &[("state", "idle")]);
    assert!((1.0..=pool_size).contains(&open), "{text}");
    assert!(idle <= open, "{text}");
    assert_eq!(scrape.count("epix_broker_connected", &[]), 1.0, "{text}");

    // The sampled gauges catch up with the database, where the future row stays pending
    // once the confirmed rows are marked sent.
    let started = Instant::now();
    let (counts, sampled) = loop {
        let counts: Counts = diesel::sql_query(
            "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL) AS pending, \
                    (SELECT seq FROM audit_head) AS audit_seq",
        )
        .get_result(&mut database)
        .await
        .expect("counts");
        let sampled = fetch_metrics(&hub).await;
        let caught_up = sampled.count("epix_outbox_pending", &[]) == counts.pending as f64
            && sampled.count("epix_audit_head_sequence", &[]) == counts.audit_seq as f64;
        if counts.pending == 1 && caught_up {
            break (counts, sampled);
        }
        assert!(
            started.elapsed() < WAIT,
            "the gauges did not match {} pending rows and audit seq {} within {WAIT:?}:\n{}",
            counts.pending,
            counts.audit_seq,
            sampled.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sampled.count("epix_outbox_pending", &[]), 1.0);
    assert!(counts.audit_seq > 0, "the traffic appended audit events");
    hub.stop().await;
}

#[tokio::test]
async fn wrong_method_and_unknown_path() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let hub = env.start_hub().await.expect("hub starts");
    let base = format!("http://{}", hub.http_address());
    let client = reqwest::Client::new();

    let cases = [
        ("POST", "/v1/permits/CH/26CH000001", "GET"),
        ("PUT", "/v1/permits/CH/08CA00153/CWHQ", "GET"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/v1/users", "GET, POST"),
        ("GET", "/v1/auth/token", "POST"),
        ("POST", "/metrics", "GET"),
    ];
    for (method, path, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 405, "{method} {path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("allow").as_deref(), Some(allow), "{method} {path}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/problem+json"),
            "{method} {path}"
        );
        let problem: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(problem["status"], 405, "{problem}");
        assert_eq!(problem["code"], "method_not_allowed", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains(allow)),
            "{problem}"
        );
    }

    for path in ["/v1/nothing", "/nothing", "/v1", "/v1/permits/CH"] {
        let response = client
            .post(format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 404, "POST {path}");
        assert!(response.headers().get("allow").is_none(), "POST {path}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("application/problem+json"),
            "POST {path}"
        );
        let problem: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(problem["code"], "not_found", "{problem}");
    }

    // Both are counted under bounded route labels: the pattern, or `unmatched`.
    let scrape = fetch_metrics(&hub).await;
    let rejected_posts = [
        ("method", "POST"),
        ("route", PERMIT_ROUTE),
        ("status_class", "4xx"),
    ];
    assert_eq!(
        scrape.count(HTTP_COUNT, &rejected_posts),
        1.0,
        "{}",
        scrape.text
    );
    let unmatched = [
        ("method", "POST"),
        ("route", "unmatched"),
        ("status_class", "4xx"),
    ];
    assert_eq!(scrape.count(HTTP_COUNT, &unmatched), 4.0, "{}", scrape.text);
    hub.stop().await;
}
