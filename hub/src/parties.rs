//! The Parties the hub knows, and registering a new one with its broker user.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::FixedOffset;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use epix_shared::PartyCode;
use epix_shared::envelope::{SUBMISSION_EXCHANGE, broker_user, inbox_queue, receipt_queue};
use epix_shared::permit::{PartyProfile, Rules};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::config::Config;
use crate::db::DbPool;
use crate::db::models::Party;
use crate::db::schema::parties;

/// Shortest pause between two reloads of the Party list caused by an unknown name, so that
/// a flood of messages from unknown broker users cannot turn into a flood of queries. Short,
/// because a Party registered within it is refused as unknown until the next reload.
const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// In-memory copy of the `parties` table, reloaded when a lookup misses.
pub struct PartyDirectory {
    prefix: String,
    state: RwLock<DirectoryState>,
}

struct DirectoryState {
    by_code: HashMap<PartyCode, Party>,
    rules: Arc<Rules>,
    loaded_at: Option<Instant>,
}

impl PartyDirectory {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            state: RwLock::new(DirectoryState {
                by_code: HashMap::new(),
                rules: Arc::new(Rules::default()),
                loaded_at: None,
            }),
        }
    }

    /// Returns whether `code` is a registered Party, reloading the list once if needed.
    pub async fn contains(&self, pool: &DbPool, code: PartyCode) -> Result<bool, PartyError> {
        if self.cached(code) {
            return Ok(true);
        }
        self.reload_if_stale(pool).await?;
        Ok(self.cached(code))
    }

    /// Maps an authenticated broker user to its Party, if it is one.
    pub async fn party_of_user(
        &self,
        pool: &DbPool,
        user: &str,
    ) -> Result<Option<PartyCode>, PartyError> {
        let Some(code) = user
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.parse::<PartyCode>().ok())
        else {
            return Ok(None);
        };
        if !self.contains(pool, code).await? {
            return Ok(None);
        }
        let state = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(state
            .by_code
            .get(&code)
            .filter(|party| party.broker_user == user)
            .map(|_| code))
    }

    /// The permit rules with every registered Party's profile, as of the last reload.
    pub fn rules(&self) -> Arc<Rules> {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.rules.clone()
    }

    /// Reloads the Party list now, whatever its age.
    pub async fn reload(&self, pool: &DbPool) -> Result<(), PartyError> {
        let rows = list(pool).await?;
        let by_code: HashMap<PartyCode, Party> = rows
            .into_iter()
            .filter_map(|party| {
                party
                    .code
                    .parse::<PartyCode>()
                    .ok()
                    .map(|code| (code, party))
            })
            .collect();
        let mut rules = Rules::default();
        for (code, party) in &by_code {
            rules = rules.with_party(*code, profile_of(party));
        }
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.by_code = by_code;
        state.rules = Arc::new(rules);
        state.loaded_at = Some(Instant::now());
        Ok(())
    }

    fn cached(&self, code: PartyCode) -> bool {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.by_code.contains_key(&code)
    }

    async fn reload_if_stale(&self, pool: &DbPool) -> Result<(), PartyError> {
        {
            let state = self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if state
                .loaded_at
                .is_some_and(|at| at.elapsed() < RELOAD_INTERVAL)
            {
                return Ok(());
            }
        }
        self.reload(pool).await
    }
}

fn profile_of(party: &Party) -> PartyProfile {
    PartyProfile {
        requires_applicant_signature: party.requires_applicant_signature,
        utc_offset: party
            .utc_offset_minutes
            .and_then(|minutes| FixedOffset::east_opt(minutes * 60)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PartyError {
    #[error("party {0} is already registered")]
    Exists(PartyCode),
    #[error("party {0} is not registered")]
    Unknown(PartyCode),
    #[error("database error: {0}")]
    Database(String),
    #[error("broker management API request {action} failed: {message}")]
    Management { action: String, message: String },
    #[error("broker error: {0}")]
    Broker(String),
}

impl From<diesel::result::Error> for PartyError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.to_string())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for PartyError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Database(error.to_string())
    }
}

pub async fn list(pool: &DbPool) -> Result<Vec<Party>, PartyError> {
    let mut connection = pool.get().await?;
    let rows = parties::table
        .select(Party::as_select())
        .order(parties::code)
        .load(&mut connection)
        .await?;
    Ok(rows)
}

/// What a new Party's spoke needs to connect.
#[derive(Debug)]
pub struct SpokeSettings {
    pub party: PartyCode,
    pub broker_user: String,
    pub amqp_url: String,
    pub hub_url: String,
}

/// Registers a Party: creates its broker user with the design's permissions, declares its
/// queues, then records it. The broker steps come first and are idempotent, so a failure
/// leaves nothing in the database and the command can be run again.
pub async fn add(
    config: &Config,
    pool: &DbPool,
    code: PartyCode,
    name: &str,
    profile: &PartyProfile,
) -> Result<SpokeSettings, PartyError> {
    let mut connection = pool.get().await?;
    let existing: Option<String> = parties::table
        .select(parties::code)
        .find(code.as_str())
        .first(&mut connection)
        .await
        .optional()?;
    if existing.is_some() {
        return Err(PartyError::Exists(code));
    }

    let user = broker_user(&config.party_user_prefix, code);
    let password = random_password();
    let management = Management::new(config);
    management.put_user(&user, &password).await?;
    management.put_permissions(&user, code).await?;
    declare_queues(config, code).await?;

    diesel::insert_into(parties::table)
        .values((
            parties::code.eq(code.as_str()),
            parties::name.eq(name),
            parties::broker_user.eq(&user),
            parties::requires_applicant_signature.eq(profile.requires_applicant_signature),
            parties::utc_offset_minutes.eq(profile
                .utc_offset
                .map(|offset| offset.local_minus_utc() / 60)),
        ))
        .execute(&mut connection)
        .await?;
    tracing::info!(party.code = %code, broker.user = %user, "party registered");

    Ok(SpokeSettings {
        party: code,
        amqp_url: with_credentials(&config.public_amqp_url, &user, &password),
        broker_user: user,
        hub_url: config.public_hub_url.clone(),
    })
}

