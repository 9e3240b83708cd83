//! `stancemap serve`: an embeddings server that speaks the OpenAI API
//! (`POST /v1/embeddings`, `GET /v1/models`, `GET /health`) on tokio + axum.
//!
//! Requests are tokenized on arrival, queued for one encoder thread
//! ([`batcher`]) that embeds whatever queued while it was busy (waiting up to
//! `max_wait` for more, 0 by default) as one batch, and answered in order. A full
//! queue is answered `503` with `Retry-After`; nothing accepted is dropped, unless
//! its client goes away first (then it is not embedded). `GET /metrics` serves
//! Prometheus metrics ([`metrics`]). SIGTERM or Ctrl-C stops accepting connections
//! and finishes the requests in flight, waiting at most the shutdown grace for them
//! (an idle keep-alive connection cannot hold the process).
//!
//! A client must send a request's headers within the header timeout (an idle
//! keep-alive connection is closed after it too) and its body within the body
//! timeout (else `408`), so slow or stalled clients cannot hold connections. Each
//! request has an id (the client's `X-Request-Id` when it is a short token, else a
//! counter), sent back in `X-Request-Id` and named in the request's log event.

pub mod api;
pub mod batcher;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;

use crate::embed::Embedder;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::observer::{Event, Observer};
use api::ApiError;
use batcher::{BatchOptions, Batcher};
use metrics::Metrics;

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub batch: BatchOptions,
    /// Most texts in one request (more: 413).
    pub max_inputs: usize,
    /// Largest request body in bytes (more: 413).
    pub max_body_bytes: usize,
    /// Most tokens in one input and in one request (more: 413).
    pub max_input_tokens: usize,
    pub max_request_tokens: usize,
    /// After SIGTERM, how long requests in flight may take before the server stops.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers (or, on an idle
    /// keep-alive connection, to start the next request) before it is closed.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (more: 408).
    pub body_timeout: Duration,
}

struct AppState {
    embedder: Arc<Embedder>,
    batcher: Batcher,
    max_inputs: usize,
    max_body_bytes: usize,
    max_input_tokens: usize,
    max_request_tokens: usize,
    body_timeout: Duration,
    metrics: Arc<Metrics>,
    observer: Arc<dyn Observer>,
    requests: AtomicU64,
}

/// Serves on `listener` until SIGTERM or Ctrl-C, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: &Engine,
    options: ServeOptions,
) -> Result<()> {
    let embedder = engine.embedder().clone();
    let observer = engine.observer().clone();
    let metrics = Arc::new(Metrics::default());
    let state = Arc::new(AppState {
        batcher: Batcher::start(embedder.clone(), options.batch, metrics.clone()),
        metrics,
        embedder,
        max_inputs: options.max_inputs,
        max_body_bytes: options.max_body_bytes,
        max_input_tokens: options.max_input_tokens,
        max_request_tokens: options.max_request_tokens,
        body_timeout: options.body_timeout,
        observer: observer.clone(),
        requests: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    let connections = GracefulShutdown::new();
    let stop = shutdown_signal(observer);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(app.clone());
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    tokio::spawn(connections.watch(connection));
                }
                // Out of file descriptors and the like: pass, and let a connection close.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            () = &mut stop => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {},
        () = tokio::time::sleep(options.shutdown_grace) => {},
    }
    Ok(())
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.metrics.render(),
    )
        .into_response()
}

/// Binds `addr` (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Serve(format!("cannot listen on {addr}: {e}")))
}

async fn shutdown_signal(observer: Arc<dyn Observer>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    observer.event(&Event::ShuttingDown);
}

async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": state.embedder.model_id(), "object": "model", "owned_by": "stancemap"}],
    }))
}

async fn embeddings(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = request_id(&state, &request);
    let (status, tokens, mut response) = match embed_request(&state, request).await {
        Ok(body) => (200, body.prompt_tokens(), Json(body).into_response()),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = (status, Json(e.body())).into_response();
            if e.status == 503 {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            (e.status, 0, response)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.record(status, tokens, seconds);
    if let Ok(value) = header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    state.observer.event(&Event::Served {
        request_id,
        status,
        tokens,
        seconds,
    });
    response
}

/// The header that carries a request's id, both ways.
const REQUEST_ID: &str = "x-request-id";

/// The client's `X-Request-Id` when it is a token of at most 64 characters
/// (letters, digits, `-_.:`), else the next number of this server's counter.
fn request_id(state: &AppState, request: &Request) -> String {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(id) => id.to_string(),
        None => (state.requests.fetch_add(1, Ordering::Relaxed) + 1).to_string(),
    }
}

/// Reads a body of at most `limit` bytes within `timeout`: a larger declared
/// `Content-Length` is refused before any of it is read, a larger chunked body once
/// it passes the limit, a body still arriving at the timeout with `408`.
async fn read_body(
    request: Request,
    limit: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || ApiError {
        status: 413,
        message: format!("the request body is larger than {limit} bytes"),
        param: None,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(request.into_body(), limit);
    match tokio::time::timeout(timeout, read).await {
        Ok(body) => body.map_err(|_| too_large()),
        Err(_) => Err(ApiError {
            status: 408,
            message: format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
            param: None,
        }),
    }
}

async fn embed_request(
    state: &AppState,
    request: Request,
) -> Result<api::EmbeddingResponse, ApiError> {
    let body = read_body(request, state.max_body_bytes, state.body_timeout).await?;
    let request = api::parse_request(&body, state.max_inputs)?;
    api::check_dimensions(&request, state.embedder.dim())?;
    // Tokenizing thousands of texts takes a while: off the async workers.
    let (embedder, inputs, role) = (state.embedder.clone(), request.inputs, request.role);
    let ids = tokio::task::spawn_blocking(move || {
        let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
        embedder.token_ids(&texts, role)
    })
    .await
    .map_err(|e| server_error(e.to_string()))?
    .map_err(|e| server_error(e.to_string()))?;
    let tokens = api::check_tokens(&ids, state.max_input_tokens, state.max_request_tokens)?;
    let answer = state.batcher.submit(ids).map_err(|_| ApiError {
        status: 503,
        message: "the server is at capacity; retry after a second".into(),
        param: None,
    })?;
    let rows = answer
        .await
        .map_err(|_| server_error("the encoder stopped".into()))?
        .map_err(server_error)?;
    Ok(api::response(
        state.embedder.model_id(),
        &rows,
        request.base64,
        tokens,
    ))
}

fn server_error(message: String) -> ApiError {
    ApiError {
        status: 500,
        message,
        param: None,
    }
}
