//! Authentication and authorization: an attack table where each row must be refused, the
//! happy path of each role, key rotation, lockout, and the broker-side checks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use epix_hub::auth::{Claims, ManualClock, TokenKeys};
use epix_shared::envelope::{DELIVERY_EXCHANGE, HEADER_SENDER, MessageType};
use epix_shared::{ErrorCode, ReceiptStatus};
use epix_spoke::{Outgoing, Spoke};
use epix_tests::{TEST_ISSUER, TEST_PASSWORD, TestEnv, permit_json};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};

use crate::support::{init_logging, receipts_until};

fn claims(username: &str) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: TEST_ISSUER.to_owned(),
        aud: "epix-hub".to_owned(),
        sub: username.to_owned(),
        exp: now + 600,
        nbf: now,
        iat: now,
        party: Some("DE".to_owned()),
        roles: vec!["customs".to_owned()],
        client_id: None,
    }
}

/// Signs claims with the test hub's own key, so that only the claims are wrong.
fn forge(env: &TestEnv, claims: &serde_json::Value, kid: Option<&str>) -> String {
    let keys = TokenKeys::new(Some(&env.token_key), None, TEST_ISSUER, "epix-hub").expect("keys");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.unwrap_or(keys.signing_kid()).to_owned());
    let key = EncodingKey::from_ec_pem(env.token_key.as_bytes()).expect("PEM key");
    jsonwebtoken::encode(&header, claims, &key).expect("signs")
}

fn unsigned(header: serde_json::Value, claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).expect("serialises"));
    format!("{header}.{payload}.")
}

