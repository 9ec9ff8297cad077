//! The HTTP API: routes, OpenAPI document and error handling.

pub mod audit;
pub mod auth;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod permits;
pub mod problem;
pub mod request_id;
pub mod revocations;
pub mod signatories;
pub mod trust_list;
pub mod users;

use std::collections::HashMap;

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
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Login and the token keys"),
        (name = "users", description = "User administration"),
        (name = "signatories", description = "The register of empowered signatories"),
        (name = "permits", description = "Permit lookup for customs"),
        (name = "messages", description = "Status and receipts of submitted messages"),
        (name = "audit", description = "The tamper-evident audit trail, annual-report dates and legal holds"),
        (name = "operations", description = "Health probes and metrics")
    )
)]
struct ApiDoc;

/// Declares the bearer-token scheme that protected operations name.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = document.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An ES256 token from POST /v1/auth/token, valid 15 minutes by default.",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Registers every route; used by the server and by [`openapi`], so the document cannot
/// miss a route.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(metrics::metrics)
        .service(auth::jwks)
        .service(
            scope("/v1")
                .service(auth::issue_token)
                .service(users::create_user)
                .service(users::list_users)
                .service(users::remove_user)
                .service(users::unlock_user)
                .service(users::create_client)
                .service(signatories::create_signatory)
                .service(signatories::list_signatories)
                .service(signatories::signatory_history)
                .service(signatories::approve_signatory)
                .service(signatories::remove_signatory)
                .service(revocations::list_revocations)
                .service(trust_list::trust_list)
                .service(trust_list::trust_list_changes)
                .service(audit::list_events)
                .service(audit::verify_chain)
                .service(audit::put_annual_report)
                // Before the permit lookup, whose `{number:.*}` would take the suffix.
                .service(audit::find_permit_timeline)
                .service(audit::permit_timeline)
                .service(audit::place_hold)
                .service(audit::lift_hold)
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

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|error, _| ApiError::bad_request(format!("body: {error}")).into())
}

pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|error, _| ApiError::bad_request(format!("form: {error}")).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|error, _| ApiError::bad_request(format!("query: {error}")).into())
}

/// Returns a problem+json 405 with an `Allow` header when the path matches a route that
/// takes other methods, and a problem+json 404 when no route matches the path.
pub async fn unrouted(request: HttpRequest, allowed: web::Data<AllowedMethods>) -> HttpResponse {
    // Outside a matched resource, actix matches the path alone against every pattern.
    let allow = request
        .match_pattern()
        .and_then(|pattern| allowed.for_pattern(&pattern));
    let error = match allow {
        Some(allow) => ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            path: request.path().to_owned(),
            allow: allow.to_owned(),
        },
        None => ApiError::NotFound(format!(
            "no route for {} {}",
            request.method(),
            request.path()
        )),
    };
    error.error_response()
}

/// The methods of each route, as `Allow` header values keyed by the route's OpenAPI path.
/// They come from the OpenAPI document, which [`configure`] builds from the same routes.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    by_path: HashMap<String, String>,
}

impl AllowedMethods {
    pub fn from_openapi(document: &utoipa::openapi::OpenApi) -> Self {
        let by_path = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods: Vec<&str> = [
                    ("GET", &item.get),
                    ("HEAD", &item.head),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                    ("OPTIONS", &item.options),
                ]
                .into_iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| method)
                .collect();
                (path.clone(), methods.join(", "))
            })
            .collect();
        Self { by_path }
    }

    /// Returns the `Allow` value of an actix route pattern such as
    /// `/v1/permits/{country}/{number:.*}`, or `None` for a pattern with no route.
    ///
    /// NOTE: actix reports only the first pattern that matches a path, so where patterns
    /// overlap (a permit number may contain `/`), methods of a later pattern that would
    /// also match are left out.
    pub fn for_pattern(&self, pattern: &str) -> Option<&str> {
        self.by_path
            .get(&openapi_path(pattern))
            .map(String::as_str)
            .filter(|allow| !allow.is_empty())
    }
}

/// Converts an actix route pattern to its OpenAPI path by dropping each parameter's
/// regular expression: `{number:.*}` becomes `{number}`.
fn openapi_path(pattern: &str) -> String {
    let mut path = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut in_regex = false;
    for character in pattern.chars() {
        match character {
            '{' => {
                depth += 1;
                if depth == 1 {
                    path.push(character);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                    path.push(character);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if in_regex || depth > 1 => {}
            _ => path.push(character),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_path_drops_parameter_regex() {
        assert_eq!(
            openapi_path("/v1/permits/{country}/{number:.*}/hold"),
            "/v1/permits/{country}/{number}/hold"
        );
        assert_eq!(openapi_path("/v1/users"), "/v1/users");
        assert_eq!(openapi_path("/a/{id:\\d{3}}/b"), "/a/{id}/b");
    }

    #[test]
    fn allowed_methods_of_routes() {
        let allowed = AllowedMethods::from_openapi(&openapi());
        assert_eq!(allowed.for_pattern("/v1/users"), Some("GET, POST"));
        assert_eq!(
            allowed.for_pattern("/v1/permits/{country}/{number:.*}/hold"),
            Some("POST, DELETE")
        );
        assert_eq!(allowed.for_pattern("/metrics"), Some("GET"));
        assert_eq!(allowed.for_pattern("/v1/nothing"), None);
    }
}
