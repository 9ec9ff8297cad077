//! The audit trail's hash chain: the canonical encoding of an event, its hash, and the
//! check of a run of events. The hub's `audit verify` and the offline `audit verify-file`
//! both use this module, so an export verifies by exactly the rules of the database.
//!
//! An event's hash is `SHA-256(prev_hash || canonical(event))`, where `prev_hash` is the 32
//! raw bytes of the previous event's hash (32 zero bytes before the first event) and
//! `canonical(event)` is the UTF-8 text of a JSON array of the fields in the order of
//! [`canonical_bytes`], without whitespace, with object keys sorted by their UTF-8 bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Tag that starts every canonical encoding; a new encoding gets a new tag.
pub const ENCODING_TAG: &str = "epix-audit-v1";

/// The hash that the first event of the chain names as its predecessor.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// One event of the audit trail as exported: every field that the hash covers, with the
/// hashes in lowercase hexadecimal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the global chain, from 1 without gaps.
    pub seq: i64,
    /// When the action happened, UTC, to the microsecond.
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    /// `user`, `spoke`, `hub` or `system`.
    pub actor_kind: String,
    /// The username, or the broker user of a spoke.
    pub actor_id: Option<String>,
    /// The person's full name: the user's, or the signatory's for a signed permit.
    pub actor_name: Option<String>,
    pub actor_party: Option<String>,
    pub actor_roles: Vec<String>,
    pub permit_country: Option<String>,
    pub permit_number: Option<String>,
    pub permit_version: Option<i32>,
    /// The Party a permit or message is addressed to.
    pub addressee: Option<String>,
    pub message_id: Option<Uuid>,
    /// AMQP properties and headers as received.
    #[schema(value_type = Option<Object>)]
    pub amqp: Option<Value>,
    /// SHA-256 of the message body, hexadecimal.
    pub body_sha256: Option<String>,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// An event deleted by the retention job: only its position and hash remain, so the chain
/// still links across the gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgedRecord {
    pub seq: i64,
    /// Always true; marks the line as a purged event in an export. The check rejects false.
    pub purged: bool,
    pub hash: String,
    /// The seq of the `retention.purged` event that deleted the event and vouches for this
    /// stub with its seq range, count and digest of the deleted hashes.
    pub purge_seq: i64,
}

/// A run of chain entries left out of a file, such as the kept events between the deleted
/// ones of a retention archive. Only the hash of its last entry remains, which the next
/// entry's `prev_hash` must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OmittedRange {
    pub omitted_from: i64,
    pub omitted_through: i64,
    /// The hash of the entry at `omitted_through`, hexadecimal.
    pub last_hash: String,
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChainEntry {
    Event(Box<AuditRecord>),
    Purged(PurgedRecord),
    Omitted(OmittedRange),
}

impl ChainEntry {
    /// Returns the entry's seq; for an omitted range, its first seq.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Event(event) => event.seq,
            Self::Purged(purged) => purged.seq,
            Self::Omitted(range) => range.omitted_from,
        }
    }
}

/// Encodes the hashed fields of `record` (everything but `prev_hash` and `hash`).
pub fn canonical_bytes(record: &AuditRecord) -> Vec<u8> {
    let fields = Value::Array(vec![
        Value::from(ENCODING_TAG),
        Value::from(record.seq),
        Value::from(format_time(record.occurred_at)),
        Value::from(record.action.as_str()),
        Value::from(record.actor_kind.as_str()),
        Value::from(record.actor_id.clone()),
        Value::from(record.actor_name.clone()),
        Value::from(record.actor_party.clone()),
        Value::from(record.actor_roles.clone()),
        Value::from(record.permit_country.clone()),
        Value::from(record.permit_number.clone()),
        Value::from(record.permit_version),
        Value::from(record.addressee.clone()),
        Value::from(record.message_id.map(|id| id.to_string())),
        record.amqp.clone().unwrap_or(Value::Null),
        Value::from(record.body_sha256.clone()),
        Value::from(record.request_id.clone()),
        Value::from(record.client_address.clone()),
        record.details.clone(),
    ]);
    let mut out = Vec::with_capacity(512);
    write_canonical(&fields, &mut out);
    out
}

