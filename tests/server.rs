//! The server as Crossplane sees it: real gRPC over TCP, in-process for the
//! protocol and as the built binary for start-up and shutdown.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use function_ecr_packages::sdk::protobuf::{Struct, Value, value::Kind};
use function_ecr_packages::{
    function::Function,
    proto::{v1, v1beta1},
    server::{self, Config, GrpcMetrics, Security, ServerLimits},
    telemetry,
};
use nix::{sys::signal::Signal, unistd::Pid};
use prost::Message;
use support::policy;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Child,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

mod support;

const MIB: usize = 1024 * 1024;
const V1_SERVICE: &str = "apiextensions.fn.proto.v1.FunctionRunnerService";
const V1BETA1_SERVICE: &str = "apiextensions.fn.proto.v1beta1.FunctionRunnerService";
const BINARY: &str = env!("CARGO_BIN_EXE_function-ecr-packages");

/// A server running in this process on free loopback ports.
struct Harness {
    grpc: SocketAddr,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<Result<(), function_ecr_packages::server::ServeError>>,
}

impl Harness {
    async fn start(max_recv_message_bytes: usize) -> Self {
        Self::serving(Arc::new(Function::new()), max_recv_message_bytes).await
    }

    /// A server running `function`.
    async fn serving(function: Arc<Function>, max_recv_message_bytes: usize) -> Self {
        Self::configured(
            function,
            Config {
                security: Security::Insecure,
                max_recv_message_bytes,
                limits: ServerLimits::default(),
            },
        )
        .await
    }

    /// A server with the default function and `limits`.
    async fn limited(limits: ServerLimits) -> Self {
        Self::configured(
            Arc::new(Function::new()),
            Config {
                security: Security::Insecure,
                max_recv_message_bytes: 4 * MIB,
                limits,
            },
        )
        .await
    }

    async fn configured(function: Arc<Function>, config: Config) -> Self {
        let registry = prometheus::Registry::new();
        let metrics = GrpcMetrics::register(&registry).expect("metrics register");
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_address = metrics_listener.local_addr().expect("address");
        let grpc = grpc_listener.local_addr().expect("address");
        tokio::spawn(telemetry::serve_metrics(registry, metrics_listener));

        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(server::serve(
            config,
            function,
            metrics,
            grpc_listener,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            grpc,
            metrics: metrics_address,
            stop: Some(stop),
            served,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    async fn v1(&self) -> v1::function_runner_service_client::FunctionRunnerServiceClient<Channel> {
        v1::function_runner_service_client::FunctionRunnerServiceClient::new(self.channel().await)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(Duration::from_secs(10), &mut self.served)
            .await
            .expect("server stops");
        served.expect("server task").expect("server result");
    }
}

fn string(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_string())),
    }
}

fn object(fields: &[(&str, Value)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
    }
}

fn resource(kind: &str, name: &str) -> v1::Resource {
    v1::Resource {
        resource: Some(object(&[
            ("apiVersion", string("example.org/v1")),
            ("kind", string(kind)),
            (
                "metadata",
                Value {
                    kind: Some(Kind::StructValue(object(&[("name", string(name))]))),
                },
            ),
        ])),
        connection_details: [("password".to_string(), b"hunter2".to_vec())]
            .into_iter()
            .collect(),
        ready: v1::Ready::True as i32,
    }
}

fn request(tag: &str) -> v1::RunFunctionRequest {
    let state = v1::State {
        composite: Some(resource("XPackages", "platform")),
        resources: [("bucket".to_string(), resource("Bucket", "b"))]
            .into_iter()
            .collect(),
    };
    v1::RunFunctionRequest {
        meta: Some(v1::RequestMeta {
            tag: tag.to_string(),
            ..Default::default()
        }),
        observed: Some(state.clone()),
        desired: Some(state),
        ..Default::default()
    }
}

/// A request whose encoding is at least `bytes` long.
fn request_of_size(tag: &str, bytes: usize) -> v1::RunFunctionRequest {
    let mut request = request(tag);
    request.input = Some(object(&[("padding", string(&"x".repeat(bytes)))]));
    request
}

