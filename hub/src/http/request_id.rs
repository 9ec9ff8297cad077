//! The request id: taken from `X-Request-Id` when the caller sends a usable one, made up
//! otherwise, returned in the response's `X-Request-Id`, and written to audit events.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::audit::RequestMeta;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Maximum length of a request id taken from a caller; a longer one is replaced.
const MAX_REQUEST_ID_CHARS: usize = 128;

#[derive(Debug, Clone)]
struct RequestId(String);

/// Middleware that assigns the request id and echoes it in the response.
pub async fn assign(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let given = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|text| is_usable(text))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.call(request).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Accepts visible ASCII without spaces, so that a request id cannot forge log lines.
fn is_usable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_REQUEST_ID_CHARS
        && text.bytes().all(|byte| byte.is_ascii_graphic())
}

/// Returns the request id and client address of the current request.
pub fn meta_of(request: &HttpRequest) -> RequestMeta {
    RequestMeta {
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone()),
        client_address: request.peer_addr().map(|peer| peer.ip().to_string()),
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(meta_of(request)))
    }
}