/// Gives a Party's broker user a new password and closes the user's open connections, so
/// the old password stops working at once.
pub async fn rotate_credentials(
    config: &Config,
    pool: &DbPool,
    code: PartyCode,
) -> Result<SpokeSettings, PartyError> {
    let mut connection = pool.get().await?;
    let user: Option<String> = parties::table
        .select(parties::broker_user)
        .find(code.as_str())
        .first(&mut connection)
        .await
        .optional()?;
    let Some(user) = user else {
        return Err(PartyError::Unknown(code));
    };
    let password = random_password();
    let management = Management::new(config);
    management.put_user(&user, &password).await?;
    let closed = management.close_connections_of(&user).await?;
    tracing::info!(party.code = %code, broker.user = %user, connections.closed = closed, "party broker credentials rotated");
    Ok(SpokeSettings {
        party: code,
        amqp_url: with_credentials(&config.public_amqp_url, &user, &password),
        broker_user: user,
        hub_url: config.public_hub_url.clone(),
    })
}

async fn declare_queues(config: &Config, code: PartyCode) -> Result<(), PartyError> {
    let broker = |error: lapin::Error| PartyError::Broker(error.to_string());
    let connection = crate::amqp::connect(&config.amqp_url, "epix-hub party add")
        .await
        .map_err(|error| PartyError::Broker(error.to_string()))?;
    let channel = connection.create_channel().await.map_err(broker)?;
    crate::amqp::declare_hub_topology(&channel, config.delivery_limit)
        .await
        .map_err(broker)?;
    crate::amqp::declare_party_queues(&channel, code)
        .await
        .map_err(broker)?;
    connection.close(200, "done".into()).await.map_err(broker)
}

fn random_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Puts `user:password` into an AMQP URL in place of any credentials it has. Both are
/// percent-encoded where needed; generated passwords are alphanumeric.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
    let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host_and_path}")
}

/// A client of the RabbitMQ management HTTP API.
struct Management {
    client: reqwest::Client,
    base: String,
    user: String,
    password: String,
    vhost: String,
}

impl Management {
    fn new(config: &Config) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base: config.management_url.trim_end_matches('/').to_owned(),
            user: config.management_user.clone(),
            password: config.management_password.clone(),
            vhost: config.vhost(),
        }
    }

    async fn put_user(&self, user: &str, password: &str) -> Result<(), PartyError> {
        let url = format!("{}/api/users/{}", self.base, encode_segment(user));
        let body = serde_json::json!({ "password": password, "tags": "" });
        self.put(&format!("create broker user {user}"), &url, body)
            .await
    }

    /// Lets the spoke publish only to the submission exchange and read only its own queues.
    async fn put_permissions(&self, user: &str, code: PartyCode) -> Result<(), PartyError> {
        let url = format!(
            "{}/api/permissions/{}/{}",
            self.base,
            encode_segment(&self.vhost),
            encode_segment(user)
        );
        let body = serde_json::json!({
            "configure": "^$",
            "write": format!("^{}$", regex_escape(SUBMISSION_EXCHANGE)),
            "read": format!(
                "^({}|{})$",
                regex_escape(&inbox_queue(code)),
                regex_escape(&receipt_queue(code))
            ),
        });
        self.put(&format!("set permissions of {user}"), &url, body)
            .await
    }

    /// Closes every broker connection of `user` and returns how many there were. Uses the
    /// per-user endpoint, which reads the broker's connection tracking, so a connection
    /// opened a moment ago is closed too.
    async fn close_connections_of(&self, user: &str) -> Result<usize, PartyError> {
        let failed = |message: String| PartyError::Management {
            action: format!("close connections of {user}"),
            message,
        };
        let url = format!(
            "{}/api/connections/username/{}",
            self.base,
            encode_segment(user)
        );
        let listed = self
            .client
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        let connections: Vec<serde_json::Value> = listed.json().await.unwrap_or_default();
        let response = self
            .client
            .delete(&url)
            .basic_auth(&self.user, Some(&self.password))
            .header("X-Reason", "broker credentials rotated")
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        Ok(connections.len())
    }

    async fn put(
        &self,
        action: &str,
        url: &str,
        body: serde_json::Value,
    ) -> Result<(), PartyError> {
        let failed = |message: String| PartyError::Management {
            action: action.to_owned(),
            message,
        };
        let response = self
            .client
            .put(url)
            .basic_auth(&self.user, Some(&self.password))
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                failed(format!(
                    "{error} (is the management plugin enabled at {}?)",
                    self.base
                ))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(failed(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        )))
    }
}

fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn regex_escape(text: &str) -> String {
    text.replace('.', "\\.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_replace_existing() {
        assert_eq!(
            with_credentials("amqp://guest:guest@127.0.0.1:5672/%2f", "party-CH", "pw"),
            "amqp://party-CH:pw@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            with_credentials("amqp://h:5672/v", "u", "p"),
            "amqp://u:p@h:5672/v"
        );
    }

    #[test]
    fn vhost_slash_is_encoded() {
        assert_eq!(encode_segment("/"), "%2F");
        assert_eq!(encode_segment("party-CH"), "party-CH");
    }

    #[test]
    fn generated_password_is_long() {
        let password = random_password();
        assert_eq!(password.len(), 32);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