/// Sends `sent` over v1 and checks the answer; `expect` says why it must
/// succeed.
async fn answered(
    client: &mut v1::function_runner_service_client::FunctionRunnerServiceClient<Channel>,
    sent: v1::RunFunctionRequest,
    expect: &str,
) {
    let response = client
        .run_function(sent.clone())
        .await
        .expect(expect)
        .into_inner();
    assert_answers(&sent, &response);
}

fn assert_answers(request: &v1::RunFunctionRequest, response: &v1::RunFunctionResponse) {
    let meta = response.meta.as_ref().expect("response meta");
    let tag = request.meta.as_ref().map(|m| m.tag.as_str());
    assert_eq!(Some(meta.tag.as_str()), tag, "tag echoed");
    let ttl = meta.ttl.as_ref().expect("ttl set");
    assert!(ttl.seconds > 0 || ttl.nanos > 0, "ttl positive: {ttl:?}");
    assert_eq!(response.desired, request.desired, "desired untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_answers_with_tag_ttl_and_desired_untouched() {
    let harness = Harness::start(4 * MIB).await;
    let mut client = harness.v1().await;
    answered(&mut client, request("v1-tag"), "RunFunction").await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v1beta1_answers_like_v1() {
    let harness = Harness::start(4 * MIB).await;
    let mut client = v1beta1::function_runner_service_client::FunctionRunnerServiceClient::new(
        harness.channel().await,
    );
    let sent = request("beta-tag");
    let sent_beta =
        v1beta1::RunFunctionRequest::decode(sent.encode_to_vec().as_slice()).expect("same wire");
    let response = client
        .run_function(sent_beta)
        .await
        .expect("RunFunction v1beta1")
        .into_inner();
    let response =
        v1::RunFunctionResponse::decode(response.encode_to_vec().as_slice()).expect("same wire");
    assert_answers(&sent, &response);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_both_services_serving() {
    let harness = Harness::start(4 * MIB).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(harness.channel().await);
    for service in ["", V1_SERVICE, V1BETA1_SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_both_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let harness = Harness::start(4 * MIB).await;
    let mut reflection = ServerReflectionClient::new(harness.channel().await);
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(ask))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&V1_SERVICE), "{names:?}");
    assert!(names.contains(&V1BETA1_SERVICE), "{names:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_request_is_resource_exhausted_and_serving_goes_on() {
    let harness = Harness::start(MIB).await;
    let mut client = harness.v1().await;

    answered(
        &mut client,
        request_of_size("allowed", MIB / 2),
        "a request under the limit",
    )
    .await;

    let status = client
        .run_function(request_of_size("too-large", 2 * MIB))
        .await
        .expect_err("a request over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    answered(
        &mut client,
        request("after"),
        "the next call on the same connection",
    )
    .await;
    harness.stop().await;
}

/// Fetches `/metrics` with a bare HTTP/1.0 request.
async fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        .await
        .expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    reply
}

/// The value of the sample of `metric` carrying all of `labels`.
fn sample(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(name, value)| line.contains(&format!("{name}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_calls_by_method_and_code() {
    let harness = Harness::start(MIB).await;
    let mut client = harness.v1().await;
    for tag in ["one", "two"] {
        client
            .run_function(request(tag))
            .await
            .expect("RunFunction");
    }
    let status = client
        .run_function(request_of_size("too-large", 2 * MIB))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let mut beta = v1beta1::function_runner_service_client::FunctionRunnerServiceClient::new(
        harness.channel().await,
    );
    beta.run_function(v1beta1::RunFunctionRequest::default())
        .await
        .expect("RunFunction v1beta1");

    let expected = [
        (V1_SERVICE, "OK", 2.0),
        (V1_SERVICE, "ResourceExhausted", 1.0),
        (V1BETA1_SERVICE, "OK", 1.0),
    ];
    // A call is counted when its response body is done with, which can be a
    // moment after the client has the response.
    let deadline = Instant::now() + Duration::from_secs(5);
    let exposition = loop {
        let exposition = scrape(harness.metrics).await;
        let counted = expected.iter().all(|(service, code, count)| {
            let labels = [
                ("grpc_service", *service),
                ("grpc_method", "RunFunction"),
                ("grpc_code", *code),
            ];
            sample(&exposition, "grpc_server_handled_total", &labels) == Some(*count)
        });
        if counted || Instant::now() > deadline {
            break exposition;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (service, code, count) in expected {
        let labels = [
            ("grpc_service", service),
            ("grpc_method", "RunFunction"),
            ("grpc_code", code),
        ];
        assert_eq!(
            sample(&exposition, "grpc_server_handled_total", &labels),
            Some(count),
            "{service} {code} in\n{exposition}"
        );
        assert_eq!(
            sample(&exposition, "grpc_server_handling_seconds_count", &labels),
            Some(count),
            "{service} {code} latency in\n{exposition}"
        );
    }
    let in_flight = [("grpc_service", V1_SERVICE), ("grpc_method", "RunFunction")];
    assert_eq!(
        sample(&exposition, "grpc_server_in_flight", &in_flight),
        Some(0.0),
        "{exposition}"
    );
    harness.stop().await;
}

#[test]
fn refuses_to_start_without_certificates_or_insecure() {
    let output = std::process::Command::new(BINARY)
        .env_remove("INSECURE")
        .env_remove("TLS_SERVER_CERTS_DIR")
        .args([
            "--address",
            "127.0.0.1:0",
            "--metrics-address",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run the binary");
    assert!(!output.status.success(), "{:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    for way_out in ["--tls-certs-dir", "TLS_SERVER_CERTS_DIR", "--insecure"] {
        assert!(lines[0].contains(way_out), "{way_out} named in {stderr:?}");
    }
}

/// The built binary, serving insecurely on free loopback ports, with its
/// log lines readable as they come.
struct Process {
    child: Child,
    logs: mpsc::UnboundedReceiver<serde_json::Value>,
}

impl Process {
    fn spawn() -> Self {
        let mut child = tokio::process::Command::new(BINARY)
            .args([
                "--insecure",
                "--address",
                "127.0.0.1:0",
                "--metrics-address",
                "127.0.0.1:0",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the binary");
        let stderr = child.stderr.take().expect("stderr piped");
        let (send, logs) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let parsed = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "message": line }));
                if send.send(parsed).is_err() {
                    break;
                }
            }
        });
        Self { child, logs }
    }

    /// Waits for the log line whose message is `message`.
    async fn log(&mut self, message: &str) -> serde_json::Value {
        let wait = async {
            while let Some(line) = self.logs.recv().await {
                if line["message"] == message {
                    return line;
                }
            }
            panic!("the process ended its log without {message:?}");
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no {message:?} log line within 20s"))
    }

    async fn address(&mut self, message: &str) -> SocketAddr {
        let line = self.log(message).await;
        line["address"]
            .as_str()
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("still running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits"));
        nix::sys::signal::kill(pid, signal).expect("signal the process");
    }
}

/// Frames one message the way gRPC does on the wire: uncompressed flag,
/// big-endian length, message.
fn grpc_frame(message: &impl Message) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let length = u32::try_from(encoded.len()).expect("small message");
    let mut frame = vec![0];
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&encoded);
    frame
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_call_in_flight_then_exits_zero() {
    let mut process = Process::spawn();
    let metrics = process.address("serving metrics at /metrics").await;
    let grpc = process.address("serving RunFunction").await;

    // A raw HTTP/2 stream lets the test hold a call open by not yet sending
    // the end of its request.
    let tcp = TcpStream::connect(grpc).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("h2 ready");
    let call = http::Request::post(format!("http://{grpc}/{V1_SERVICE}/RunFunction"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(call, false).expect("open stream");
    let sent = request("in-flight");
    let frame = grpc_frame(&sent);
    let (head, tail) = frame.split_at(frame.len() / 2);
    body.send_data(Bytes::copy_from_slice(head), false)
        .expect("send the first half");

    // The server has the call once it counts it in flight.
    let in_flight = [("grpc_service", V1_SERVICE), ("grpc_method", "RunFunction")];
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&scrape(metrics).await, "grpc_server_in_flight", &in_flight) != Some(1.0) {
        assert!(Instant::now() < deadline, "the call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    process.signal(Signal::SIGTERM);
    process
        .log("shutting down: no new calls, finishing calls in flight")
        .await;
    // Draining must wait for the call rather than exit under it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        process
            .child
            .try_wait()
            .expect("poll the process")
            .is_none(),
        "exited with a call in flight"
    );

    body.send_data(Bytes::copy_from_slice(tail), true)
        .expect("send the second half");
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("response within 10s")
        .expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut received = response.into_body();
    let mut payload = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk.expect("response data");
        let _ = received.flow_control().release_capacity(chunk.len());
        payload.extend_from_slice(&chunk);
    }
    let trailers = received
        .trailers()
        .await
        .expect("trailers")
        .expect("trailers present");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "{trailers:?}"
    );
    assert!(payload.len() > 5, "a framed message: {payload:?}");
    let answer = v1::RunFunctionResponse::decode(&payload[5..]).expect("a RunFunctionResponse");
    assert_answers(&sent, &answer);

    let status = tokio::time::timeout(Duration::from_secs(10), process.child.wait())
        .await
        .expect("exits within 10s of the last call")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Every request the platform's policy refuses gets one Fatal result over
/// the wire naming the XR field and the allowlist, and the function never
/// even opens an ECR client (the call counter has no row).
#[tokio::test(flavor = "multi_thread")]
async fn refusals_over_grpc_name_the_field_and_call_no_aws() {
    use function_ecr_packages::registry::cache::CacheOptions;
    use function_ecr_packages::registry::connector::EcrConnector;
    use function_ecr_packages::registry::ecr::EcrOptions;
    use function_ecr_packages::sdk::structs::json_to_struct;

    // Were a call attempted, it would meet a closed port, not AWS.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let connector = Arc::new(EcrConnector::with_options(
        EcrOptions {
            api_endpoint: Some(closed.clone()),
            registry_endpoint: Some(closed),
            ..EcrOptions::default()
        },
        CacheOptions::default(),
    ));
    let function = Arc::new(Function::with_connector(connector.clone()));
    let harness = Harness::serving(function, 4 * MIB).await;
    let mut client = harness.v1().await;
    for (spec, input, field, allowlist) in policy::refusals() {
        let composite = policy::xr("team-a", spec);
        let request = v1::RunFunctionRequest {
            meta: Some(v1::RequestMeta {
                tag: field.to_string(),
                ..Default::default()
            }),
            observed: Some(v1::State {
                composite: Some(v1::Resource {
                    resource: json_to_struct(&composite),
                    ..Default::default()
                }),
                resources: Default::default(),
            }),
            input: json_to_struct(&input),
            ..Default::default()
        };
        let response = client
            .run_function(request)
            .await
            .expect("RunFunction")
            .into_inner();
        let results: Vec<(i32, &str)> = response
            .results
            .iter()
            .map(|r| (r.severity, r.message.as_str()))
            .collect();
        assert_eq!(results.len(), 1, "{field}: {results:?}");
        assert_eq!(results[0].0, v1::Severity::Fatal as i32, "{field}");
        assert!(
            results[0].1.starts_with(&format!("refused at {field}: "))
                && results[0].1.contains(allowlist),
            "{field}: {}",
            results[0].1
        );
        assert!(
            response
                .desired
                .as_ref()
                .is_none_or(|d| d.resources.is_empty() && d.composite.is_none()),
            "{field}: nothing composed"
        );
    }
    assert!(
        connector.call_counts().await.is_empty(),
        "no ECR client was created, so no AWS call was made"
    );
    harness.stop().await;
}

/// A RunFunction call held open over its own raw HTTP/2 connection: half
/// its request is sent, so the server has started it and cannot finish it.
struct HeldCall {
    response: h2::client::ResponseFuture,
    body: h2::SendStream<Bytes>,
    tail: Bytes,
    sent: v1::RunFunctionRequest,
}

impl HeldCall {
    /// `service` is either protocol version's: their encodings are the same.
    async fn open(grpc: SocketAddr, service: &str, tag: &str) -> Self {
        let tcp = TcpStream::connect(grpc).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(connection);
        let mut client = client.ready().await.expect("h2 ready");
        let call = http::Request::post(format!("http://{grpc}/{service}/RunFunction"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let (response, mut body) = client.send_request(call, false).expect("open stream");
        let sent = request(tag);
        let frame = grpc_frame(&sent);
        let (head, tail) = frame.split_at(frame.len() / 2);
        body.send_data(Bytes::copy_from_slice(head), false)
            .expect("send the first half");
        Self {
            response,
            body,
            tail: Bytes::copy_from_slice(tail),
            sent,
        }
    }

    /// Sends the rest of the request and checks the answer is OK.
    async fn finish(mut self) {
        self.body
            .send_data(self.tail, true)
            .expect("send the second half");
        let response = tokio::time::timeout(Duration::from_secs(20), self.response)
            .await
            .expect("response within 20s")
            .expect("response");
        let (code, payload) = read_grpc(response).await;
        assert_eq!(code.as_deref(), Some("0"), "grpc-status");
        let answer = v1::RunFunctionResponse::decode(&payload[5..]).expect("a RunFunctionResponse");
        assert_answers(&self.sent, &answer);
    }
}

/// The body and grpc-status (from trailers, or the headers of a
/// trailers-only answer) of a raw HTTP/2 gRPC response.
async fn read_grpc(response: http::Response<h2::RecvStream>) -> (Option<String>, Vec<u8>) {
    let text = |value: Option<&http::HeaderValue>| {
        value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let in_headers = text(response.headers().get("grpc-status"));
    let mut received = response.into_body();
    let mut payload = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk.expect("response data");
        let _ = received.flow_control().release_capacity(chunk.len());
        payload.extend_from_slice(&chunk);
    }
    let trailers = received.trailers().await.expect("trailers");
    let code = in_headers.or_else(|| text(trailers.as_ref().and_then(|t| t.get("grpc-status"))));
    (code, payload)
}

/// Waits until the server counts `count` RunFunction calls in flight, both
/// protocol versions together.
async fn wait_in_flight(metrics: SocketAddr, count: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exposition = scrape(metrics).await;
        let in_flight: f64 = [V1_SERVICE, V1BETA1_SERVICE]
            .iter()
            .filter_map(|service| {
                let labels = [("grpc_service", *service), ("grpc_method", "RunFunction")];
                sample(&exposition, "grpc_server_in_flight", &labels)
            })
            .sum();
        if in_flight == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{in_flight} calls in flight, waiting for {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health_status(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map(|response| response.into_inner().status)
}

/// With every RunFunction slot taken, further calls of either protocol
/// version are refused RESOURCE_EXHAUSTED at once, while health and
/// reflection answer, on a new connection and on the refused one; finishing
/// the held calls frees their slots.
#[tokio::test(flavor = "multi_thread")]
async fn busy_slots_shed_run_function_while_health_and_reflection_answer() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let harness = Harness::limited(ServerLimits {
        max_concurrent_calls: 2,
        ..ServerLimits::default()
    })
    .await;
    let first = HeldCall::open(harness.grpc, V1_SERVICE, "held-v1").await;
    let second = HeldCall::open(harness.grpc, V1BETA1_SERVICE, "held-v1beta1").await;
    wait_in_flight(harness.metrics, 2.0).await;

    let channel = harness.channel().await;
    let mut v1 =
        v1::function_runner_service_client::FunctionRunnerServiceClient::new(channel.clone());
    let status = v1
        .run_function(request("shed"))
        .await
        .expect_err("every slot is busy");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("maximum of 2 RunFunction calls"),
        "{status:?}"
    );
    let mut beta =
        v1beta1::function_runner_service_client::FunctionRunnerServiceClient::new(channel.clone());
    let status = beta
        .run_function(v1beta1::RunFunctionRequest::default())
        .await
        .expect_err("the versions share the slots");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A burst is refused as a whole, none of it waiting for a slot.
    let burst = (0..50).map(|i| {
        let mut client = v1.clone();
        async move { client.run_function(request(&format!("burst-{i}"))).await }
    });
    for answer in futures::future::join_all(burst).await {
        let status = answer.expect_err("every slot is busy");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }

    for channel in [channel.clone(), harness.channel().await] {
        for service in ["", V1_SERVICE, V1BETA1_SERVICE] {
            let status = health_status(channel.clone(), service)
                .await
                .unwrap_or_else(|e| panic!("health of {service:?} while busy: {e}"));
            assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
        }
        let mut reflection = ServerReflectionClient::new(channel);
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::once(ask))
            .await
            .expect("reflection while busy")
            .into_inner();
        assert!(
            answers.message().await.expect("an answer").is_some(),
            "reflection answers while busy"
        );
    }

    first.finish().await;
    second.finish().await;
    wait_in_flight(harness.metrics, 0.0).await;
    answered(&mut v1, request("after"), "slots are free again").await;
    harness.stop().await;
}

/// With one read slot, many large requests on one connection are all read
/// and answered: calls waiting for the slot fill no more than their stream
/// windows, so the connection always has room for the one being read. The
/// slot is never given up early here, so a flow-control deadlock would hang
/// this test rather than be broken by the hold.
#[tokio::test(flavor = "multi_thread")]
async fn large_requests_waiting_for_one_read_slot_are_all_answered() {
    let harness = Harness::limited(ServerLimits {
        max_concurrent_reads: 1,
        read_slot_hold: Duration::from_secs(3600),
        ..ServerLimits::default()
    })
    .await;
    let client = harness.v1().await;
    // Each body is several stream windows long.
    let calls = (0..64).map(|i| {
        let mut client = client.clone();
        let sent = request_of_size(
            &format!("large-{i}"),
            4 * ServerLimits::STREAM_WINDOW as usize,
        );
        async move {
            let answer = client.run_function(sent.clone()).await;
            (sent, answer)
        }
    });
    let answers = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(calls))
        .await
        .expect("every call answered within 120s: reading deadlocked");
    for (sent, answer) in answers {
        assert_answers(&sent, &answer.expect("answered").into_inner());
    }
    harness.stop().await;
}

/// A client that stops halfway through its request gives its read slot up
/// after `read_slot_hold`, so other calls are read and answered; the
/// stalled call is still answered once its client sends the rest.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_request_gives_up_its_read_slot() {
    let harness = Harness::limited(ServerLimits {
        max_concurrent_reads: 1,
        read_slot_hold: Duration::from_millis(200),
        ..ServerLimits::default()
    })
    .await;
    let stalled = HeldCall::open(harness.grpc, V1_SERVICE, "stalled").await;
    wait_in_flight(harness.metrics, 1.0).await;
    let mut client = harness.v1().await;
    tokio::time::timeout(
        Duration::from_secs(60),
        answered(
            &mut client,
            request("behind-the-stalled-one"),
            "read after the hold",
        ),
    )
    .await
    .expect("answered within 60s: the stalled call kept its read slot");
    stalled.finish().await;
    harness.stop().await;
}

