//! End-to-end tests: a real hub, real spokes, real PostgreSQL and RabbitMQ.

mod openapi;
mod recovery;
mod rejection;
mod routing;
mod support;
