//! Prometheus metrics, served in the text exposition format at `GET /metrics`.
//!
//! Each [`HubContext`] owns its own [`Registry`], so several hubs in one process (as in the
//! tests) never share or double-register a metric. Label values are resolved when the hub
//! starts, so the router's hot path only adds to atomic counters. `docs/operations.md`
//! lists every metric.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use epix_shared::envelope::MessageType;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio_util::sync::CancellationToken;

use crate::HubContext;
use crate::outbox::PublishReport;

/// Label value of a consumed message whose AMQP `type` is missing or unknown.
const UNKNOWN_TYPE: &str = "unknown";

/// Number of `type` label values of consumed messages: every [`MessageType`] and
/// [`UNKNOWN_TYPE`].
const CONSUMED_TYPES: usize = MessageType::ALL.len() + 1;

/// Maximum wait for the database when sampling the outbox and the audit chain.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Outcome of one consumed message in the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A permit document stored and queued for delivery.
    Accepted,
    /// Rejected with problems. An authenticated sender gets a rejection receipt.
    Rejected,
    /// An addressee's acknowledgement, recorded.
    Recorded,
    /// A redelivery or a second copy of a message already recorded, which changed nothing.
    Duplicate,
    /// Taken from the dead-letter queue and recorded as rejected.
    DeadLettered,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Self::Accepted,
        Self::Rejected,
        Self::Recorded,
        Self::Duplicate,
        Self::DeadLettered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Recorded => "recorded",
            Self::Duplicate => "duplicate",
            Self::DeadLettered => "dead_lettered",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts of consumed messages by type and outcome, kept on the stack while a batch is
/// stored and added to the counters once its transaction commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumedTally {
    counts: [[u64; Outcome::ALL.len()]; CONSUMED_TYPES],
}

impl ConsumedTally {
    /// Counts one message. `message_type` is the AMQP `type` as received.
    pub fn add(&mut self, message_type: Option<&str>, outcome: Outcome) {
        self.counts[type_index(message_type)][outcome.index()] += 1;
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &ConsumedTally) {
        for (row, other_row) in self.counts.iter_mut().zip(&other.counts) {
            for (count, other_count) in row.iter_mut().zip(other_row) {
                *count += other_count;
            }
        }
    }

    /// Returns the count of one type and outcome. `None` is the unknown type.
    pub fn get(&self, message_type: Option<MessageType>, outcome: Outcome) -> u64 {
        let index = message_type.map_or(MessageType::ALL.len(), |kind| {
            type_index(Some(kind.as_str()))
        });
        self.counts[index][outcome.index()]
    }
}

/// Index of a message type in the label table, without allocating.
fn type_index(message_type: Option<&str>) -> usize {
    message_type
        .and_then(|text| {
            MessageType::ALL
                .iter()
                .position(|kind| kind.as_str() == text)
        })
        .unwrap_or(MessageType::ALL.len())
}

/// The counters of one component that publishes outbox rows.
#[derive(Debug, Clone)]
pub struct PublishCounters {
    published: IntCounter,
    returned: IntCounter,
    nacked: IntCounter,
}

impl PublishCounters {
    fn new(family: &IntCounterVec, publisher: &str) -> Self {
        Self {
            published: family.with_label_values(&[publisher, "published"]),
            returned: family.with_label_values(&[publisher, "returned"]),
            nacked: family.with_label_values(&[publisher, "nacked"]),
        }
    }

    /// Counts the broker's confirms, returns and nacks of one publication.
    pub fn record(&self, report: &PublishReport) {
        self.published.inc_by(report.sent.len() as u64);
        self.returned.inc_by(report.returned.len() as u64);
        self.nacked.inc_by(report.nacked.len() as u64);
    }
}

/// The outbox counters, one set for each component that publishes.
#[derive(Debug, Clone)]
pub struct OutboxCounters {
    /// Rows published by a submission worker right after its batch commits.
    pub router: PublishCounters,
    /// Rows the sweeper republished after the grace period.
    pub sweeper: PublishCounters,
    /// Register broadcasts published right after they commit.
    pub broadcaster: PublishCounters,
}

