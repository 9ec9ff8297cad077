//! `epix-spoke`: send permits through EPIX Hub, receive what others send, follow receipts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use epix_shared::envelope::{Acknowledgement, AcknowledgementOutcome, MessageType};
use epix_shared::permit::check_document;
use epix_shared::signature::keygen::{self as keys, KeySpec, SubjectName};
use epix_shared::signature::{Signer, SigningKey};
use epix_shared::{PartyCode, ReceiptStatus};
use epix_spoke::trust::{
    BroadcastOutcome, Credentials, HubApi, TrustKeeper, TrustKeeperError, Verdict,
};
use epix_spoke::{Outgoing, Spoke, SpokeConfig, write_delivery};
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "epix-spoke", version, about = "A Party's client of EPIX Hub")]
struct Cli {
    /// Broker URL with this Party's broker user and password, as `epix-hub party add` printed it.
    #[arg(long, env = "AMQP_URL", global = true, hide_env_values = true)]
    amqp_url: Option<String>,
    /// This Party's ISO 3166-1 alpha-2 code, such as CH.
    #[arg(long, env = "EPIX_PARTY", global = true)]
    party: Option<PartyCode>,
    /// Base URL of the hub's HTTP API, for `status` and the trust list.
    #[arg(
        long,
        env = "EPIX_HUB_URL",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    hub_url: String,
    #[command(subcommand)]
    command: Command,
}

/// Credentials for the hub's HTTP API, which `receive` uses to fetch the trust list.
#[derive(clap::Args)]
struct ApiCredentials {
    /// An API client of an authority user of this Party.
    #[arg(long, env = "EPIX_CLIENT_ID")]
    client_id: Option<String>,
    /// The API client's secret.
    #[arg(
        long,
        env = "EPIX_CLIENT_SECRET",
        hide_env_values = true,
        requires = "client_id"
    )]
    client_secret: Option<String>,
    /// A bearer token, instead of client credentials.
    #[arg(long = "token", env = "EPIX_HUB_TOKEN", hide_env_values = true)]
    hub_token: Option<String>,
}

