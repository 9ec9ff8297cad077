//! `epix-hub`: the hub's server and admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use epix_hub::auth::Role;
use epix_hub::{Config, Hub, auth, db, http, parties, telemetry};
use epix_shared::PartyCode;
use epix_shared::permit::PartyProfile;

mod audit_cli;

#[derive(Parser)]
#[command(
    name = "epix-hub",
    version,
    about = "EPIX Hub: routes CITES permits between Parties"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the submission router and the outbox sweeper until stopped.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document of the HTTP API.
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Manage the Parties that exchange permits through the hub.
    Party {
        #[command(subcommand)]
        command: PartyCommand,
    },
    /// Keep the register of signatories as the Secretariat.
    Signatory {
        #[command(subcommand)]
        command: SignatoryCommand,
    },
    /// Manage users of the HTTP API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Make keys for signing API tokens.
    TokenKey {
        #[command(subcommand)]
        command: TokenKeyCommand,
    },
    /// Check, export and purge the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain in the database and report the first event that does not
    /// verify. Exits with status 1 when the chain is broken.
    Verify,
    /// Write the events that occurred in [--from, --to) as JSON Lines with their hashes,
    /// plus the events and purged stubs between them, so the lines form an unbroken run
    /// of the chain.
    Export {
        /// Start of the range, RFC 3339, such as 2026-01-01T00:00:00Z.
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// End of the range (exclusive), RFC 3339.
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Verify an export offline, by the rules the database check uses. Exits with status 1
    /// when a line does not verify.
    VerifyFile {
        /// The JSON Lines file written by `audit export`.
        file: PathBuf,
    },
    /// Delete the events past retention now, as the daily job inside `serve` does.
    Purge {
        /// Purge as of this time instead of now, RFC 3339.
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, such as the first Secretariat account. The password is read from the
    /// first line of standard input.
    Add {
        /// 3 to 64 letters, digits or `._@-`.
        username: String,
        /// The person's full name.
        #[arg(long)]
        name: String,
        /// A role: secretariat, authority-admin, authority-officer, customs or auditor.
        /// Repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// The user's Party; omit for secretariat and auditor users.
        #[arg(long)]
        party: Option<PartyCode>,
    },
}

#[derive(Subcommand)]
enum SignatoryCommand {
    /// Put a person empowered to sign permits on the register, approved at once.
    Add {
        /// The signatory's Party, such as CH.
        #[arg(long)]
        party: PartyCode,
        /// The person's full name.
        #[arg(long)]
        name: String,
        /// The person's title, such as Head of CITES permits.
        #[arg(long)]
        title: Option<String>,
        /// The signer's X.509 certificate (PEM or DER file).
        #[arg(long)]
        cert: std::path::PathBuf,
        /// When the empowerment took effect (RFC 3339).
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// When the Party notified the change (RFC 3339); now when omitted.
        #[arg(long)]
        notified_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Remove a signatory from a time on: what they signed before stays valid.
    Remove {
        /// The signatory's id, as `signatory list` shows it.
        signatory_id: uuid::Uuid,
        /// Why the signatory is removed.
        #[arg(long)]
        reason: String,
        /// When the removal takes effect (RFC 3339); now when omitted.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Print the current register, one signatory a line.
    List,
}

#[derive(Subcommand)]
enum TokenKeyCommand {
    /// Print a new P-256 private key (PEM) for EPIX_JWT_SIGNING_KEY.
    Generate,
    /// Print the public key of a private key file, for EPIX_JWT_ADDITIONAL_KEYS after a
    /// rotation.
    Public {
        /// The private key PEM file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum PartyCommand {
    /// Register a Party, create its broker user and queues, and print its spoke settings.
    Add {
        /// ISO 3166-1 alpha-2 code of the Party, such as CH.
        code: PartyCode,
        /// The Party's name, such as Switzerland.
        #[arg(long)]
        name: String,
        /// The Party's permit form keeps the applicant's signature in Box 4, so a permit
        /// without it is rejected.
        #[arg(long)]
        requires_applicant_signature: bool,
        /// The Party's UTC offset, such as +01:00; a date-only valid-until ends at midnight
        /// there. Without it, the latest time zone (UTC-12:00) is assumed.
        #[arg(long, allow_hyphen_values = true)]
        utc_offset: Option<chrono::FixedOffset>,
    },
    /// List the registered Parties.
    List,
    /// Give a Party's broker user a new password, close its open connections, and print
    /// the new spoke settings.
    RotateCredentials {
        /// The Party's code, such as CH.
        code: PartyCode,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi { output } = &cli.command {
        let document = http::openapi()
            .to_pretty_json()
            .context("cannot serialise the OpenAPI document")?;
        return match output {
            Some(path) => std::fs::write(path, document + "\n")
                .with_context(|| format!("cannot write {}", path.display())),
            None => {
                println!("{document}");
                Ok(())
            }
        };
    }

    if let Command::TokenKey { command } = &cli.command {
        return token_key(command);
    }
    if let Command::Audit {
        command: AuditCommand::VerifyFile { file },
    } = &cli.command
    {
        return audit_cli::verify_file(file);
    }

    let config = Config::from_env()?;
    telemetry::init(config.log_json);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let applied = db::migrate(&config.migration_database_url).await?;
            println!("applied {applied} migration(s)");
            Ok(())
        }
        Command::Party { command } => party(config, command).await,
        Command::User { command } => user(config, command).await,
        Command::Audit { command } => audit(config, command).await,
        Command::Signatory { command } => signatory(config, command).await,
        Command::Openapi { .. } | Command::TokenKey { .. } => Ok(()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let hub = Hub::start(config).await?;
    wait_for_signal().await?;
    tracing::info!("stop signal received");
    hub.stop().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}

async fn party(config: Config, command: PartyCommand) -> anyhow::Result<()> {
    db::migrate(&config.migration_database_url).await?;
    let pool = db::pool(&config.database_url, 2)?;
    match command {
        PartyCommand::Add {
            code,
            name,
            requires_applicant_signature,
            utc_offset,
        } => {
            let profile = PartyProfile {
                requires_applicant_signature,
                utc_offset,
            };
            let settings = parties::add(&config, &pool, code, &name, &profile).await?;
            print_settings(&settings);
            Ok(())
        }
        PartyCommand::RotateCredentials { code } => {
            let settings = parties::rotate_credentials(&config, &pool, code).await?;
            print_settings(&settings);
            Ok(())
        }
        PartyCommand::List => {
            for party in parties::list(&pool).await? {
                println!("{}\t{}\t{}", party.code, party.broker_user, party.name);
            }
            Ok(())
        }
    }
}

fn print_settings(settings: &parties::SpokeSettings) {
    println!(
        "# Spoke settings of {} (shown once; keep the password secret)",
        settings.party
    );
    println!("EPIX_PARTY={}", settings.party);
    println!("AMQP_URL={}", settings.amqp_url);
    println!("EPIX_HUB_URL={}", settings.hub_url);
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add {
        username,
        name,
        roles,
        party,
    } = command;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < auth::password::MIN_PASSWORD_CHARS {
        anyhow::bail!(
            "the password on standard input is too short: expected at least {} characters",
            auth::password::MIN_PASSWORD_CHARS
        );
    }
    let hub = epix_hub::AdminContext::connect(config).await?;
    let created = http::users::create(
        hub.context(),
        &username,
        &name,
        party.map(|code| code.to_string()),
        roles,
        password,
        Some("epix-hub user add".to_owned()),
        {
            let mut event = epix_hub::audit::Event::new(
                "user.created",
                epix_hub::audit::ActorKind::System,
                chrono::Utc::now(),
            );
            event.actor_id = Some("epix-hub user add".to_owned());
            event
        },
    )
    .await
    .map_err(|error| anyhow::anyhow!("cannot create user {username}: {error}"))?;
    println!(
        "created user {} ({}) with roles {}",
        created.username,
        created.party.as_deref().unwrap_or("no party"),
        created.roles.join(", ")
    );
    Ok(())
}

async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    let archive_dir = config.audit_archive_dir.clone();
    let hub = epix_hub::AdminContext::connect(config).await?;
    let mut connection = hub.context().pool.get().await?;
    match command {
        AuditCommand::Verify => audit_cli::verify(&mut connection).await,
        AuditCommand::Export { from, to, output } => {
            audit_cli::export(&mut connection, from, to, output.as_deref()).await
        }
        AuditCommand::Purge { as_of } => {
            drop(connection);
            let mut connection = hub.context().retention_connections().get().await?;
            let as_of = as_of.unwrap_or_else(chrono::Utc::now);
            let report =
                epix_hub::audit::retention::purge(&mut connection, as_of, archive_dir.as_deref())
                    .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        AuditCommand::VerifyFile { .. } => Ok(()),
    }
}

/// Returns the Secretariat principal of the register keeper at the command line, named
/// after the operating-system user for the register's records.
fn operator() -> auth::Principal {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    auth::Principal {
        username: format!("epix-hub:{user}"),
        full_name: format!("epix-hub command line ({user})"),
        party: None,
        roles: vec![auth::Role::Secretariat],
        client_id: None,
    }
}

async fn signatory(config: Config, command: SignatoryCommand) -> anyhow::Result<()> {
    let hub = epix_hub::AdminContext::connect(config).await?;
    let context = hub.context();
    let print = |record: &epix_hub::register::store::SignatoryRecord| {
        println!(
            "{}\t{}\t{}\tfrom {}\tuntil {}\tversion {}",
            record.signatory_id,
            record.party,
            record.full_name,
            record.empowered_from.to_rfc3339(),
            record
                .empowered_until
                .map_or_else(|| "-".to_owned(), |until| until.to_rfc3339()),
            record
                .register_version
                .map_or_else(|| "-".to_owned(), |version| version.to_string()),
        );
    };
    match command {
        SignatoryCommand::Add {
            party,
            name,
            title,
            cert,
            from,
            notified_at,
        } => {
            let bytes =
                std::fs::read(&cert).with_context(|| format!("cannot read {}", cert.display()))?;
            let certificate =
                match epix_shared::signature::ParsedCertificate::from_pem_or_der(&bytes) {
                    Ok(parsed) => String::from_utf8(parsed.x509().to_pem()?)?,
                    Err(error) => anyhow::bail!("{} is not a certificate: {error}", cert.display()),
                };
            let body = http::signatories::CreateSignatory {
                party: party.to_string(),
                full_name: name,
                title,
                certificate,
                empowered_from: from,
                notified_at,
            };
            let meta = epix_hub::audit::RequestMeta::default();
            let stored = http::signatories::record_signatory(context, &operator(), &meta, body)
                .await
                .map_err(|error| anyhow::anyhow!("cannot record the signatory: {error}"))?;
            print(&stored);
        }
        SignatoryCommand::Remove {
            signatory_id,
            reason,
            at,
        } => {
            let body = http::signatories::RemoveSignatory {
                effective_at: at,
                reason,
            };
            let meta = epix_hub::audit::RequestMeta::default();
            let stored =
                http::signatories::record_removal(context, &operator(), &meta, signatory_id, &body)
                    .await
                    .map_err(|error| anyhow::anyhow!("cannot remove the signatory: {error}"))?;
            print(&stored);
        }
        SignatoryCommand::List => {
            let mut connection = context.pool.get().await?;
            for record in epix_hub::register::store::current_records(&mut connection).await? {
                print(&record);
            }
        }
    }
    Ok(())
}

fn token_key(command: &TokenKeyCommand) -> anyhow::Result<()> {
    match command {
        TokenKeyCommand::Generate => {
            let (private, _) = auth::keys::generate_key_pair().context("cannot generate a key")?;
            print!("{private}");
        }
        TokenKeyCommand::Public { file } => {
            let pem = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let public = auth::keys::public_pem_of(&pem)
                .with_context(|| format!("{} is not a PEM private key", file.display()))?;
            print!("{public}");
        }
    }
    Ok(())
}