/// Connections beyond the maximum are closed as soon as they are accepted;
/// the ones open keep working, and closing one lets a new one in.
#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_maximum_are_closed_until_one_ends() {
    let harness = Harness::limited(ServerLimits {
        max_connections: 2,
        ..ServerLimits::default()
    })
    .await;
    let one = harness.channel().await;
    let two = harness.channel().await;
    for channel in [&one, &two] {
        let status = health_status(channel.clone(), "").await.expect("health");
        assert_eq!(status, ServingStatus::Serving as i32);
    }

    // The server closes a third connection without a byte.
    let mut third = TcpStream::connect(harness.grpc).await.expect("connect");
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), third.read(&mut buffer))
        .await
        .expect("closed within 20s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the third connection was served: {read:?}"
    );
    let refused = match Channel::from_shared(format!("http://{}", harness.grpc))
        .expect("uri")
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => health_status(channel, "").await.is_err(),
    };
    assert!(refused, "a gRPC client got through on a third connection");

    // The open ones are unaffected.
    let mut client =
        v1::function_runner_service_client::FunctionRunnerServiceClient::new(two.clone());
    answered(
        &mut client,
        request("still-served"),
        "an open connection keeps working",
    )
    .await;

    drop(one);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = match Channel::from_shared(format!("http://{}", harness.grpc))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => health_status(channel, "").await.is_ok(),
            Err(_) => false,
        };
        if served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection let in after one closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    drop(two);
    harness.stop().await;
}

