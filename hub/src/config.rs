//! Configuration from environment variables.
//!
//! Every variable is listed in the README's configuration table. A secret may instead come
//! from a file named by `<NAME>_FILE` (for Kubernetes secrets); setting both is an error.

use std::time::Duration;

use thiserror::Error;

/// An environment variable that is missing or does not parse.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: expected {expected}")]
    Missing {
        name: &'static str,
        expected: &'static str,
    },
    #[error("environment variable {name} has invalid value {value:?}: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("both {name} and {name}_FILE are set: set only one of them")]
    Ambiguous { name: &'static str },
    #[error("cannot read {name}_FILE {path:?}: {source}")]
    File {
        name: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// Everything `epix-hub` reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// PostgreSQL URL (`DATABASE_URL`).
    pub database_url: String,
    /// Broker URL the hub itself logs in with (`AMQP_URL`).
    pub amqp_url: String,
    /// Address the HTTP API listens on (`EPIX_HTTP_BIND`).
    pub http_bind: String,
    /// RabbitMQ management API base URL (`EPIX_BROKER_MANAGEMENT_URL`).
    pub management_url: String,
    pub management_user: String,
    pub management_password: String,
    /// Broker URL printed to a new Party's spoke (`EPIX_PUBLIC_AMQP_URL`); its user and
    /// password are replaced with the Party's own.
    pub public_amqp_url: String,
    /// Hub URL printed to a new Party's spoke (`EPIX_PUBLIC_HUB_URL`).
    pub public_hub_url: String,
    /// Prefix of the broker user names of spokes (`EPIX_PARTY_USER_PREFIX`).
    pub party_user_prefix: String,
    /// Submission consumers, each with its own AMQP connection (`EPIX_WORKERS`).
    pub workers: usize,
    /// Most messages processed in one database transaction (`EPIX_BATCH_SIZE`).
    pub batch_size: usize,
    /// Unacknowledged submissions each worker may hold (`EPIX_PREFETCH`).
    pub prefetch: u16,
    /// Deliveries of one submission before the broker dead-letters it (`EPIX_DELIVERY_LIMIT`).
    pub delivery_limit: u32,
    /// Database connections in the pool (`EPIX_DB_POOL_SIZE`).
    pub db_pool_size: usize,
    /// Age after which an unsent outbox row is published by the sweeper
    /// (`EPIX_OUTBOX_GRACE_MS`).
    pub outbox_grace: Duration,
    /// Pause between outbox sweeps (`EPIX_OUTBOX_SWEEP_MS`).
    pub outbox_sweep_interval: Duration,
    /// `json` for JSON log lines, `text` otherwise (`EPIX_LOG_FORMAT`).
    pub log_json: bool,
    /// PEM P-256 private key that signs API tokens (`EPIX_JWT_SIGNING_KEY`); a key
    /// generated at start when unset.
    pub jwt_signing_key: Option<String>,
    /// PEM public keys that still verify tokens after a key rotation
    /// (`EPIX_JWT_ADDITIONAL_KEYS`).
    pub jwt_additional_keys: Option<String>,
    /// Token issuer, `iss` (`EPIX_JWT_ISSUER`).
    pub jwt_issuer: String,
    /// Token audience, `aud` (`EPIX_JWT_AUDIENCE`).
    pub jwt_audience: String,
    /// Lifetime of an API token (`EPIX_TOKEN_TTL_SECONDS`).
    pub token_ttl: Duration,
    /// Failed logins in a row that lock an account (`EPIX_LOGIN_MAX_FAILURES`).
    pub login_max_failures: u32,
    /// How long a locked account stays locked (`EPIX_LOGIN_LOCKOUT_SECONDS`).
    pub login_lockout: Duration,
    /// Reject permits without a signature (`EPIX_REQUIRE_SIGNATURES`, on by default); when
    /// off, an unsigned permit passes with a `signature_missing` warning. A signature that
    /// is present is always verified.
    pub require_signatures: bool,
    /// PostgreSQL URL of the login that owns the schema (`EPIX_MIGRATION_DATABASE_URL`;
    /// `DATABASE_URL` when unset): it runs the migrations and creates the monthly audit
    /// partitions, so the hub's own login needs no right to change the schema.
    pub migration_database_url: String,
    /// PostgreSQL URL of the retention job's login (`EPIX_RETENTION_DATABASE_URL`), a
    /// member of `epix_audit_retention` and of nothing the hub's login is. When unset the
    /// job uses the hub's connections, which then must be allowed to switch to that role.
    pub retention_database_url: Option<String>,
    /// Database role the hub's pooled connections switch to with SET ROLE
    /// (`EPIX_DATABASE_ROLE`), such as `epix_hub_app`; unset keeps the login role.
    pub database_role: Option<String>,
    /// Folder where the retention job writes the audit events before deleting them
    /// (`EPIX_AUDIT_ARCHIVE_DIR`); unset deletes without a copy.
    pub audit_archive_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("http_bind", &self.http_bind)
            .field("management_url", &self.management_url)
            .field("workers", &self.workers)
            .field("batch_size", &self.batch_size)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let database_url = env.secret("DATABASE_URL")?.ok_or(ConfigError::Missing {
            name: "DATABASE_URL",
            expected: "a PostgreSQL URL such as postgres://postgres:postgres@127.0.0.1:5432/epix",
        })?;
        let amqp_url = env
            .secret("AMQP_URL")?
            .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        check_scheme(
            "DATABASE_URL",
            &database_url,
            &["postgres://", "postgresql://"],
        )?;
        check_scheme("AMQP_URL", &amqp_url, &["amqp://", "amqps://"])?;
        let http_bind = env.text("EPIX_HTTP_BIND", "127.0.0.1:8080");
        let public_hub_url = env.text("EPIX_PUBLIC_HUB_URL", &format!("http://{http_bind}"));
        let batch_size = env.number("EPIX_BATCH_SIZE", 100, 1, 1000)?;
        let default_prefetch = (batch_size * 2).min(u16::MAX as usize);
        let workers = env.number("EPIX_WORKERS", 4, 1, 64)?;

        let database_role = lookup("EPIX_DATABASE_ROLE").filter(|role| !role.is_empty());
        if let Some(role) = &database_role
            && !role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::Invalid {
                name: "EPIX_DATABASE_ROLE",
                value: role.clone(),
                expected: "a role name of lowercase letters, digits and underscores, such as epix_hub_app",
            });
        }

        let migration_database_url = env
            .secret("EPIX_MIGRATION_DATABASE_URL")?
            .unwrap_or_else(|| database_url.clone());
        check_scheme(
            "EPIX_MIGRATION_DATABASE_URL",
            &migration_database_url,
            &["postgres://", "postgresql://"],
        )?;
        let retention_database_url = env.secret("EPIX_RETENTION_DATABASE_URL")?;
        if let Some(url) = &retention_database_url {
            check_scheme(
                "EPIX_RETENTION_DATABASE_URL",
                url,
                &["postgres://", "postgresql://"],
            )?;
        }

        Ok(Self {
            migration_database_url,
            retention_database_url,
            database_role,
            audit_archive_dir: lookup("EPIX_AUDIT_ARCHIVE_DIR")
                .filter(|dir| !dir.is_empty())
                .map(std::path::PathBuf::from),
            require_signatures: match env.text("EPIX_REQUIRE_SIGNATURES", "true").as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        name: "EPIX_REQUIRE_SIGNATURES",
                        value: other.to_owned(),
                        expected: "true or false",
                    });
                }
            },
            jwt_signing_key: env.secret("EPIX_JWT_SIGNING_KEY")?,
            jwt_additional_keys: env.secret("EPIX_JWT_ADDITIONAL_KEYS")?,
            jwt_issuer: env.text("EPIX_JWT_ISSUER", &public_hub_url),
            jwt_audience: env.text("EPIX_JWT_AUDIENCE", "epix-hub"),
            token_ttl: Duration::from_secs(
                env.number("EPIX_TOKEN_TTL_SECONDS", 900, 60, 86_400)? as u64
            ),
            login_max_failures: env.number("EPIX_LOGIN_MAX_FAILURES", 5, 1, 100)? as u32,
            login_lockout: Duration::from_secs(env.number(
                "EPIX_LOGIN_LOCKOUT_SECONDS",
                900,
                1,
                86_400,
            )? as u64),
            public_amqp_url: env.text("EPIX_PUBLIC_AMQP_URL", &amqp_url),
            database_url,
            amqp_url,
            public_hub_url,
            http_bind,
            management_url: env.text("EPIX_BROKER_MANAGEMENT_URL", "http://127.0.0.1:15672"),
            management_user: env.text("EPIX_BROKER_MANAGEMENT_USER", "guest"),
            management_password: env
                .secret("EPIX_BROKER_MANAGEMENT_PASSWORD")?
                .unwrap_or_else(|| "guest".to_owned()),
            party_user_prefix: env.text("EPIX_PARTY_USER_PREFIX", "party-"),
            workers,
            batch_size,
            prefetch: env.number("EPIX_PREFETCH", default_prefetch, 1, u16::MAX as usize)? as u16,
            delivery_limit: env.number("EPIX_DELIVERY_LIMIT", 10, 1, 1000)? as u32,
            db_pool_size: env.number("EPIX_DB_POOL_SIZE", workers + 6, 2, 500)?,
            outbox_grace: Duration::from_millis(env.number(
                "EPIX_OUTBOX_GRACE_MS",
                5000,
                0,
                3_600_000,
            )? as u64),
            outbox_sweep_interval: Duration::from_millis(env.number(
                "EPIX_OUTBOX_SWEEP_MS",
                1000,
                10,
                3_600_000,
            )? as u64),
            log_json: match env.text("EPIX_LOG_FORMAT", "text").as_str() {
                "json" => true,
                "text" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        name: "EPIX_LOG_FORMAT",
                        value: other.to_owned(),
                        expected: "json or text",
                    });
                }
            },
        })
    }

    /// The broker virtual host named by `AMQP_URL` (`/` when the URL names none).
    pub fn vhost(&self) -> String {
        vhost_of(&self.amqp_url)
    }
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn text(&self, name: &'static str, default: &str) -> String {
        (self.lookup)(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    fn secret(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let direct = (self.lookup)(name).filter(|v| !v.is_empty());
        let file_var = format!("{name}_FILE");
        let file = (self.lookup)(&file_var).filter(|v| !v.is_empty());
        match (direct, file) {
            (Some(_), Some(_)) => Err(ConfigError::Ambiguous { name }),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|source| ConfigError::File { name, path, source }),
            (None, None) => Ok(None),
        }
    }

    fn number(
        &self,
        name: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        let Some(text) = (self.lookup)(name).filter(|v| !v.is_empty()) else {
            return Ok(default);
        };
        match text.parse::<usize>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(ConfigError::Invalid {
                name,
                value: text,
                expected: "a whole number within the documented range",
            }),
        }
    }
}

