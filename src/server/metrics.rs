//! The gRPC server's request metrics, as a tower layer around every
//! service it serves.
//!
//! Metric names and label values follow go-grpc-prometheus, which is what
//! Crossplane's Go functions export, so existing dashboards work unchanged.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tonic::Code;
use tower_layer::Layer;
use tower_service::Service;

use super::error::ServeError;

type Result<T, E = ServeError> = std::result::Result<T, E>;

/// Labels for calls whose path names no service we serve, so a client
/// probing random paths cannot grow the label set without bound.
const UNKNOWN: &str = "unknown";

/// The gRPC server's request metrics.
#[derive(Clone)]
pub struct GrpcMetrics {
    started: IntCounterVec,
    handled: IntCounterVec,
    handling: HistogramVec,
    in_flight: IntGaugeVec,
}

impl GrpcMetrics {
    /// Creates the metrics and registers them with `registry`.
    pub fn register(registry: &Registry) -> Result<Self> {
        let method_labels = &["grpc_service", "grpc_method"];
        let code_labels = &["grpc_service", "grpc_method", "grpc_code"];
        let metrics = Self {
            started: IntCounterVec::new(
                Opts::new(
                    "grpc_server_started_total",
                    "Total number of RPCs started on the server.",
                ),
                method_labels,
            )
            .map_err(ServeError::Metrics)?,
            handled: IntCounterVec::new(
                Opts::new(
                    "grpc_server_handled_total",
                    "Total number of RPCs completed on the server, regardless of success or failure.",
                ),
                code_labels,
            )
            .map_err(ServeError::Metrics)?,
            // Resolving a package graph against ECR takes seconds when cold,
            // so the buckets reach well past the default 10s.
            handling: HistogramVec::new(
                HistogramOpts::new(
                    "grpc_server_handling_seconds",
                    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
                code_labels,
            )
            .map_err(ServeError::Metrics)?,
            in_flight: IntGaugeVec::new(
                Opts::new(
                    "grpc_server_in_flight",
                    "Number of RPCs currently being handled by the server.",
                ),
                method_labels,
            )
            .map_err(ServeError::Metrics)?,
        };
        registry
            .register(Box::new(metrics.started.clone()))
            .and_then(|()| registry.register(Box::new(metrics.handled.clone())))
            .and_then(|()| registry.register(Box::new(metrics.handling.clone())))
            .and_then(|()| registry.register(Box::new(metrics.in_flight.clone())))
            .map_err(ServeError::Metrics)?;
        Ok(metrics)
    }

    /// A tower layer recording every call of a server that serves
    /// `methods`: each service with its methods. Those names are the only
    /// label values a call can produce besides "unknown", whatever path a
    /// client sends, so the label set stays bounded.
    pub fn layer(&self, methods: &[(&'static str, &'static [&'static str])]) -> GrpcMetricsLayer {
        GrpcMetricsLayer {
            metrics: self.clone(),
            methods: methods.into(),
        }
    }
}

/// See [`GrpcMetrics::layer`].
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
    methods: Arc<[(&'static str, &'static [&'static str])]>,
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`GrpcMetrics::layer`].
#[derive(Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = split_path(request.uri().path(), &self.layer.methods);
        let mut call = Call::start(self.layer.metrics.clone(), service, method);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // Trailers-only responses (every error tonic raises before the
            // handler runs) carry the status in the headers.
            call.code = grpc_status(response.headers());
            Ok(response.map(|body| MeteredBody {
                inner: body,
                call: Some(call),
            }))
        })
    }
}

/// Splits `/package.Service/Method` into label values taken from
/// `methods`, never from the request: a path naming anything else is
/// "unknown" for both.
fn split_path(
    path: &str,
    methods: &[(&'static str, &'static [&'static str])],
) -> (&'static str, &'static str) {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(service, method)| {
            let (service, served) = methods.iter().find(|(known, _)| *known == service)?;
            let method = served.iter().find(|known| **known == method)?;
            Some((*service, *method))
        })
        .unwrap_or((UNKNOWN, UNKNOWN))
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// One call being measured, from its headers until its body ends or is
/// dropped, whichever comes first.
struct Call {
    metrics: GrpcMetrics,
    service: &'static str,
    method: &'static str,
    started: Instant,
    code: Option<Code>,
    finished: bool,
}

impl Call {
    fn start(metrics: GrpcMetrics, service: &'static str, method: &'static str) -> Self {
        let labels = [service, method];
        metrics.started.with_label_values(&labels).inc();
        metrics.in_flight.with_label_values(&labels).inc();
        Self {
            metrics,
            service,
            method,
            started: Instant::now(),
            code: None,
            finished: false,
        }
    }

    fn finish(&mut self, code: Code) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        let method = self.method;
        let labels = [self.service, method, code_name(code)];
        self.metrics.handled.with_label_values(&labels).inc();
        self.metrics
            .handling
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        self.metrics
            .in_flight
            .with_label_values(&[self.service, method])
            .dec();
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Dropped before any status: the client went away, or the inner
        // service failed, and no status was sent.
        let code = self.code.unwrap_or(Code::Cancelled);
        self.finish(code);
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call's status when its trailers
    /// pass by.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(call) = this.call.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                        call.code = Some(code);
                        call.finish(code);
                    }
                }
                Some(Err(_)) => call.finish(Code::Internal),
                None => call.finish(call.code.unwrap_or(Code::Unknown)),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The names go-grpc-prometheus gives codes.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: &[(&str, &[&str])] = &[
        (
            "apiextensions.fn.proto.v1.FunctionRunnerService",
            &["RunFunction"],
        ),
        ("grpc.health.v1.Health", &["Check", "Watch"]),
    ];

    #[test]
    fn served_paths_keep_service_and_method() {
        assert_eq!(
            split_path(
                "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction",
                SERVED
            ),
            (SERVED[0].0, "RunFunction")
        );
        assert_eq!(
            split_path("/grpc.health.v1.Health/Watch", SERVED),
            ("grpc.health.v1.Health", "Watch")
        );
    }

    #[test]
    fn other_paths_share_one_label_set() {
        let unknown = (UNKNOWN, UNKNOWN);
        for path in [
            "/",
            "",
            "/random.Service/RunFunction",
            "/apiextensions.fn.proto.v1.FunctionRunnerService/",
            "/apiextensions.fn.proto.v1.FunctionRunnerService/Run-Function",
            "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction/extra",
            // Plausible method names on a served service are not enough.
            "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction2",
            "/apiextensions.fn.proto.v1.FunctionRunnerService/runfunction",
            "/grpc.health.v1.Health/RunFunction",
            "/grpc.health.v1.Health/List",
        ] {
            assert_eq!(split_path(path, SERVED), unknown, "{path:?}");
        }
        let long = format!("/{}/{}", SERVED[0].0, "M".repeat(65));
        assert_eq!(split_path(&long, SERVED), unknown);
    }

    #[test]
    fn label_values_come_from_the_served_table_only() {
        // Whatever the path, a name not served is "unknown": thousands of
        // distinct paths make one label set.
        for i in 0..2000 {
            let path = match i % 4 {
                0 => format!("/bogus{i}.Service/Method{i}"),
                1 => format!("/{}/Method{i}", SERVED[0].0),
                2 => format!("/grpc.health.v1.Health/Check{i}"),
                _ => format!("/{i}"),
            };
            assert_eq!(split_path(&path, SERVED), (UNKNOWN, UNKNOWN), "{path}");
        }
    }

    #[test]
    fn status_comes_from_grpc_status() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        assert_eq!(grpc_status(&headers), Some(Code::ResourceExhausted));
        assert_eq!(code_name(Code::ResourceExhausted), "ResourceExhausted");
    }
}
