//! Register records in PostgreSQL. Every change inserts a record; none is updated except a
//! pending record's approval.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use epix_shared::signature::ParsedCertificate;
use epix_shared::trust::TrustedSignatory;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Entry;
use crate::db::DbPool;
use crate::db::schema::{register_state, signatories};

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = signatories)]
pub struct SignatoryRecord {
    pub id: i64,
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    pub certificate_der: Vec<u8>,
    pub thumbprint: String,
    pub certificate_not_after: DateTime<Utc>,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    pub change_reason: Option<String>,
    pub notified_by: String,
    pub notified_at: DateTime<Utc>,
    pub late_notification: bool,
    pub status: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub supersedes: Option<i64>,
    pub recorded_at: DateTime<Utc>,
    pub register_version: Option<i64>,
}

/// A register record as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatoryView {
    /// The record's id; approvals name it.
    pub record_id: i64,
    /// The signatory's id, the same across its records.
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    /// base64url SHA-256 of the certificate (the JWS `x5t#S256`).
    pub thumbprint: String,
    /// The certificate, PEM.
    pub certificate: String,
    pub certificate_not_after: DateTime<Utc>,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    pub change_reason: Option<String>,
    pub notified_by: String,
    pub notified_at: DateTime<Utc>,
    /// The notification came more than one month after the change took effect.
    pub late_notification: bool,
    /// pending, approved or rejected.
    pub status: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub supersedes: Option<i64>,
    pub recorded_at: DateTime<Utc>,
}

impl From<SignatoryRecord> for SignatoryView {
    fn from(record: SignatoryRecord) -> Self {
        let certificate = openssl::x509::X509::from_der(&record.certificate_der)
            .and_then(|x509| x509.to_pem())
            .map(|pem| String::from_utf8_lossy(&pem).into_owned())
            .unwrap_or_default();
        Self {
            record_id: record.id,
            signatory_id: record.signatory_id,
            party: record.party,
            full_name: record.full_name,
            title: record.title,
            thumbprint: record.thumbprint,
            certificate,
            certificate_not_after: record.certificate_not_after,
            empowered_from: record.empowered_from,
            empowered_until: record.empowered_until,
            change_reason: record.change_reason,
            notified_by: record.notified_by,
            notified_at: record.notified_at,
            late_notification: record.late_notification,
            status: record.status,
            approved_by: record.approved_by,
            approved_at: record.approved_at,
            supersedes: record.supersedes,
            recorded_at: record.recorded_at,
        }
    }
}

/// Converts a record to its form in the trust list and the broadcasts.
pub fn trusted(record: SignatoryRecord) -> TrustedSignatory {
    let version = record.register_version;
    let view = SignatoryView::from(record);
    TrustedSignatory {
        signatory_id: view.signatory_id,
        party: view.party,
        full_name: view.full_name,
        title: view.title,
        thumbprint: view.thumbprint,
        certificate: view.certificate,
        empowered_from: view.empowered_from,
        empowered_until: view.empowered_until,
        version,
    }
}

// By version, not id: a pending record approved later is the later change.
const CURRENT: &str = "SELECT DISTINCT ON (signatory_id) * FROM signatories \
     WHERE status = 'approved' ORDER BY signatory_id, register_version DESC NULLS LAST, id DESC";

/// The latest approved record of every signatory.
pub async fn current_records(
    connection: &mut AsyncPgConnection,
) -> QueryResult<Vec<SignatoryRecord>> {
    diesel::sql_query(CURRENT).load(connection).await
}

/// The register version and the current entries, read in one transaction so they agree.
pub async fn current_entries(pool: &DbPool) -> Result<(i64, Vec<Entry>), String> {
    let mut connection = pool.get().await.map_err(|error| error.to_string())?;
    let (version, records) = current_with_version(&mut connection)
        .await
        .map_err(|error| error.to_string())?;
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        match ParsedCertificate::from_der(&record.certificate_der) {
            Ok(certificate) => entries.push(Entry {
                signatory_id: record.signatory_id,
                party: record.party,
                full_name: record.full_name,
                empowered_from: record.empowered_from,
                empowered_until: record.empowered_until,
                certificate,
            }),
            Err(error) => {
                tracing::error!(signatory.id = %record.signatory_id, %error, "a registered certificate no longer parses; its signatory cannot sign")
            }
        }
    }
    Ok((version, entries))
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = signatories)]
pub struct NewRecord {
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    pub certificate_der: Vec<u8>,
    pub thumbprint: String,
    pub certificate_not_after: DateTime<Utc>,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    pub change_reason: Option<String>,
    pub notified_by: String,
    pub notified_at: DateTime<Utc>,
    pub late_notification: bool,
    pub status: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub supersedes: Option<i64>,
}

/// Inserts a record; an approved one takes the next register version in the same
/// transaction.
pub async fn insert(
    connection: &mut AsyncPgConnection,
    record: &NewRecord,
) -> QueryResult<SignatoryRecord> {
    use diesel_async::AsyncConnection;
    use diesel_async::scoped_futures::ScopedFutureExt;
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                let inserted: SignatoryRecord = diesel::insert_into(signatories::table)
                    .values(record)
                    .returning(SignatoryRecord::as_returning())
                    .get_result(connection)
                    .await?;
                if inserted.status == "approved" {
                    return take_version(connection, inserted.id).await;
                }
                Ok(inserted)
            }
            .scope_boxed()
        })
        .await
}

