//! The gRPC server Crossplane calls: RunFunction in both protocol versions,
//! plus health and reflection for the humans and probes around it.
//!
//! * `runner`: the RunFunction handlers.
//! * `codec`: how their messages are read and written ([`codec::ProtoCodec`]).
//! * `tls`: the mutual TLS Crossplane speaks ([`Security`]).
//! * `limits`: how much callers can make the server hold ([`ServerLimits`]).
//! * `metrics`: the go-grpc-prometheus request metrics ([`GrpcMetrics`]).
//! * `error`: why it cannot serve ([`ServeError`]).

pub mod codec;
mod error;
mod limits;
mod metrics;
mod runner;
mod tls;

use std::{future::Future, sync::Arc};

use rustls::crypto::aws_lc_rs;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};
use tonic::{
    Code, Status,
    server::NamedService,
    transport::{Server, server::TcpIncoming},
};
use tower::util::MapResponseLayer;

pub use self::error::ServeError;
pub use self::limits::ServerLimits;
use self::limits::{CallLimitLayer, limit_connections};
pub use self::metrics::{GrpcMetrics, GrpcMetricsLayer, GrpcMetricsService, MeteredBody};
use self::runner::{Runner, RunnerV1, RunnerV1beta1};
pub use self::tls::Security;

use crate::{function::Function, proto};

/// Everything the server needs besides its listener and the function.
#[derive(Debug, Clone)]
pub struct Config {
    pub security: Security,
    /// Largest request accepted, in bytes. Larger ones get
    /// RESOURCE_EXHAUSTED.
    pub max_recv_message_bytes: usize,
    /// How much the server takes on at once.
    pub limits: ServerLimits,
}

/// Resolves once the process receives SIGTERM or SIGINT. Installing the
/// handlers is done here, before serving, so a failure stops start-up.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    let install = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|source| ServeError::Signal { name, source })
    };
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "shutting down: no new calls, finishing calls in flight"
        );
    })
}

/// Serves RunFunction on `listener` until `shutdown` resolves, then waits
/// for calls in flight to finish.
pub async fn serve(
    config: Config,
    function: Arc<Function>,
    metrics: GrpcMetrics,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let address = listener.local_addr().map_err(ServeError::ListenerAddress)?;

    let runner = Arc::new(Runner { function });
    let limit = config.max_recv_message_bytes;
    let v1 = RunnerV1::from_arc(runner.clone()).max_decoding_message_size(limit);
    let v1beta1 = RunnerV1beta1::from_arc(runner).max_decoding_message_size(limit);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RunnerV1>().await;
    health.set_serving::<RunnerV1beta1>().await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = ServeError::Reflection;
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;

    let limits = config.limits;
    let (server, tls) = transport(&limits, config.security)?;

    // Keepalive on the listener: tonic ignores its own TCP settings for an
    // incoming stream it did not bind.
    let incoming = limit_connections(
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(limits.tcp_keepalive),
        limits.max_connections,
    );
    tracing::info!(
        address = %address,
        tls,
        max_recv_message_bytes = limit,
        max_concurrent_calls = limits.max_concurrent_calls,
        max_concurrent_reads = limits.max_concurrent_reads,
        max_streams_per_connection = limits.max_streams_per_connection,
        max_connections = limits.max_connections,
        "serving RunFunction"
    );
    let drained = async move {
        shutdown.await;
        health.set_not_serving::<RunnerV1>().await;
        health.set_not_serving::<RunnerV1beta1>().await;
    };
    // Metrics wrap the rewrite and the call limit below, so they count the
    // code callers see, refusals included.
    server
        .layer(metrics.layer(&SERVED))
        .layer(MapResponseLayer::new(oversized_is_resource_exhausted))
        .layer(CallLimitLayer::new(
            &limits,
            &[RunnerV1::NAME, RunnerV1beta1::NAME],
        ))
        .add_service(v1)
        .add_service(v1beta1)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, drained)
        .await
        .map_err(|source| ServeError::Serve { address, source })?;
    tracing::info!(address = %address, "stopped serving");
    Ok(())
}

/// Every RPC served, and so every label value the request metrics can
/// take besides "unknown".
const SERVED: [(&str, &[&str]); 5] = [
    (RunnerV1::NAME, &["RunFunction"]),
    (RunnerV1beta1::NAME, &["RunFunction"]),
    (
        tonic_health::pb::health_server::SERVICE_NAME,
        &["Check", "Watch"],
    ),
    (
        tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
        &["ServerReflectionInfo"],
    ),
    (
        tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
        &["ServerReflectionInfo"],
    ),
];

/// The HTTP/2 server `limits` ask for, with TLS when `security` asks for
/// it; the flag says which.
fn transport(limits: &ServerLimits, security: Security) -> Result<(Server, bool), ServeError> {
    let server = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .initial_stream_window_size(ServerLimits::STREAM_WINDOW)
        .initial_connection_window_size(limits.connection_window())
        .http2_keepalive_interval(limits.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout));
    match security {
        Security::Insecure => Ok((server, false)),
        Security::MutualTls(tls) => {
            // Other dependencies may enable other rustls providers; without
            // a process default rustls would refuse to pick one. An error
            // only means a default is already installed.
            let _ = aws_lc_rs::default_provider().install_default();
            Ok((server.tls_config(tls).map_err(ServeError::Tls)?, true))
        }
    }
}

/// tonic answers a request over `max_decoding_message_size` with
/// OUT_OF_RANGE; the gRPC spec, grpc-go and so Crossplane expect
/// RESOURCE_EXHAUSTED, which tells the caller the size, not a field, is wrong.
/// That refusal is a trailers-only response, so headers are all there is to
/// look at.
fn oversized_is_resource_exhausted<B: Default>(response: http::Response<B>) -> http::Response<B> {
    match Status::from_header_map(response.headers()) {
        Some(status)
            if status.code() == Code::OutOfRange
                && status.message().starts_with(TONIC_TOO_LARGE) =>
        {
            Status::resource_exhausted(status.message()).into_http()
        }
        _ => response,
    }
}

/// How tonic's decoder words the refusal; the end-to-end tests notice if a
/// tonic upgrade changes it.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
