//! Errors of the HTTP API, sent as `application/problem+json` (RFC 9457) with a stable code.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use epix_shared::{ErrorCode, Problem};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem details document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// A URI naming the problem type; `about:blank` where the status says it all.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code; callers branch on this, not on `detail`.
    pub code: ErrorCode,
    /// Individual problems, for a request with several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// A path that exists, requested with a method it does not take. The response lists
    /// the allowed methods in `Allow`.
    #[error("method {method} is not allowed on {path}; allowed: {allow}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: String,
    },
    #[error("{detail}")]
    BadRequest {
        detail: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Missing or invalid credentials; answered with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    /// A login with wrong credentials; the text never says which part was wrong.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed attempts: retry after {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: i64 },
    #[error("{0}")]
    Conflict(String),
    /// The text is logged, never sent: the client sees a generic message.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            problems: Vec::new(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::BadRequest { .. } => ErrorCode::BadRequest,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::NotFound("not found".to_owned()),
            other => Self::Internal(format!("database query failed: {other}")),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(format!("database unavailable: {error}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(message) => {
                tracing::error!(error.message = %message, "request failed");
                "the hub failed to process the request; the error is logged".to_owned()
            }
            Self::Unavailable(message) => {
                tracing::warn!(error.message = %message, "request failed: dependency unavailable");
                "the hub's database is unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let problems = match self {
            Self::BadRequest { problems, .. } => problems.clone(),
            _ => Vec::new(),
        };
        let body = ProblemDetails {
            problem_type: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: self.code(),
            problems,
        };
        let mut response = HttpResponse::build(status);
        response.insert_header(ContentType(problem_json()));
        match self {
            Self::Unauthorized(_) | Self::InvalidCredentials => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
            }
            Self::TooManyRequests {
                retry_after_seconds,
            } => {
                response.insert_header(("Retry-After", retry_after_seconds.max(&1).to_string()));
            }
            _ => {}
        }
        response.json(body)
    }
}

fn problem_json() -> mime::Mime {
    "application/problem+json"
        .parse()
        .unwrap_or(mime::APPLICATION_JSON)
}