fn check_scheme(name: &'static str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        name,
        value: redact_url(url),
        expected: if name.ends_with("DATABASE_URL") {
            "a URL starting with postgres:// or postgresql://"
        } else {
            "a URL starting with amqp:// or amqps://"
        },
    })
}

/// Returns `url` with any password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The virtual host of an AMQP URL, percent-decoded; `/` when the path is empty.
pub fn vhost_of(amqp_url: &str) -> String {
    let after_scheme = amqp_url
        .split_once("://")
        .map_or(amqp_url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() {
        return "/".to_owned();
    }
    percent_decode(path)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn database_url_is_required() {
        let error = config(&[]).expect_err("DATABASE_URL missing");
        assert!(error.to_string().contains("DATABASE_URL"), "{error}");
    }

    #[test]
    fn malformed_number_names_variable() {
        let error = config(&[("DATABASE_URL", "postgres://x/y"), ("EPIX_WORKERS", "many")])
            .expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.contains("EPIX_WORKERS") && text.contains("many"),
            "{text}"
        );
    }

    #[test]
    fn wrong_scheme_is_rejected_without_password() {
        let error =
            config(&[("DATABASE_URL", "mysql://root:secret@h/db")]).expect_err("wrong scheme");
        let text = error.to_string();
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(!text.contains("secret"), "password leaked: {text}");
    }

    #[test]
    fn secret_and_file_both_set_is_ambiguous() {
        let error = config(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("DATABASE_URL_FILE", "/tmp/x"),
        ])
        .expect_err("both");
        assert!(matches!(
            error,
            ConfigError::Ambiguous {
                name: "DATABASE_URL"
            }
        ));
    }

    #[test]
    fn secret_is_read_from_file() {
        let dir = std::env::temp_dir().join(format!("epix-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("db-url");
        std::fs::write(&path, "postgres://u:p@h/db\n").expect("write");
        let path_text = path.to_string_lossy().into_owned();
        let loaded = config(&[("DATABASE_URL_FILE", &path_text)]).expect("valid");
        assert_eq!(loaded.database_url, "postgres://u:p@h/db");
    }

    #[test]
    fn prefetch_defaults_to_twice_batch() {
        let loaded = config(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("EPIX_BATCH_SIZE", "50"),
        ])
        .expect("valid");
        assert_eq!(loaded.prefetch, 100);
    }

    #[test]
    fn redact_hides_password() {
        assert_eq!(
            redact_url("amqp://party-CH:s3cret@host:5672/%2f"),
            "amqp://party-CH:***@host:5672/%2f"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
    }

    #[test]
    fn vhost_is_decoded() {
        assert_eq!(vhost_of("amqp://g:g@h:5672/%2f"), "/");
        assert_eq!(vhost_of("amqp://g:g@h:5672"), "/");
        assert_eq!(vhost_of("amqp://g:g@h:5672/epix-test-1"), "epix-test-1");
    }
}
