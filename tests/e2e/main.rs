//! End-to-end tests: a real hub, real spokes, real PostgreSQL and RabbitMQ.

mod audit;
mod auth;
mod documents;
mod metrics;
mod openapi;
mod recovery;
mod rejection;
mod roles;
mod routing;
mod signatures;
mod support;
mod trust;
