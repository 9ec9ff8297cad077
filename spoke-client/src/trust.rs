//! The spoke's copy of the register of signatories: fetched from the hub once, kept up to
//! date by the hub's `register.*` broadcasts, saved in a folder, and used to verify every
//! delivered permit before it is acknowledged.
//!
//! The folder contains the hub's public keys (`hub-jwks.json` when the operator placed them
//! there, which pins them; otherwise `hub-jwks.fetched.json`, fetched over HTTPS or from
//! this machine), `trust-list.json` (the copy and its version) and `revocations.jsonl`
//! (one line per user revocation broadcast). One process at a time uses a folder. Every document from the
//! hub is checked against the hub's keys before it is used; a change whose version does not
//! follow the copy's is applied only after the missing changes are fetched and checked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use epix_shared::envelope::{HEADER_ISSUING_COUNTRY, HEADER_SIGNATURE, MessageType};
use epix_shared::permit::read_document;
use epix_shared::trust::{
    HEADER_REGISTER_VERSION, HubKeys, SignedBy, TYP_SIGNATORY_CHANGE, TYP_TRUST_LIST,
    TYP_TRUST_LIST_CHANGES, TYP_USER_REVOCATION, TrustError, TrustList, TrustListChanges,
    TrustStore, TrustedSignatory, UserRevocation,
};
use epix_shared::{ErrorCode, PartyCode, Problem};
use serde::Deserialize;

use crate::Delivered;
use crate::inbox::write_atomically;

/// Clock difference allowed between a signer and this spoke.
pub const SIGNING_TIME_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// The hub's header carrying its signature over an HTTP response body.
pub const HTTP_SIGNATURE_HEADER: &str = "Epix-Signature";

/// Interval at which the copy fetches changes it may have missed from the hub.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(300);

/// The hub's keys, placed by the operator: never replaced by a fetched set.
const PINNED_KEYS_FILE: &str = "hub-jwks.json";
/// The hub's keys as last fetched from the hub.
const FETCHED_KEYS_FILE: &str = "hub-jwks.fetched.json";
const LOCK_FILE: &str = ".lock";
const STORE_FILE: &str = "trust-list.json";
const REVOCATIONS_FILE: &str = "revocations.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum TrustKeeperError {
    /// The hub's document failed its checks; it must not be used.
    #[error("refused: {0}")]
    Refused(#[from] TrustError),
    /// The broadcast is not one this spoke can read.
    #[error("unreadable broadcast: {0}")]
    Unreadable(String),
    /// The hub could not be asked, so the copy cannot be brought up to date now.
    #[error("cannot reach the hub: {0}")]
    Hub(String),
    #[error("cannot use the trust folder {path}: {reason}")]
    Folder { path: String, reason: String },
}

/// Credentials with which the spoke authenticates to the hub's HTTP API.
#[derive(Clone)]
pub enum Credentials {
    /// An API client of an authority user of this Party (client credentials grant).
    Client { id: String, secret: String },
    /// A bearer token obtained elsewhere.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client { id, .. } => write!(f, "Client({id})"),
            Self::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// The hub's HTTP API, as far as the trust list needs it.
pub struct HubApi {
    base_url: String,
    credentials: Option<Credentials>,
    http: reqwest::Client,
    token: Option<(String, Instant)>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl HubApi {
    /// Returns whether the channel authenticates the hub's responses: HTTPS, or a hub on
    /// this machine.
    fn is_trusted_channel(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.base_url) else {
            return false;
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        url.scheme() == "https"
            || host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn new(base_url: &str, credentials: Option<Credentials>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            token: None,
        }
    }

    async fn bearer(&mut self) -> Result<String, TrustKeeperError> {
        match &self.credentials {
            None => Err(TrustKeeperError::Hub(
                "no credentials for the hub's API: set EPIX_CLIENT_ID and EPIX_CLIENT_SECRET (or EPIX_HUB_TOKEN)".to_owned(),
            )),
            Some(Credentials::Token(token)) => Ok(token.clone()),
            Some(Credentials::Client { id, secret }) => {
                if let Some((token, until)) = &self.token
                    && Instant::now() < *until
                {
                    return Ok(token.clone());
                }
                let url = format!("{}/v1/auth/token", self.base_url);
                let response = self
                    .http
                    .post(&url)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", id.as_str()),
                        ("client_secret", secret.as_str()),
                    ])
                    .send()
                    .await
                    .map_err(|error| TrustKeeperError::Hub(format!("{url}: {error}")))?;
                if !response.status().is_success() {
                    return Err(TrustKeeperError::Hub(format!(
                        "{url}: HTTP {}: the client credentials were rejected; check EPIX_CLIENT_ID and EPIX_CLIENT_SECRET",
                        response.status()
                    )));
                }
                let token: TokenResponse = response
                    .json()
                    .await
                    .map_err(|error| TrustKeeperError::Hub(format!("{url}: {error}")))?;
                let lifetime = Duration::from_secs(token.expires_in.saturating_sub(30));
                self.token = Some((token.access_token.clone(), Instant::now() + lifetime));
                Ok(token.access_token)
            }
        }
    }

