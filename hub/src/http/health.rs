//! Liveness and readiness probes.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use crate::HubContext;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    pub status: String,
    /// Whether PostgreSQL answered a query within two seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
    /// Whether the hub holds a working broker connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<bool>,
}

/// Reports that the process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".to_owned(),
        database: None,
        broker: None,
    })
}

/// Reports whether the database and the broker are reachable.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Database and broker reachable", body = Health),
        (status = 503, description = "The database or the broker is unreachable", body = Health)
    )
)]
#[get("/readyz")]
pub async fn readyz(context: web::Data<Arc<HubContext>>) -> HttpResponse {
    let database = tokio::time::timeout(Duration::from_secs(2), async {
        let mut connection = context.pool.get().await.ok()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut connection)
            .await
            .ok()
    })
    .await
    .ok()
    .flatten()
    .is_some();
    let broker = context.broker_ready();
    let ready = database && broker;
    let body = Health {
        status: if ready { "ok" } else { "unavailable" }.to_owned(),
        database: Some(database),
        broker: Some(broker),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
