//! Reading the trail: filtered pages, the chain check, and the export.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Bytea, Int4, Int8, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use epix_shared::audit::{
    AuditRecord, ChainBreak, ChainChecker, ChainEntry, OmittedRange, PurgedRecord, to_hex,
};
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
    #[diesel(sql_type = Nullable<Int8>)]
    purge_seq: Option<i64>,
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
                purge_seq: row.purge_seq.unwrap_or_default(),
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

/// The position after which a scan continues: a seq and, for an event, its time. A stub
/// sorts before an event of the same seq, so a duplicated seq is read, not skipped.
#[derive(Debug, Clone, Copy, Default)]
struct ScanCursor {
    seq: i64,
    occurred_at: Option<DateTime<Utc>>,
}

impl ScanCursor {
    fn after(entry: &ChainEntry) -> Self {
        match entry {
            ChainEntry::Event(event) => Self {
                seq: event.seq,
                occurred_at: Some(event.occurred_at),
            },
            other => Self {
                seq: other.seq(),
                occurred_at: None,
            },
        }
    }
}

/// Reads the chain's entries after `cursor` with `seq <= through`, events and purged stubs
/// merged in (seq, time) order, at most `limit` of them. Events are keyed by
/// (seq, occurred_at), the primary key, so two rows with one seq both come back.
async fn scan_page(
    connection: &mut AsyncPgConnection,
    cursor: ScanCursor,
    through: i64,
    limit: i64,
) -> QueryResult<Vec<ChainEntry>> {
    let rows: Vec<ScanRow> = diesel::sql_query(
        "SELECT * FROM ( \
           (SELECT seq, false AS purged, NULL::bigint AS purge_seq, occurred_at, action, \
                   actor_kind, actor_id, actor_name, actor_party, actor_roles, permit_country, \
                   permit_number, permit_version, addressee, message_id, amqp, body_sha256, \
                   request_id, client_address, details, prev_hash, hash \
            FROM audit_trail \
            WHERE (seq, occurred_at) > ($1, coalesce($2, '-infinity'::timestamptz)) AND seq <= $3 \
            ORDER BY seq, occurred_at LIMIT $4) \
           UNION ALL \
           (SELECT seq, true, purge_seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, hash \
            FROM audit_purged WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $4) \
         ) AS entries ORDER BY seq, purged DESC, occurred_at LIMIT $4",
    )
    .bind::<Int8, _>(cursor.seq)
    .bind::<Nullable<Timestamptz>, _>(cursor.occurred_at)
    .bind::<Int8, _>(through)
    .bind::<Int8, _>(limit)
    .load(connection)
    .await?;
    Ok(rows.into_iter().map(ChainEntry::from).collect())
}