async fn lookup_status(hub: &epix_hub::Hub, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(format!(
        "http://{}/v1/permits/CH/26CH000100",
        hub.http_address()
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn attack_table_tokens_are_refused() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let valid = env
        .user_token(&hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("login");
    // A valid token reaches the handler, which answers 404 for the unknown permit.
    assert_eq!(
        lookup_status(&hub, Some(&valid)).await.0,
        404,
        "the control row must pass authentication"
    );

    let keys = TokenKeys::new(Some(&env.token_key), None, TEST_ISSUER, "epix-hub").expect("keys");
    let kid = keys.signing_kid().to_owned();
    let now = chrono::Utc::now().timestamp();
    let base = serde_json::to_value(claims("de-customs")).expect("JSON");
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = base.clone();
        claims[field] = value;
        claims
    };
    let mut without_aud = base.clone();
    without_aud.as_object_mut().expect("object").remove("aud");
    let public_pem = epix_hub::auth::keys::public_pem_of(&env.token_key).expect("public key");
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &claims("de-customs"),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("signs");
    let mut wrong_signature = valid.clone();
    let last = wrong_signature.pop().expect("non-empty");
    wrong_signature.push(if last == 'A' { 'B' } else { 'A' });

    let rows: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed token", Some("not-a-token".to_owned())),
        (
            "alg none",
            Some(unsigned(
                serde_json::json!({"alg": "none", "kid": kid}),
                &claims("de-customs"),
            )),
        ),
        ("HS256 with the public key", Some(hs256)),
        ("wrong signature", Some(wrong_signature)),
        ("unknown kid", Some(forge(&env, &base, Some("no-such-key")))),
        (
            "expired",
            Some(forge(&env, &with("exp", (now - 3600).into()), None)),
        ),
        (
            "nbf in the future",
            Some(forge(&env, &with("nbf", (now + 3600).into()), None)),
        ),
        (
            "wrong iss",
            Some(forge(
                &env,
                &with("iss", "https://evil.example".into()),
                None,
            )),
        ),
        ("missing aud", Some(forge(&env, &without_aud, None))),
        (
            "wrong aud",
            Some(forge(&env, &with("aud", "other-service".into()), None)),
        ),
        (
            "unknown user",
            Some(forge(&env, &with("sub", "nobody".into()), None)),
        ),
    ];
    for (name, token) in rows {
        let (status, body) = lookup_status(&hub, token.as_deref()).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["code"], "unauthorized", "{name}: {body}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn removed_and_locked_users_lose_access_at_once() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "secretariat", None, &["secretariat"])
        .await
        .expect("login");
    let removed = env
        .user_token(&hub, "de-removed", Some("DE"), &["customs"])
        .await
        .expect("login");
    let locked = env
        .user_token(&hub, "de-locked", Some("DE"), &["customs"])
        .await
        .expect("login");
    assert_eq!(lookup_status(&hub, Some(&removed)).await.0, 404);
    assert_eq!(lookup_status(&hub, Some(&locked)).await.0, 404);

    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "http://{}/v1/users/de-removed/removal",
            hub.http_address()
        ))
        .bearer_auth(&secretariat)
        .json(&serde_json::json!({"reason": "left the customs service"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        lookup_status(&hub, Some(&removed)).await.0,
        401,
        "a removed user's token stops at once"
    );

    for _ in 0..5 {
        let response = client
            .post(format!("http://{}/v1/auth/token", hub.http_address()))
            .form(&[
                ("grant_type", "password"),
                ("username", "de-locked"),
                ("password", "wrong password!"),
            ])
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        lookup_status(&hub, Some(&locked)).await.0,
        401,
        "a locked user's token stops at once"
    );
    hub.stop().await;
}

#[tokio::test]
async fn lockout_expires_with_the_clock() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let clock = Arc::new(ManualClock::default());
    let hub = epix_hub::Hub::start_with_clock(env.hub_config(), clock.clone())
        .await
        .expect("hub starts");
    env.add_user("auditor", None, &["auditor"])
        .await
        .expect("user");
    let login = |password: &'static str| {
        let url = format!("http://{}/v1/auth/token", hub.http_address());
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "auditor"),
                    ("password", password),
                ])
                .send()
                .await
                .expect("answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let (_, unknown_body) = {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/auth/token", hub.http_address()))
            .form(&[
                ("grant_type", "password"),
                ("username", "nobody"),
                ("password", "wrong password!"),
            ])
            .send()
            .await
            .expect("answers");
        (response.status(), response.text().await.unwrap_or_default())
    };
    for attempt in 1..=5 {
        let (status, body) = login("wrong password!").await;
        assert_eq!(status, 401, "attempt {attempt}");
        assert_eq!(
            body, unknown_body,
            "a wrong password and an unknown user get the same answer"
        );
    }
    let (status, body) = login(TEST_PASSWORD).await;
    assert_eq!(
        status, 401,
        "the account is locked even with the right password: {body}"
    );
    assert_eq!(
        body, unknown_body,
        "a locked account gets the same answer too"
    );

    clock.advance(chrono::Duration::minutes(14));
    assert_eq!(
        login(TEST_PASSWORD).await.0,
        401,
        "still locked after 14 minutes"
    );
    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        login(TEST_PASSWORD).await.0,
        200,
        "unlocked after 15 minutes"
    );

    let mut connection = env.database().await.expect("database");
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let failed: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS count FROM audit_trail WHERE action = 'login.failed'",
    )
    .load(&mut connection)
    .await
    .expect("query");
    assert_eq!(
        failed[0].count, 8,
        "every failed login is in the audit trail"
    );
    let succeeded: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS count FROM audit_trail WHERE action = 'login.succeeded'",
    )
    .load(&mut connection)
    .await
    .expect("query");
    assert_eq!(succeeded[0].count, 1);
    hub.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let hub = env.start_hub().await.expect("hub starts");
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        let response = client
            .post(format!("http://{}/v1/auth/token", hub.http_address()))
            .form(&[
                ("grant_type", "password"),
                ("username", &format!("guess{attempt}")),
                ("password", "wrong password!"),
            ])
            .send()
            .await
            .expect("answers");
        if response.status() == 429 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert!(
                retry_after.is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s > 0)),
                "429 names a Retry-After"
            );
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    hub.stop().await;
}

