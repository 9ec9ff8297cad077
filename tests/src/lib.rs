//! Test kit for end-to-end tests and the benchmark: a database and a broker virtual host of
//! their own for each test, a hub started in-process, and spokes for registered Parties.
//!
//! Reads `DATABASE_URL` (any database on the server; default the `postgres` database on
//! 127.0.0.1), `AMQP_URL` (default guest on 127.0.0.1) and `EPIX_BROKER_MANAGEMENT_URL`
//! (default http://127.0.0.1:15672). Everything a test creates is removed when its
//! [`TestEnv`] is dropped.

use std::time::Duration;

use anyhow::{Context, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_hub::{Config, Hub};
use epix_shared::PartyCode;
use epix_shared::permit::PartyProfile;
use epix_spoke::SpokeConfig;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use rand::Rng;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const DEFAULT_MANAGEMENT_URL: &str = "http://127.0.0.1:15672";

/// A database and a broker virtual host for one test.
/// The logins [`TestEnv::login_url`] makes, by the suffix of their names.
const LOGIN_KINDS: [&str; 2] = ["app", "retention"];

pub struct TestEnv {
    pub id: String,
    pub database_url: String,
    pub amqp_url: String,
    admin_database_url: String,
    database_name: String,
    management: Management,
    vhost: String,
    party_prefix: String,
    /// PEM private key that signs this test hub's API tokens.
    pub token_key: String,
}

/// The password every test user gets.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// The token issuer of test hubs.
pub const TEST_ISSUER: &str = "https://epix-hub.test";

impl TestEnv {
    /// Creates an empty database and virtual host with names unique to this test.
    pub async fn new() -> anyhow::Result<Self> {
        let id: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(10)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        let admin_database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let base_amqp = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned());
        let management_url = std::env::var("EPIX_BROKER_MANAGEMENT_URL")
            .unwrap_or_else(|_| DEFAULT_MANAGEMENT_URL.to_owned());

        let database_name = format!("epix_test_{id}");
        let mut admin = AsyncPgConnection::establish(&admin_database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to PostgreSQL at {admin_database_url}; run scripts/services"
                )
            })?;
        diesel::sql_query(format!("CREATE DATABASE {database_name}"))
            .execute(&mut admin)
            .await
            .context("cannot create the test database")?;
        let database_url = replace_path(&admin_database_url, &database_name);

        let vhost = format!("epix-test-{id}");
        let management = Management::new(&management_url);
        management.create_vhost(&vhost).await?;
        let amqp_url = replace_path(&base_amqp, &vhost);

        let (token_key, _) = epix_hub::auth::keys::generate_key_pair()?;
        Ok(Self {
            token_key,
            party_prefix: format!("t{id}-party-"),
            id,
            database_url,
            amqp_url,
            admin_database_url,
            database_name,
            management,
            vhost,
        })
    }

    /// The hub's configuration for this test: its own database and virtual host, HTTP on a
    /// free port, and a short outbox grace so that recovery tests run quickly.
    pub fn hub_config(&self) -> Config {
        let management_url = std::env::var("EPIX_BROKER_MANAGEMENT_URL")
            .unwrap_or_else(|_| DEFAULT_MANAGEMENT_URL.to_owned());
        let vars = [
            ("DATABASE_URL", self.database_url.clone()),
            ("AMQP_URL", self.amqp_url.clone()),
            ("EPIX_HTTP_BIND", "127.0.0.1:0".to_owned()),
            ("EPIX_BROKER_MANAGEMENT_URL", management_url),
            ("EPIX_PARTY_USER_PREFIX", self.party_prefix.clone()),
            ("EPIX_WORKERS", "2".to_owned()),
            ("EPIX_OUTBOX_GRACE_MS", "1000".to_owned()),
            ("EPIX_OUTBOX_SWEEP_MS", "200".to_owned()),
            ("EPIX_JWT_SIGNING_KEY", self.token_key.clone()),
            ("EPIX_JWT_ISSUER", TEST_ISSUER.to_owned()),
            // Most tests exercise routing with unsigned permits; those about signatures
            // turn the requirement on.
            ("EPIX_REQUIRE_SIGNATURES", "false".to_owned()),
        ];
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .expect("the test configuration is valid")
    }

    /// The environment variables that configure a hub process for this test.
    pub fn hub_env(&self) -> Vec<(String, String)> {
        let config = self.hub_config();
        vec![
            ("DATABASE_URL".into(), config.database_url),
            ("AMQP_URL".into(), config.amqp_url),
            ("EPIX_HTTP_BIND".into(), "127.0.0.1:0".into()),
            ("EPIX_BROKER_MANAGEMENT_URL".into(), config.management_url),
            ("EPIX_PARTY_USER_PREFIX".into(), config.party_user_prefix),
            ("EPIX_WORKERS".into(), config.workers.to_string()),
            (
                "EPIX_OUTBOX_GRACE_MS".into(),
                config.outbox_grace.as_millis().to_string(),
            ),
            (
                "EPIX_OUTBOX_SWEEP_MS".into(),
                config.outbox_sweep_interval.as_millis().to_string(),
            ),
            ("EPIX_JWT_SIGNING_KEY".into(), self.token_key.clone()),
            ("EPIX_JWT_ISSUER".into(), TEST_ISSUER.into()),
            (
                "EPIX_REQUIRE_SIGNATURES".into(),
                config.require_signatures.to_string(),
            ),
        ]
    }

    pub async fn start_hub(&self) -> anyhow::Result<Hub> {
        Ok(Hub::start(self.hub_config()).await?)
    }

    /// Registers a Party as `epix-hub party add` does and returns its spoke settings.
    pub async fn add_party(&self, code: &str) -> anyhow::Result<SpokeConfig> {
        self.add_party_with(code, &PartyProfile::default()).await
    }

    /// Registers a Party with the given permit-checking profile.
    pub async fn add_party_with(
        &self,
        code: &str,
        profile: &PartyProfile,
    ) -> anyhow::Result<SpokeConfig> {
        let config = self.hub_config();
        epix_hub::db::migrate(&config.migration_database_url).await?;
        let pool = epix_hub::db::pool(&config.database_url, 2)?;
        let party: PartyCode = code.parse()?;
        let settings =
            epix_hub::parties::add(&config, &pool, party, &format!("Party {code}"), profile)
                .await?;
        Ok(SpokeConfig::new(&settings.amqp_url, party))
    }

    /// Creates a user with [`TEST_PASSWORD`], as `epix-hub user add` does.
    pub async fn add_user(
        &self,
        username: &str,
        party: Option<&str>,
        roles: &[&str],
    ) -> anyhow::Result<()> {
        let admin = epix_hub::AdminContext::connect(self.hub_config()).await?;
        let roles = roles
            .iter()
            .map(|role| role.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(anyhow::Error::msg)?;
        epix_hub::http::users::create(
            admin.context(),
            username,
            &format!("Test user {username}"),
            party.map(str::to_owned),
            roles,
            TEST_PASSWORD.to_owned(),
            None,
            {
                let mut event = epix_hub::audit::Event::new(
                    "user.created",
                    epix_hub::audit::ActorKind::System,
                    chrono::Utc::now(),
                );
                event.actor_id = Some("epix-tests".to_owned());
                event
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot create user {username}: {error}"))?;
        Ok(())
    }

    /// Logs in at a running hub and returns the bearer token.
    pub async fn login(&self, hub: &Hub, username: &str) -> anyhow::Result<String> {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/auth/token", hub.http_address()))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", TEST_PASSWORD),
            ])
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("login of {username} failed: HTTP {status}: {body}");
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("the token response has no access_token")
    }

    /// Creates a user and logs it in.
    pub async fn user_token(
        &self,
        hub: &Hub,
        username: &str,
        party: Option<&str>,
        roles: &[&str],
    ) -> anyhow::Result<String> {
        self.add_user(username, party, roles).await?;
        self.login(hub, username).await
    }

    /// Connects to this test's virtual host as the broker administrator.
    pub async fn broker(&self) -> anyhow::Result<lapin::Connection> {
        Ok(epix_hub::amqp::connect(&self.amqp_url, "epix-test inspector").await?)
    }

    /// Returns the number of ready messages in `queue`.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let connection = self.broker().await?;
        let channel = connection.create_channel().await?;
        let options = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await?;
        let _ = connection.close(200, "done".into()).await;
        Ok(declared.message_count())
    }

    /// Connects to this test's database.
    pub async fn database(&self) -> anyhow::Result<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.database_url).await?)
    }

    /// Cuts every connection to this test's database, as a database restart would; the
    /// caller's own connection is opened afterwards.
    pub async fn cut_database_connections(&self) -> anyhow::Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Cut {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            cut: i64,
        }
        let mut admin = AsyncPgConnection::establish(&self.admin_database_url).await?;
        let cut: Cut = diesel::sql_query(
            "SELECT count(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(&self.database_name)
        .get_result(&mut admin)
        .await?;
        Ok(cut.cut)
    }

    /// Closes the broker connections of `user` in this test's virtual host, as a broker
    /// restart would for them; returns how many were closed. The management API lists a
    /// new connection only after its next statistics round (5 seconds by default), so
    /// this waits up to 15 seconds for one to show.
    pub async fn cut_broker_connections(&self, user: &str) -> anyhow::Result<usize> {
        for _ in 0..30 {
            let closed = self
                .management
                .close_connections(&self.vhost, |connection_user| connection_user == user)
                .await?;
            if closed > 0 {
                return Ok(closed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Ok(0)
    }

    /// Creates this test's login `<database>_<kind>`, a member of `member_of` only, and
    /// returns the URL of this test's database for it. `kind` is `app` or `retention`;
    /// the login is dropped with the test. Run the migrations first: they make the roles.
    pub async fn login_url(&self, kind: &str, member_of: &str) -> anyhow::Result<String> {
        if !LOGIN_KINDS.contains(&kind) {
            bail!("login kind {kind:?}: expected one of {LOGIN_KINDS:?}");
        }
        let login = format!("{}_{kind}", self.database_name);
        let mut admin = AsyncPgConnection::establish(&self.admin_database_url).await?;
        diesel::sql_query(format!("CREATE ROLE {login} LOGIN IN ROLE {member_of}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create the login {login}"))?;
        let (scheme, rest) = self.database_url.split_once("://").context("a URL")?;
        let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        Ok(format!("{scheme}://{login}@{host_and_path}"))
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let mut admin = AsyncPgConnection::establish(&self.admin_database_url).await?;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database_name
        ))
        .execute(&mut admin)
        .await?;
        for kind in LOGIN_KINDS {
            diesel::sql_query(format!("DROP ROLE IF EXISTS {}_{kind}", self.database_name))
                .execute(&mut admin)
                .await?;
        }
        self.management.delete_vhost(&self.vhost).await?;
        self.management
            .delete_users_with_prefix(&self.party_prefix)
            .await
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime, so clean up on a thread of its own.
        let env = TestEnvCleanup {
            admin_database_url: self.admin_database_url.clone(),
            database_name: self.database_name.clone(),
            vhost: self.vhost.clone(),
            party_prefix: self.party_prefix.clone(),
            management_url: self.management.base.clone(),
        };
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(env.run())
        })
        .join();
        if let Ok(Err(error)) = cleaned {
            eprintln!("warning: cleanup of test {} failed: {error:#}", self.id);
        }
    }
}