/// Formats a time as the encoding does: RFC 3339, UTC, exactly six fractional digits.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Writes `value` as JSON without whitespace and with object keys sorted, whatever order
/// the map keeps them in (PostgreSQL's jsonb reorders keys).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::from(key.as_str()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // serde_json writes a scalar the same way whatever the map implementation.
    let text = serde_json::to_string(value).unwrap_or_default();
    out.extend_from_slice(text.as_bytes());
}

/// Computes an event's hash from its predecessor's hash and its canonical encoding.
pub fn chain_hash(prev_hash: &[u8; 32], record: &AuditRecord) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(prev_hash);
    hasher.update(&canonical_bytes(record));
    hasher.finish()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads 32 bytes of lowercase or uppercase hexadecimal.
pub fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// The first entry that fails the check, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainBreak {
    /// The first event that does not verify.
    pub seq: i64,
    pub reason: String,
}

/// The action of the retention job's event, which vouches for the stubs it left.
pub const PURGE_ACTION: &str = "retention.purged";

/// The stubs seen so far that name one `retention.purged` event.
#[derive(Debug, Clone)]
struct StubGroup {
    first_seq: i64,
    last_seq: i64,
    /// The stubs' hashes in seq order.
    hashes: Vec<[u8; 32]>,
}

impl StubGroup {
    /// Returns the SHA-256 over the hashes, as the retention job computes it.
    fn digest(&self) -> [u8; 32] {
        let mut digest = openssl::sha::Sha256::new();
        for hash in &self.hashes {
            digest.update(hash);
        }
        digest.finish()
    }
}

/// Checks consecutive chain entries one at a time. The first entry's `prev_hash` is taken
/// as given unless the checker starts at the chain's beginning.
///
/// A purged stub must be vouched for by the `retention.purged` event its `purge_seq`
/// names, which comes later in the chain: the event's `first_seq`..`last_seq` must contain
/// the stub. When the checker has seen the whole range, the stubs' count and the SHA-256
/// of their hashes must also equal the event's `deleted` and `deleted_hashes_sha256`.
/// Call [`ChainChecker::finish`] after the last entry, because a stub whose event never
/// came fails there.
#[derive(Debug, Clone)]
pub struct ChainChecker {
    expected_seq: Option<i64>,
    previous_hash: Option<[u8; 32]>,
    checked: u64,
    /// The first seq checked; `Some(1)` from genesis.
    first_seq: Option<i64>,
    /// Stubs waiting for their `retention.purged` event, by that event's seq.
    pending: std::collections::BTreeMap<i64, StubGroup>,
    /// Ranges that the input left out, where stubs may be missing.
    omitted: Vec<(i64, i64)>,
}

impl ChainChecker {
    /// Creates a checker for the whole chain, which must start at seq 1 from
    /// [`GENESIS_HASH`].
    pub fn from_genesis() -> Self {
        Self {
            expected_seq: Some(1),
            previous_hash: Some(GENESIS_HASH),
            checked: 0,
            first_seq: Some(1),
            pending: std::collections::BTreeMap::new(),
            omitted: Vec::new(),
        }
    }

    /// Creates a checker for a slice of the chain, such as an export of a time range.
    pub fn from_anywhere() -> Self {
        Self {
            expected_seq: None,
            previous_hash: None,
            checked: 0,
            first_seq: None,
            pending: std::collections::BTreeMap::new(),
            omitted: Vec::new(),
        }
    }

    /// Entries checked so far, purged ones included and omitted ranges not.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Returns the last checked entry's seq and hash.
    pub fn last(&self) -> Option<(i64, [u8; 32])> {
        Some((self.expected_seq? - 1, self.previous_hash?))
    }

