//! Broadcasting register changes and user revocations to every Party's inbox.
//!
//! Each change to the register (a record with a new register version) becomes one
//! `register.signatory-changed` message per Party, and each removed user one
//! `register.user-revoked` message per Party, each signed by the hub. Under an advisory
//! lock, so two replicas never take the same change, one transaction reads what is not yet
//! broadcast, writes the messages to the outbox and records how far it got. After the
//! commit the messages are published with confirms and marked sent; what a crash or a
//! broker outage leaves unsent, the outbox sweeper publishes later. Message ids derive
//! from the version (or user) and the Party, so a message sent twice keeps its id.

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
use crate::audit::{self, ActorKind, Event};
use crate::db::models::NewOutboxRow;
use crate::db::schema::{outbox, parties, register_broadcast, users};
use crate::outbox::{OutboxMessage, publish, settle};

/// Key of the advisory lock that one broadcaster holds while it runs.
const BROADCAST_LOCK: i64 = 0x4550_4958_5245_4742; // "EPIXREGB"
/// Most messages one run writes; the rest follow in the next run, right after.
const MAX_MESSAGES_PER_RUN: usize = 2000;
/// Longest wait for the broker's confirms of one run; unconfirmed rows stay for the sweeper.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    #[error("cannot sign the broadcast: {0}")]
    Signing(String),
}

/// Counts of what one run broadcast.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Broadcast {
    pub signatory_changes: usize,
    pub revocations: usize,
    pub messages: usize,
}

/// Broadcasts what is pending, once. Returns at once when another replica has the lock.
/// A failure to publish is left to the outbox sweeper and not returned, except a broker
/// error, after which the caller reconnects.
pub async fn broadcast_pending(
    context: &HubContext,
    channel: &Channel,
) -> Result<Broadcast, BroadcastError> {
    let mut connection = context
        .pool
        .get()
        .await
        .map_err(|error| BroadcastError::Pool(error.to_string()))?;
    let (done, messages) = connection
        .transaction::<_, BroadcastError, _>(|connection| {
            async move { write(context, connection).await }.scope_boxed()
        })
        .await?;
    context.metrics.record_broadcast(
        MessageType::RegisterSignatoryChanged,
        done.signatory_changes,
    );
    context
        .metrics
        .record_broadcast(MessageType::RegisterUserRevoked, done.revocations);
    if messages.is_empty() {
        return Ok(done);
    }
    tracing::info!(
        signatory_changes = done.signatory_changes,
        revocations = done.revocations,
        messages = done.messages,
        "broadcasting register changes to every inbox"
    );
    let report = match tokio::time::timeout(
        PUBLISH_TIMEOUT,
        publish(channel, &messages, &context.metrics.outbox.broadcaster),
    )
    .await
    {
        Ok(Ok(report)) => report,
        Ok(Err(error)) => return Err(BroadcastError::Broker(error)),
        Err(_) => {
            tracing::warn!(
                "the broker did not confirm the broadcast in time; the outbox sweeper sends it again"
            );
            return Ok(done);
        }
    };
    settle(&mut connection, &report).await?;
    if !report.nacked.is_empty() {
        tracing::warn!(
            rows = report.nacked.len(),
            "the broker refused broadcast messages; the outbox sweeper sends them again"
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

/// Writes the pending broadcasts to the outbox and moves the broadcast marks; returns the
/// rows to publish once the transaction commits.
async fn write(
    context: &HubContext,
    connection: &mut AsyncPgConnection,
) -> Result<(Broadcast, Vec<OutboxMessage>), BroadcastError> {
    let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(BROADCAST_LOCK)
        .get_result(connection)
        .await?;
    if !lock.locked {
        return Ok((Broadcast::default(), Vec::new()));
    }
    let parties: Vec<PartyCode> = parties::table
        .select(parties::code)
        .load::<String>(connection)
        .await?
        .into_iter()
        .filter_map(|code| code.parse().ok())
        .collect();
    let per_run = (MAX_MESSAGES_PER_RUN / parties.len().max(1)).max(1);
    let broadcast_version: i64 = register_broadcast::table
        .select(register_broadcast::version)
        .first(connection)
        .await?;
    let mut changes = store::changes_since(connection, broadcast_version).await?;
    changes.truncate(per_run);
    let removed: Vec<RemovedUser> = users::table
        .filter(users::status.eq("removed"))
        .filter(users::removed_at.is_not_null())
        .filter(users::removal_broadcast_at.is_null())
        .order(users::id)
        .limit(per_run.saturating_sub(changes.len()) as i64)
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
        return Ok((Broadcast::default(), Vec::new()));
    }

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
            // Never empty: the query takes removed users with a removal time only.
            removed_at: user.removed_at.unwrap_or_default(),
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

    // Rows left by an earlier run that committed and then failed keep their ids; they are
    // not written twice.
    diesel::insert_into(outbox::table)
        .values(&rows)
        .on_conflict(outbox::message_id)
        .do_nothing()
        .execute(connection)
        .await?;
    let message_ids: Vec<Uuid> = rows.iter().map(|row| row.message_id).collect();
    let ids: Vec<(i64, Uuid)> = outbox::table
        .filter(outbox::message_id.eq_any(&message_ids))
        .filter(outbox::sent_at.is_null())
        .select((outbox::id, outbox::message_id))
        .load(connection)
        .await?;
    let ids: std::collections::HashMap<Uuid, i64> = ids
        .into_iter()
        .map(|(id, message_id)| (message_id, id))
        .collect();
    let messages: Vec<OutboxMessage> = rows
        .into_iter()
        .filter_map(|row| {
            let id = *ids.get(&row.message_id)?;
            let body = row.body.clone().unwrap_or_default();
            Some(OutboxMessage::from_row(id, row, body))
        })
        .collect();
    diesel::update(register_broadcast::table)
        .set(register_broadcast::version.eq(last_version))
        .execute(connection)
        .await?;
    let user_ids: Vec<i64> = removed.iter().map(|user| user.id).collect();
    diesel::update(users::table.filter(users::id.eq_any(&user_ids)))
        .set(users::removal_broadcast_at.eq(Utc::now()))
        .execute(connection)
        .await?;
    // The transmissions join the audit trail in this transaction, with what was sent.
    let now = Utc::now();
    let party_list: Vec<&str> = parties.iter().map(PartyCode::as_str).collect();
    let mut events = Vec::with_capacity(changes.len() + removed.len());
    for change in &changes {
        events.push(
            Event::new("register.broadcast", ActorKind::Hub, now).details(serde_json::json!({
                "type": MessageType::RegisterSignatoryChanged.as_str(),
                "register_version": change.register_version,
                "signatory_id": change.signatory_id,
                "signatory_party": change.party,
                "parties": party_list,
            })),
        );
    }
    for user in &removed {
        events.push(
            Event::new("register.broadcast", ActorKind::Hub, now).details(serde_json::json!({
                "type": MessageType::RegisterUserRevoked.as_str(),
                "username": user.username,
                "user_party": user.party,
                "parties": party_list,
            })),
        );
    }
    audit::append(connection, events).await?;
    let done = Broadcast {
        signatory_changes: changes.len(),
        revocations: removed.len(),
        messages: messages.len(),
    };
    Ok((done, messages))
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
