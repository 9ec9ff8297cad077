//! Reading the trail: filtered pages, the chain check, and the export.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Bytea, Int4, Int8, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use epix_shared::audit::{AuditRecord, ChainBreak, ChainChecker, ChainEntry, PurgedRecord, to_hex};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::audit_trail;

/// Maximum events of one page of `GET /v1/audit`.
pub const MAX_PAGE: i64 = 1000;

/// Entries read from the database per round trip while verifying or exporting.
const SCAN_PAGE: i64 = 5000;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = audit_trail)]
pub struct AuditRow {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub actor_kind: String,
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
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            occurred_at: row.occurred_at,
            action: row.action,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            actor_party: row.actor_party,
            actor_roles: row.actor_roles,
            permit_country: row.permit_country,
            permit_number: row.permit_number,
            permit_version: row.permit_version,
            addressee: row.addressee,
            message_id: row.message_id,
            amqp: row.amqp,
            body_sha256: row.body_sha256.map(|digest| to_hex(&digest)),
            request_id: row.request_id,
            client_address: row.client_address,
            details: row.details,
            prev_hash: to_hex(&row.prev_hash),
            hash: to_hex(&row.hash),
        }
    }
}

/// The selection of `GET /v1/audit`. Every field that is set narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub permit: Option<(String, String)>,
    /// Events where this Party acted, issued the permit, or is the addressee.
    pub party: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events after this seq: the cursor of the previous page.
    pub after: Option<i64>,
    /// The caller's own Party when it does not see every Party's events; applied like
    /// `party`.
    pub visible_to: Option<String>,
}

/// Returns up to `limit` events that match `filter`, in chain order.
pub async fn list(
    connection: &mut AsyncPgConnection,
    filter: &Filter,
    limit: i64,
) -> QueryResult<Vec<AuditRecord>> {
    let mut query = audit_trail::table
        .select(AuditRow::as_select())
        .order(audit_trail::seq)
        .limit(limit.clamp(1, MAX_PAGE))
        .into_boxed();
    if let Some((country, number)) = &filter.permit {
        query = query
            .filter(audit_trail::permit_country.eq(country.clone()))
            .filter(audit_trail::permit_number.eq(number.clone()));
    }
    for party in [&filter.party, &filter.visible_to].into_iter().flatten() {
        query = query.filter(
            audit_trail::actor_party
                .eq(party.clone())
                .or(audit_trail::permit_country.eq(party.clone()))
                .or(audit_trail::addressee.eq(party.clone())),
        );
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_trail::actor_id.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_trail::action.eq(action.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_trail::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_trail::occurred_at.lt(to));
    }
    if let Some(after) = filter.after {
        query = query.filter(audit_trail::seq.gt(after));
    }
    let rows = query.load(connection).await?;
    Ok(rows.into_iter().map(AuditRecord::from).collect())
}

/// One entry of the chain as read for a scan: an event, or a purged event's stub.
#[derive(QueryableByName)]
struct ScanRow {
    #[diesel(sql_type = Int8)]
    seq: i64,
    #[diesel(sql_type = Bool)]
    purged: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    occurred_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    action: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_party: Option<String>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    actor_roles: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Text>)]
    permit_country: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    permit_number: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    permit_version: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    addressee: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    message_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    amqp: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Bytea>)]
    body_sha256: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Text>)]
    request_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    client_address: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    details: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Bytea>)]
    prev_hash: Option<Vec<u8>>,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

impl From<ScanRow> for ChainEntry {
    fn from(row: ScanRow) -> Self {
        if row.purged {
            return Self::Purged(PurgedRecord {
                seq: row.seq,
                purged: true,
                hash: to_hex(&row.hash),
            });
        }
        Self::Event(Box::new(AuditRecord {
            seq: row.seq,
            occurred_at: row.occurred_at.unwrap_or_default(),
            action: row.action.unwrap_or_default(),
            actor_kind: row.actor_kind.unwrap_or_default(),
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            actor_party: row.actor_party,
            actor_roles: row.actor_roles.unwrap_or_default(),
            permit_country: row.permit_country,
            permit_number: row.permit_number,
            permit_version: row.permit_version,
            addressee: row.addressee,
            message_id: row.message_id,
            amqp: row.amqp,
            body_sha256: row.body_sha256.map(|digest| to_hex(&digest)),
            request_id: row.request_id,
            client_address: row.client_address,
            details: row.details.unwrap_or_default(),
            prev_hash: to_hex(&row.prev_hash.unwrap_or_default()),
            hash: to_hex(&row.hash),
        }))
    }
}