    /// Returns the highest `purge_seq` of the stubs still waiting for their event.
    pub fn awaited_purge_seq(&self) -> Option<i64> {
        self.pending.keys().next_back().copied()
    }

    /// Checks the next entry against the previous one.
    pub fn check(&mut self, entry: &ChainEntry) -> Result<(), ChainBreak> {
        let seq = entry.seq();
        let fail = |reason: String| Err(ChainBreak { seq, reason });
        if let Some(expected) = self.expected_seq
            && seq != expected
        {
            if seq < expected {
                return fail(format!(
                    "expected seq {expected} next but found seq {seq} again: the seq is duplicated or out of order"
                ));
            }
            return fail(format!(
                "expected seq {expected} next but found {seq}: the events in between are missing"
            ));
        }
        let (last_seq, hash) = match entry {
            ChainEntry::Purged(purged) => (seq, self.check_stub(purged)?),
            ChainEntry::Omitted(range) => (range.omitted_through, self.check_omitted(range)?),
            ChainEntry::Event(event) => (seq, self.check_event(event)?),
        };
        self.first_seq.get_or_insert(seq);
        self.expected_seq = Some(last_seq + 1);
        self.previous_hash = Some(hash);
        if !matches!(entry, ChainEntry::Omitted(_)) {
            self.checked += 1;
        }
        Ok(())
    }

    /// Fails on the first stub whose `retention.purged` event was not among the entries.
    pub fn finish(&self) -> Result<(), ChainBreak> {
        let first = self.pending.iter().min_by_key(|(_, group)| group.first_seq);
        match first {
            None => Ok(()),
            Some((purge_seq, group)) => Err(ChainBreak {
                seq: group.first_seq,
                reason: format!(
                    "the purged stub names the retention.purged event seq {purge_seq}, which is not among the checked entries"
                ),
            }),
        }
    }

    fn check_stub(&mut self, purged: &PurgedRecord) -> Result<[u8; 32], ChainBreak> {
        let seq = purged.seq;
        let fail = |reason: String| Err(ChainBreak { seq, reason });
        if !purged.purged {
            return fail("the stub has purged = false: expected true".to_owned());
        }
        let Some(hash) = hash_from_hex(&purged.hash) else {
            return fail("the purged event's hash is not 64 hex digits".to_owned());
        };
        if purged.purge_seq <= seq {
            return fail(format!(
                "the stub names purge_seq {}: expected the seq of a later retention.purged event",
                purged.purge_seq
            ));
        }
        let group = self
            .pending
            .entry(purged.purge_seq)
            .or_insert_with(|| StubGroup {
                first_seq: seq,
                last_seq: seq,
                hashes: Vec::new(),
            });
        group.last_seq = seq;
        group.hashes.push(hash);
        Ok(hash)
    }

    fn check_omitted(&mut self, range: &OmittedRange) -> Result<[u8; 32], ChainBreak> {
        let fail = |reason: String| {
            Err(ChainBreak {
                seq: range.omitted_from,
                reason,
            })
        };
        if range.omitted_through < range.omitted_from {
            return fail(format!(
                "the omitted range ends at seq {} before it starts: expected omitted_through >= omitted_from",
                range.omitted_through
            ));
        }
        let Some(hash) = hash_from_hex(&range.last_hash) else {
            return fail("the omitted range's last_hash is not 64 hex digits".to_owned());
        };
        let awaited = self
            .pending
            .range(range.omitted_from..=range.omitted_through)
            .map(|(_, group)| group.first_seq)
            .min();
        if let Some(stub_seq) = awaited {
            return Err(ChainBreak {
                seq: stub_seq,
                reason: format!(
                    "the retention.purged event of the stub lies in the omitted seqs {} to {}",
                    range.omitted_from, range.omitted_through
                ),
            });
        }
        self.omitted
            .push((range.omitted_from, range.omitted_through));
        Ok(hash)
    }

