//! Reach the local ECR stand-in (moto for the ECR API, Debian's
//! docker-registry for OCI blobs) that `scripts/test` starts.
//!
//! The servers are described by environment variables written by
//! `scripts/localecr.py up` (the file `$LOCALECR_STATE/env`); `scripts/test`
//! starts them once and exports them before running `cargo test`. A test
//! binary run on its own (`cargo test`) starts its own servers before its
//! tests run, and they stop when it exits; on a machine without the tools
//! (`scripts/setup` installs them) the binary says so and runs no test. A
//! binary that uses the local ECR asks for that with
//!
//! ```ignore
//! #[ctor::ctor(unsafe)]
//! fn start_local_ecr() {
//!     // SAFETY: before main, while the process has one thread.
//!     unsafe { localecr::start_unless_running() }
//! }
//! ```

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// The upstream package registry (`LOCALECR_UPSTREAM`), `127.0.0.1:PORT`.
    pub upstream: String,
    /// An upstream registry wanting Basic credentials
    /// (`LOCALECR_PRIVATE_UPSTREAM`), and them, base64 `user:password` as a
    /// Docker config file holds them (`LOCALECR_PRIVATE_AUTH`).
    pub private_upstream: String,
    pub private_auth: String,
    /// The registry behind ECR's data plane, without the ECR proxy
    /// (`LOCALECR_REGISTRY_URL`).
    pub registry_url: String,
    /// `AWS_REGION`.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Starts the local ECR for this test binary when the environment names
/// none, and exports its environment; without the tools it exits 0 (every
/// test skipped), and it exits 1 when the servers do not start.
///
/// # Safety
///
/// It sets environment variables: call it before `main` (from a
/// `#[ctor]`), while the process has one thread.
#[allow(
    unsafe_code,
    reason = "sets the environment before main, on one thread"
)]
pub unsafe fn start_unless_running() {
    if std::env::var_os("LOCALECR_STATE").is_some() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let registry = std::env::var_os("LOCALECR_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
    let binary = std::env::args().next().unwrap_or_default();
    if !python.exists() || !registry.exists() {
        eprintln!(
            "{binary}: skipping every test: they need the local ECR (Debian's docker-registry \
             and the .venv with moto; scripts/setup installs both, scripts/test runs everything)"
        );
        std::process::exit(0);
    }
    let state = std::env::temp_dir().join(format!("localecr-test-{}", std::process::id()));
    let up = Command::new(&python)
        .arg(root.join("scripts/localecr.py"))
        .args([
            "up",
            "--watch-pid",
            &std::process::id().to_string(),
            "--state-dir",
        ])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output();
    let env_file = match up {
        Ok(out) if out.status.success() => state.join("env"),
        Ok(out) => {
            eprintln!(
                "{binary}: could not start the local ECR: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{binary}: could not run {}: {e}", python.display());
            std::process::exit(1);
        }
    };
    let text = std::fs::read_to_string(&env_file).unwrap_or_default();
    for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
        // SAFETY: the caller runs this before main, on the only thread of
        // the process.
        unsafe { std::env::set_var(key.trim(), value.trim()) };
    }
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
        upstream: var("LOCALECR_UPSTREAM"),
        registry_url: var("LOCALECR_REGISTRY_URL"),
        private_upstream: var("LOCALECR_PRIVATE_UPSTREAM"),
        private_auth: var("LOCALECR_PRIVATE_AUTH"),
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

/// A directory of its own under the system temp dir (`<prefix>-…`, see
/// [`unique`]), removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A package's `crossplane.yaml` as the seed spec takes it: `kind`
/// (`Function` is `meta.pkg.crossplane.io/v1beta1`, the rest `v1`) named
/// `name`, depending on `depends_on` (a JSON list of `dependsOn` entries).
pub fn package_meta(kind: &str, name: &str, depends_on: serde_json::Value) -> serde_json::Value {
    let api_version = if kind == "Function" {
        "meta.pkg.crossplane.io/v1beta1"
    } else {
        "meta.pkg.crossplane.io/v1"
    };
    serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name},
                       "spec": {"dependsOn": depends_on}})
}

/// What [`LocalEcr::written`] reports.
#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Written {
    pub writes: u64,
    pub repositories: Vec<String>,
}

/// An HTTP response, read whole.
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
        self.seed_into(spec, &[])
    }

    /// As [`LocalEcr::seed`], into the upstream registry only (for `mirror`).
    pub fn seed_upstream(&self, spec: &serde_json::Value) -> serde_json::Value {
        self.seed_into(spec, &["--upstream"])
    }

    /// As [`LocalEcr::seed`], into the private upstream registry only.
    pub fn seed_private_upstream(&self, spec: &serde_json::Value) -> serde_json::Value {
        self.seed_into(spec, &["--private-upstream"])
    }

    fn seed_into(&self, spec: &serde_json::Value, flags: &[&str]) -> serde_json::Value {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg("seed")
            .args(flags)
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

    /// A GET against the OCI registry, e.g.
    /// `registry_get("/v2/<repo>/manifests/<tag>", Some(ACCEPT_MANIFESTS))`.
    pub async fn registry_get(&self, path: &str, accept: Option<&str>) -> HttpResponse {
        get(
            &format!("{}{path}", self.registry_endpoint.trim_end_matches('/')),
            accept,
        )
        .await
    }

    /// What was written to the ECR stand-in under `prefix` so far: write
    /// requests to its data plane (POST, PUT, PATCH, DELETE, answered or
    /// refused) and the repositories the ECR API holds, as the proxy counts
    /// them.
    pub async fn written(&self, prefix: &str) -> Written {
        let response = self
            .registry_get(&format!("/_localecr/writes?prefix={prefix}"), None)
            .await;
        assert_eq!(response.status, 200, "the ECR proxy's write counter");
        serde_json::from_slice(&response.body).expect("the ECR proxy's write counter")
    }

    /// A GET against the upstream registry.
    pub async fn upstream_get(&self, path: &str, accept: Option<&str>) -> HttpResponse {
        get(&format!("http://{}{path}", self.upstream), accept).await
    }
}

async fn get(url: &str, accept: Option<&str>) -> HttpResponse {
    let mut request = reqwest::Client::new().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .to_vec();
    HttpResponse {
        status,
        headers,
        body,
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
