//! The server's Prometheus metrics (`GET /metrics`, OpenMetrics text): requests
//! and tokens by status, the queue's depth, sequences per batch, request latency,
//! and requests dropped because their client went away.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The HTTP status a request was answered with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<Status, Counter>,
    tokens: Family<Status, Counter>,
    latency: Histogram,
    /// Requests waiting for the encoder.
    pub(super) queue_depth: Gauge,
    /// Sequences per forward pass.
    pub(super) batch_sequences: Histogram,
    /// Queued requests whose client went away before the encoder reached them.
    pub(super) dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            requests: Family::default(),
            tokens: Family::default(),
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            queue_depth: Gauge::default(),
            batch_sequences: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            dropped: Counter::default(),
        };
        {
            let mut r = metrics.registry.lock().expect("a new lock");
            r.register(
                "stancemap_requests",
                "Embedding requests by HTTP status",
                metrics.requests.clone(),
            );
            r.register(
                "stancemap_tokens",
                "Tokens of embedding requests by HTTP status",
                metrics.tokens.clone(),
            );
            r.register(
                "stancemap_request_duration_seconds",
                "Time from a request's arrival to its answer",
                metrics.latency.clone(),
            );
            r.register(
                "stancemap_queue_depth",
                "Requests waiting for the encoder",
                metrics.queue_depth.clone(),
            );
            r.register(
                "stancemap_batch_sequences",
                "Sequences per forward pass",
                metrics.batch_sequences.clone(),
            );
            r.register(
                "stancemap_dropped_requests",
                "Queued requests whose client went away before they were embedded",
                metrics.dropped.clone(),
            );
        }
        metrics
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, status: u16, tokens: usize, seconds: f64) {
        let label = Status {
            status: status.to_string(),
        };
        self.requests.get_or_create(&label).inc();
        self.tokens.get_or_create(&label).inc_by(tokens as u64);
        self.latency.observe(seconds);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}