    fn check_event(&mut self, event: &AuditRecord) -> Result<[u8; 32], ChainBreak> {
        let seq = event.seq;
        let fail = |reason: String| Err(ChainBreak { seq, reason });
        let Some(prev_hash) = hash_from_hex(&event.prev_hash) else {
            return fail("prev_hash is not 64 hex digits".to_owned());
        };
        if let Some(previous) = self.previous_hash
            && previous != prev_hash
        {
            return fail(format!(
                "prev_hash {} does not match the hash {} of seq {}",
                event.prev_hash,
                to_hex(&previous),
                seq - 1
            ));
        }
        let computed = chain_hash(&prev_hash, event);
        if hash_from_hex(&event.hash) != Some(computed) {
            return fail(format!(
                "the stored hash {} does not match the hash {} of the event's content: the event was changed",
                event.hash,
                to_hex(&computed)
            ));
        }
        if let Some(group) = self.pending.remove(&seq) {
            self.check_cover(event, &group)?;
        }
        Ok(computed)
    }

    /// Checks that the `retention.purged` event `event` vouches for the stubs of `group`.
    fn check_cover(&self, event: &AuditRecord, group: &StubGroup) -> Result<(), ChainBreak> {
        let fail = |seq: i64, reason: String| Err(ChainBreak { seq, reason });
        if event.action != PURGE_ACTION {
            return fail(
                group.first_seq,
                format!(
                    "the stub names seq {} as its purge, but that event is {}: expected {PURGE_ACTION}",
                    event.seq, event.action
                ),
            );
        }

        let details = &event.details;
        let first = details["first_seq"].as_i64();
        let last = details["last_seq"].as_i64();
        let deleted = details["deleted"].as_u64();
        let digest = details["deleted_hashes_sha256"].as_str();
        let (Some(first), Some(last), Some(deleted), Some(digest)) = (first, last, deleted, digest)
        else {
            return fail(
                group.first_seq,
                format!(
                    "the retention.purged event seq {} lacks first_seq, last_seq, deleted or deleted_hashes_sha256",
                    event.seq
                ),
            );
        };

        if group.first_seq < first || group.first_seq > last {
            return fail(
                group.first_seq,
                format!(
                    "the stub lies outside seqs {first} to {last} that the retention.purged event seq {} deleted",
                    event.seq
                ),
            );
        }
        if group.last_seq > last {
            return fail(
                group.last_seq,
                format!(
                    "the stub lies outside seqs {first} to {last} that the retention.purged event seq {} deleted",
                    event.seq
                ),
            );
        }

        // NOTE: a slice that starts inside the purge's range, or omits part of it, cannot
        // count the purge's stubs or recompute its digest, so only the range is checked.
        let saw_start = self.first_seq.is_some_and(|seen| seen <= first);
        let saw_all = saw_start
            && !self
                .omitted
                .iter()
                .any(|(from, through)| *from <= last && *through >= first);
        let count = group.hashes.len() as u64;
        if count > deleted || (saw_all && count < deleted) {
            return fail(
                group.first_seq,
                format!(
                    "{} stubs name the retention.purged event seq {}, which deleted {deleted}",
                    count, event.seq
                ),
            );
        }
        if saw_all && to_hex(&group.digest()) != digest.to_ascii_lowercase() {
            return fail(
                group.first_seq,
                format!(
                    "the SHA-256 of the stubs' hashes does not match deleted_hashes_sha256 {digest} of the retention.purged event seq {}",
                    event.seq
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, prev: [u8; 32]) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            occurred_at: DateTime::from_timestamp(1_780_000_000, 123_456_000).unwrap_or_default(),
            action: "permit.submitted".to_owned(),
            actor_kind: "spoke".to_owned(),
            actor_id: Some("party-ch".to_owned()),
            actor_name: None,
            actor_party: Some("CH".to_owned()),
            actor_roles: vec![],
            permit_country: Some("CH".to_owned()),
            permit_number: Some("24/CH/001".to_owned()),
            permit_version: Some(1),
            addressee: Some("DE".to_owned()),
            message_id: None,
            amqp: Some(serde_json::json!({"type": "permit.issued", "headers": {"b": 1, "a": "x"}})),
            body_sha256: None,
            request_id: None,
            client_address: None,
            details: serde_json::json!({}),
            prev_hash: to_hex(&prev),
            hash: String::new(),
        };
        record.hash = to_hex(&chain_hash(&prev, &record));
        record
    }

    #[test]
    fn encoding_sorts_keys_and_fixes_time_format() {
        let text = String::from_utf8(canonical_bytes(&record(1, GENESIS_HASH))).unwrap_or_default();
        assert!(text.starts_with("[\"epix-audit-v1\",1,\"2026-05-28T20:26:40.123456Z\""));
        assert!(text.contains("{\"headers\":{\"a\":\"x\",\"b\":1},\"type\":\"permit.issued\"}"));
    }

    #[test]
    fn checker_accepts_chain_and_finds_change() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash_from_hex(&first.hash).unwrap_or_default());
        let mut checker = ChainChecker::from_genesis();
        assert_eq!(
            checker.check(&ChainEntry::Event(Box::new(first.clone()))),
            Ok(())
        );
        assert_eq!(
            checker.check(&ChainEntry::Event(Box::new(second.clone()))),
            Ok(())
        );

