//! What an operator sees of the function besides its results: JSON logs,
//! the registry call counter and the HTTP `/metrics` endpoint Prometheus
//! scrapes. The gRPC request metrics are the server's
//! ([`crate::server::GrpcMetrics`]).

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::server::ServeError;

type Result<T, E = ServeError> = std::result::Result<T, E>;

/// Installs the process-wide JSON logger on stderr. `RUST_LOG`, when set,
/// wins over `debug`, so an operator can still narrow or widen any target.
pub fn init_logging(debug: bool) -> Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => {
            EnvFilter::try_new(&directives).map_err(|source| ServeError::LogFilter {
                directives: directives.clone(),
                source,
            })?
        }
        // Debug is for this crate only: h2 and hyper at debug drown the
        // composition story in frame-level noise.
        Err(_) if debug => EnvFilter::new("info,function_ecr_packages=debug"),
        Err(_) => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| ServeError::Logger(e.to_string()))
}

/// Calls to ECR (API operations and blob reads) by `operation`, summed over
/// every registry client, so an unchanged XR costing AWS calls shows here.
pub fn registry_calls(registry: &Registry) -> Result<IntCounterVec> {
    let calls = IntCounterVec::new(
        Opts::new(
            "function_ecr_registry_calls_total",
            "Calls to the ECR API and registry by operation (ListImages, BatchGetImage, GetAuthorizationToken, GetBlob, BlobRedirect).",
        ),
        &["operation"],
    )
    .map_err(ServeError::Metrics)?;
    registry
        .register(Box::new(calls.clone()))
        .map_err(ServeError::Metrics)?;
    Ok(calls)
}

/// Serves `registry` at `/metrics` over HTTP/1 until the task is dropped.
pub async fn serve_metrics(registry: Registry, listener: TcpListener) {
    match listener.local_addr() {
        Ok(address) => tracing::info!(address = %address, "serving metrics at /metrics"),
        Err(e) => tracing::warn!(error = %e, "reading the metrics listener's address"),
    }
    let registry = Arc::new(registry);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually out of file descriptors; pause rather than spin.
                tracing::warn!(error = %e, "accepting a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(metrics_response(&registry, &request)) }
            });
            // A timer makes hyper enforce its header read timeout, so an idle
            // scraper cannot hold a connection forever.
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

fn metrics_response(registry: &Registry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec());
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"use GET\n".to_vec(),
        );
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => reply(StatusCode::OK, encoder.format_type(), body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("encoding metrics: {e}\n").into_bytes(),
        ),
    }
}
