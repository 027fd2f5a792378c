//! Reach the local ECR stand-in (moto for the ECR API, Debian's
//! docker-registry for OCI blobs) that `scripts/test` starts.
//!
//! Include it from an integration test with
//! `#[path = "support/localecr.rs"] mod localecr;`.
//!
//! The servers are described by environment variables written by
//! `scripts/localecr.py up` (the file `$LOCALECR_STATE/env`); `scripts/test`
//! exports them before running `cargo test`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Media types a client must accept to read what `seed` pushes.
pub const ACCEPT_MANIFESTS: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// The moto account id the local ECR answers as.
pub const ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, Clone)]
pub struct LocalEcr {
    /// State directory of the running servers (`LOCALECR_STATE`).
    pub state: PathBuf,
    /// Python that runs `localecr.py` (`LOCALECR_PYTHON`, the venv's).
    pub python: PathBuf,
    /// Path of `scripts/localecr.py` (`LOCALECR_SCRIPT`).
    pub script: PathBuf,
    /// ECR API endpoint, moto (`AWS_ENDPOINT_URL_ECR`), e.g. `http://127.0.0.1:40001`.
    pub ecr_endpoint: String,
    /// OCI distribution endpoint (`ECR_REGISTRY_ENDPOINT`), e.g. `http://127.0.0.1:40002`.
    pub registry_endpoint: String,
    /// `AWS_REGION`.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: the local ECR is not running. Run scripts/test, which starts the \
             local ECR (scripts/localecr.py up) and exports its environment for cargo test."
        ),
    }
}

/// The local ECR described by the process environment. Panics with a clear
/// message when `scripts/test` did not start it.
pub fn env() -> LocalEcr {
    LocalEcr {
        state: PathBuf::from(var("LOCALECR_STATE")),
        python: PathBuf::from(var("LOCALECR_PYTHON")),
        script: PathBuf::from(var("LOCALECR_SCRIPT")),
        ecr_endpoint: var("AWS_ENDPOINT_URL_ECR"),
        registry_endpoint: var("ECR_REGISTRY_ENDPOINT"),
        region: var("AWS_REGION"),
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
    }
}

/// A repository name no other test (or test run) uses: `<prefix>-<pid>-<time>-<n>`,
/// lowercase as ECR requires. `prefix` may contain `/` (e.g. `upbound/provider-aws`).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{}-{:x}-{}",
        prefix.to_lowercase(),
        std::process::id(),
        t.as_micros() & 0xffff_ffff,
        n
    )
}

/// A minimal HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl LocalEcr {
    /// Builds and pushes the images of `spec` (see `scripts/localecr.py`, e.g.
    /// `{"images": [{"repository": "...", "tags": ["v1.0.0"], "package": {...}}]}`)
    /// and returns `{"<repository>": {"<tag>": "sha256:..."}}`.
    pub fn seed(&self, spec: &serde_json::Value) -> serde_json::Value {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg("seed")
            .arg("--state-dir")
            .arg(&self.state)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} {}: {e}",
                    self.python.display(),
                    self.script.display()
                )
            });
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(spec.to_string().as_bytes())
            .expect("write seed spec");
        let out = child.wait_with_output().expect("wait for localecr.py seed");
        if !out.status.success() {
            panic!(
                "localecr.py seed failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "localecr.py seed printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `host:port` of the OCI registry.
    pub fn registry_authority(&self) -> &str {
        self.registry_endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
    }

    /// A plain HTTP/1.1 GET against the OCI registry, e.g.
    /// `registry_get("/v2/<repo>/manifests/<tag>", Some(ACCEPT_MANIFESTS))`.
    pub fn registry_get(&self, path: &str, accept: Option<&str>) -> HttpResponse {
        http_get(self.registry_authority(), path, accept)
    }
}

/// `http://` and a loopback address with nothing listening on it: an
/// endpoint that refuses connections, for outage tests.
pub fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// GET `path` from `authority` (`host:port`) over a fresh connection.
pub fn http_get(authority: &str, path: &str, accept: Option<&str>) -> HttpResponse {
    let mut stream =
        TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect {authority}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response has a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("HTTP status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
