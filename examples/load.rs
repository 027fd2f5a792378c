//! Load test: many concurrent RunFunction calls against the local ECR.
//!
//! Seeds the local ECR (`scripts/localecr.py up`, its environment exported)
//! with a catalog of packages under a namespace of its own, makes `--xrs`
//! distinct `XEcrPackages` XRs (names and package sets differ) with the
//! Composition input of `examples/composition.yaml`, starts the function
//! (`--insecure`, free loopback ports; or drives one at `--address`), and
//! keeps `--concurrency` RunFunction calls in flight for `--seconds`. Each XR
//! is reconciled as Crossplane would: what a call desires is observed by the
//! next one on that XR, with the controllers' conditions, so every wave of
//! the function (IAM, ImageConfig, packages, dependents, ready) is exercised.
//!
//! What counts as an error: a call ending in any gRPC status but OK
//! (including RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED after `--timeout`), a
//! transport failure, or a response with a Fatal result. Warning results
//! (e.g. ECR unreadable, the last resolved set recomposed) are counted and
//! shown but are not errors. A line on the server's stderr containing
//! `panicked` counts as a panic.
//!
//! Prints calls, errors, warnings, panics, p50/p90/p99/max latency, calls/s,
//! and the server's VmRSS and VmHWM (from /proc/<pid>/status). Exits 1 if
//! there was any error or panic or the server died, 2 if it could not run.
//!
//! ```sh
//! scripts/load                      # 60 s, starts the local ECR if needed
//! scripts/load --seconds 10         # the CI smoke
//! cargo run --example load -- --help
//! ```

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{ExitCode, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use function_ecr_packages::{
    proto::v1::{
        Ready, RequestMeta, Resource, RunFunctionRequest, RunFunctionResponse, Severity, State,
        function_runner_service_client::FunctionRunnerServiceClient,
    },
    sdk::structs::{json_to_struct, struct_to_json},
};
use serde_json::{Value as Json, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
#[command(about = "Drive concurrent RunFunction calls against the local ECR and report.")]
struct Args {
    /// Seconds to keep the calls going.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// RunFunction calls kept in flight.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Distinct XRs the calls are spread over.
    #[arg(long, default_value_t = 50)]
    xrs: usize,
    /// gRPC connections the calls share. Crossplane keeps one per function.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Deadline of each call, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The function binary to start. Default: $FUNCTION_BINARY, else
    /// function-ecr-packages in the target folder this example was built in.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// A flag for the started server, e.g. `--server-arg=--max-concurrent-calls=256`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Drive a server already serving (insecure) at HOST:PORT instead of
    /// starting one.
    #[arg(long)]
    address: Option<String>,
    /// The process id of the server at --address, to report its memory.
    #[arg(long, requires = "address")]
    pid: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("load: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(2)
        }
    }
}

type Failure = String;

fn var(name: &str) -> Result<String, Failure> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        format!(
            "{name} is not set: start the local ECR (scripts/localecr.py up --state-dir DIR) and \
             export its environment (set -a; . DIR/env; set +a), or use scripts/load"
        )
    })
}