impl ApiCredentials {
    fn credentials(self) -> Option<Credentials> {
        match (self.client_id, self.client_secret, self.hub_token) {
            (Some(id), Some(secret), _) => Some(Credentials::Client { id, secret }),
            (_, _, Some(token)) => Some(Credentials::Token(token)),
            _ => None,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Send a permit document to another Party and print the receipts as they arrive.
    Send {
        /// The document: a JSON permit (.json) or ePermit XML (.xml).
        file: PathBuf,
        /// The addressed Party, such as DE.
        #[arg(long)]
        to: PartyCode,
        /// Reuse this message id, to resend a message whose outcome is unknown.
        #[arg(long)]
        message_id: Option<Uuid>,
        /// Exit once the broker confirms the message, without waiting for receipts.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the delivered (or rejected) receipt.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Send without checking the document first (to test the hub's own checks).
        #[arg(long)]
        skip_validation: bool,
        /// The signer's private key (PEM); the document is signed when given.
        #[arg(long, env = "EPIX_SIGNING_KEY", requires = "cert")]
        key: Option<PathBuf>,
        /// The signer's certificate (PEM), as registered with the Secretariat.
        #[arg(long, env = "EPIX_SIGNING_CERT", requires = "key")]
        cert: Option<PathBuf>,
    },
    /// Make a signing key and a self-signed certificate (or a certificate signing request)
    /// to register with the Secretariat.
    Keygen {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the certificate, or the request with --csr.
        #[arg(long)]
        cert: PathBuf,
        /// The signer's name, for the certificate's common name.
        #[arg(long)]
        name: String,
        /// The signer's organisation, such as the Management Authority.
        #[arg(long)]
        organization: String,
        /// The signer's country, such as CH.
        #[arg(long)]
        country: PartyCode,
        /// Days the self-signed certificate is valid.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Write a certificate signing request instead of a self-signed certificate.
        #[arg(long)]
        csr: bool,
        /// Make an RSA-3072 key instead of P-256.
        #[arg(long)]
        rsa: bool,
    },
    /// Store each delivered document and its envelope in a folder, then acknowledge it.
    Receive {
        /// Folder for the documents; created if missing.
        #[arg(long)]
        inbox: PathBuf,
        /// Stop after one document.
        #[arg(long, conflicts_with = "count")]
        once: bool,
        /// Stop after this many documents.
        #[arg(long)]
        count: Option<u64>,
        /// Stop when no message arrives for this many seconds.
        #[arg(long, value_name = "SECONDS")]
        idle_exit: Option<u64>,
        /// Folder of the local copy of the register of signatories; `<inbox>/.epix-trust`
        /// when not given.
        #[arg(long, env = "EPIX_TRUST_DIR")]
        trust_dir: Option<PathBuf>,
        /// Acknowledge documents without checking their signatures, and ignore register
        /// broadcasts (for a hub that does not require signatures).
        #[arg(long)]
        no_verify: bool,
        #[command(flatten)]
        api: ApiCredentials,
    },
    /// Print a message's status and receipts as the hub records them.
    Status {
        message_id: Uuid,
        /// A bearer token of an authority user of this Party, from POST /v1/auth/token.
        #[arg(long, env = "EPIX_HUB_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Check a document locally, as the hub would, and list every problem.
    Validate {
        file: PathBuf,
        /// Judge validity as of this time (RFC 3339) instead of now.
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { file, as_of } => validate(&file, as_of),
        Command::Keygen {
            key,
            cert,
            name,
            organization,
            country,
            days,
            csr,
            rsa,
        } => keygen(&key, &cert, &name, &organization, country, days, csr, rsa),
        Command::Status { message_id, token } => status(&cli.hub_url, message_id, &token).await,
        Command::Send {
            file,
            to,
            message_id,
            no_wait,
            timeout,
            skip_validation,
            key,
            cert,
        } => {
            let mut outgoing = outgoing_from_file(&file, to, skip_validation)?;
            if let (Some(key), Some(cert)) = (key, cert) {
                let signing_key = SigningKey::from_pem_files(&key, &cert).with_context(|| {
                    format!(
                        "cannot load the signing key {} and certificate {}",
                        key.display(),
                        cert.display()
                    )
                })?;
                outgoing.sign(&Signer::new(signing_key))?;
            }
            let spoke = connect(cli.amqp_url, cli.party).await?;
            outgoing.message_id = message_id;
            send(spoke, outgoing, no_wait, Duration::from_secs(timeout)).await
        }
        Command::Receive {
            inbox,
            once,
            count,
            idle_exit,
            trust_dir,
            no_verify,
            api,
        } => {
            let keeper = if no_verify {
                None
            } else {
                let dir = trust_dir.unwrap_or_else(|| inbox.join(".epix-trust"));
                let hub = HubApi::new(&cli.hub_url, api.credentials());
                let keeper = TrustKeeper::open(&dir, Some(hub)).await.with_context(|| {
                    format!(
                        "cannot load the register of signatories into {}",
                        dir.display()
                    )
                })?;
                println!(
                    "trust list at version {} with {} signatories",
                    keeper.version(),
                    keeper.signatories().count()
                );
                Some(keeper)
            };
            let spoke = connect(cli.amqp_url, cli.party).await?;
            let limit = if once { Some(1) } else { count };
            let idle = idle_exit.map(Duration::from_secs);
            receive(spoke, &inbox, limit, idle, keeper).await
        }
    }
}

async fn connect(amqp_url: Option<String>, party: Option<PartyCode>) -> anyhow::Result<Spoke> {
    let Some(amqp_url) = amqp_url else {
        bail!(
            "no broker URL: set AMQP_URL or --amqp-url to the URL that `epix-hub party add` printed"
        );
    };
    let Some(party) = party else {
        bail!("no party: set EPIX_PARTY or --party to this Party's code, such as CH");
    };
    Ok(Spoke::connect(SpokeConfig::new(&amqp_url, party)).await?)
}

fn content_type_of(file: &Path) -> anyhow::Result<&'static str> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok("application/json"),
        Some("xml") => Ok("application/xml"),
        _ => bail!(
            "cannot tell the format of {}: expected a .json or .xml file",
            file.display()
        ),
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn outgoing_from_file(
    file: &Path,
    to: PartyCode,
    skip_validation: bool,
) -> anyhow::Result<Outgoing> {
    let content_type = content_type_of(file)?;
    let body = read(file)?;
    if skip_validation {
        return Ok(Outgoing::unchecked(
            body,
            content_type,
            MessageType::PermitIssued,
            to,
        ));
    }
    let checked = check_document(content_type, &body, Utc::now()).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::anyhow!(
            "{} is invalid; nothing was sent:\n{}",
            file.display(),
            list.join("\n")
        )
    })?;
    let mut outgoing = Outgoing::unchecked(body, content_type, MessageType::PermitIssued, to);
    outgoing.issuing_country = Some(checked.summary.issuing_country.to_string());
    outgoing.document_number = Some(checked.summary.permit_number);
    Ok(outgoing)
}

async fn send(
    spoke: Spoke,
    outgoing: Outgoing,
    no_wait: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    // Listen before sending, so no receipt can arrive unseen.
    let mut receipts = if no_wait {
        None
    } else {
        Some(spoke.receipts().await?)
    };
    let message_id = spoke.send(outgoing).await?;
    println!("sent {message_id}");
    let Some(receipts) = receipts.as_mut() else {
        return Ok(ExitCode::SUCCESS);
    };

    let outcome = tokio::time::timeout(timeout, async {
        loop {
            let received = receipts.next().await?;
            let receipt = match &received.receipt {
                Ok(receipt) if receipt.message_id == message_id => receipt.clone(),
                // NOTE: a receipt for another message stays unacknowledged and returns to
                // the queue when this command exits; with more pending than the prefetch
                // (200), waiting stalls until the timeout.
                _ => continue,
            };
            received.ack().await?;
            print_receipt(&receipt);
            match receipt.status {
                ReceiptStatus::Accepted => {}
                ReceiptStatus::Delivered | ReceiptStatus::DeliveredWithWarnings => {
                    return Ok(ExitCode::SUCCESS);
                }
                ReceiptStatus::Rejected | ReceiptStatus::Failed => return Ok(ExitCode::from(2)),
            }
        }
    })
    .await;
    let _ = spoke.close().await;
    match outcome {
        Ok(result) => result,
        Err(_) => bail!(
            "no final receipt for {message_id} within {} s; the message is sent and the receipts stay queued; check with `epix-spoke status {message_id}`",
            timeout.as_secs()
        ),
    }
}

fn print_receipt(receipt: &epix_shared::Receipt) {
    println!(
        "receipt {} at {} (message {}, tracking {})",
        receipt.status.as_str(),
        receipt
            .hub_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        receipt.message_id,
        receipt.tracking_id
    );
    for problem in &receipt.problems {
        println!("  - {problem}");
    }
}

async fn receive(
    spoke: Spoke,
    dir: &Path,
    limit: Option<u64>,
    idle: Option<Duration>,
    mut keeper: Option<TrustKeeper>,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the inbox folder {}", dir.display()))?;
    let rejected_dir = dir.join("rejected");
    let mut inbox = spoke.inbox().await?;
    let mut received = 0u64;
    while limit.is_none_or(|limit| received < limit) {
        let wait_idle = async {
            match idle {
                Some(idle) => tokio::time::sleep(idle).await,
                None => std::future::pending().await,
            }
        };
        let delivered = tokio::select! {
            next = inbox.next() => next?,
            _ = tokio::signal::ctrl_c() => break,
            () = wait_idle => break,
        };
        if delivered.is_broadcast() {
            handle_broadcast(&spoke, keeper.as_mut(), &delivered, &rejected_dir).await?;
            continue;
        }
        let verdict = match keeper.as_mut() {
            Some(keeper) => Some(keeper.verify_document(&delivered).await),
            None => None,
        };
        let (path, acknowledgement, signer) = match verdict {
            Some(Verdict::Undecided(error)) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "cannot check the signer of {}; it stays in the inbox until receive runs again",
                    delivered.document_number.as_deref().unwrap_or("a document")
                )));
            }
            Some(Verdict::Refused(problem)) => {
                std::fs::create_dir_all(&rejected_dir).with_context(|| {
                    format!("cannot create the folder {}", rejected_dir.display())
                })?;
                let path = write_delivery(&rejected_dir, &delivered)?;
                let acknowledgement = Acknowledgement {
                    outcome: AcknowledgementOutcome::Failed,
                    problems: vec![problem],
                };
                (path, acknowledgement, None)
            }
            verdict => {
                let path = write_delivery(dir, &delivered)?;
                let acknowledgement = Acknowledgement {
                    outcome: AcknowledgementOutcome::Received,
                    problems: Vec::new(),
                };
                let signer = match verdict {
                    Some(Verdict::Signed(signer)) => Some(signer),
                    _ => None,
                };
                (path, acknowledgement, signer)
            }
        };
        spoke.acknowledge(&delivered, &acknowledgement).await?;
        received += 1;
        let what = format!(
            "{} {} from {}",
            delivered.message_type.as_deref().unwrap_or("?"),
            delivered.document_number.as_deref().unwrap_or("?"),
            delivered.sender.as_deref().unwrap_or("?"),
        );
        match (acknowledgement.outcome, signer) {
            (AcknowledgementOutcome::Failed, _) => {
                println!("refused {what} -> {}", path.display());
                for problem in &acknowledgement.problems {
                    println!("  - {problem}");
                }
            }
            (_, Some(signer)) => println!(
                "received {what}, signed by {} at {} -> {}",
                signer.full_name,
                signer.signed_at.to_rfc3339(),
                path.display()
            ),
            (_, None) => println!("received {what} -> {}", path.display()),
        }
    }
    let _ = spoke.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Applies a register broadcast. One that fails its checks is kept in `rejected` and
