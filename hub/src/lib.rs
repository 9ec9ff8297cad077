//! EPIX Hub: receives permits from Parties' spokes over AMQP, checks and stores them,
//! delivers them to the addressed Party, returns receipts, and answers customs lookups.

pub mod amqp;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod parties;
pub mod register;
pub mod router;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpServer, web};
use epix_shared::PartyCode;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_actix_web::AppExt;

pub use config::Config;

/// State shared by the router, the sweeper and the HTTP handlers.
pub struct HubContext {
    pub config: Config,
    pub pool: db::DbPool,
    /// Connections of the schema owner's login, for the monthly audit partitions.
    pub maintenance_pool: db::DbPool,
    /// Connections of the retention job's own login, when one is configured.
    pub retention_pool: Option<db::DbPool>,
    pub parties: parties::PartyDirectory,
    pub token_keys: auth::TokenKeys,
    pub clock: Arc<dyn auth::Clock>,
    pub login_limiter: auth::limiter::FailureLimiter,
    pub register: register::Register,
    /// This hub's metrics, in a registry of its own.
    pub metrics: metrics::Metrics,
    broker_ready: AtomicBool,
}

impl HubContext {
    pub fn broker_ready(&self) -> bool {
        self.broker_ready.load(Ordering::Relaxed)
    }

    pub fn set_broker_ready(&self, ready: bool) {
        self.broker_ready.store(ready, Ordering::Relaxed);
    }

    /// Returns the connections the retention job deletes with: its own login's, or the hub's.
    pub fn retention_connections(&self) -> &db::DbPool {
        self.retention_pool.as_ref().unwrap_or(&self.pool)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error(transparent)]
    Connect(#[from] amqp::ConnectError),
    #[error("cannot declare the broker topology: {0}")]
    Topology(#[from] lapin::Error),
    #[error("cannot read the party list: {0}")]
    Parties(#[from] parties::PartyError),
    #[error(transparent)]
    TokenKeys(#[from] auth::keys::KeyError),
    #[error("cannot prepare the audit trail: {0}")]
    Audit(String),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The hub's state without its workers and server, for admin commands.
pub struct AdminContext {
    context: Arc<HubContext>,
}

impl AdminContext {
    /// Migrates the database and opens a small pool.
    pub async fn connect(mut config: Config) -> Result<Self, StartError> {
        db::migrate(&config.migration_database_url).await?;
        config.db_pool_size = 2;
        let context = build_context(config, Arc::new(auth::SystemClock))?;
        Ok(Self { context })
    }

    pub fn context(&self) -> &HubContext {
        &self.context
    }
}

fn build_context(
    config: Config,
    clock: Arc<dyn auth::Clock>,
) -> Result<Arc<HubContext>, StartError> {
    let pool = db::pool_with_role(
        &config.database_url,
        config.db_pool_size,
        config.database_role.as_deref(),
    )?;
    let maintenance_pool = db::pool(&config.migration_database_url, 1)?;
    let retention_pool = config
        .retention_database_url
        .as_deref()
        .map(|url| db::pool(url, 1))
        .transpose()?;
    let token_keys = auth::TokenKeys::new(
        config.jwt_signing_key.as_deref(),
        config.jwt_additional_keys.as_deref(),
        &config.jwt_issuer,
        &config.jwt_audience,
    )?;
    Ok(Arc::new(HubContext {
        token_keys,
        clock,
        login_limiter: auth::limiter::FailureLimiter::default(),
        register: register::Register::default(),
        metrics: metrics::Metrics::new()?,
        parties: parties::PartyDirectory::new(&config.party_user_prefix),
        pool,
        maintenance_pool,
        retention_pool,
        config,
        broker_ready: AtomicBool::new(false),
    }))
}

/// A running hub: its HTTP server, submission workers and outbox sweeper.
pub struct Hub {
    context: Arc<HubContext>,
    http_address: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    server: actix_web::dev::ServerHandle,
}

impl Hub {
    /// Migrates the database, declares the broker topology, and starts every part.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with_clock(config, Arc::new(auth::SystemClock)).await
    }

    /// Starts the hub with another clock for login lockouts, for tests.
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn auth::Clock>,
    ) -> Result<Self, StartError> {
        let applied = db::migrate(&config.migration_database_url).await?;
        if applied > 0 {
            tracing::info!(migrations = applied, "database migrated");
        }
        if config.jwt_signing_key.is_none() {
            tracing::warn!(
                "EPIX_JWT_SIGNING_KEY is not set: tokens are signed with a key generated now, which other replicas do not know and a restart discards"
            );
        }
        let context = build_context(config, clock)?;
        audit::prepare(&context.maintenance_pool, context.clock.now())
            .await
            .map_err(|error| StartError::Audit(error.to_string()))?;
        declare_topology(&context).await?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for index in 0..context.config.workers {
            tasks.spawn(router::run_worker(context.clone(), index, shutdown.clone()));
        }
        tasks.spawn(router::run_dead_letter_worker(
            context.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(router::run_sweeper(context.clone(), shutdown.clone()));
        tasks.spawn(metrics::run_sampler(
            context.clone(),
            context.config.outbox_sweep_interval,
            shutdown.clone(),
        ));
        tasks.spawn(audit::retention::run_daily(
            context.clone(),
            shutdown.clone(),
        ));

        let (server, http_address) = start_http(context.clone())?;
        let handle = server.handle();
        tasks.spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "HTTP server stopped with an error");
            }
        });
        tracing::info!(http.address = %http_address, workers = context.config.workers, "hub started");
        Ok(Self {
            context,
            http_address,
            shutdown,
            tasks,
            server: handle,
        })
    }

    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    pub fn context(&self) -> &Arc<HubContext> {
        &self.context
    }

    /// Stops consuming, lets the current batches finish, and stops the HTTP server.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        self.server.stop(true).await;
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("hub stopped");
    }
}

async fn declare_topology(context: &HubContext) -> Result<(), StartError> {
    let connection = amqp::connect(&context.config.amqp_url, "epix-hub setup").await?;
    let channel = connection.create_channel().await?;
    amqp::declare_hub_topology(&channel, context.config.delivery_limit).await?;
    for party in parties::list(&context.pool).await? {
        if let Ok(code) = party.code.parse::<PartyCode>() {
            amqp::declare_party_queues(&channel, code).await?;
        }
    }
    connection.close(200, "setup done".into()).await?;
    Ok(())
}

fn start_http(
    context: Arc<HubContext>,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let address = context.config.http_bind.clone();
    let bind_error = |source| StartError::Bind {
        address: address.clone(),
        source,
    };
    let data = web::Data::new(context);
    let allowed_methods = web::Data::new(http::AllowedMethods::from_openapi(&http::openapi()));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(http::request_id::assign))
            .wrap(actix_web::middleware::from_fn(http::metrics::observe))
            .app_data(data.clone())
            .app_data(allowed_methods.clone())
            .app_data(http::path_config())
            .app_data(http::query_config())
            .app_data(http::json_config())
            .app_data(http::form_config())
            .into_utoipa_app()
            .configure(http::configure)
            .into_app()
            .default_service(web::to(http::unrouted))
    })
    .disable_signals()
    .shutdown_timeout(5)
    .bind(&address)
    .map_err(bind_error)?;
    let bound = server.addrs().first().copied().ok_or_else(|| {
        bind_error(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no address bound",
        ))
    })?;
    Ok((server.run(), bound))
}
