//! Broadcasting register changes and user revocations to every Party's inbox.
//!
//! Each change to the register (a record with a new register version) becomes one
//! `register.signatory-changed` message per Party, and each removed user one
//! `register.user-revoked` message per Party, each signed by the hub. The broadcaster
//! reads what is not yet broadcast, writes the messages to the outbox, publishes them with
//! confirms and records how far it got, all in one transaction under an advisory lock: a
//! crash or a broker outage leaves the changes to the next run, and two replicas never
//! broadcast the same change at once. Message ids derive from the version (or user) and the
//! Party, so a run repeated after a crash sends the same ids again.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::PartyCode;
use epix_shared::envelope::{
    DELIVERY_EXCHANGE, HEADER_SENDER, HEADER_SIGNATURE, MessageType, inbox_routing_key,
};
use epix_shared::trust::{
    HEADER_REGISTER_VERSION, TYP_SIGNATORY_CHANGE, TYP_USER_REVOCATION, UserRevocation,
};
use lapin::Channel;
use uuid::Uuid;

use super::store;
use crate::HubContext;
use crate::db::models::NewOutboxRow;
use crate::db::schema::{outbox, parties, register_broadcast, users};
use crate::outbox::{OutboxMessage, publish, settle};

/// Key of the advisory lock that one broadcaster holds while it runs.
const BROADCAST_LOCK: i64 = 0x4550_4958_5245_4742; // "EPIXREGB"
/// Most changes one run broadcasts; the rest follow in the next run.
const MAX_CHANGES_PER_RUN: usize = 100;
/// Longest wait for the broker's confirms of one run.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Namespace of the broadcast message ids (UUID v5).
const BROADCAST_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_3a52_9a0e_4d4b_8f3e_2b7d_5e11_c0de);

#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("cannot get a database connection: {0}")]
    Pool(String),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused {0} broadcast messages; the run is repeated")]
    Refused(usize),
    #[error("the broker did not confirm the broadcast in time")]
    TimedOut,
    #[error("cannot sign the broadcast: {0}")]
    Signing(String),
}

/// What one run broadcast.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Broadcast {
    pub signatory_changes: usize,
    pub revocations: usize,
    pub messages: usize,
}