/// Gives an approved record the next register version. Call inside the transaction that
/// approves it: the counter row stays locked until commit, so versions commit in order and
/// without gaps.
async fn take_version(connection: &mut AsyncPgConnection, id: i64) -> QueryResult<SignatoryRecord> {
    let next: i64 = diesel::update(register_state::table)
        .set(register_state::version.eq(register_state::version + 1))
        .returning(register_state::version)
        .get_result(connection)
        .await?;
    diesel::update(signatories::table.find(id))
        .set(signatories::register_version.eq(next))
        .returning(SignatoryRecord::as_returning())
        .get_result(connection)
        .await
}

/// The register's current version: that of its latest change, 0 for an empty register.
pub async fn register_version(connection: &mut AsyncPgConnection) -> QueryResult<i64> {
    register_state::table
        .select(register_state::version)
        .first(connection)
        .await
}

/// The approved records that changed the register after `version`, oldest first.
pub async fn changes_since(
    connection: &mut AsyncPgConnection,
    version: i64,
) -> QueryResult<Vec<SignatoryRecord>> {
    signatories::table
        .filter(signatories::register_version.gt(version))
        .order(signatories::register_version.asc())
        .select(SignatoryRecord::as_select())
        .load(connection)
        .await
}

/// The register version and the current records, read in one snapshot.
pub async fn current_with_version(
    connection: &mut AsyncPgConnection,
) -> QueryResult<(i64, Vec<SignatoryRecord>)> {
    use diesel_async::scoped_futures::ScopedFutureExt;
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|connection| {
            async move {
                let current = register_version(connection).await?;
                let records = current_records(connection).await?;
                Ok((current, records))
            }
            .scope_boxed()
        })
        .await
}

/// The register version and the changes after `version`, read in one snapshot.
pub async fn changes_with_version(
    connection: &mut AsyncPgConnection,
    version: i64,
) -> QueryResult<(i64, Vec<SignatoryRecord>)> {
    use diesel_async::scoped_futures::ScopedFutureExt;
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|connection| {
            async move {
                let current = register_version(connection).await?;
                let changes = changes_since(connection, version).await?;
                Ok((current, changes))
            }
            .scope_boxed()
        })
        .await
}

/// Inserts a new signatory's first record unless its certificate is already registered;
/// returns `None` then. An advisory lock on the thumbprint makes the check and the insert
/// one step, so two concurrent notifications cannot register one certificate twice.
pub async fn insert_new_signatory(
    connection: &mut AsyncPgConnection,
    record: &NewRecord,
) -> QueryResult<Option<SignatoryRecord>> {
    use diesel_async::AsyncConnection;
    use diesel_async::scoped_futures::ScopedFutureExt;
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(&record.thumbprint)
                    .execute(connection)
                    .await?;
                if thumbprint_taken(connection, &record.thumbprint, None).await? {
                    return Ok(None);
                }
                insert(connection, record).await.map(Some)
            }
            .scope_boxed()
        })
        .await
}

/// Whether the certificate is on a record of another signatory.
pub async fn thumbprint_taken(
    connection: &mut AsyncPgConnection,
    thumbprint: &str,
    other_than: Option<Uuid>,
) -> QueryResult<bool> {
    let mut query = signatories::table
        .filter(signatories::thumbprint.eq(thumbprint))
        .filter(signatories::status.ne("rejected"))
        .select(signatories::id)
        .into_boxed();
    if let Some(signatory_id) = other_than {
        query = query.filter(signatories::signatory_id.ne(signatory_id));
    }
    let found: Option<i64> = query.first(connection).await.optional()?;
    Ok(found.is_some())
}

pub async fn find_record(
    connection: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<SignatoryRecord>> {
    signatories::table
        .find(id)
        .select(SignatoryRecord::as_select())
        .first(connection)
        .await
        .optional()
}

/// The latest approved record of one signatory.
pub async fn current_of(
    connection: &mut AsyncPgConnection,
    signatory_id: Uuid,
) -> QueryResult<Option<SignatoryRecord>> {
    signatories::table
        .filter(signatories::signatory_id.eq(signatory_id))
        .filter(signatories::status.eq("approved"))
        .order((
            signatories::register_version.desc().nulls_last(),
            signatories::id.desc(),
        ))
        .select(SignatoryRecord::as_select())
        .first(connection)
        .await
        .optional()
}

pub async fn approve(
    connection: &mut AsyncPgConnection,
    id: i64,
    by: &str,
    at: DateTime<Utc>,
) -> QueryResult<SignatoryRecord> {
    use diesel_async::AsyncConnection;
    use diesel_async::scoped_futures::ScopedFutureExt;
    connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            async move {
                let approved: SignatoryRecord = diesel::update(
                    signatories::table
                        .find(id)
                        .filter(signatories::status.eq("pending")),
                )
                .set((
                    signatories::status.eq("approved"),
                    signatories::approved_by.eq(by),
                    signatories::approved_at.eq(at),
                ))
                .returning(SignatoryRecord::as_returning())
                .get_result(connection)
                .await?;
                take_version(connection, approved.id).await
            }
            .scope_boxed()
        })
        .await
}

/// Every record, newest first, optionally of one Party.
pub async fn history(
    connection: &mut AsyncPgConnection,
    party: Option<&str>,
) -> QueryResult<Vec<SignatoryRecord>> {
    let mut query = signatories::table
        .select(SignatoryRecord::as_select())
        .order(signatories::id.desc())
        .into_boxed();
    if let Some(party) = party {
        query = query.filter(signatories::party.eq(party));
    }
    query.load(connection).await
}