/// Every metric of one hub, registered in the hub's own registry.
pub struct Metrics {
    registry: Registry,
    consumed: [[IntCounter; Outcome::ALL.len()]; CONSUMED_TYPES],
    batch_size: Histogram,
    batch_duration: Histogram,
    pub outbox: OutboxCounters,
    outbox_pending: IntGauge,
    register_broadcasts: IntCounterVec,
    audit_head_sequence: IntGauge,
    http_duration: HistogramVec,
    database_pool: IntGaugeVec,
    broker_connected: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot register the metric: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates and registers every metric in a new registry.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();

        let consumed_family = IntCounterVec::new(
            Opts::new(
                "epix_router_messages_total",
                "Messages the router consumed and acknowledged, by AMQP type and outcome",
            ),
            &["type", "outcome"],
        )?;
        registry.register(Box::new(consumed_family.clone()))?;
        let consumed = std::array::from_fn(|type_index| {
            let message_type = MessageType::ALL
                .get(type_index)
                .map_or(UNKNOWN_TYPE, |kind| kind.as_str());
            Outcome::ALL
                .map(|outcome| consumed_family.with_label_values(&[message_type, outcome.as_str()]))
        });

        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "epix_router_batch_size",
                "Deliveries in one batch transaction of the router",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
            ]),
        )?;
        registry.register(Box::new(batch_size.clone()))?;
        let batch_duration = Histogram::with_opts(
            HistogramOpts::new(
                "epix_router_batch_duration_seconds",
                "Time from taking a batch's first delivery to acknowledging the batch",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        registry.register(Box::new(batch_duration.clone()))?;

        let outbox_family = IntCounterVec::new(
            Opts::new(
                "epix_outbox_messages_total",
                "Outbox rows published with confirms, by publisher and the broker's answer",
            ),
            &["publisher", "result"],
        )?;
        registry.register(Box::new(outbox_family.clone()))?;
        let outbox = OutboxCounters {
            router: PublishCounters::new(&outbox_family, "router"),
            sweeper: PublishCounters::new(&outbox_family, "sweeper"),
            broadcaster: PublishCounters::new(&outbox_family, "broadcaster"),
        };
        let outbox_pending = IntGauge::new(
            "epix_outbox_pending",
            "Outbox rows neither sent nor failed, as last sampled from the database",
        )?;
        registry.register(Box::new(outbox_pending.clone()))?;

        let register_broadcasts = IntCounterVec::new(
            Opts::new(
                "epix_register_broadcasts_total",
                "Register changes and user revocations written to every inbox, by message type",
            ),
            &["type"],
        )?;
        registry.register(Box::new(register_broadcasts.clone()))?;
        for kind in [
            MessageType::RegisterSignatoryChanged,
            MessageType::RegisterUserRevoked,
        ] {
            register_broadcasts.with_label_values(&[kind.as_str()]);
        }
        let audit_head_sequence = IntGauge::new(
            "epix_audit_head_sequence",
            "Sequence number of the newest audit event, which counts every event ever appended, as last sampled from the database",
        )?;
        registry.register(Box::new(audit_head_sequence.clone()))?;

        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "epix_http_request_duration_seconds",
                "HTTP requests by method, matched route pattern and status class, with their duration",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status_class"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;

        let database_pool = IntGaugeVec::new(
            Opts::new(
                "epix_database_pool_connections",
                "Connections of the hub's database pool: max (the configured size), open, idle, and requests waiting for one",
            ),
            &["state"],
        )?;
        registry.register(Box::new(database_pool.clone()))?;
        let broker_connected = IntGauge::new(
            "epix_broker_connected",
            "1 while the outbox sweeper holds a working broker connection, 0 otherwise",
        )?;
        registry.register(Box::new(broker_connected.clone()))?;

        Ok(Self {
            registry,
            consumed,
            batch_size,
            batch_duration,
            outbox,
            outbox_pending,
            register_broadcasts,
            audit_head_sequence,
            http_duration,
            database_pool,
            broker_connected,
        })
    }

    /// Records one acknowledged batch: its size, duration and the outcome of each message.
    pub fn record_batch(&self, deliveries: usize, duration: Duration, tally: &ConsumedTally) {
        self.batch_size.observe(deliveries as f64);
        self.batch_duration.observe(duration.as_secs_f64());
        for (counters, counts) in self.consumed.iter().zip(&tally.counts) {
            for (counter, count) in counters.iter().zip(counts) {
                if *count > 0 {
                    counter.inc_by(*count);
                }
            }
        }
    }

    /// Counts register broadcasts once their outbox rows have committed.
    pub fn record_broadcast(&self, message_type: MessageType, changes: usize) {
        if changes > 0 {
            self.register_broadcasts
                .with_label_values(&[message_type.as_str()])
                .inc_by(changes as u64);
        }
    }

    /// Records one HTTP request. `route` is the matched pattern, never the raw path.
    pub fn record_http(&self, method: &str, route: &str, status: u16, duration: Duration) {
        self.http_duration
            .with_label_values(&[method, route, status_class(status)])
            .observe(duration.as_secs_f64());
    }

    /// Encodes every metric in the text exposition format, after reading the values that
    /// are cheap to read at scrape time: the pool's state and the broker connection.
    pub fn render(&self, context: &HubContext) -> Result<String, prometheus::Error> {
        let status = context.pool.status();
        for (state, value) in [
            ("max", status.max_size),
            ("open", status.size),
            ("idle", status.available),
            ("waiting", status.waiting),
        ] {
            self.database_pool
                .with_label_values(&[state])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.broker_connected.set(i64::from(context.broker_ready()));
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

/// Label value of a status code's class, such as `4xx`.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Label value of an HTTP method. Methods outside the standard set share `other`, so a
/// caller cannot add label values at will.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(diesel::QueryableByName)]
struct Sample {
    #[diesel(sql_type = BigInt)]
    outbox_pending: i64,
    #[diesel(sql_type = BigInt)]
    audit_head_sequence: i64,
}

/// Samples the database-backed gauges every `interval` until `shutdown`. It runs apart
/// from the sweeper, so the pending count keeps moving while the broker is down.
pub async fn run_sampler(
    context: Arc<HubContext>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut failures: u64 = 0;
    loop {
        match tokio::time::timeout(SAMPLE_TIMEOUT, sample(&context)).await {
            Ok(Ok(sample)) => {
                context.metrics.outbox_pending.set(sample.outbox_pending);
                context
                    .metrics
                    .audit_head_sequence
                    .set(sample.audit_head_sequence);
                failures = 0;
            }
            Ok(Err(error)) => {
                failures += 1;
                // Logged on the first failure and then every 60th, so an outage cannot
                // flood the log.
                if failures % 60 == 1 {
                    tracing::warn!(%error, failures, "failed to sample the outbox and audit gauges, which keep their last values");
                }
            }
            Err(_) => {
                failures += 1;
                if failures % 60 == 1 {
                    tracing::warn!(
                        failures,
                        timeout_ms = SAMPLE_TIMEOUT.as_millis() as u64,
                        "sampling the outbox and audit gauges timed out, so they keep their last values"
                    );
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

async fn sample(context: &HubContext) -> Result<Sample, String> {
    let mut connection = context
        .pool
        .get()
        .await
        .map_err(|error| error.to_string())?;
    // The count reads the partial index `outbox_pending`, which contains only unsent rows.
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL) AS outbox_pending, \
                (SELECT seq FROM audit_head) AS audit_head_sequence",
    )
    .get_result(&mut connection)
    .await
    .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_unknown_types_apart() {
        let mut tally = ConsumedTally::default();
        tally.add(Some("permit.issued"), Outcome::Accepted);
        tally.add(Some("permit.issued"), Outcome::Accepted);
        tally.add(Some("no.such.type"), Outcome::Rejected);
        tally.add(None, Outcome::Rejected);
        assert_eq!(
            tally.get(Some(MessageType::PermitIssued), Outcome::Accepted),
            2
        );
        assert_eq!(tally.get(None, Outcome::Rejected), 2);
        assert_eq!(
            tally.get(Some(MessageType::PermitIssued), Outcome::Rejected),
            0
        );
    }

    #[test]
    fn registries_of_two_hubs_are_separate() {
        let first = Metrics::new().expect("first registry");
        let second = Metrics::new().expect("second registry");
        let mut tally = ConsumedTally::default();
        tally.add(Some("receipt.acknowledged"), Outcome::Recorded);
        first.record_batch(1, Duration::from_millis(3), &tally);
        let first_text = TextEncoder::new()
            .encode_to_string(&first.registry.gather())
            .expect("encodes");
        let second_text = TextEncoder::new()
            .encode_to_string(&second.registry.gather())
            .expect("encodes");
        let line =
            "epix_router_messages_total{outcome=\"recorded\",type=\"receipt.acknowledged\"} 1";
        assert!(first_text.contains(line), "{first_text}");
        assert!(!second_text.contains(line), "{second_text}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(405), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