async fn run(args: Args) -> Result<bool, Failure> {
    if args.concurrency == 0 || args.xrs == 0 || args.connections == 0 {
        return Err("--concurrency, --xrs and --connections must be positive".into());
    }
    let account = std::env::var("LOCALECR_ACCOUNT_ID").unwrap_or_else(|_| "123456789012".into());
    let region = var("AWS_REGION")?;
    var("AWS_ENDPOINT_URL_ECR")?;
    var("ECR_REGISTRY_ENDPOINT")?;

    let namespace = namespace();
    let catalog = Catalog::new(&namespace);
    let seeded = Instant::now();
    seed(&catalog.spec()).await?;
    println!(
        "seeded {} repositories under {namespace}/ in {:.1}s",
        catalog.repositories(),
        seeded.elapsed().as_secs_f64()
    );

    let input = input(&account, &region);
    let xrs: Vec<Arc<Mutex<Xr>>> = (0..args.xrs)
        .map(|i| Arc::new(Mutex::new(Xr::new(catalog.xr(i, &account, &region)))))
        .collect();

    let mut server = match &args.address {
        Some(address) => Server::Given {
            address: address.clone(),
            pid: args.pid,
        },
        None => Server::start(&args).await?,
    };
    let address = server.address();
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("address {address}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("connecting to {address}: {e}"))?;
        channels.push(channel);
    }
    let timeout = Duration::from_secs(args.timeout);
    let before = server.memory();

    // One cold call per XR first: the function's caches are empty.
    let cold = Tally::default();
    let started = Instant::now();
    let warm_up = xrs.iter().enumerate().map(|(i, xr)| {
        let channel = channels[i % channels.len()].clone();
        let (xr, input, cold) = (xr.clone(), input.clone(), &cold);
        async move { call(channel, &xr, &input, timeout, cold).await }
    });
    futures::future::join_all(warm_up).await;
    let cold_elapsed = started.elapsed();

    let tally = Arc::new(Tally::default());
    let peak_rss = Arc::new(AtomicU64::new(0));
    let (stop_sampling, mut stopped) = oneshot::channel::<()>();
    let sampler = {
        let (pid, peak) = (server.pid(), peak_rss.clone());
        tokio::spawn(async move {
            loop {
                if let Some(kib) = pid.and_then(|pid| status_kib(pid, "VmRSS")) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            let (xrs, input, tally, next) =
                (xrs.clone(), input.clone(), tally.clone(), next.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let xr = &xrs[next.fetch_add(1, Ordering::Relaxed) % xrs.len()];
                    call(channel.clone(), xr, &input, timeout, &tally).await;
                }
            })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.await {
            tally.error(format!("a load worker failed: {e}"));
        }
    }
    let elapsed = started.elapsed();
    let _ = stop_sampling.send(());
    let _ = sampler.await;

    let alive = server.alive();
    let after = server.memory();
    let panics = server.panics();
    let error_lines = server.error_lines();
    let report = Report {
        args: &args,
        cold: &cold,
        cold_elapsed,
        tally: &tally,
        elapsed,
        before,
        after,
        peak_rss_kib: peak_rss.load(Ordering::Relaxed),
        alive,
        panics: &panics,
        error_lines,
        ready: xrs
            .iter()
            .filter(|xr| xr.lock().map(|xr| xr.ready).unwrap_or(false))
            .count(),
    };
    let passed = report.print();
    server.stop().await;
    Ok(passed)
}

/// A namespace no earlier run or concurrent test uses.
fn namespace() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("load-{}-{:x}", std::process::id(), micros & 0xffff_ffff)
}