    /// GETs a path; returns the body and the hub's signature header.
    async fn get(
        &mut self,
        path: &str,
        authenticated: bool,
    ) -> Result<(Vec<u8>, Option<String>), TrustKeeperError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.get(&url);
        if authenticated {
            request = request.bearer_auth(self.bearer().await?);
        }
        let response = request
            .send()
            .await
            .map_err(|error| TrustKeeperError::Hub(format!("{url}: {error}")))?;
        let status = response.status();
        let signature = response
            .headers()
            .get(HTTP_SIGNATURE_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|error| TrustKeeperError::Hub(format!("{url}: {error}")))?;
        if !status.is_success() {
            return Err(TrustKeeperError::Hub(format!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        Ok((body.to_vec(), signature))
    }
}

/// The spoke's judgement of a delivered document's signature.
#[derive(Debug)]
pub enum Verdict {
    /// Signed by an empowered signatory of the issuing Party.
    Signed(SignedBy),
    /// Refused for the reason given; acknowledge it as failed.
    Refused(Problem),
    /// Not decided, because the check needed the hub and the hub did not respond. Leave the
    /// document in the inbox and try again later.
    Undecided(TrustKeeperError),
}

/// Reads the Party that issued a delivered document from its body, and rejects a header
/// that names another.
fn issuer_of(delivered: &Delivered) -> Result<PartyCode, Problem> {
    let content_type = delivered
        .content_type
        .as_deref()
        .unwrap_or("application/json");
    let issuer = match read_document(content_type, &delivered.body) {
        Ok(read) => read.permit.issuing_country,
        Err(problems) => {
            return Err(problems.into_iter().next().unwrap_or_else(|| {
                Problem::new(ErrorCode::DocumentMalformed, "the document cannot be read")
            }));
        }
    };
    if let Some(header) = delivered.issuing_country.as_deref()
        && header != issuer.as_str()
    {
        return Err(Problem::new(
            ErrorCode::HeaderMismatch,
            format!("the header names issuing country {header}, the document {issuer}: expected the same Party"),
        )
        .at(format!("header:{HEADER_ISSUING_COUNTRY}"))
        .with_value(header));
    }
    Ok(issuer)
}

/// The effect of one broadcast on the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastOutcome {
    /// The copy of the register moved to this version.
    RegisterUpdated { version: i64 },
    /// The copy already held this change.
    AlreadyHeld { version: i64 },
    /// A user's revocation, recorded in `revocations.jsonl`.
    UserRevoked(UserRevocation),
}

/// The spoke's verified copy of the register, kept in a folder.
pub struct TrustKeeper {
    dir: PathBuf,
    keys: HubKeys,
    /// The keys came from [`PINNED_KEYS_FILE`], so none are fetched.
    pinned: bool,
    store: TrustStore,
    api: Option<HubApi>,
    caught_up_at: Option<Instant>,
    /// Held open with an exclusive lock while the keeper lives.
    _lock: std::fs::File,
}

impl TrustKeeper {
    /// Opens the copy in `dir`. A folder without the hub's keys or without a copy is
    /// filled from the hub. An existing copy is brought up to date when the hub responds.
    pub async fn open(dir: &Path, mut api: Option<HubApi>) -> Result<Self, TrustKeeperError> {
        std::fs::create_dir_all(dir).map_err(|error| folder_error(dir, error))?;
        let lock = lock_folder(dir)?;
        let (keys, pinned) = match std::fs::read(dir.join(PINNED_KEYS_FILE)) {
            Ok(bytes) => (HubKeys::from_jwks(&bytes)?, true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::read(dir.join(FETCHED_KEYS_FILE)) {
                    Ok(bytes) => (HubKeys::from_jwks(&bytes)?, false),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        let Some(api) = api.as_mut() else {
                            return Err(TrustKeeperError::Hub(format!(
                                "no {PINNED_KEYS_FILE} in {} and no hub to fetch the keys from",
                                dir.display()
                            )));
                        };
                        (fetch_keys(dir, api).await?, false)
                    }
                    Err(error) => return Err(folder_error(dir, error)),
                }
            }
            Err(error) => return Err(folder_error(dir, error)),
        };
        let stored = match std::fs::read(dir.join(STORE_FILE)) {
            Ok(bytes) => Some(TrustStore::from_json(&bytes)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(folder_error(dir, error)),
        };
        let mut keeper = Self {
            dir: dir.to_owned(),
            keys,
            pinned,
            store: stored.clone().unwrap_or_default(),
            api,
            caught_up_at: None,
            _lock: lock,
        };
        if stored.is_none() {
            keeper.fetch_full().await?;
        } else if keeper.api.is_some()
            && let Err(error) = keeper.catch_up().await
        {
            // A refused answer is an error; an unreachable hub is not, the copy stays usable.
            match error {
                TrustKeeperError::Hub(reason) => {
                    tracing::warn!(%reason, version = keeper.store.version(), "cannot bring the trust list up to date now; using the saved copy");
                }
                other => return Err(other),
            }
        }
        Ok(keeper)
    }