/// Checks every entry after `cursor` up to `through`; returns the cursor after the last one.
async fn check_through(
    connection: &mut AsyncPgConnection,
    checker: &mut ChainChecker,
    mut cursor: ScanCursor,
    through: i64,
) -> QueryResult<Result<ScanCursor, ChainBreak>> {
    loop {
        let page = scan_page(connection, cursor, through, SCAN_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(Ok(cursor));
        };
        cursor = ScanCursor::after(last);
        for entry in &page {
            if let Err(problem) = checker.check(entry) {
                return Ok(Err(problem));
            }
        }
    }
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

/// Walks the chain from seq 1 to the head as it was when the walk began. When stubs name a
/// `retention.purged` event past that head (a purge that committed during the walk), the
/// walk goes on to the new head to check it.
pub async fn verify(connection: &mut AsyncPgConnection) -> QueryResult<VerifyReport> {
    let head = read_head(connection).await?;
    let mut head_seq = head.seq;
    let mut head_hash = head.hash;
    let mut checker = ChainChecker::from_genesis();
    let report =
        |checker: &ChainChecker, head_seq: i64, first_bad: Option<ChainBreak>| VerifyReport {
            ok: first_bad.is_none(),
            checked: checker.checked(),
            head_seq,
            first_bad,
        };
    let mut cursor = ScanCursor::default();
    loop {
        match check_through(connection, &mut checker, cursor, head_seq).await? {
            Ok(next) => cursor = next,
            Err(problem) => return Ok(report(&checker, head_seq, Some(problem))),
        }
        let awaited = checker.awaited_purge_seq().unwrap_or(0);
        if awaited <= head_seq {
            break;
        }
        let newer = read_head(connection).await?;
        if newer.seq <= head_seq {
            break;
        }
        (head_seq, head_hash) = (newer.seq, newer.hash);
    }
    if let Err(problem) = checker.finish() {
        return Ok(report(&checker, head_seq, Some(problem)));
    }
    let end = checker
        .last()
        .unwrap_or((0, epix_shared::audit::GENESIS_HASH));
    let first_bad = if end.0 != head_seq {
        Some(ChainBreak {
            seq: end.0 + 1,
            reason: format!(
                "the chain ends at seq {} but the head names seq {head_seq}: the events after it are missing",
                end.0
            ),
        })
    } else if end.1.as_slice() != head_hash.as_slice() {
        Some(ChainBreak {
            seq: head_seq,
            reason: "the last event's hash does not match the hash kept in the head".to_owned(),
        })
    } else {
        beyond_head(connection).await?
    };
    Ok(report(&checker, head_seq, first_bad))
}

/// Finds the first event or stub with a seq above the head. A writer inserts its events
/// and moves the head in one transaction, so in one snapshot no row lies beyond the head.
async fn beyond_head(connection: &mut AsyncPgConnection) -> QueryResult<Option<ChainBreak>> {
    #[derive(QueryableByName)]
    struct Beyond {
        #[diesel(sql_type = Int8)]
        head_seq: i64,
        #[diesel(sql_type = Nullable<Int8>)]
        seq: Option<i64>,
    }
    let beyond: Beyond = diesel::sql_query(
        "SELECT h.seq AS head_seq, \
                least((SELECT min(seq) FROM audit_trail WHERE seq > h.seq), \
                      (SELECT min(seq) FROM audit_purged WHERE seq > h.seq)) AS seq \
         FROM audit_head h WHERE h.id",
    )
    .get_result(connection)
    .await?;
    Ok(beyond.seq.map(|seq| ChainBreak {
        seq,
        reason: format!(
            "seq {seq} lies beyond the head's seq {}: it was inserted without moving the head",
            beyond.head_seq
        ),
    }))
}

/// Writes the entries of the chain from the first to the last event that occurred in
/// `[from, to)`, purged stubs and events outside the range but between them included, so
/// that the lines form one unbroken run of the chain. When stubs name `retention.purged`
/// events after that run, the export goes on with those events, each after an
/// [`OmittedRange`] line for the entries before it. Returns how many lines were written.
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
    let mut cursor = ScanCursor {
        seq: first - 1,
        occurred_at: None,
    };
    let mut written = 0;
    let mut purge_seqs = std::collections::BTreeSet::new();
    loop {
        let page = scan_page(connection, cursor, last, SCAN_PAGE).await?;
        let Some(tail) = page.last() else { break };
        cursor = ScanCursor::after(tail);
        for entry in &page {
            if let ChainEntry::Purged(stub) = entry
                && stub.purge_seq > last
            {
                purge_seqs.insert(stub.purge_seq);
            }
            write_line(entry)?;
            written += 1;
        }
    }
    let mut next_seq = last + 1;
    for purge_seq in purge_seqs {
        let events: Vec<AuditRow> = audit_trail::table
            .filter(audit_trail::seq.eq(purge_seq))
            .select(AuditRow::as_select())
            .load(connection)
            .await?;
        for event in events {
            let record = AuditRecord::from(event);
            if record.seq > next_seq {
                write_line(&ChainEntry::Omitted(OmittedRange {
                    omitted_from: next_seq,
                    omitted_through: record.seq - 1,
                    last_hash: record.prev_hash.clone(),
                }))?;
                written += 1;
            }
            next_seq = record.seq + 1;
            write_line(&ChainEntry::Event(Box::new(record)))?;
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