/// The packages seeded: a family provider, service providers depending on
/// it, functions, and configurations depending on providers and functions,
/// as `examples/catalog.json` shapes them.
struct Catalog {
    namespace: String,
    providers: Vec<&'static str>,
    functions: Vec<&'static str>,
    configurations: Vec<(&'static str, &'static str, &'static str)>,
}

const PROVIDERS: &[&str] = &["s3", "ec2", "iam", "rds", "eks", "sqs", "sns", "lambda"];
const FUNCTIONS: &[&str] = &["patch-and-transform", "go-templating", "auto-ready"];
/// Name, the provider and the function each depends on.
const CONFIGURATIONS: &[(&str, &str, &str)] = &[
    ("platform-storage", "s3", "patch-and-transform"),
    ("platform-network", "ec2", "go-templating"),
];

impl Catalog {
    fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            providers: PROVIDERS.to_vec(),
            functions: FUNCTIONS.to_vec(),
            configurations: CONFIGURATIONS.to_vec(),
        }
    }

    fn repositories(&self) -> usize {
        1 + self.providers.len() + self.functions.len() + self.configurations.len()
    }

    fn family(&self) -> String {
        format!("{}/provider-family-aws", self.namespace)
    }

    fn provider(&self, service: &str) -> String {
        format!("{}/provider-aws-{service}", self.namespace)
    }

    fn function(&self, name: &str) -> String {
        format!("{}/function-{name}", self.namespace)
    }

    fn configuration(&self, name: &str) -> String {
        format!("{}/configuration-{name}", self.namespace)
    }

    /// The seed spec for `scripts/localecr.py seed`.
    fn spec(&self) -> Json {
        let meta = |kind: &str, name: &str, api: &str, depends: Json| {
            json!({
                "apiVersion": api,
                "kind": kind,
                "metadata": {"name": name, "annotations": {
                    "meta.crossplane.io/maintainer": "Load test <load@example.org>",
                    "meta.crossplane.io/description": format!("{name}, seeded by examples/load.rs"),
                }},
                "spec": {"crossplane": {"version": ">=v1.14.0-0"}, "dependsOn": depends},
            })
        };
        let upstream = |repository: &str| format!("xpkg.upbound.io/{repository}");
        let mut images = vec![json!({
            "repository": self.family(),
            "tags": ["v2.1.0", "v2.2.0", "v2.3.0-rc.1"],
            "package": meta("Provider", "provider-family-aws", "meta.pkg.crossplane.io/v1", json!([])),
        })];
        for service in &self.providers {
            let depends = json!([{"provider": upstream(&self.family()), "version": ">= 0.0.0"}]);
            images.push(json!({
                "repository": self.provider(service),
                "tags": ["v2.1.0", "v2.2.0"],
                "package": meta("Provider", &format!("provider-aws-{service}"), "meta.pkg.crossplane.io/v1", depends),
            }));
        }
        for name in &self.functions {
            images.push(json!({
                "repository": self.function(name),
                "tags": ["v0.8.1", "v0.8.2"],
                "package": meta("Function", &format!("function-{name}"), "meta.pkg.crossplane.io/v1beta1", json!([])),
            }));
        }
        for (name, provider, function) in &self.configurations {
            let depends = json!([
                {"provider": upstream(&self.provider(provider)), "version": ">=v2.1.0"},
                {"function": upstream(&self.function(function)), "version": ">=v0.8.0"},
            ]);
            images.push(json!({
                "repository": self.configuration(name),
                "tags": ["v1.0.0", "v1.1.0"],
                "package": meta("Configuration", &format!("configuration-{name}"), "meta.pkg.crossplane.io/v1", depends),
            }));
        }
        json!({ "images": images })
    }

    /// XR `i`: its own name and a package set picked from `i`'s bits, so the
    /// XRs differ in what they install and how they pin versions.
    fn xr(&self, i: usize, account: &str, region: &str) -> Json {
        let versions = [">=v2.0.0", "v2.1.0", "~2.2", "v2.2.0"];
        let mut packages = Vec::new();
        let count = 1 + i % 3;
        for k in 0..count {
            let service = self.providers[(i * 3 + k * 5) % self.providers.len()];
            packages.push(json!({
                "kind": "Provider",
                "repository": self.provider(service),
                "version": versions[(i + k) % versions.len()],
            }));
        }
        if i.is_multiple_of(2) {
            let name = self.functions[i / 2 % self.functions.len()];
            let version = if i.is_multiple_of(4) {
                "v0.8.2"
            } else {
                ">=v0.8.0"
            };
            packages.push(
                json!({"kind": "Function", "repository": self.function(name), "version": version}),
            );
        }
        if i.is_multiple_of(5) {
            let (name, _, _) = self.configurations[i / 5 % self.configurations.len()];
            packages.push(json!({"kind": "Configuration", "repository": self.configuration(name), "version": ">=v1.0.0"}));
        }
        if i % 7 == 3 {
            packages.push(
                json!({"kind": "Provider", "repository": self.family(), "version": "v2.2.0"}),
            );
        }
        let mut spec = json!({
            "registry": {"accountId": account, "region": region},
            "packages": packages,
        });
        if i % 3 == 1 {
            spec["strategy"] = json!("Skip");
        }
        if i % 4 == 2 {
            spec["iam"] = json!({
                "enabled": true,
                "identity": "IRSA",
                "oidcProvider": format!("oidc.eks.{region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"),
                "nodeRoleNames": ["eks-node-role"],
            });
        }
        json!({
            "apiVersion": "ecr.platform.example.org/v1alpha1",
            "kind": "XEcrPackages",
            "metadata": {"name": format!("load-xr-{i:03}"), "uid": format!("00000000-0000-4000-8000-{i:012}")},
            "spec": spec,
        })
    }
}