    /// The register version of the copy.
    pub fn version(&self) -> i64 {
        self.store.version()
    }

    pub fn signatories(&self) -> impl Iterator<Item = &TrustedSignatory> {
        self.store.signatories()
    }

    /// Replaces the copy with the hub's current trust list, after checking its signature.
    pub async fn fetch_full(&mut self) -> Result<(), TrustKeeperError> {
        let api = self.api_mut()?;
        let (body, signature) = api.get("/v1/trust-list", true).await?;
        let list = self.accept_list(&body, signature.as_deref()).await?;
        self.store = TrustStore::from_list(list)?;
        self.save()
    }

    /// Checks a trust list's signature and reads it.
    pub async fn accept_list(
        &mut self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<TrustList, TrustKeeperError> {
        self.check_hub_signature(signature, body, TYP_TRUST_LIST)
            .await?;
        serde_json::from_slice(body).map_err(|error| {
            TrustKeeperError::Unreadable(format!("expected a trust list (TrustList JSON): {error}"))
        })
    }

    /// Fetches the changes after the copy's version and applies them.
    pub async fn catch_up(&mut self) -> Result<usize, TrustKeeperError> {
        let since = self.store.version();
        let api = self.api_mut()?;
        let (body, signature) = api
            .get(&format!("/v1/trust-list/changes?since={since}"), true)
            .await?;
        self.check_hub_signature(signature.as_deref(), &body, TYP_TRUST_LIST_CHANGES)
            .await?;
        let changes: TrustListChanges = serde_json::from_slice(&body).map_err(|error| {
            TrustKeeperError::Unreadable(format!(
                "expected the register changes (TrustListChanges JSON): {error}"
            ))
        })?;
        self.caught_up_at = Some(Instant::now());
        if changes.version < since {
            // The hub's register is behind this copy, as after a restore from a backup:
            // versions may be handed out again, so only a fresh list is safe.
            tracing::warn!(
                held = since,
                hub = changes.version,
                "the hub's register version is below this copy's; fetching the whole list"
            );
            self.fetch_full().await?;
            return Ok(0);
        }
        if changes.since != since {
            return Err(TrustError::Malformed(format!(
                "asked for the changes since {since}, got those since {}",
                changes.since
            ))
            .into());
        }
        let applied = self.store.apply_changes(changes)?;
        if applied > 0 {
            self.save()?;
        }
        Ok(applied)
    }

    /// Checks and applies one `register.*` broadcast.
    pub async fn handle_broadcast(
        &mut self,
        delivered: &Delivered,
    ) -> Result<BroadcastOutcome, TrustKeeperError> {
        match delivered.kind() {
            Some(MessageType::RegisterSignatoryChanged) => {
                self.check_hub_signature(
                    delivered.signature.as_deref(),
                    &delivered.body,
                    TYP_SIGNATORY_CHANGE,
                )
                .await?;
                let change: TrustedSignatory =
                    serde_json::from_slice(&delivered.body).map_err(|error| {
                        TrustKeeperError::Unreadable(format!(
                            "expected a signatory record (TrustedSignatory JSON): {error}"
                        ))
                    })?;
                let version = change.version.ok_or(TrustError::Unversioned)?;
                if let Some(header) = &delivered.register_version
                    && header != &version.to_string()
                {
                    return Err(TrustError::Malformed(format!(
                        "the {HEADER_REGISTER_VERSION} header is {header} but the body's version is {version}: expected the same"
                    ))
                    .into());
                }
                match self.store.apply(change) {
                    Ok(epix_shared::trust::Applied::AlreadyHeld) => {
                        Ok(BroadcastOutcome::AlreadyHeld { version })
                    }
                    Ok(epix_shared::trust::Applied::Applied) => {
                        self.save()?;
                        Ok(BroadcastOutcome::RegisterUpdated { version })
                    }
                    Err(TrustError::VersionGap { held, received }) => {
                        tracing::info!(
                            held,
                            received,
                            "register versions missing; fetching them from the hub"
                        );
                        self.catch_up().await?;
                        if self.store.version() < version {
                            return Err(TrustError::VersionGap {
                                held: self.store.version(),
                                received: version,
                            }
                            .into());
                        }
                        Ok(BroadcastOutcome::RegisterUpdated {
                            version: self.store.version(),
                        })
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Some(MessageType::RegisterUserRevoked) => {
                self.check_hub_signature(
                    delivered.signature.as_deref(),
                    &delivered.body,
                    TYP_USER_REVOCATION,
                )
                .await?;
                let revocation: UserRevocation =
                    serde_json::from_slice(&delivered.body).map_err(|error| {
                        TrustKeeperError::Unreadable(format!(
                            "expected a user revocation (UserRevocation JSON): {error}"
                        ))
                    })?;
                self.record_revocation(&revocation)?;
                Ok(BroadcastOutcome::UserRevoked(revocation))
            }
            _ => Err(TrustKeeperError::Unreadable(format!(
                "{:?} is not a register broadcast",
                delivered.message_type
            ))),
        }
    }

    /// Verifies a delivered permit's signature against the copy. A signer the copy does not
    /// know yet is looked for once more after fetching the latest changes. When the hub
    /// does not respond then, the result is [`Verdict::Undecided`], not a rejection.
    pub async fn verify_document(&mut self, delivered: &Delivered) -> Verdict {
        self.catch_up_if_due().await;
        match self.check_document(delivered).await {
            Ok(signed) => Verdict::Signed(signed),
            Err(Ok(problem)) => Verdict::Refused(problem),
            Err(Err(reason)) => Verdict::Undecided(reason),
        }
    }

    async fn check_document(
        &mut self,
        delivered: &Delivered,
    ) -> Result<SignedBy, Result<Problem, TrustKeeperError>> {
        let pointer = format!("header:{HEADER_SIGNATURE}");
        let Some(jws) = delivered.signature.as_deref() else {
            return Err(Ok(Problem::new(
                ErrorCode::SignatureMissing,
                "the document carries no signature: expected a detached JWS of an empowered signatory",
            )
            .at(pointer)));
        };
        let issuer = issuer_of(delivered).map_err(Ok)?;
        let check = |store: &TrustStore| {
            store.verify(
                jws,
                &delivered.body,
                issuer,
                Utc::now(),
                SIGNING_TIME_SKEW,
                &pointer,
            )
        };
        match check(&self.store) {
            Err(problem) if problem.code == ErrorCode::SignatoryUnknown && self.api.is_some() => {
                // The signer may have been registered after the copy's last change.
                match self.catch_up().await {
                    Ok(_) => check(&self.store).map_err(Ok),
                    Err(error @ (TrustKeeperError::Hub(_) | TrustKeeperError::Folder { .. })) => {
                        Err(Err(error))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "rejected the hub's register changes");
                        Err(Ok(problem))
                    }
                }
            }
            other => other.map_err(Ok),
        }
    }

    /// Fetches the latest changes when the last fetch is older than [`CATCH_UP_INTERVAL`], so
    /// that a copy which missed a broadcast (another reader of the inbox took it) still
    /// learns of removals.
    async fn catch_up_if_due(&mut self) {
        let due = self
            .caught_up_at
            .is_none_or(|at| at.elapsed() > CATCH_UP_INTERVAL);
        if due
            && self.api.is_some()
            && let Err(error) = self.catch_up().await
        {
            tracing::warn!(%error, "cannot fetch the register changes now; using the copy");
        }
    }

    async fn check_hub_signature(
        &mut self,
        signature: Option<&str>,
        body: &[u8],
        typ: &str,
    ) -> Result<(), TrustKeeperError> {
        let Some(signature) = signature else {
            return Err(TrustError::Malformed("the hub's signature is missing".to_owned()).into());
        };
        match self.keys.verify(signature, body, typ) {
            Err(TrustError::UnknownKey(kid)) if self.api.is_some() && !self.pinned => {
                // The hub may have rotated its key: fetch its key set once more.
                tracing::info!(?kid, "unknown hub key; fetching the hub's key set again");
                let dir = self.dir.clone();
                let api = self.api_mut()?;
                self.keys = fetch_keys(&dir, api).await?;
                Ok(self.keys.verify(signature, body, typ)?)
            }
            other => Ok(other?),
        }
    }

    fn api_mut(&mut self) -> Result<&mut HubApi, TrustKeeperError> {
        self.api.as_mut().ok_or_else(|| {
            TrustKeeperError::Hub("no hub URL to fetch the register from".to_owned())
        })
    }

    fn save(&self) -> Result<(), TrustKeeperError> {
        write_atomically(&self.dir, STORE_FILE, &self.store.to_json())
            .map(|_| ())
            .map_err(|error| TrustKeeperError::Folder {
                path: self.dir.display().to_string(),
                reason: error.to_string(),
            })
    }

    /// Appends a revocation to `revocations.jsonl` unless the file already holds it.
    fn record_revocation(&self, revocation: &UserRevocation) -> Result<(), TrustKeeperError> {
        use std::io::Write;
        let path = self.dir.join(REVOCATIONS_FILE);
        let held = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter_map(|line| serde_json::from_str::<UserRevocation>(line).ok())
                .any(|line| line == *revocation),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(folder_error(&self.dir, error)),
        };
        if held {
            return Ok(());
        }
        let mut line = serde_json::to_vec(revocation).unwrap_or_default();
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| folder_error(&self.dir, error))?;
        file.write_all(&line)
            .and_then(|()| file.sync_all())
            .map_err(|error| folder_error(&self.dir, error))
    }
}

/// Fetches the hub's JWKS and saves it as the fetched set. The keys are fetched only over
/// HTTPS, where the server certificate vouches for them, or from this machine; otherwise
/// the operator must place them in the folder as `hub-jwks.json`.
async fn fetch_keys(dir: &Path, api: &mut HubApi) -> Result<HubKeys, TrustKeeperError> {
    if !api.is_trusted_channel() {
        return Err(TrustKeeperError::Hub(format!(
            "will not fetch the hub's keys over plain HTTP from {}: expected an https:// hub URL, or the keys placed in {} as {PINNED_KEYS_FILE}",
            api.base_url,
            dir.display()
        )));
    }
    let (body, _) = api.get("/.well-known/jwks.json", false).await?;
    let keys = HubKeys::from_jwks(&body)?;
    write_atomically(dir, FETCHED_KEYS_FILE, &body).map_err(|error| TrustKeeperError::Folder {
        path: dir.display().to_string(),
        reason: error.to_string(),
    })?;
    Ok(keys)
}

/// Takes an exclusive lock on the folder, so that two readers never write one copy.
fn lock_folder(dir: &Path) -> Result<std::fs::File, TrustKeeperError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|error| folder_error(dir, error))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(TrustKeeperError::Folder {
            path: dir.display().to_string(),
            reason: "another process keeps its trust list here: expected one receiver per folder; give each its own --trust-dir".to_owned(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(folder_error(dir, error)),
    }
}

fn folder_error(dir: &Path, error: std::io::Error) -> TrustKeeperError {
    TrustKeeperError::Folder {
        path: dir.display().to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fetched_only_over_https_or_from_this_machine() {
        let trusted = |url: &str| HubApi::new(url, None).is_trusted_channel();
        assert!(trusted("https://hub.example.org"));
        assert!(trusted("http://127.0.0.1:8080"));
        assert!(trusted("http://localhost:8080/"));
        assert!(trusted("http://[::1]:8080"));
        assert!(!trusted("http://hub.example.org"));
        assert!(!trusted("http://10.0.0.5:8080"));
        assert!(!trusted("not a url"));
    }
}
