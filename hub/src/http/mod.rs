//! The HTTP API: routes, OpenAPI document and error handling.

pub mod health;
pub mod messages;
pub mod permits;
pub mod problem;

use actix_web::{App, HttpRequest, HttpResponse, ResponseError, web};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};

use problem::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "EPIX Hub API",
        description = "Customs lookup of CITES permits exchanged through EPIX Hub, message status, and operations probes. Errors are application/problem+json with a stable code."
    ),
    tags(
        (name = "permits", description = "Permit lookup for customs"),
        (name = "messages", description = "Status and receipts of submitted messages"),
        (name = "operations", description = "Health probes")
    )
)]
struct ApiDoc;

/// Registers every route; used by the server and by [`openapi`], so the document cannot
/// miss a route.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(
            scope("/v1")
                .service(permits::find_permit)
                .service(permits::get_permit)
                .service(messages::get_message),
        );
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    // The permit's JSON form travels over AMQP, not HTTP, but API users need its schema;
    // it is generated from the model in epix_shared and committed beside this document.
    let components = document.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Permit".to_owned(),
        utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::new("permit.schema.json")),
    );
    document
}

/// Turns extractor failures into problem+json responses that name the parameter.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|error, _| ApiError::bad_request(format!("path: {error}")).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|error, _| ApiError::bad_request(format!("query: {error}")).into())
}

/// Answers unknown routes with a problem+json 404.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    ))
    .error_response()
}