struct TestEnvCleanup {
    admin_database_url: String,
    database_name: String,
    vhost: String,
    party_prefix: String,
    management_url: String,
}

impl TestEnvCleanup {
    async fn run(self) -> anyhow::Result<()> {
        let env = TestEnv {
            token_key: String::new(),
            id: String::new(),
            database_url: String::new(),
            amqp_url: String::new(),
            admin_database_url: self.admin_database_url,
            database_name: self.database_name,
            management: Management::new(&self.management_url),
            vhost: self.vhost,
            party_prefix: self.party_prefix,
        };
        let result = env.cleanup().await;
        std::mem::forget(env);
        result
    }
}

/// Replaces the path of a URL (the database or virtual host) with `path`.
fn replace_path(url: &str, path: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{path}")
}

struct Management {
    client: reqwest::Client,
    base: String,
}

impl Management {
    fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .basic_auth("guest", Some("guest"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}: the RabbitMQ management API at {} does not answer; run scripts/services", self.base))?;
        if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
            bail!("{method} {path}: HTTP {}", response.status());
        }
        Ok(response)
    }

    async fn create_vhost(&self, vhost: &str) -> anyhow::Result<()> {
        self.request(reqwest::Method::PUT, &format!("/api/vhosts/{vhost}"), None)
            .await?;
        let permissions = serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"});
        self.request(
            reqwest::Method::PUT,
            &format!("/api/permissions/{vhost}/guest"),
            Some(permissions),
        )
        .await?;
        Ok(())
    }

    async fn close_connections(
        &self,
        vhost: &str,
        select: impl Fn(&str) -> bool,
    ) -> anyhow::Result<usize> {
        let connections: Vec<serde_json::Value> = self
            .request(
                reqwest::Method::GET,
                &format!("/api/vhosts/{vhost}/connections"),
                None,
            )
            .await?
            .json()
            .await?;
        let mut closed = 0;
        for connection in connections {
            let (Some(name), Some(user)) =
                (connection["name"].as_str(), connection["user"].as_str())
            else {
                continue;
            };
            if select(user) {
                let encoded: String = name
                    .bytes()
                    .map(|byte| match byte {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (byte as char).to_string()
                        }
                        other => format!("%{other:02X}"),
                    })
                    .collect();
                self.request(
                    reqwest::Method::DELETE,
                    &format!("/api/connections/{encoded}"),
                    None,
                )
                .await?;
                closed += 1;
            }
        }
        Ok(closed)
    }

    async fn delete_vhost(&self, vhost: &str) -> anyhow::Result<()> {
        self.request(
            reqwest::Method::DELETE,
            &format!("/api/vhosts/{vhost}"),
            None,
        )
        .await?;
        Ok(())
    }

    async fn delete_users_with_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        let users: Vec<serde_json::Value> = self
            .request(reqwest::Method::GET, "/api/users", None)
            .await?
            .json()
            .await?;
        for user in users {
            if let Some(name) = user["name"]
                .as_str()
                .filter(|name| name.starts_with(prefix))
            {
                self.request(reqwest::Method::DELETE, &format!("/api/users/{name}"), None)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A valid export permit of `issuer` addressed to `importer`, built from real CITES data:
/// captive-bred Hermann's tortoises (Appendix II, source C, term LIV, counted in specimens).
pub fn permit_json(issuer: &str, importer: &str, number: &str) -> Vec<u8> {
    let today = chrono::Utc::now().date_naive();
    let valid_until = today + chrono::Days::new(150);
    let document = serde_json::json!({
        "document_type": "export",
        "permit_number": number,
        "issuing_country": issuer,
        "issue_date": today.to_string(),
        "valid_until": valid_until.to_string(),
        "purpose": "T",
        "importer": {"name": "Importing zoo", "address": "1 Zoo Road", "country": importer},
        "exporter": {"name": "Exporting breeder", "address": "2 Farm Lane", "country": issuer},
        "lines": [{
            "block": "A",
            "scientific_name": "Testudo hermanni",
            "common_name": "Hermann's tortoise",
            "description": "live juveniles, captive-bred",
            "appendix": "II",
            "source": "C",
            "term": "LIV",
            "quantity": 12,
            "unit": ""
        }]
    });
    serde_json::to_vec_pretty(&document).expect("a JSON value serialises")
}