/// removed from the inbox. One that cannot be applied now, because the hub is unreachable
/// for missing versions, stops `receive` and stays in the inbox.
async fn handle_broadcast(
    spoke: &Spoke,
    keeper: Option<&mut TrustKeeper>,
    delivered: &epix_spoke::Delivered,
    rejected_dir: &Path,
) -> anyhow::Result<()> {
    let Some(keeper) = keeper else {
        spoke.settle_broadcast(delivered).await?;
        return Ok(());
    };
    match keeper.handle_broadcast(delivered).await {
        Ok(BroadcastOutcome::RegisterUpdated { version }) => {
            println!("register updated to version {version}");
        }
        Ok(BroadcastOutcome::AlreadyHeld { version }) => {
            println!("register change {version} already held");
        }
        Ok(BroadcastOutcome::UserRevoked(revocation)) => println!(
            "user {} of {} revoked at {}",
            revocation.username,
            revocation.party.as_deref().unwrap_or("the Secretariat"),
            revocation.removed_at.to_rfc3339()
        ),
        Err(error @ (TrustKeeperError::Refused(_) | TrustKeeperError::Unreadable(_))) => {
            std::fs::create_dir_all(rejected_dir)
                .with_context(|| format!("cannot create the folder {}", rejected_dir.display()))?;
            let path = write_delivery(rejected_dir, delivered)?;
            eprintln!(
                "warning: refused a {} broadcast ({error}); kept in {}",
                delivered.message_type.as_deref().unwrap_or("?"),
                path.display()
            );
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(
                "cannot apply a register broadcast; it stays in the inbox until receive runs again",
            ));
        }
    }
    spoke.settle_broadcast(delivered).await?;
    Ok(())
}

