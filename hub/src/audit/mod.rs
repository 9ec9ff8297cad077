//! The tamper-evident audit trail: one global hash chain over every event, appended in
//! batches. docs/audit.md describes the table, the chain, the roles and retention.
//!
//! A writer collects the events of its transaction and calls [`append`] last. It locks the
//! one-row `audit_head`, numbers and hashes the events in process, inserts them with one
//! statement and moves the head. The lock is held only for that tail of the transaction.

pub mod export;
pub mod query;
pub mod retention;
pub mod router;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Int8, Timestamptz};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::audit::{AuditRecord, chain_hash, to_hex};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::schema::{audit_head, audit_trail};

/// Rows per INSERT statement, well below PostgreSQL's 65,535 bind parameters (20 a row).
const INSERT_CHUNK: usize = 1000;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person or API client through the HTTP API.
    User,
    /// A Party's spoke over AMQP.
    Spoke,
    /// The hub on its own account, such as a dead-lettered message.
    Hub,
    /// An operator's command or a scheduled job.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Spoke => "spoke",
            Self::Hub => "hub",
            Self::System => "system",
        }
    }
}

/// The request id and client address of an HTTP request, for its events.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_address: Option<String>,
}

/// One event before it joins the chain.
#[derive(Debug, Clone)]
pub struct Event {
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub actor_party: Option<String>,
    pub actor_roles: Vec<String>,
    pub permit_country: Option<String>,
    pub permit_number: Option<String>,
    pub permit_version: Option<i32>,
    pub addressee: Option<String>,
    pub message_id: Option<Uuid>,
    pub amqp: Option<serde_json::Value>,
    pub body_sha256: Option<Vec<u8>>,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(action: &str, actor_kind: ActorKind, occurred_at: DateTime<Utc>) -> Self {
        Self {
            occurred_at,
            action: action.to_owned(),
            actor_kind,
            actor_id: None,
            actor_name: None,
            actor_party: None,
            actor_roles: Vec::new(),
            permit_country: None,
            permit_number: None,
            permit_version: None,
            addressee: None,
            message_id: None,
            amqp: None,
            body_sha256: None,
            request_id: None,
            client_address: None,
            details: serde_json::json!({}),
        }
    }

    /// Creates an event done by an authenticated API user in an HTTP request.
    pub fn by_user(
        action: &str,
        principal: &Principal,
        request: &RequestMeta,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        let mut event = Self::new(action, ActorKind::User, occurred_at).request(request);
        event.actor_id = Some(principal.username.clone());
        event.actor_name = Some(principal.full_name.clone());
        event.actor_party = principal.party.clone();
        event.actor_roles = principal
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect();
        event
    }

    pub fn request(mut self, request: &RequestMeta) -> Self {
        self.request_id = request.request_id.clone();
        self.client_address = request.client_address.clone();
        self
    }

    pub fn permit(mut self, country: &str, number: &str, version: Option<i32>) -> Self {
        self.permit_country = Some(country.to_owned());
        self.permit_number = Some(number.to_owned());
        self.permit_version = version;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = if details.is_null() {
            serde_json::json!({})
        } else {
            details
        };
        self
    }

    /// Converts the event into its record at `seq`, without the hashes.
    fn into_record(self, seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            // PostgreSQL keeps microseconds; the hash covers the time as stored.
            occurred_at: self.occurred_at.trunc_subsecs(6),
            action: self.action,
            actor_kind: self.actor_kind.as_str().to_owned(),
            actor_id: self.actor_id,
            actor_name: self.actor_name,
            actor_party: self.actor_party,
            actor_roles: self.actor_roles,
            permit_country: self.permit_country,
            permit_number: self.permit_number,
            permit_version: self.permit_version,
            addressee: self.addressee,
            message_id: self.message_id,
            amqp: self.amqp,
            body_sha256: self.body_sha256.map(|digest| to_hex(&digest)),
            request_id: self.request_id,
            client_address: self.client_address,
            details: self.details,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_trail)]