/// Reads the chain's entries with `after < seq <= through`, events and purged stubs merged
/// in seq order, at most `limit` of them.
async fn scan_page(
    connection: &mut AsyncPgConnection,
    after: i64,
    through: i64,
    limit: i64,
) -> QueryResult<Vec<ChainEntry>> {
    let rows: Vec<ScanRow> = diesel::sql_query(
        "SELECT * FROM ( \
           (SELECT seq, false AS purged, occurred_at, action, actor_kind, actor_id, actor_name, \
                   actor_party, actor_roles, permit_country, permit_number, permit_version, \
                   addressee, message_id, amqp, body_sha256, request_id, client_address, \
                   details, prev_hash, hash \
            FROM audit_trail WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3) \
           UNION ALL \
           (SELECT seq, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, hash \
            FROM audit_purged WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3) \
         ) AS entries ORDER BY seq LIMIT $3",
    )
    .bind::<Int8, _>(after)
    .bind::<Int8, _>(through)
    .bind::<Int8, _>(limit)
    .load(connection)
    .await?;
    Ok(rows.into_iter().map(ChainEntry::from).collect())
}

#[derive(QueryableByName)]
struct HeadRow {
    #[diesel(sql_type = Int8)]
    seq: i64,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

async fn read_head(connection: &mut AsyncPgConnection) -> QueryResult<HeadRow> {
    diesel::sql_query("SELECT seq, hash FROM audit_head WHERE id")
        .get_result(connection)
        .await
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Whether every event up to the head verified.
    pub ok: bool,
    /// Entries checked, purged ones included.
    pub checked: u64,
    /// The head's seq when the check began; later events are not checked.
    pub head_seq: i64,
    /// The first event that failed, and why.
    pub first_bad: Option<ChainBreak>,
}

/// Walks the chain from seq 1 to the head as it was when the walk began.
pub async fn verify(connection: &mut AsyncPgConnection) -> QueryResult<VerifyReport> {
    let head = read_head(connection).await?;
    let mut checker = ChainChecker::from_genesis();
    let mut after = 0;
    let report = |checker: &ChainChecker, first_bad: Option<ChainBreak>| VerifyReport {
        ok: first_bad.is_none(),
        checked: checker.checked(),
        head_seq: head.seq,
        first_bad,
    };
    loop {
        let page = scan_page(connection, after, head.seq, SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq();
        for entry in &page {
            if let Err(error) = checker.check(entry) {
                return Ok(report(&checker, Some(error)));
            }
        }
    }
    let end = checker
        .last()
        .unwrap_or((0, epix_shared::audit::GENESIS_HASH));
    let first_bad = if end.0 != head.seq {
        Some(ChainBreak {
            seq: end.0 + 1,
            reason: format!(
                "the chain ends at seq {} but the head names seq {}: the events after it are missing",
                end.0, head.seq
            ),
        })
    } else if end.1.as_slice() != head.hash.as_slice() {
        Some(ChainBreak {
            seq: head.seq,
            reason: "the last event's hash does not match the hash kept in the head".to_owned(),
        })
    } else {
        None
    };
    Ok(report(&checker, first_bad))
}

/// Writes the entries of the chain from the first to the last event that occurred in
/// `[from, to)`, purged stubs and events outside the range but between them included, so
/// that the lines form one unbroken run of the chain. Returns how many lines were written.
pub async fn export(
    connection: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut write_line: impl FnMut(&ChainEntry) -> std::io::Result<()>,
) -> Result<u64, ExportError> {
    #[derive(QueryableByName)]
    struct Range {
        #[diesel(sql_type = Nullable<Int8>)]
        first: Option<i64>,
        #[diesel(sql_type = Nullable<Int8>)]
        last: Option<i64>,
    }
    let range: Range = diesel::sql_query(
        "SELECT min(seq) AS first, max(seq) AS last FROM audit_trail \
         WHERE occurred_at >= $1 AND occurred_at < $2",
    )
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(connection)
    .await?;
    let (Some(first), Some(last)) = (range.first, range.last) else {
        return Ok(0);
    };
    let mut after = first - 1;
    let mut written = 0;
    loop {
        let page = scan_page(connection, after, last, SCAN_PAGE).await?;
        let Some(tail) = page.last() else { break };
        after = tail.seq();
        for entry in &page {
            write_line(entry)?;
            written += 1;
        }
    }
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database query failed: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}