/// Broadcasts what is pending, once. Returns quietly when another replica holds the lock.
pub async fn broadcast_pending(
    context: &HubContext,
    channel: &Channel,
) -> Result<Broadcast, BroadcastError> {
    let mut connection = context
        .pool
        .get()
        .await
        .map_err(|error| BroadcastError::Pool(error.to_string()))?;
    let done = connection
        .transaction::<_, BroadcastError, _>(|connection| {
            async move { run(context, connection, channel).await }.scope_boxed()
        })
        .await?;
    if done.messages > 0 {
        tracing::info!(
            signatory_changes = done.signatory_changes,
            revocations = done.revocations,
            messages = done.messages,
            "broadcast register changes to every inbox"
        );
    }
    Ok(done)
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

#[derive(Queryable)]
struct RemovedUser {
    id: i64,
    username: String,
    full_name: String,
    party: Option<String>,
    removed_at: Option<chrono::DateTime<Utc>>,
    removal_reason: Option<String>,
}

async fn run(
    context: &HubContext,
    connection: &mut AsyncPgConnection,
    channel: &Channel,
) -> Result<Broadcast, BroadcastError> {
    let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(BROADCAST_LOCK)
        .get_result(connection)
        .await?;
    if !lock.locked {
        return Ok(Broadcast::default());
    }
    let broadcast_version: i64 = register_broadcast::table
        .select(register_broadcast::version)
        .first(connection)
        .await?;
    let mut changes = store::changes_since(connection, broadcast_version).await?;
    changes.truncate(MAX_CHANGES_PER_RUN);
    let removed: Vec<RemovedUser> = users::table
        .filter(users::status.eq("removed"))
        .filter(users::removal_broadcast_at.is_null())
        .order(users::id)
        .limit(MAX_CHANGES_PER_RUN as i64)
        .select((
            users::id,
            users::username,
            users::full_name,
            users::party,
            users::removed_at,
            users::removal_reason,
        ))
        .load(connection)
        .await?;
    if changes.is_empty() && removed.is_empty() {
        return Ok(Broadcast::default());
    }
    let parties: Vec<PartyCode> = parties::table
        .select(parties::code)
        .load::<String>(connection)
        .await?
        .into_iter()
        .filter_map(|code| code.parse().ok())
        .collect();

    let mut rows = Vec::new();
    let mut last_version = broadcast_version;
    for change in &changes {
        let Some(version) = change.register_version else {
            continue;
        };
        last_version = last_version.max(version);
        let body = serde_json::to_vec(&store::trusted(change.clone()))
            .map_err(|error| BroadcastError::Signing(error.to_string()))?;
        let signature = sign(context, &body, TYP_SIGNATORY_CHANGE)?;
        for party in &parties {
            rows.push(row(
                &format!("register:{version}:{party}"),
                *party,
                MessageType::RegisterSignatoryChanged,
                serde_json::json!({
                    HEADER_SENDER: "hub",
                    HEADER_SIGNATURE: signature,
                    HEADER_REGISTER_VERSION: version.to_string(),
                }),
                body.clone(),
            ));
        }
    }
    for user in &removed {
        let revocation = UserRevocation {
            username: user.username.clone(),
            full_name: user.full_name.clone(),
            party: user.party.clone(),
            removed_at: user.removed_at.unwrap_or_else(Utc::now),
            reason: user.removal_reason.clone(),
        };
        let body = serde_json::to_vec(&revocation)
            .map_err(|error| BroadcastError::Signing(error.to_string()))?;
        let signature = sign(context, &body, TYP_USER_REVOCATION)?;
        for party in &parties {
            rows.push(row(
                &format!("user-revoked:{}:{party}", user.id),
                *party,
                MessageType::RegisterUserRevoked,
                serde_json::json!({ HEADER_SENDER: "hub", HEADER_SIGNATURE: signature }),
                body.clone(),
            ));
        }
    }

    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        // A row left by an earlier run that failed after its commit keeps its id; it is
        // sent again here, which the spoke recognises by version or message id.
        let id: Option<i64> = diesel::insert_into(outbox::table)
            .values(&row)
            .on_conflict(outbox::message_id)
            .do_nothing()
            .returning(outbox::id)
            .get_result(connection)
            .await
            .optional()?;
        let id = match id {
            Some(id) => id,
            None => {
                outbox::table
                    .filter(outbox::message_id.eq(row.message_id))
                    .select(outbox::id)
                    .first(connection)
                    .await?
            }
        };
        let body = row.body.clone().unwrap_or_default();
        messages.push(OutboxMessage::from_row(id, row, body));
    }
    let report = tokio::time::timeout(PUBLISH_TIMEOUT, publish(channel, &messages))
        .await
        .map_err(|_| BroadcastError::TimedOut)??;
    if !report.nacked.is_empty() {
        // Roll back: the whole run is repeated.
        return Err(BroadcastError::Refused(report.nacked.len()));
    }
    settle(connection, &report).await?;
    diesel::update(register_broadcast::table)
        .set(register_broadcast::version.eq(last_version))
        .execute(connection)
        .await?;
    let user_ids: Vec<i64> = removed.iter().map(|user| user.id).collect();
    diesel::update(users::table.filter(users::id.eq_any(&user_ids)))
        .set(users::removal_broadcast_at.eq(Utc::now()))
        .execute(connection)
        .await?;
    Ok(Broadcast {
        signatory_changes: changes.len(),
        revocations: removed.len(),
        messages: messages.len(),
    })
}

fn sign(context: &HubContext, body: &[u8], typ: &str) -> Result<String, BroadcastError> {
    context
        .token_keys
        .sign_detached(body, typ)
        .map_err(|error| BroadcastError::Signing(error.to_string()))
}

fn row(
    key: &str,
    party: PartyCode,
    message_type: MessageType,
    headers: serde_json::Value,
    body: Vec<u8>,
) -> NewOutboxRow {
    NewOutboxRow {
        message_id: Uuid::new_v5(&BROADCAST_NAMESPACE, key.as_bytes()),
        source_message_id: None,
        exchange: DELIVERY_EXCHANGE.to_owned(),
        routing_key: inbox_routing_key(party),
        message_type: message_type.as_str().to_owned(),
        correlation_id: None,
        content_type: "application/json".to_owned(),
        headers,
        body: Some(body),
    }
}
