//! Redaction through the whole function: `Function` with an `EcrConnector`
//! whose registry (blob) endpoint is a small loopback server standing in
//! for ECR's blob redirect and for S3. ECR's API (tags, manifests, the
//! token) is the local ECR stand-in. Every blob read is redirected to a
//! presigned S3 URL, and "S3" fails it in each way the client knows, with a
//! body echoing the credential and the signature. Neither the presigned
//! query nor the echoed secrets may reach a result (event), a condition,
//! the XR's status or any log line the function writes.
//!
//! Its own test binary: the log capture is the process-wide subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::{Cluster, allowing_test_iam};
use function_ecr_packages::function::Function;
use function_ecr_packages::registry::cache::CacheOptions;
use function_ecr_packages::registry::connector::EcrConnector;
use function_ecr_packages::registry::ecr::EcrOptions;
use serde_json::{Value as Json, json};
use support::{cluster, localecr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The local ECR, started before `main` unless the environment names one.
#[ctor::ctor(unsafe)]
fn start_local_ecr() {
    // SAFETY: before main, while the process has one thread.
    unsafe { localecr::start_unless_running() }
}

/// The signature and access key of the presigned URL; S3's body echoes them.
const SIGNATURE: &str = "s3cr3tSIGNATURE";
const ACCESS_KEY: &str = "AKIDREDACTIONTEST";

/// Everything that must never be seen: the secrets, and the presigned query
/// (its parameter names; the AWS SDK's own `x-amz-*` request headers to the
/// ECR API are not it).
const FORBIDDEN: &[&str] = &[
    SIGNATURE,
    ACCESS_KEY,
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Algorithm",
    "s3-bucket/layer?",
];

/// Log lines written while the tests run.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every event at every level, as the function writes them (JSON
/// with fields and spans), into one buffer for the process.
fn logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
    .clone()
}

/// A loopback server: a blob GET (`/v2/.../blobs/...`) is redirected to
/// `target`; anything else ("S3") gets `s3_status` with `s3_location`, if
/// any. Every answer carries `body`.
async fn serve(target: String, s3_status: u16, s3_location: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, location) = if path.contains("/blobs/") {
                    (307, Some(target))
                } else {
                    (s3_status, s3_location.map(str::to_string))
                };
                let body = echo();
                let location = location
                    .map(|l| format!("Location: {l}\r\n"))
                    .unwrap_or_default();
                let reply = format!(
                    "HTTP/1.1 {status} Whatever\r\n{location}Content-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}

/// The presigned path and query ECR's redirect names.
fn presigned() -> String {
    format!(
        "/s3-bucket/layer?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature={SIGNATURE}"
    )
}

/// S3's error body: it echoes the credential and the string it signed.
fn echo() -> String {
    format!(
        "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>{ACCESS_KEY}</AWSAccessKeyId>\
         <StringToSign>X-Amz-Credential={ACCESS_KEY}&amp;X-Amz-Signature={SIGNATURE}</StringToSign>\
         <SignatureProvided>{SIGNATURE}</SignatureProvided></Error>"
    )
}

fn xr(name: &str, repository: &str) -> Json {
    json!({
        "apiVersion": "platform.example.org/v1alpha1",
        "kind": "XEcrPackages",
        "metadata": {"name": name},
        "spec": {
            "registry": {"accountId": localecr::ACCOUNT_ID, "region": "us-east-1"},
            "packages": [{"kind": "Provider", "repository": repository, "version": ">=v1.0.0"}],
            "iam": {"oidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/ABC", "nodeRoleNames": ["eks-nodes"]}
        }
    })
}

/// Panics naming the first line of `text` that holds something forbidden.
fn forbidden_in(what: &str, text: &str) {
    for secret in FORBIDDEN {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("{secret:?} in {what}: {line}");
        }
    }
}

#[tokio::test]
async fn presigned_urls_and_echoed_credentials_reach_no_result_condition_status_or_log() {
    let logs = logs();
    let repository = localecr::unique("redaction/provider-presigned");
    localecr::env().seed(&json!({"images": [{
        "repository": repository,
        "tags": ["v1.0.0"],
        "package": {
            "apiVersion": "meta.pkg.crossplane.io/v1",
            "kind": "Provider",
            "metadata": {"name": "provider-presigned"},
            "spec": {}
        }
    }]}));
    let closed = localecr::closed_port();
    // (where the registry redirects, what S3 answers, S3's Location)
    let cases: Vec<(String, u16, Option<&'static str>)> = vec![
        // S3 refuses the signature.
        (presigned(), 403, None),
        // S3 cannot be reached at all.
        (format!("{closed}{}", presigned()), 403, None),
        // S3 redirects again, with no Location.
        (presigned(), 307, None),
        // S3 redirects again, to a Location that is no URL.
        (presigned(), 307, Some("http://[::1")),
        // S3 answers 200 with the echo as the "layer": no package.
        (presigned(), 200, None),
    ];
    for (i, (target, s3_status, s3_location)) in cases.into_iter().enumerate() {
        let registry = serve(target.clone(), s3_status, s3_location).await;
        let connector = Arc::new(EcrConnector::with_options(
            EcrOptions {
                registry_endpoint: Some(registry),
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                ..EcrOptions::from_env()
            },
            CacheOptions::default(),
        ));
        let mut cluster = Cluster::new(
            Function::with_connector(connector),
            xr(&format!("redaction-{i}"), &repository),
            allowing_test_iam(json!({})),
        );
        let round = cluster.reconcile().await;
        let case = format!("case {i} ({target} -> {s3_status} {s3_location:?})");

        // The read failed, and said so somewhere: the test is on an error path.
        let messages: Vec<String> = round
            .response
            .results
            .iter()
            .map(|r| r.message.clone())
            .chain(
                round
                    .response
                    .conditions
                    .iter()
                    .map(|c| c.message.clone().unwrap_or_default()),
            )
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("s3-bucket/layer") || m.contains("layer sha256:")),
            "{case}: no message names the failed read: {messages:?}"
        );
        assert!(
            round.desired().is_empty(),
            "{case}: nothing resolved, nothing composed"
        );

        for result in &round.response.results {
            forbidden_in(&format!("{case}: a result (event)"), &result.message);
        }
        for condition in &round.response.conditions {
            let text = format!(
                "{} {}",
                condition.reason,
                condition.message.clone().unwrap_or_default()
            );
            forbidden_in(&format!("{case}: condition {}", condition.r#type), &text);
        }
        forbidden_in(
            &format!("{case}: the whole response"),
            &format!("{:?}", round.response),
        );
        forbidden_in(&format!("{case}: the XR"), &cluster.xr.to_string());
        forbidden_in(&format!("{case}: the log"), &logs.text());
    }
    // The log was captured at all, and holds the failures.
    let all = logs.text();
    assert!(all.contains("s3-bucket/layer"), "nothing logged: {all}");
    forbidden_in("the log", &all);
}