async fn status(hub_url: &str, message_id: Uuid, token: &str) -> anyhow::Result<ExitCode> {
    let url = format!("{}/v1/messages/{message_id}", hub_url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("cannot reach the hub at {hub_url}"))?;
    let code = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("unreadable answer from {url}"))?;
    if !code.is_success() {
        bail!(
            "{url}: HTTP {code}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &Path, as_of: Option<DateTime<Utc>>) -> anyhow::Result<ExitCode> {
    let content_type = content_type_of(file)?;
    let body = read(file)?;
    match check_document(content_type, &body, as_of.unwrap_or_else(Utc::now)) {
        Ok(checked) => {
            let summary = &checked.summary;
            println!(
                "valid: {} {} of {} for {}, valid until {}",
                summary.document_type.as_str(),
                summary.permit_number,
                summary.issuing_country,
                summary.importer_country,
                summary.valid_until
            );
            for warning in &checked.warnings {
                println!("  warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            println!("invalid: {} problem(s)", problems.len());
            for problem in &problems {
                println!("  - {problem}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per command-line option"
)]
fn keygen(
    key_path: &Path,
    cert_path: &Path,
    name: &str,
    organization: &str,
    country: PartyCode,
    days: u32,
    csr: bool,
    rsa: bool,
) -> anyhow::Result<ExitCode> {
    let subject = SubjectName {
        common_name: name.to_owned(),
        organization: organization.to_owned(),
        country: country.to_string(),
    };
    let key = keys::generate_key(if rsa {
        KeySpec::Rsa3072
    } else {
        KeySpec::EcP256
    })?;
    let public = if csr {
        keys::certificate_request_pem(&keys::certificate_request(&key, &subject)?)?
    } else {
        keys::certificate_pem(&keys::self_signed_certificate(&key, &subject, days)?)?
    };
    keys::write_private_key_pem(key_path, &key)?;
    keys::write_public_pem(cert_path, &public)?;
    println!(
        "wrote the private key to {} and the {} to {}",
        key_path.display(),
        if csr {
            "certificate signing request"
        } else {
            "self-signed certificate"
        },
        cert_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
