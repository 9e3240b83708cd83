//! `stancemap serve`: the OpenAI-compatible embeddings server.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use stancemap::serve::{self, batcher::BatchOptions, ServeOptions};

use super::args::EngineArgs;

/// Serve embeddings over HTTP with the OpenAI API (POST /v1/embeddings,
/// GET /v1/models, GET /health) until SIGTERM or Ctrl-C.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Stop gathering requests into a batch at this many tokens.
    #[arg(long, default_value_t = 8192)]
    max_batch_tokens: usize,
    /// Longest a request waits for others to share its batch, in milliseconds;
    /// 0: a batch is whatever queued while the encoder was busy.
    #[arg(long, default_value_t = serve::batcher::DEFAULT_MAX_WAIT_MS)]
    max_wait_ms: u64,
    /// Requests that may wait for the encoder; beyond it: 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Most texts in one request (more: 413).
    #[arg(long, default_value_t = 2048)]
    max_inputs: usize,
    /// Largest request body in MiB (more: 413).
    #[arg(long, default_value_t = 16)]
    max_body_mib: usize,
    /// Most tokens in one input (more: 413); longer texts are embedded in windows
    /// of 510 tokens, so this bounds how long one input holds the encoder.
    #[arg(long, default_value_t = 8192)]
    max_input_tokens: usize,
    /// Most tokens in one request, all inputs together (more: 413).
    #[arg(long, default_value_t = 65536)]
    max_request_tokens: usize,
    /// After SIGTERM or Ctrl-C, seconds the requests in flight may take before the
    /// server stops anyway.
    #[arg(long, default_value_t = 30.0)]
    shutdown_grace_s: f64,
    /// Seconds a client may take to send a request's headers (or to start the
    /// next request on an idle keep-alive connection) before it is disconnected.
    #[arg(long, default_value_t = 10.0)]
    header_timeout_s: f64,
    /// Seconds a client may take to send a request's body (more: 408).
    #[arg(long, default_value_t = 30.0)]
    body_timeout_s: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let shutdown_grace = seconds("--shutdown-grace-s", args.shutdown_grace_s, 0.0)?;
    let header_timeout = seconds("--header-timeout-s", args.header_timeout_s, 0.001)?;
    let body_timeout = seconds("--body-timeout-s", args.body_timeout_s, 0.001)?;
    let engine = args.engine.builder_as_published().build()?;
    let options = ServeOptions {
        batch: BatchOptions {
            max_batch_tokens: args.max_batch_tokens,
            max_wait: Duration::from_millis(args.max_wait_ms),
            queue: args.queue,
        },
        max_inputs: args.max_inputs,
        max_body_bytes: args.max_body_mib << 20,
        max_input_tokens: args.max_input_tokens,
        max_request_tokens: args.max_request_tokens,
        shutdown_grace,
        header_timeout,
        body_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = serve::bind(args.addr).await?;
        eprintln!(
            "stancemap: serving {} ({}) on http://{}",
            engine.model_id(),
            engine.precision(),
            listener.local_addr()?
        );
        serve::serve(listener, &engine, options).await?;
        Ok(())
    })
}

/// A flag's seconds as a duration, refused unless finite and at least `least`.
fn seconds(flag: &str, value: f64, least: f64) -> Result<Duration> {
    if value.is_finite() && value >= least {
        if let Ok(duration) = Duration::try_from_secs_f64(value) {
            return Ok(duration);
        }
    }
    anyhow::bail!("{flag} must be a number of seconds, at least {least} (got {value})")
}
