//! Retention: deleting audit events whose keeping period is over.
//!
//! An event that names a permit the hub stores is kept for five years past the later of
//! the permit's last valid-until date (over all versions) and the latest date the
//! Secretariat received an annual report of its exporting or importing Party for a year
//! from the year of issue through the year of that valid-until date. While any of those
//! reports has no recorded date, the permit's events are kept. Any other event (a login, a
//! user change, a rejected message that names no stored permit) is kept five years after
//! it occurred. Whatever its permit, no event is deleted before it is five years old, no
//! event of a permit on legal hold is deleted, and `retention.purged` events are never
//! deleted, because they vouch for the stubs of the events they deleted.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Months, Utc};
use diesel::sql_types::{Array, Bytea, Date, Int8, Timestamptz};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use epix_shared::audit::{
    AuditRecord, ChainEntry, OmittedRange, PURGE_ACTION, hash_from_hex, to_hex,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::query::AuditRow;
use super::{ActorKind, Event};

/// Years an event, and a permit past its later date, are kept.
pub const RETENTION_YEARS: u32 = 5;

/// Key of the transaction-level advisory lock that one purge transaction holds at a time
/// ("EPIXAUDT"). Placing a legal hold takes it shared, so no hold commits during a purge.
pub const PURGE_LOCK_KEY: i64 = 0x4550_4958_4155_4454;

/// Events deleted per transaction; the job repeats until nothing is left to delete.
const PURGE_CHUNK: i64 = 10_000;

/// The summary of one purge run.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PurgeReport {
    pub deleted: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The archive files written before deleting.
    pub archives: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("database query failed: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("cannot write the archive {path}: {source}")]
    Archive {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Deletes up to `$4` expired events, oldest first, and returns them. The retention rules
/// are evaluated by the DELETE itself, so a hold or a new permit version committed before
/// the statement starts is honoured. `audit_retention_start` is defined by the migration.
const DELETE_EXPIRED: &str = "\
DELETE FROM audit_trail d \
WHERE d.occurred_at < $1 \
  AND (d.seq, d.occurred_at) IN ( \
    SELECT t.seq, t.occurred_at FROM audit_trail t \
    WHERE t.occurred_at < $1 \
      AND t.action <> 'retention.purged' \
      AND NOT EXISTS (SELECT 1 FROM legal_holds h \
                      WHERE h.issuing_country = t.permit_country \
                        AND h.permit_number = t.permit_number) \
      AND ( NOT EXISTS (SELECT 1 FROM permits p \
                        WHERE p.issuing_country = t.permit_country \
                          AND p.permit_number = t.permit_number) \
            OR audit_retention_start(t.permit_country, t.permit_number) \
               + make_interval(years => $3) < $2 ) \
    ORDER BY t.seq LIMIT $4) \
RETURNING d.*";

/// Deletes every event past retention as of `as_of`, in chunks, each chunk archived first
/// when `archive_dir` is set and recorded as a `retention.purged` event.
pub async fn purge(
    connection: &mut AsyncPgConnection,
    as_of: DateTime<Utc>,
    archive_dir: Option<&Path>,
) -> Result<PurgeReport, PurgeError> {
    let mut report = PurgeReport::default();
    loop {
        let chunk = purge_chunk(connection, as_of, archive_dir).await?;
        let Some(chunk) = chunk else { break };
        report.deleted += chunk.deleted;
        report.first_seq = report.first_seq.or(chunk.first_seq);
        report.last_seq = chunk.last_seq;
        report.archives.extend(chunk.archives);
        if chunk.deleted < PURGE_CHUNK as u64 {
            break;
        }
    }
    tracing::info!(
        audit.deleted = report.deleted,
        audit.first_seq = report.first_seq,
        audit.last_seq = report.last_seq,
        as_of = %as_of,
        "audit retention run finished"
    );
    Ok(report)
}

async fn purge_chunk(
    connection: &mut AsyncPgConnection,
    as_of: DateTime<Utc>,
    archive_dir: Option<&Path>,
) -> Result<Option<PurgeReport>, PurgeError> {
    let archive_dir = archive_dir.map(Path::to_path_buf);
    connection
        .transaction::<_, PurgeError, _>(|connection| {
            async move {
                // Every statement runs as the retention role, the only one the trigger lets
                // delete; SET LOCAL ends with this transaction.
                diesel::sql_query("SET LOCAL ROLE epix_audit_retention")
                    .execute(connection)
                    .await?;
                // Replicas run the job at once; the second waits here and then finds
                // nothing left to delete. Legal holds take this lock shared, so a hold
                // either commits before the DELETE below or waits for this transaction.
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({PURGE_LOCK_KEY})"))
                    .execute(connection)
                    .await?;
                let cutoff = years_before(as_of, RETENTION_YEARS);
                let mut deleted: Vec<AuditRow> = diesel::sql_query(DELETE_EXPIRED)
                    .bind::<Timestamptz, _>(cutoff)
                    .bind::<Date, _>(as_of.date_naive())
                    .bind::<diesel::sql_types::Integer, _>(RETENTION_YEARS as i32)
                    .bind::<Int8, _>(PURGE_CHUNK)
                    .load(connection)
                    .await?;
                deleted.sort_by_key(|row| row.seq);
                let (Some(first), Some(last)) =
                    (deleted.as_slice().first(), deleted.as_slice().last())
                else {
                    return Ok(None);
                };
                let (first_seq, last_seq) = (first.seq, last.seq);
                let records: Vec<AuditRecord> =
                    deleted.into_iter().map(AuditRecord::from).collect();
                // The archive is on disk before the deletion commits, and before the head
                // lock is taken, so appends elsewhere do not wait for the file.
                let mut archives = Vec::new();
                if let Some(dir) = &archive_dir {
                    archives.push(write_archive(dir, as_of, &records)?);
                }
                let seqs: Vec<i64> = records.iter().map(|record| record.seq).collect();
                let hashes: Vec<Vec<u8>> = records
                    .iter()
                    .map(|record| hash_from_hex(&record.hash).unwrap_or_default().to_vec())
                    .collect();
                let mut digest = openssl::sha::Sha256::new();
                for hash in &hashes {
                    digest.update(hash);
                }
                let mut event = Event::new(PURGE_ACTION, ActorKind::System, Utc::now());
                event.details = serde_json::json!({
                    "as_of": as_of,
                    "deleted": records.len(),
                    "first_seq": first_seq,
                    "last_seq": last_seq,
                    "deleted_hashes_sha256": to_hex(&digest.finish()),
                    "archive": archives.as_slice().first(),
                });

                // The stubs name the purge event, whose seq exists only under the head
                // lock. The lock is held for the stubs' INSERT and the event's append,
                // not for the DELETE above.
                let head = super::lock_head(connection).await?;
                let purge_seq = head.seq + 1;
                diesel::sql_query(
                    "INSERT INTO audit_purged (seq, hash, purge_seq) \
                     SELECT s, h, $3 FROM unnest($1::bigint[], $2::bytea[]) AS u(s, h)",
                )
                .bind::<Array<Int8>, _>(&seqs)
                .bind::<Array<Bytea>, _>(&hashes)
                .bind::<Int8, _>(purge_seq)
                .execute(connection)
                .await?;
                super::append_locked(connection, head, vec![event]).await?;
                Ok(Some(PurgeReport {
                    deleted: seqs.len() as u64,
                    first_seq: Some(first_seq),
                    last_seq: Some(last_seq),
                    archives,
                }))
            }
            .scope_boxed()
        })
        .await
}

fn years_before(time: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    time.checked_sub_months(Months::new(years * 12))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Writes the events as JSON Lines and syncs the file, so they are on disk before the
/// delete commits. The seqs between two deleted events are written as one
/// [`OmittedRange`] line carrying the later event's `prev_hash`, so the file verifies with
/// `epix-hub audit verify-file`. Returns the file's path.
fn write_archive(
    dir: &Path,
    as_of: DateTime<Utc>,
    records: &[AuditRecord],
) -> Result<String, PurgeError> {
    let first = records.first().map_or(0, |record| record.seq);
    let last = records.last().map_or(0, |record| record.seq);
    let path = dir.join(format!(
        "audit-purged-{}-{first}-{last}.jsonl",
        as_of.format("%Y%m%dT%H%M%SZ")
    ));
    let fail = |source| PurgeError::Archive {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let file = std::fs::File::create(&path).map_err(fail)?;
    let mut writer = std::io::BufWriter::new(file);
    let mut next_seq = first;
    for record in records {
        if record.seq > next_seq {
            let gap = ChainEntry::Omitted(OmittedRange {
                omitted_from: next_seq,
                omitted_through: record.seq - 1,
                last_hash: record.prev_hash.clone(),
            });
            serde_json::to_writer(&mut writer, &gap).map_err(|error| fail(error.into()))?;
            writer.write_all(b"\n").map_err(fail)?;
        }
        next_seq = record.seq + 1;
        serde_json::to_writer(&mut writer, record).map_err(|error| fail(error.into()))?;
        writer.write_all(b"\n").map_err(fail)?;
    }
    let file = writer
        .into_inner()
        .map_err(|error| fail(error.into_error()))?;
    file.sync_all().map_err(fail)?;
    Ok(path.display().to_string())
}

/// Interval of the retention job inside `serve`.
const DAILY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Runs once at start and then daily until `shutdown`: creates the coming months'
/// partitions and purges what is past retention by the hub's clock. Failures are logged
/// and retried the next day.
pub async fn run_daily(
    context: std::sync::Arc<crate::HubContext>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let now = context.clock.now();
        // Partitions are made by the schema owner's login, purges by the retention login.
        match context.maintenance_pool.get().await {
            Ok(mut connection) => {
                if let Err(error) = super::ensure_partitions(&mut connection, now).await {
                    tracing::error!(%error, "cannot create the coming audit partitions");
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot connect to create the coming audit partitions; retrying tomorrow")
            }
        }
        match context.retention_connections().get().await {
            Ok(mut connection) => {
                let archive_dir = context.config.audit_archive_dir.as_deref();
                if let Err(error) = purge(&mut connection, now, archive_dir).await {
                    tracing::error!(%error, "audit retention run failed; retrying tomorrow");
                }
            }
            Err(error) => {
                tracing::error!(%error, "audit retention run found no database connection; retrying tomorrow")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(DAILY) => {}
        }
    }
}
