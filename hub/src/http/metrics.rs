//! `GET /metrics` and the middleware that measures every HTTP request.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, get, web};

use super::problem::ApiError;
use crate::HubContext;
use crate::metrics::method_label;

/// Route label of a request that matched no route pattern.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Content type of the Prometheus text exposition format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Returns the hub's metrics in the Prometheus text exposition format.
///
/// The endpoint needs no token and shares the API's port, so publish only `/v1` and
/// `/.well-known` to the outside and let Prometheus scrape the hub directly.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Every metric of this hub process, in the Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)
    )
)]
#[get("/metrics")]
pub async fn metrics(context: web::Data<Arc<HubContext>>) -> Result<HttpResponse, ApiError> {
    let text = context
        .metrics
        .render(&context)
        .map_err(|error| ApiError::Internal(format!("cannot encode the metrics: {error}")))?;
    Ok(HttpResponse::Ok().content_type(TEXT_FORMAT).body(text))
}

/// Middleware that records each request's method, matched route pattern, status class
/// and duration. The route is the pattern, such as `/v1/permits/{country}/{number:.*}`,
/// so raw paths never become label values.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let context = request.app_data::<web::Data<Arc<HubContext>>>().cloned();
    let method = method_label(request.method());
    let result = next.call(request).await;
    if let Some(context) = context {
        let (status, route) = match &result {
            Ok(response) => (
                response.status().as_u16(),
                response.request().match_pattern(),
            ),
            Err(error) => (error.as_response_error().status_code().as_u16(), None),
        };
        let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
        context
            .metrics
            .record_http(method, route, status, started.elapsed());
    }
    result
}