struct NewAuditRow {
    seq: i64,
    occurred_at: DateTime<Utc>,
    action: String,
    actor_kind: String,
    actor_id: Option<String>,
    actor_name: Option<String>,
    actor_party: Option<String>,
    actor_roles: Vec<String>,
    permit_country: Option<String>,
    permit_number: Option<String>,
    permit_version: Option<i32>,
    addressee: Option<String>,
    message_id: Option<Uuid>,
    amqp: Option<serde_json::Value>,
    body_sha256: Option<Vec<u8>>,
    request_id: Option<String>,
    client_address: Option<String>,
    details: serde_json::Value,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// The end of the chain, as locked by [`lock_head`].
#[derive(QueryableByName)]
pub(crate) struct Head {
    #[diesel(sql_type = Int8)]
    pub(crate) seq: i64,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

/// Locks the head row until the caller's transaction ends and returns it.
pub(crate) async fn lock_head(
    connection: &mut AsyncPgConnection,
) -> Result<Head, diesel::result::Error> {
    diesel::sql_query("SELECT seq, hash FROM audit_head WHERE id FOR UPDATE")
        .get_result(connection)
        .await
}

/// Appends `events` to the chain, in order. Call it last in the caller's transaction: the
/// head row stays locked until that transaction ends.
pub async fn append(
    connection: &mut AsyncPgConnection,
    events: Vec<Event>,
) -> Result<(), diesel::result::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let head = lock_head(connection).await?;
    append_locked(connection, head, events).await?;
    Ok(())
}

/// Appends `events` after `head`, which the caller's transaction has locked with
/// [`lock_head`].
pub(crate) async fn append_locked(
    connection: &mut AsyncPgConnection,
    head: Head,
    events: Vec<Event>,
) -> Result<(), diesel::result::Error> {
    let mut previous: [u8; 32] = head.hash.as_slice().try_into().map_err(|_| {
        diesel::result::Error::DeserializationError("audit_head.hash is not 32 bytes".into())
    })?;
    let mut seq = head.seq;
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let digest = event.body_sha256.clone();
        let record = event.into_record(seq);
        let hash = chain_hash(&previous, &record);
        rows.push(NewAuditRow {
            seq,
            occurred_at: record.occurred_at,
            action: record.action,
            actor_kind: record.actor_kind,
            actor_id: record.actor_id,
            actor_name: record.actor_name,
            actor_party: record.actor_party,
            actor_roles: record.actor_roles,
            permit_country: record.permit_country,
            permit_number: record.permit_number,
            permit_version: record.permit_version,
            addressee: record.addressee,
            message_id: record.message_id,
            amqp: record.amqp,
            body_sha256: digest,
            request_id: record.request_id,
            client_address: record.client_address,
            details: record.details,
            prev_hash: previous.to_vec(),
            hash: hash.to_vec(),
        });
        previous = hash;
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        diesel::insert_into(audit_trail::table)
            .values(chunk)
            .execute(connection)
            .await?;
    }
    diesel::update(audit_head::table)
        .set((
            audit_head::seq.eq(seq),
            audit_head::hash.eq(previous.to_vec()),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// Appends events in a transaction of their own (a savepoint inside an open transaction).
pub async fn record(
    connection: &mut AsyncPgConnection,
    events: Vec<Event>,
) -> Result<(), diesel::result::Error> {
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move { append(connection, events).await }.scope_boxed()
        })
        .await
}

/// Creates the monthly partitions of the month of `now` and the next; returns how many
/// were created.
pub async fn ensure_partitions(
    connection: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> Result<i32, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        created: i32,
    }
    let created: Created = diesel::sql_query("SELECT audit_ensure_partitions($1) AS created")
        .bind::<Timestamptz, _>(now)
        .get_result(connection)
        .await?;
    Ok(created.created)
}

#[derive(QueryableByName)]
struct LegacyEvent {
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    actor: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    actor_party: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    subject: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    client_address: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    details: serde_json::Value,
}

/// Moves the rows of the security-event table that preceded the trail into the chain, in
/// their order, and empties that table. Returns how many moved.
pub async fn import_legacy_events(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                let legacy: Vec<LegacyEvent> = diesel::sql_query(
                    "WITH moved AS (DELETE FROM audit_legacy_events RETURNING *) \
                     SELECT occurred_at, action, actor, actor_party, subject, client_address, details \
                     FROM moved ORDER BY id",
                )
                .load(connection)
                .await?;
                let count = legacy.len();
                let events = legacy
                    .into_iter()
                    .map(|old| {
                        let kind = if old.actor.is_some() {
                            ActorKind::User
                        } else {
                            ActorKind::System
                        };
                        let mut details = match old.details {
                            serde_json::Value::Object(map) => serde_json::Value::Object(map),
                            other => serde_json::json!({ "value": other }),
                        };
                        details["subject"] = serde_json::json!(old.subject);
                        details["migrated_from"] = serde_json::json!("audit_events");
                        let mut event = Event::new(&old.action, kind, old.occurred_at).details(details);
                        event.actor_id = old.actor;
                        event.actor_party = old.actor_party;
                        event.client_address = old.client_address;
                        event
                    })
                    .collect();
                append(connection, events).await?;
                Ok(count)
            }
            .scope_boxed()
        })
        .await
}

/// Prepares the trail at start: this month's and next month's partitions, and the move of
/// older security events into the chain.
pub async fn prepare(
    pool: &crate::db::DbPool,
    now: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut connection = pool.get().await?;
    let created = ensure_partitions(&mut connection, now).await?;
    if created > 0 {
        tracing::info!(partitions = created, "audit partitions created");
    }
    let moved = import_legacy_events(&mut connection).await?;
    if moved > 0 {
        tracing::info!(
            events = moved,
            "earlier security events moved into the audit trail"
        );
    }
    Ok(())
}