/// The pipeline input of `examples/composition.yaml`, for the local ECR's
/// account and region.
fn input(account: &str, region: &str) -> Json {
    json!({
        "apiVersion": "ecr.fn.crossplane.io/v1beta1",
        "kind": "Input",
        "strategy": "Rewrite",
        "mirrors": [
            {"upstream": "xpkg.upbound.io/", "repositoryPrefix": ""},
            {"upstream": "xpkg.crossplane.io/", "repositoryPrefix": ""},
        ],
        "resolveDependencies": true,
        "pinDigests": false,
        "allowedRegistries": [{"accountId": account, "region": region}],
        "iam": {
            "enabled": true,
            "managedResources": "Cluster",
            "providerConfigName": "default",
            "allowedOidcProviders": [format!("oidc.eks.{region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE")],
            "allowedNodeRoleNames": ["eks-node-role"],
        },
        "ttl": "60s",
    })
}

async fn seed(spec: &Json) -> Result<(), Failure> {
    let (python, script, state) = (
        var("LOCALECR_PYTHON")?,
        var("LOCALECR_SCRIPT")?,
        var("LOCALECR_STATE")?,
    );
    let mut child = Command::new(&python)
        .args([script.as_str(), "seed", "--state-dir", state.as_str(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {python} {script} seed: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin for localecr.py seed")?;
    stdin
        .write_all(spec.to_string().as_bytes())
        .await
        .map_err(|e| format!("writing the seed spec: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("waiting for localecr.py seed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "localecr.py seed failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// One XR as the cluster holds it: its status as the function last set it,
/// and the composed resources observed, with their controllers' conditions.
struct Xr {
    xr: Json,
    observed: BTreeMap<String, Json>,
    ready: bool,
}

impl Xr {
    fn new(xr: Json) -> Self {
        Self {
            xr,
            observed: BTreeMap::new(),
            ready: false,
        }
    }

    fn request(&self, input: &Json, tag: String) -> RunFunctionRequest {
        let resources = self
            .observed
            .iter()
            .map(|(name, object)| {
                let resource = Resource {
                    resource: json_to_struct(object),
                    ..Default::default()
                };
                (name.clone(), resource)
            })
            .collect();
        RunFunctionRequest {
            meta: Some(RequestMeta {
                tag,
                ..Default::default()
            }),
            observed: Some(State {
                composite: Some(Resource {
                    resource: json_to_struct(&self.xr),
                    ..Default::default()
                }),
                resources,
            }),
            desired: Some(State::default()),
            input: json_to_struct(input),
            ..Default::default()
        }
    }

    /// What Crossplane and the controllers do with a response: the XR takes
    /// the desired status, desired resources exist and report ready.
    fn apply(&mut self, response: &RunFunctionResponse) {
        let desired = response.desired.as_ref();
        if let Some(status) = desired
            .and_then(|d| d.composite.as_ref())
            .and_then(|c| c.resource.as_ref())
            .map(struct_to_json)
            .and_then(|c| c.get("status").cloned())
            && let Some(fields) = status.as_object()
        {
            for (key, value) in fields {
                self.xr["status"][key] = value.clone();
            }
        }
        let mut observed = BTreeMap::new();
        for (name, resource) in desired.map(|d| &d.resources).into_iter().flatten() {
            let Some(object) = resource.resource.as_ref() else {
                continue;
            };
            let mut object = struct_to_json(object);
            object["metadata"]["generation"] = json!(1);
            object["status"] = settled(&object);
            observed.insert(name.clone(), object);
        }
        self.ready = !observed.is_empty()
            && desired
                .and_then(|d| d.composite.as_ref())
                .is_none_or(|c| c.ready != Ready::False as i32);
        self.observed = observed;
    }
}

/// The status a controller reports once it has acted on `object`. A
/// package gets what Crossplane v2.2 writes once a revision of its
/// `spec.package` is active and healthy (`currentIdentifier`, conditions
/// with `observedGeneration`), in one step rather than Crossplane's two;
/// an activation policy what Crossplane's activation controller writes
/// (as `bench/go/cmd/benchdrv`'s `settled`).
fn settled(object: &Json) -> Json {
    let api = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    if api.starts_with("pkg.crossplane.io/") && kind != "ImageConfig" {
        let generation = object["metadata"]["generation"].clone();
        json!({
            "currentIdentifier": object["spec"]["package"],
            "conditions": [
                {"type": "Installed", "status": "True", "reason": "ActivePackageRevision", "observedGeneration": generation},
                {"type": "Healthy", "status": "True", "reason": "HealthyPackageRevision", "observedGeneration": generation},
            ]
        })
    } else if api.starts_with("apiextensions.crossplane.io/")
        && kind == "ManagedResourceActivationPolicy"
    {
        // Crossplane's activation controller with every named definition
        // installed (tests/e2e/render.py's fake): each is activated and
        // listed, sorted, and the policy is Healthy.
        let mut activated: Vec<&str> = object["spec"]["activate"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .filter(|name| !name.contains('*'))
            .collect();
        activated.sort_unstable();
        json!({
            "activated": activated,
            "conditions": [{"type": "Healthy", "status": "True", "reason": "Running"}],
        })
    } else if api.contains("aws.") {
        json!({"conditions": [
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
            {"type": "Ready", "status": "True", "reason": "Available"},
        ]})
    } else {
        json!({})
    }
}

static TAGS: AtomicU64 = AtomicU64::new(0);

/// One RunFunction call on `xr`, recorded in `tally`.
async fn call(channel: Channel, xr: &Mutex<Xr>, input: &Json, timeout: Duration, tally: &Tally) {
    let tag = format!("load-{}", TAGS.fetch_add(1, Ordering::Relaxed));
    let request = match xr.lock() {
        Ok(xr) => xr.request(input, tag),
        Err(_) => return tally.error("an XR's lock was poisoned".into()),
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    let started = Instant::now();
    let answer = FunctionRunnerServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .run_function(request)
        .await;
    let latency = started.elapsed();
    tally.latency(latency);
    let response = match answer {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return tally.error(format!("{:?}: {}", status.code(), status.message()));
        }
    };
    let fatal = response
        .results
        .iter()
        .find(|r| r.severity == Severity::Fatal as i32);
    if let Some(fatal) = fatal {
        return tally.error(format!("Fatal: {}", fatal.message));
    }
    if let Some(warning) = response
        .results
        .iter()
        .find(|r| r.severity == Severity::Warning as i32)
    {
        tally.warning(&warning.message);
    }
    tally.ok();
    if let Ok(mut xr) = xr.lock() {
        xr.apply(&response);
    }
}

/// Outcomes of calls.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    ok: AtomicU64,
    warnings: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    /// Count of each distinct error and warning message (first 200 kinds).
    errors: Mutex<BTreeMap<String, u64>>,
    warning_kinds: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn latency(&self, latency: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.push(latency);
        }
    }

    fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, message: String) {
        count(&self.errors, message);
    }

    fn warning(&self, message: &str) {
        self.warnings.fetch_add(1, Ordering::Relaxed);
        count(&self.warning_kinds, message.to_string());
    }

    fn error_count(&self) -> u64 {
        self.errors
            .lock()
            .map(|e| e.values().sum())
            .unwrap_or(u64::MAX)
    }

    fn percentiles(&self) -> Option<[Duration; 4]> {
        let mut latencies = self.latencies.lock().ok()?.clone();
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            let rank = ((latencies.len() as f64) * q).ceil() as usize;
            latencies[rank.clamp(1, latencies.len()) - 1]
        };
        Some([at(0.50), at(0.90), at(0.99), at(1.0)])
    }
}

fn count(kinds: &Mutex<BTreeMap<String, u64>>, message: String) {
    if let Ok(mut kinds) = kinds.lock() {
        let entries = kinds.len();
        match kinds.get_mut(&message) {
            Some(n) => *n += 1,
            None if entries < 200 => {
                kinds.insert(message, 1);
            }
            None => *kinds.entry("(other messages)".into()).or_default() += 1,
        }
    }
}

/// Memory of a process, in KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The function under load: started here, or given.
enum Server {
    Started {
        child: Child,
        address: String,
        log: Arc<Mutex<ServerLog>>,
    },
    Given {
        address: String,
        pid: Option<u32>,
    },
}

/// What the started server wrote on stderr that matters here.
#[derive(Default)]
struct ServerLog {
    panics: Vec<String>,
    errors: u64,
    tail: Vec<String>,
}

impl Server {
    async fn start(args: &Args) -> Result<Self, Failure> {
        let binary = match &args.binary {
            Some(binary) => binary.clone(),
            None => match std::env::var_os("FUNCTION_BINARY") {
                Some(binary) => PathBuf::from(binary),
                None => std::env::current_exe()
                    .map_err(|e| format!("finding this program: {e}"))?
                    .parent()
                    .and_then(|examples| examples.parent())
                    .map(|profile| profile.join("function-ecr-packages"))
                    .ok_or("no folder above this program's")?,
            },
        };
        let mut child = Command::new(&binary)
            .args([
                "--insecure",
                "--address",
                "127.0.0.1:0",
                "--metrics-address",
                "127.0.0.1:0",
            ])
            .args(&args.server_args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr for the server")?;
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let (found, address) = oneshot::channel();
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut found = Some(found);
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let parsed: Json = serde_json::from_str(&line).unwrap_or(Json::Null);
                    if parsed["message"] == "serving RunFunction"
                        && let Some(address) = parsed["address"].as_str()
                        && let Some(found) = found.take()
                    {
                        let _ = found.send(address.to_string());
                    }
                    let Ok(mut log) = log.lock() else { break };
                    if line.contains("panicked") {
                        log.panics.push(line.clone());
                    }
                    if parsed["level"] == "ERROR" {
                        log.errors += 1;
                    }
                    log.tail.push(line);
                    if log.tail.len() > 20 {
                        log.tail.remove(0);
                    }
                }
            });
        }
        let address = tokio::time::timeout(Duration::from_secs(30), address)
            .await
            .map_err(|_| format!("{} did not start serving within 30s", binary.display()))?
            .map_err(|_| {
                let tail = log.lock().map(|l| l.tail.join("\n")).unwrap_or_default();
                format!("{} exited before serving:\n{tail}", binary.display())
            })?;
        println!(
            "serving: {} (pid {}) at {address}",
            binary.display(),
            child.id().unwrap_or_default()
        );
        Ok(Self::Started {
            child,
            address,
            log,
        })
    }

    fn address(&self) -> String {
        match self {
            Self::Started { address, .. } | Self::Given { address, .. } => address.clone(),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Started { child, .. } => child.id(),
            Self::Given { pid, .. } => *pid,
        }
    }

    fn memory(&self) -> Option<Memory> {
        let pid = self.pid()?;
        Some(Memory {
            rss: status_kib(pid, "VmRSS")?,
            hwm: status_kib(pid, "VmHWM")?,
        })
    }

    fn alive(&mut self) -> bool {
        match self {
            Self::Started { child, .. } => matches!(child.try_wait(), Ok(None)),
            Self::Given { pid, .. } => {
                pid.is_none_or(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            }
        }
    }

    fn panics(&self) -> Vec<String> {
        match self {
            Self::Started { log, .. } => log.lock().map(|l| l.panics.clone()).unwrap_or_default(),
            Self::Given { .. } => Vec::new(),
        }
    }

    fn error_lines(&self) -> u64 {
        match self {
            Self::Started { log, .. } => log.lock().map(|l| l.errors).unwrap_or_default(),
            Self::Given { .. } => 0,
        }
    }

    /// SIGTERM, as Kubernetes stops a pod, then the exit status.
    async fn stop(&mut self) {
        let Self::Started { child, .. } = self else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => println!("server exit after SIGTERM: {status}"),
            _ => {
                println!("server did not exit within 20s of SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

struct Report<'a> {
    args: &'a Args,
    cold: &'a Tally,
    cold_elapsed: Duration,
    tally: &'a Tally,
    elapsed: Duration,
    before: Option<Memory>,
    after: Option<Memory>,
    peak_rss_kib: u64,
    alive: bool,
    panics: &'a [String],
    error_lines: u64,
    ready: usize,
}

impl Report<'_> {
    /// Prints the report; whether the run passed.
    fn print(&self) -> bool {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let args = self.args;
        println!(
            "load: {} calls in flight over {} XRs on {} connection(s) for {}s",
            args.concurrency, args.xrs, args.connections, args.seconds
        );
        let cold_errors = self.cold.error_count();
        println!(
            "cold (one call per XR, empty caches): {} calls, {} errors, in {:.0} ms",
            self.cold.calls.load(Ordering::Relaxed),
            cold_errors,
            ms(self.cold_elapsed)
        );
        let calls = self.tally.calls.load(Ordering::Relaxed);
        let errors = self.tally.error_count() + cold_errors;
        let warnings = self.tally.warnings.load(Ordering::Relaxed)
            + self.cold.warnings.load(Ordering::Relaxed);
        println!("calls:    {calls} (after the cold ones)");
        println!("ok:       {}", self.tally.ok.load(Ordering::Relaxed));
        println!("errors:   {errors} (cold ones included)");
        println!("warnings: {warnings}");
        println!("panics:   {}", self.panics.len());
        println!("server ERROR log lines: {}", self.error_lines);
        println!(
            "calls/s:  {:.1}",
            calls as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
        );
        if let Some([p50, p90, p99, max]) = self.tally.percentiles() {
            println!(
                "latency:  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                ms(p50),
                ms(p90),
                ms(p99),
                ms(max)
            );
        }
        println!("XRs ready at the end: {}/{}", self.ready, args.xrs);
        match (self.before, self.after) {
            (Some(before), Some(after)) => println!(
                "server memory: VmRSS {:.1} MiB before, {:.1} MiB after, {:.1} MiB peak sampled; VmHWM {:.1} MiB",
                mib(before.rss),
                mib(after.rss),
                mib(self.peak_rss_kib.max(after.rss)),
                mib(after.hwm)
            ),
            _ => println!("server memory: unknown (no pid, or the process is gone)"),
        }
        for (kinds, what) in [
            (&self.cold.errors, "error (cold)"),
            (&self.tally.errors, "error"),
            (&self.cold.warning_kinds, "warning (cold)"),
            (&self.tally.warning_kinds, "warning"),
        ] {
            if let Ok(kinds) = kinds.lock() {
                for (message, n) in kinds.iter().take(10) {
                    println!("  {what} x{n}: {message}");
                }
            }
        }
        for panic in self.panics.iter().take(5) {
            println!("  panic: {panic}");
        }
        let mut passed = true;
        if !self.alive {
            println!("FAIL: the server process died");
            passed = false;
        }
        if errors > 0 {
            println!("FAIL: {errors} calls failed");
            passed = false;
        }
        if !self.panics.is_empty() {
            println!("FAIL: the server panicked");
            passed = false;
        }
        if calls == 0 {
            println!("FAIL: no call completed");
            passed = false;
        }
        if passed {
            println!("PASS");
        }
        passed
    }
}
