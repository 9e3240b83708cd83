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

pub mod api;
pub mod batcher;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
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
}

struct AppState {
    embedder: Arc<Embedder>,
    batcher: Batcher,
    max_inputs: usize,
    max_body_bytes: usize,
    max_input_tokens: usize,
    max_request_tokens: usize,
    metrics: Arc<Metrics>,
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
    });
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let told = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal(observer).await;
        told.notify_one();
    });
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(options.shutdown_grace).await;
    };
    tokio::select! {
        stopped = server => stopped.map_err(|e| Error::Serve(format!("the server stopped: {e}"))),
        () = deadline => Ok(()),
    }
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
    let seconds = || started.elapsed().as_secs_f64();
    match embed_request(&state, request).await {
        Ok(body) => {
            state.metrics.record(200, body.prompt_tokens(), seconds());
            Json(body).into_response()
        }
        Err(e) => {
            state.metrics.record(e.status, 0, seconds());
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = (status, Json(e.body())).into_response();
            if e.status == 503 {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// Reads a body of at most `limit` bytes: a larger declared `Content-Length` is
/// refused before any of it is read, a larger chunked body once it passes the limit.
async fn read_body(request: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
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
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| too_large())
}

async fn embed_request(
    state: &AppState,
    request: Request,
) -> Result<api::EmbeddingResponse, ApiError> {
    let body = read_body(request, state.max_body_bytes).await?;
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
