//! The Secretariat's register of empowered signatories, and the check of a permit's
//! signature against it at the time of signing.
//!
//! The current register is held in memory with each certificate parsed once, so a
//! verification costs one signature check. It is reloaded after every change this process
//! makes, when a thumbprint is not found (at most every 100 ms), when the outbox sweeper
//! finds a newer register version (every sweep, about once a second), and every 5 seconds.

pub mod broadcast;
pub mod store;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use epix_shared::signature::parse_detached;
use epix_shared::trust::check_signatory;
use epix_shared::{ErrorCode, PartyCode, Problem};

use crate::db::DbPool;

/// How far a signing time may lie after the hub's receipt time, for clock differences.
pub const SIGNING_TIME_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// How far a signing time may lie before the hub's receipt time. The signer writes the
/// signing time, so this bounds how far a stolen key can back-date a signature to before
/// its signatory's removal or its certificate's expiry: three days, long enough for a
/// spoke that was offline over a weekend.
pub const MAX_SIGNATURE_AGE: chrono::Duration = chrono::Duration::days(3);

const RELOAD_ON_MISS_INTERVAL: Duration = Duration::from_millis(100);
const MAX_AGE: Duration = Duration::from_secs(5);

/// One signatory's current record.
pub use epix_shared::trust::RegisterEntry as Entry;
/// The verified signatory of a document.
pub use epix_shared::trust::SignedBy as Signed;

#[derive(Default)]
pub struct Register {
    state: RwLock<State>,
    /// Woken after a change to the register or a user's removal, so the broadcaster
    /// sends it at once.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    by_thumbprint: HashMap<String, Vec<Entry>>,
    version: i64,
    loaded_at: Option<Instant>,
}

impl Register {
    /// Tells the broadcaster that the register or the list of removed users changed.
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }

    /// Waits until [`Register::notify_changed`] is called.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The register version of the last reload.
    pub fn loaded_version(&self) -> i64 {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .version
    }

    /// Reloads the current register from the database.
    pub async fn reload(&self, pool: &DbPool) -> Result<(), String> {
        let (version, entries) = store::current_entries(pool).await?;
        let mut by_thumbprint: HashMap<String, Vec<Entry>> = HashMap::new();
        for entry in entries {
            by_thumbprint
                .entry(entry.certificate.thumbprint().to_base64url())
                .or_default()
                .push(entry);
        }
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.by_thumbprint = by_thumbprint;
        state.version = version;
        state.loaded_at = Some(Instant::now());
        Ok(())
    }

    async fn lookup(&self, pool: &DbPool, thumbprint: &str) -> Result<Vec<Entry>, String> {
        let (found, age) = {
            let state = self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (
                state.by_thumbprint.get(thumbprint).cloned(),
                state.loaded_at.map(|at| at.elapsed()),
            )
        };
        let stale = age.is_none_or(|age| age > MAX_AGE);
        let may_reload_on_miss = age.is_none_or(|age| age > RELOAD_ON_MISS_INTERVAL);
        if stale || (found.is_none() && may_reload_on_miss) {
            self.reload(pool).await?;
            let state = self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            return Ok(state
                .by_thumbprint
                .get(thumbprint)
                .cloned()
                .unwrap_or_default());
        }
        Ok(found.unwrap_or_default())
    }

    /// Checks a detached JWS over `body`: made by a signatory of `issuer` who was empowered,
    /// with a valid certificate, at the signing time, and signed no later than the receipt
    /// time allows. Fails only when the register cannot be read.
    pub async fn verify(
        &self,
        pool: &DbPool,
        jws: &str,
        body: &[u8],
        issuer: PartyCode,
        received_at: DateTime<Utc>,
    ) -> Result<Result<Signed, Problem>, String> {
        let pointer = format!("header:{}", epix_shared::envelope::HEADER_SIGNATURE);
        let parsed = match parse_detached(jws) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(error.to_problem().at(pointer))),
        };
        let signed_at = parsed.signing_time;
        if signed_at > received_at + SIGNING_TIME_SKEW {
            return Ok(Err(Problem::new(
                ErrorCode::SigningTimeInFuture,
                format!("the signing time is after the hub received the message at {received_at}: expected a time no later than that, within 5 minutes of clock difference"),
            )
            .at(pointer)
            .with_value(signed_at.to_rfc3339())));
        }
        if signed_at < received_at - MAX_SIGNATURE_AGE {
            return Ok(Err(Problem::new(
                ErrorCode::SigningTimeTooEarly,
                "the signing time is more than three days before the hub received the message: expected a recent signature; sign the document again",
            )
            .at(pointer)
            .with_value(signed_at.to_rfc3339())));
        }

        let entries = self.lookup(pool, &parsed.thumbprint.to_base64url()).await?;
        Ok(check_signatory(&entries, &parsed, body, issuer, &pointer))
    }
}