/// The per-connection stream limit is what the server's HTTP/2 SETTINGS
/// frame advertises.
#[tokio::test(flavor = "multi_thread")]
async fn streams_per_connection_is_advertised_in_http2_settings() {
    let harness = Harness::limited(ServerLimits {
        max_streams_per_connection: 3,
        ..ServerLimits::default()
    })
    .await;
    let tcp = TcpStream::connect(harness.grpc).await.expect("connect");
    let (_client, mut connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let mut ping = connection.ping_pong().expect("ping handle");
    // The server's SETTINGS come before its answer to our ping.
    tokio::select! {
        ended = &mut connection => panic!("connection ended: {ended:?}"),
        pong = ping.ping(h2::Ping::opaque()) => {
            pong.expect("pong");
        }
    }
    assert_eq!(connection.max_concurrent_send_streams(), 3);
    drop(connection);
    harness.stop().await;
}

/// Label values of the request metrics come from the services and methods
/// served, never from the request: hundreds of distinct bogus paths add
/// one "unknown" series, not hundreds.
#[tokio::test(flavor = "multi_thread")]
async fn bogus_paths_keep_the_metric_label_set_bounded() {
    const HEALTH: &str = "grpc.health.v1.Health";
    const CALLS: usize = 300;
    let harness = Harness::start(4 * MIB).await;
    let tcp = TcpStream::connect(harness.grpc).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client;
    for i in 0..CALLS {
        let path = match i % 6 {
            0 => format!("/bogus{i}.Service/Method{i}"),
            1 => format!("/{V1_SERVICE}/RunFunction{i}"),
            2 => format!("/{HEALTH}/Check{i}"),
            3 => format!("/{V1_SERVICE}{i}/RunFunction"),
            4 => format!("/{V1BETA1_SERVICE}/RunFunction/{i}"),
            _ => format!("/x{i}"),
        };
        let method = if i % 7 == 0 {
            http::Method::GET
        } else {
            http::Method::POST
        };
        let call = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", harness.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        client = client.ready().await.expect("h2 ready");
        let (response, _) = client.send_request(call, true).expect("send");
        let response = response.await.expect("an answer");
        let (code, _) = read_grpc(response).await;
        assert!(
            code.as_deref().is_some_and(|c| c != "0"),
            "{path}: {code:?}"
        );
    }
    // One real call of each, so the served labels show too.
    harness
        .v1()
        .await
        .run_function(request("real"))
        .await
        .expect("RunFunction");
    health_status(harness.channel().await, "")
        .await
        .expect("health");

    let served = [
        V1_SERVICE,
        V1BETA1_SERVICE,
        HEALTH,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "RunFunction",
        "Check",
        "Watch",
        "ServerReflectionInfo",
        "unknown",
    ];
    let unknown = [("grpc_service", "unknown"), ("grpc_method", "unknown")];
    let deadline = Instant::now() + Duration::from_secs(20);
    let exposition = loop {
        let exposition = scrape(harness.metrics).await;
        let handled: f64 = exposition
            .lines()
            .filter(|line| {
                line.starts_with("grpc_server_handled_total{")
                    && unknown
                        .iter()
                        .all(|(name, value)| line.contains(&format!("{name}=\"{value}\"")))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if handled >= CALLS as f64 || Instant::now() > deadline {
            break exposition;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        sample(&exposition, "grpc_server_started_total", &unknown),
        Some(CALLS as f64),
        "{exposition}"
    );
    let mut series = std::collections::BTreeSet::new();
    for line in exposition.lines().filter(|l| l.starts_with("grpc_server")) {
        for name in ["grpc_service", "grpc_method"] {
            if let Some(value) = label(line, name) {
                assert!(served.contains(&value), "{name}={value:?} in {line}");
            }
        }
        if line.starts_with("grpc_server_started_total{") {
            series.insert((label(line, "grpc_service"), label(line, "grpc_method")));
        }
    }
    // unknown, v1 RunFunction and health Check.
    assert_eq!(series.len(), 3, "{series:?}");
    harness.stop().await;
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let length = line[start..].find('"')?;
    Some(&line[start..start + length])
}
