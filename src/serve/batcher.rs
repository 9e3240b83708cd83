//! One worker thread owns the encoder; requests queue for it and are embedded
//! together, so many small concurrent requests share one packed forward pass.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::embed::Embedder;

/// The default gathering wait: none. A request that finds the encoder idle runs at
/// once; those that arrive while it is busy form the next batch. Measured with
/// `bench --against` over HTTP (q8, 200 passages, 4 per request): a short query
/// alone 5.1 ms against 10.9 ms with a 5 ms wait, and tokens/s at 16 clients 2,694
/// against 2,655.
pub const DEFAULT_MAX_WAIT_MS: u64 = 0;

/// How requests are gathered into one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Stop gathering once this many tokens are waiting.
    pub max_batch_tokens: usize,
    /// Longest a request waits for others to join it (0: it takes only those
    /// already queued).
    pub max_wait: Duration,
    /// Requests that may wait in the queue; beyond it the server answers 503.
    pub queue: usize,
}

/// What a request gets back: its rows, or why the encoder failed.
pub type Reply = Result<Array2<f32>, String>;

struct Job {
    ids: Vec<Vec<u32>>,
    reply: oneshot::Sender<Reply>,
}

/// The queue is full: try again later.
#[derive(Debug)]
pub struct Overloaded;

/// A handle to the worker; the worker stops when the last handle is dropped and
/// the queue is drained.
#[derive(Clone)]
pub struct Batcher {
    queue: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

impl Batcher {
    /// Starts the worker thread, which keeps its figures in `metrics`.
    pub fn start(embedder: Arc<Embedder>, options: BatchOptions, metrics: Arc<Metrics>) -> Batcher {
        let (queue, jobs) = sync_channel(options.queue.max(1));
        let worker_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("stancemap-encoder".into())
            .spawn(move || work(&embedder, &jobs, options, &worker_metrics))
            .expect("spawn the encoder thread");
        Batcher { queue, metrics }
    }

    /// Queues token sequences; the receiver yields their embeddings in order.
    pub fn submit(&self, ids: Vec<Vec<u32>>) -> Result<oneshot::Receiver<Reply>, Overloaded> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { ids, reply }) {
            Ok(()) => {
                self.metrics.queue_depth.inc();
                Ok(answer)
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Overloaded),
        }
    }
}

fn work(embedder: &Embedder, jobs: &Receiver<Job>, options: BatchOptions, metrics: &Metrics) {
    let tokens = |job: &Job| job.ids.iter().map(Vec::len).sum::<usize>();
    while let Ok(first) = jobs.recv() {
        let deadline = Instant::now() + options.max_wait;
        let mut waiting = tokens(&first);
        let mut batch = vec![first];
        while waiting < options.max_batch_tokens {
            match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => {
                    waiting += tokens(&job);
                    batch.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        metrics.queue_depth.dec_by(batch.len() as i64);
        // A client that went away (its request future dropped) wants nothing: its
        // job is not embedded.
        batch.retain(|job| {
            let gone = job.reply.is_closed();
            if gone {
                metrics.dropped.inc();
            }
            !gone
        });
        if batch.is_empty() {
            continue;
        }
        let counts: Vec<usize> = batch.iter().map(|j| j.ids.len()).collect();
        metrics
            .batch_sequences
            .observe(counts.iter().sum::<usize>() as f64);
        let (ids, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.ids, j.reply)).unzip();
        match embedder.embed_token_ids(ids.into_iter().flatten().collect(), &mut |_, _| {}) {
            Ok(all) => {
                let mut start = 0;
                for (reply, n) in replies.into_iter().zip(counts) {
                    let rows = all.slice(ndarray::s![start..start + n, ..]).to_owned();
                    start += n;
                    // A client that went away no longer wants its rows.
                    let _ = reply.send(Ok(rows));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}