        let mut changed = second.clone();
        changed.actor_party = Some("FR".to_owned());
        let mut checker = ChainChecker::from_genesis();
        assert_eq!(checker.check(&ChainEntry::Event(Box::new(first))), Ok(()));
        let error = checker.check(&ChainEntry::Event(Box::new(changed)));
        assert_eq!(error.map_err(|e| e.seq), Err(2));
    }

    /// Returns the `retention.purged` event at `seq` that deleted `deleted`.
    fn purge_event(seq: i64, prev: [u8; 32], deleted: &[&AuditRecord]) -> AuditRecord {
        let mut digest = openssl::sha::Sha256::new();
        for event in deleted {
            digest.update(&hash_from_hex(&event.hash).unwrap_or_default());
        }
        let mut event = record(seq, prev);
        event.action = PURGE_ACTION.to_owned();
        event.details = serde_json::json!({
            "first_seq": deleted.first().map(|event| event.seq),
            "last_seq": deleted.last().map(|event| event.seq),
            "deleted": deleted.len(),
            "deleted_hashes_sha256": to_hex(&digest.finish()),
        });
        event.hash = to_hex(&chain_hash(&prev, &event));
        event
    }

    fn stub(event: &AuditRecord, purge_seq: i64) -> ChainEntry {
        ChainEntry::Purged(PurgedRecord {
            seq: event.seq,
            purged: true,
            hash: event.hash.clone(),
            purge_seq,
        })
    }

    fn entry(event: &AuditRecord) -> ChainEntry {
        ChainEntry::Event(Box::new(event.clone()))
    }

    fn hash(event: &AuditRecord) -> [u8; 32] {
        hash_from_hex(&event.hash).unwrap_or_default()
    }

    /// Checks `entries` from genesis and returns the seq of the first break.
    fn first_break(entries: &[ChainEntry]) -> Option<i64> {
        let mut checker = ChainChecker::from_genesis();
        for entry in entries {
            if let Err(problem) = checker.check(entry) {
                return Some(problem.seq);
            }
        }
        checker.finish().err().map(|problem| problem.seq)
    }

    #[test]
    fn checker_links_across_purged_event() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash(&first));
        let purge = purge_event(3, hash(&second), &[&first]);
        let entries = [stub(&first, 3), entry(&second), entry(&purge)];
        assert_eq!(first_break(&entries), None);
    }

    #[test]
    fn checker_rejects_stub_not_vouched_for() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash(&first));
        let third = record(3, hash(&second));
        // The stub names an ordinary event as its purge.
        assert_eq!(
            first_break(&[stub(&first, 2), entry(&second), entry(&third)]),
            Some(1)
        );
        // The stub's purge event never comes.
        assert_eq!(first_break(&[stub(&first, 9), entry(&second)]), Some(1));
        // The purge event deleted seq 2 only.
        let purge = purge_event(3, hash(&second), &[&second]);
        assert_eq!(
            first_break(&[stub(&first, 3), entry(&second), entry(&purge)]),
            Some(1)
        );
        // The purge event's digest covers other hashes than the stub's.
        let mut forged = first.clone();
        forged.actor_id = Some("someone-else".to_owned());
        forged.hash = to_hex(&chain_hash(&GENESIS_HASH, &forged));
        let second_after_forged = record(2, hash(&forged));
        let purge_after_forged = purge_event(3, hash(&second_after_forged), &[&first]);
        assert_eq!(
            first_break(&[
                stub(&forged, 3),
                entry(&second_after_forged),
                entry(&purge_after_forged)
            ]),
            Some(1)
        );
    }

    #[test]
    fn checker_rejects_stub_marked_not_purged() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash(&first));
        let purge = purge_event(3, hash(&second), &[&first]);
        let mut marked = PurgedRecord {
            seq: 1,
            purged: false,
            hash: first.hash.clone(),
            purge_seq: 3,
        };
        let entries = [
            ChainEntry::Purged(marked.clone()),
            entry(&second),
            entry(&purge),
        ];
        assert_eq!(first_break(&entries), Some(1));
        marked.purged = true;
        let entries = [ChainEntry::Purged(marked), entry(&second), entry(&purge)];
        assert_eq!(first_break(&entries), None);
    }

    #[test]
    fn checker_rejects_duplicate_seq() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash(&first));
        let problem = {
            let mut checker = ChainChecker::from_genesis();
            let _ = checker.check(&entry(&first));
            let _ = checker.check(&entry(&second));
            checker.check(&entry(&second))
        };
        let problem = problem.expect_err("a repeated seq fails");
        assert_eq!(problem.seq, 2);
        assert!(problem.reason.contains("duplicated"), "{}", problem.reason);
    }

    #[test]
    fn checker_links_across_omitted_range() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash(&first));
        let third = record(3, hash(&second));
        let omitted = |last_hash: &AuditRecord| {
            ChainEntry::Omitted(OmittedRange {
                omitted_from: 2,
                omitted_through: 2,
                last_hash: last_hash.hash.clone(),
            })
        };
        let entries = [entry(&first), omitted(&second), entry(&third)];
        assert_eq!(first_break(&entries), None);
        let entries = [entry(&first), omitted(&first), entry(&third)];
        assert_eq!(first_break(&entries), Some(3));
        // A stub whose purge event is left out cannot be vouched for.
        let purge = purge_event(2, hash(&first), &[&first]);
        let after = record(3, hash(&purge));
        let entries = [
            stub(&first, 2),
            ChainEntry::Omitted(OmittedRange {
                omitted_from: 2,
                omitted_through: 2,
                last_hash: purge.hash.clone(),
            }),
            entry(&after),
        ];
        assert_eq!(first_break(&entries), Some(1));
    }

    #[test]
    fn checker_reports_missing_event() {
        let first = record(1, GENESIS_HASH);
        let third = record(3, hash_from_hex(&first.hash).unwrap_or_default());
        let mut checker = ChainChecker::from_genesis();
        assert_eq!(checker.check(&ChainEntry::Event(Box::new(first))), Ok(()));
        let error = checker.check(&ChainEntry::Event(Box::new(third)));
        assert_eq!(error.map_err(|e| e.seq), Err(3));
    }
}
