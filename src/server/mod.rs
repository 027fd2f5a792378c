//! The gRPC server Crossplane calls: RunFunction in both protocol versions,
//! plus health and reflection for the humans and probes around it.

mod error;
mod limits;
mod metrics;

use std::{fs, future::Future, path::Path, sync::Arc, time::Duration};

use rustls::{
    crypto::aws_lc_rs,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};
use tonic::{
    Code, Request, Response, Status,
    server::NamedService,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tower::util::MapResponseLayer;

pub use self::error::ServeError;
pub use self::limits::Limits;
use self::limits::{CallLimitLayer, limit_connections};
pub use self::metrics::{GrpcMetrics, GrpcMetricsLayer, GrpcMetricsService, MeteredBody};

use crate::{
    function::Function,
    proto::{self, v1, v1beta1},
};

type RunnerV1 = v1::function_runner_service_server::FunctionRunnerServiceServer<Runner>;
type RunnerV1beta1 = v1beta1::function_runner_service_server::FunctionRunnerServiceServer<Runner>;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the server talks to its callers.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain HTTP/2, for local development with `crossplane render`.
    Insecure,
    /// TLS, and callers must present a certificate signed by the given CA,
    /// as Crossplane does.
    MutualTls(ServerTlsConfig),
}

impl Security {
    /// Loads `tls.crt`, `tls.key` and `ca.crt` from `dir`, the layout
    /// Crossplane mounts into function pods. Problems surface here, naming
    /// the file, rather than as a handshake failure at the first call.
    pub fn mutual_tls(dir: &Path) -> Result<Self, ServeError> {
        let read = |name: &str| {
            let path = dir.join(name).display().to_string();
            match fs::read(&path) {
                Ok(pem) => Ok((path, pem)),
                Err(source) => Err(ServeError::ReadFile { path, source }),
            }
        };
        let (cert_path, cert) = read("tls.crt")?;
        let (key_path, key) = read("tls.key")?;
        let (ca_path, ca) = read("ca.crt")?;

        let chain = certificates(&cert_path, &cert)?;
        certificates(&ca_path, &ca)?;
        // Accepts PKCS#1 (`RSA PRIVATE KEY`, what Crossplane writes), PKCS#8
        // and SEC1, and proves aws-lc can sign with the key for this chain.
        let parsed =
            PrivateKeyDer::from_pem_slice(&key).map_err(|source| ServeError::PrivateKey {
                path: key_path.clone(),
                source,
            })?;
        CertifiedKey::from_der(chain, parsed, &aws_lc_rs::default_provider()).map_err(
            |source| ServeError::KeyMismatch {
                key: key_path,
                certificate: cert_path,
                source,
            },
        )?;

        Ok(Self::MutualTls(
            ServerTlsConfig::new()
                .identity(Identity::from_pem(cert, key))
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(false)
                // A peer that opens a connection and never finishes the
                // handshake must not hold it forever.
                .timeout(TLS_HANDSHAKE_TIMEOUT),
        ))
    }
}

fn certificates(path: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::Certificates {
            path: path.to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(ServeError::NoCertificate {
            path: path.to_string(),
        });
    }
    Ok(chain)
}

/// Everything the server needs besides its listener and the function.
#[derive(Debug, Clone)]
pub struct Config {
    pub security: Security,
    /// Largest request accepted, in bytes. Larger ones get
    /// RESOURCE_EXHAUSTED.
    pub max_recv_message_bytes: usize,
    /// How much the server takes on at once.
    pub limits: Limits,
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

    // Every RPC served, and so every label value the request metrics can
    // take besides "unknown".
    let methods: [(&'static str, &'static [&'static str]); 5] = [
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

    let limits = config.limits;
    let mut server = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .initial_stream_window_size(Limits::STREAM_WINDOW)
        .initial_connection_window_size(limits.connection_window())
        .http2_keepalive_interval(limits.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout));
    let tls = match config.security {
        Security::Insecure => false,
        Security::MutualTls(tls) => {
            // Other dependencies may enable other rustls providers; without
            // a process default rustls would refuse to pick one. An error
            // only means a default is already installed.
            let _ = aws_lc_rs::default_provider().install_default();
            server = server.tls_config(tls).map_err(ServeError::Tls)?;
            true
        }
    };

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
        .layer(metrics.layer(&methods))
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

/// Both protocol versions' handlers, around one shared function.
struct Runner {
    function: Arc<Function>,
}

#[tonic::async_trait]
impl v1::function_runner_service_server::FunctionRunnerService for Runner {
    async fn run_function(
        &self,
        request: Request<v1::RunFunctionRequest>,
    ) -> Result<Response<v1::RunFunctionResponse>, Status> {
        Ok(Response::new(
            self.function.compose(request.into_inner()).await,
        ))
    }
}

#[tonic::async_trait]
impl v1beta1::function_runner_service_server::FunctionRunnerService for Runner {
    async fn run_function(
        &self,
        request: Request<v1beta1::RunFunctionRequest>,
    ) -> Result<Response<v1beta1::RunFunctionResponse>, Status> {
        let request = recode(&request.into_inner(), "v1beta1 request as v1")?;
        let response = self.function.compose(request).await;
        Ok(Response::new(recode(&response, "v1 response as v1beta1")?))
    }
}

/// v1beta1 and v1 differ only in their package name, so one's encoding is
/// the other's; going through bytes keeps fields added to the protocol
/// later from being dropped by a hand-written copy.
fn recode<T: prost::Message + Default>(
    message: &impl prost::Message,
    what: &str,
) -> Result<T, Status> {
    T::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("re-encoding the {what}: {e}")))
}
