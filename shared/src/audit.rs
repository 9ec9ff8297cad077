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
    /// Always true; marks the line as a purged event in an export.
    pub purged: bool,
    pub hash: String,
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChainEntry {
    Event(Box<AuditRecord>),
    Purged(PurgedRecord),
}

impl ChainEntry {
    pub fn seq(&self) -> i64 {
        match self {
            Self::Event(event) => event.seq,
            Self::Purged(purged) => purged.seq,
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

/// Checks consecutive chain entries one at a time. The first entry's `prev_hash` is taken
/// as given unless the checker starts at the chain's beginning.
#[derive(Debug, Clone)]
pub struct ChainChecker {
    expected_seq: Option<i64>,
    previous_hash: Option<[u8; 32]>,
    checked: u64,
}

impl ChainChecker {
    /// Creates a checker for the whole chain, which must start at seq 1 from
    /// [`GENESIS_HASH`].
    pub fn from_genesis() -> Self {
        Self {
            expected_seq: Some(1),
            previous_hash: Some(GENESIS_HASH),
            checked: 0,
        }
    }

    /// Creates a checker for a slice of the chain, such as an export of a time range.
    pub fn from_anywhere() -> Self {
        Self {
            expected_seq: None,
            previous_hash: None,
            checked: 0,
        }
    }

    /// Entries checked so far, purged ones included.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Returns the last checked entry's seq and hash.
    pub fn last(&self) -> Option<(i64, [u8; 32])> {
        Some((self.expected_seq? - 1, self.previous_hash?))
    }

    /// Checks the next entry against the previous one.
    pub fn check(&mut self, entry: &ChainEntry) -> Result<(), ChainBreak> {
        let seq = entry.seq();
        let fail = |reason: String| Err(ChainBreak { seq, reason });
        if let Some(expected) = self.expected_seq
            && seq != expected
        {
            return fail(format!(
                "expected seq {expected} next but found {seq}: the events in between are missing"
            ));
        }
        let hash = match entry {
            ChainEntry::Purged(purged) => match hash_from_hex(&purged.hash) {
                Some(hash) => hash,
                None => return fail("the purged event's hash is not 64 hex digits".to_owned()),
            },
            ChainEntry::Event(event) => {
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
                computed
            }
        };
        self.expected_seq = Some(seq + 1);
        self.previous_hash = Some(hash);
        self.checked += 1;
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

    #[test]
    fn checker_links_across_purged_event() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, hash_from_hex(&first.hash).unwrap_or_default());
        let mut checker = ChainChecker::from_genesis();
        let purged = PurgedRecord {
            seq: 1,
            purged: true,
            hash: first.hash.clone(),
        };
        assert_eq!(checker.check(&ChainEntry::Purged(purged)), Ok(()));
        assert_eq!(checker.check(&ChainEntry::Event(Box::new(second))), Ok(()));
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