#[tokio::test]
async fn roles_see_only_their_party() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    env.add_party("FR").await.expect("add FR");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let outgoing = Outgoing::issued_json(
        permit_json("CH", "DE", "26CH000100"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    let message_id = sender.send(outgoing).await.expect("sent");
    receipts_until(&mut receipts, message_id, ReceiptStatus::Accepted).await;

    let base = format!("http://{}", hub.http_address());
    let client = reqwest::Client::new();
    let get = |path: String, token: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    };
    let permit = format!("{base}/v1/permits/CH/26CH000100");
    let message = format!("{base}/v1/messages/{message_id}");
    let cases = [
        ("de-customs", Some("DE"), "customs", 200, 403),
        ("ch-officer", Some("CH"), "authority-officer", 200, 200),
        ("fr-officer", Some("FR"), "authority-officer", 404, 404),
        ("fr-customs", Some("FR"), "customs", 404, 403),
        ("auditor", None, "auditor", 200, 200),
        ("secretariat", None, "secretariat", 200, 200),
    ];
    for (username, party, role, permit_status, message_status) in cases {
        let token = env
            .user_token(&hub, username, party, &[role])
            .await
            .expect("login");
        assert_eq!(
            get(permit.clone(), token.clone()).await,
            permit_status,
            "{username} reading the permit"
        );
        assert_eq!(
            get(message.clone(), token).await,
            message_status,
            "{username} reading the message status"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn user_management_is_scoped() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "secretariat", None, &["secretariat"])
        .await
        .expect("login");
    let client = reqwest::Client::new();
    let create = |token: String, body: serde_json::Value| {
        let client = client.clone();
        let url = format!("http://{}/v1/users", hub.http_address());
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    };
    let user = |username: &str, party: Option<&str>, role: &str| serde_json::json!({"username": username, "full_name": "A Person", "party": party, "roles": [role], "password": TEST_PASSWORD});

    assert_eq!(
        create(
            secretariat.clone(),
            user("ch-admin", Some("CH"), "authority-admin")
        )
        .await,
        201
    );
    let admin = env.login(&hub, "ch-admin").await.expect("admin logs in");
    assert_eq!(
        create(admin.clone(), user("ch-customs", Some("CH"), "customs")).await,
        201,
        "admin creates for own Party"
    );
    assert_eq!(
        create(admin.clone(), user("de-customs", Some("DE"), "customs")).await,
        403,
        "admin creates for another Party"
    );
    assert_eq!(
        create(admin.clone(), user("ch-boss", Some("CH"), "secretariat")).await,
        403,
        "admin creates a secretariat user"
    );
    assert_eq!(
        create(admin.clone(), user("ch-customs", Some("CH"), "customs")).await,
        409,
        "taken username"
    );
    assert_eq!(
        create(
            admin.clone(),
            user("ch-short", Some("CH"), "customs")
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("password".into(), "short".into());
                    serde_json::Value::Object(o)
                })
                .expect("object")
        )
        .await,
        400,
        "short password"
    );
    let customs = env
        .login(&hub, "ch-customs")
        .await
        .expect("customs logs in");
    assert_eq!(
        create(customs, user("ch-other", Some("CH"), "customs")).await,
        403,
        "customs on a write"
    );

    let listed_text = client
        .get(format!("http://{}/v1/users", hub.http_address()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert!(
        !listed_text.contains("$argon2"),
        "no password hash leaves the hub"
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed_text).expect("JSON");
    let names: Vec<&str> = listed
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(
        names,
        vec!["ch-admin", "ch-customs"],
        "an admin lists its own Party only"
    );

    // Machine access: a client of the customs user logs in with client credentials.
    let created: serde_json::Value = client
        .post(format!(
            "http://{}/v1/users/ch-customs/clients",
            hub.http_address()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let response = client
        .post(format!("http://{}/v1/auth/token", hub.http_address()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", created["client_id"].as_str().expect("id")),
            (
                "client_secret",
                created["client_secret"].as_str().expect("secret"),
            ),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    hub.stop().await;
}

#[tokio::test]
async fn rotated_key_keeps_old_tokens_valid() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let hub = env.start_hub().await.expect("hub starts");
    let old_token = env
        .user_token(&hub, "auditor", None, &["auditor"])
        .await
        .expect("login");
    hub.stop().await;

    let (new_key, _) = epix_hub::auth::keys::generate_key_pair().expect("key");
    let mut config = env.hub_config();
    config.jwt_additional_keys =
        Some(epix_hub::auth::keys::public_pem_of(&env.token_key).expect("public"));
    config.jwt_signing_key = Some(new_key);
    let hub = epix_hub::Hub::start(config)
        .await
        .expect("hub restarts with the new key");
    let new_token = env.login(&hub, "auditor").await.expect("login");
    assert_ne!(
        old_token.split('.').next(),
        new_token.split('.').next(),
        "the new token names the new key"
    );
    assert_eq!(
        lookup_status(&hub, Some(&old_token)).await.0,
        404,
        "a token of the old key still works"
    );
    assert_eq!(
        lookup_status(&hub, Some(&new_token)).await.0,
        404,
        "a token of the new key works"
    );
    let jwks: serde_json::Value = reqwest::get(format!(
        "http://{}/.well-known/jwks.json",
        hub.http_address()
    ))
    .await
    .expect("answers")
    .json()
    .await
    .expect("JSON");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    hub.stop().await;
}

#[tokio::test]
async fn spoke_cannot_publish_to_another_inbox() {
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
    let published = channel
        .basic_publish(
            DELIVERY_EXCHANGE.into(),
            "inbox.DE".into(),
            BasicPublishOptions::default(),
            b"forged",
            BasicProperties::default(),
        )
        .await;
    let refused = match published {
        Err(_) => true,
        Ok(confirm) => confirm.await.is_err(),
    };
    // Publishing without confirms reports the refusal as a channel closed by the broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        refused || !channel.status().connected(),
        "CH must not publish to DE's inbox"
    );
    assert_eq!(env.queue_depth("epix.inbox.DE").await.expect("depth"), 0);
    hub.stop().await;
}

#[tokio::test]
async fn envelope_naming_another_sender_is_rejected() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let hub = env.start_hub().await.expect("hub starts");
    let sender = Spoke::connect(ch.clone()).await.expect("connects");
    let mut receipts = sender.receipts().await.expect("receipts");
    let message_id = uuid::Uuid::new_v4();
    let mut headers = FieldTable::default();
    headers.insert(HEADER_SENDER.into(), AMQPValue::LongString("DE".into()));
    headers.insert("epix-addressee".into(), AMQPValue::LongString("DE".into()));
    let properties = BasicProperties::default()
        .with_message_id(message_id.to_string().into())
        .with_type(MessageType::PermitIssued.as_str().into())
        .with_content_type("application/json".into())
        .with_user_id(ch.broker_user.clone().into())
        .with_headers(headers);
    sender
        .publish_raw(&permit_json("CH", "DE", "26CH000101"), properties)
        .await
        .expect("published");
    let rejected = receipts_until(&mut receipts, message_id, ReceiptStatus::Rejected).await;
    let codes: Vec<ErrorCode> = rejected
        .last()
        .expect("receipt")
        .problems
        .iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(codes, vec![ErrorCode::SenderMismatch]);
    hub.stop().await;
}

#[tokio::test]
async fn rotated_broker_credentials_replace_old_ones() {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch = env.add_party("CH").await.expect("add CH");
    let config = env.hub_config();
    let pool = epix_hub::db::pool(&config.database_url, 2).expect("pool");
    let old = lapin::Connection::connect(&ch.amqp_url, lapin::ConnectionProperties::default())
        .await
        .expect("old password works");
    let settings =
        epix_hub::parties::rotate_credentials(&config, &pool, "CH".parse().expect("code"))
            .await
            .expect("rotated");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !old.status().connected(),
        "the open connection with the old password is closed"
    );
    let refused =
        lapin::Connection::connect(&ch.amqp_url, lapin::ConnectionProperties::default()).await;
    assert!(refused.is_err(), "the old password no longer logs in");
    let new =
        lapin::Connection::connect(&settings.amqp_url, lapin::ConnectionProperties::default())
            .await;
    assert!(new.is_ok(), "the new password logs in");
}
