//! The spoke's copy of the register of signatories: fetched from the hub once, kept up to
//! date by the hub's `register.*` broadcasts, saved in a folder, and used to verify every
//! delivered permit before it is acknowledged.
//!
//! The folder holds `hub-jwks.json` (the hub's public keys; fetched from the hub on first
//! use when not placed there beforehand), `trust-list.json` (the copy and its version) and
//! `revocations.jsonl` (one line per user revocation broadcast). Every document from the
//! hub is checked against the hub's keys before it is used; a change whose version does not
//! follow the copy's is applied only after the missing changes are fetched and checked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use epix_shared::envelope::{HEADER_SIGNATURE, MessageType};
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

const KEYS_FILE: &str = "hub-jwks.json";
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

/// How the spoke authenticates to the hub's HTTP API.
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
                        "{url}: HTTP {}: the client credentials were refused",
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

/// What a broadcast changed.
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
    store: TrustStore,
    api: Option<HubApi>,
}

impl TrustKeeper {
    /// Opens the copy in `dir`. A folder without the hub's keys or without a copy is
    /// filled from the hub; an existing copy is brought up to date when the hub answers.
    pub async fn open(dir: &Path, mut api: Option<HubApi>) -> Result<Self, TrustKeeperError> {
        std::fs::create_dir_all(dir).map_err(|error| folder_error(dir, error))?;
        let keys = match std::fs::read(dir.join(KEYS_FILE)) {
            Ok(bytes) => HubKeys::from_jwks(&bytes)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let Some(api) = api.as_mut() else {
                    return Err(TrustKeeperError::Hub(format!(
                        "no {KEYS_FILE} in {} and no hub to fetch it from",
                        dir.display()
                    )));
                };
                fetch_keys(dir, api).await?
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
            store: stored.clone().unwrap_or_default(),
            api,
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
        serde_json::from_slice(body)
            .map_err(|error| TrustKeeperError::Unreadable(format!("trust list: {error}")))
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
        let changes: TrustListChanges = serde_json::from_slice(&body)
            .map_err(|error| TrustKeeperError::Unreadable(format!("changes: {error}")))?;
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
                let change: TrustedSignatory = serde_json::from_slice(&delivered.body)
                    .map_err(|error| TrustKeeperError::Unreadable(error.to_string()))?;
                let version = change.version.ok_or(TrustError::Unversioned)?;
                if let Some(header) = &delivered.register_version
                    && header != &version.to_string()
                {
                    return Err(TrustError::Malformed(format!(
                        "the {HEADER_REGISTER_VERSION} header says {header}, the body {version}"
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
                let revocation: UserRevocation = serde_json::from_slice(&delivered.body)
                    .map_err(|error| TrustKeeperError::Unreadable(error.to_string()))?;
                self.record_revocation(&delivered.body)?;
                Ok(BroadcastOutcome::UserRevoked(revocation))
            }
            _ => Err(TrustKeeperError::Unreadable(format!(
                "{:?} is not a register broadcast",
                delivered.message_type
            ))),
        }
    }

    /// Verifies a delivered permit's signature against the copy. A signer the copy does not
    /// know yet is looked for once more after fetching the latest changes.
    pub async fn verify_document(&mut self, delivered: &Delivered) -> Result<SignedBy, Problem> {
        let pointer = format!("header:{HEADER_SIGNATURE}");
        let Some(jws) = delivered.signature.as_deref() else {
            return Err(Problem::new(
                ErrorCode::SignatureMissing,
                "the document carries no signature: expected a detached JWS of an empowered signatory",
            )
            .at(pointer));
        };
        let issuer: PartyCode = match delivered.issuing_country.as_deref().map(str::parse) {
            Some(Ok(issuer)) => issuer,
            _ => {
                return Err(Problem::new(
                    ErrorCode::HeaderMismatch,
                    "the delivery names no issuing country: expected a Party code",
                )
                .at(format!(
                    "header:{}",
                    epix_shared::envelope::HEADER_ISSUING_COUNTRY
                ))
                .with_value(delivered.issuing_country.clone().unwrap_or_default()));
            }
        };
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
                if let Err(error) = self.catch_up().await {
                    tracing::warn!(%error, "cannot fetch register changes to check an unknown signer");
                }
                check(&self.store)
            }
            other => other,
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
            Err(TrustError::UnknownKey(kid)) if self.api.is_some() => {
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

    fn record_revocation(&self, body: &[u8]) -> Result<(), TrustKeeperError> {
        use std::io::Write;
        let path = self.dir.join(REVOCATIONS_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| folder_error(&self.dir, error))?;
        file.write_all(body)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|error| folder_error(&self.dir, error))
    }
}

/// Fetches the hub's JWKS and saves it. Over HTTPS the server certificate vouches for the
/// keys; an operator who wants to pin them places `hub-jwks.json` in the folder instead.
async fn fetch_keys(dir: &Path, api: &mut HubApi) -> Result<HubKeys, TrustKeeperError> {
    let (body, _) = api.get("/.well-known/jwks.json", false).await?;
    let keys = HubKeys::from_jwks(&body)?;
    write_atomically(dir, KEYS_FILE, &body).map_err(|error| TrustKeeperError::Folder {
        path: dir.display().to_string(),
        reason: error.to_string(),
    })?;
    Ok(keys)
}

fn folder_error(dir: &Path, error: std::io::Error) -> TrustKeeperError {
    TrustKeeperError::Folder {
        path: dir.display().to_string(),
        reason: error.to_string(),
    }
}
